// Code: data scientists' functions, the requests to run them on private data, and their jobs.
//
// Approval is of exact code: a job runs the source whose hash was approved, with exactly the inputs
// its policy binds. Private bytes reach only the sandbox; a data scientist gets the results of
// approved runs (after release, when output review is on), the results of runs on mocks, and
// nothing else derived from private data.
#ifndef DATASITE_SERVICES_CODE_H_
#define DATASITE_SERVICES_CODE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "blob/blob_store.h"
#include "core/clock.h"
#include "core/status.h"
#include "jobs/job_queue.h"
#include "sandbox/sandbox.h"
#include "services/grant_rules.h"
#include "services/output_checks.h"
#include "services/principal.h"
#include "services/settings.h"
#include "services/storage_meter.h"
#include "services/transfer_slots.h"
#include "store/store.h"

namespace datasite::services {

// What one user's jobs, code and projects may hold. The limits bind data scientists only: data
// owners and admins are limited by the server's storage limit alone.
struct JobQuotas {
  int64_t max_unfinished_jobs = 10;           // queued or running (--max-queued-jobs-per-user)
  int64_t max_kept_bytes = int64_t{1} << 30;  // results and logs kept (--user-quota-bytes)
  int64_t mock_outputs_kept = 10;  // newest mock runs whose outputs stay (--mock-results-kept)
  // Code versions one data scientist may submit (--max-code-per-user). Their bytes count against
  // max_kept_bytes; this bounds what each row costs beyond them (its id, hash, audit entry).
  int64_t max_code_versions = 10'000;
  // Projects one data scientist may create (--max-projects-per-user) and messages they may post
  // to projects (--max-project-messages-per-user). Their texts count against max_kept_bytes;
  // these bound what each row costs beyond them: a new project notifies every data owner and
  // admin, so the project cap also bounds how many notifications one scientist causes.
  int64_t max_projects = 100;
  int64_t max_project_messages = 10'000;
};

struct CodeOptions {
  // Where results too large for the database are kept: one blob per run, "<job id>.<attempt>"
  // (ResultBlobId). Borrowed, never null: outlives the service. The directory store of the storage
  // directory's `results/`, or the bucket's `PREFIX/results/`.
  blob::BlobStore* results = nullptr;
  // A local directory: the result files runs are writing (`running/`), and where results were
  // kept before they were blobs, one file per run (still read and removed).
  std::string results_dir;
  // RemoveStrayResults leaves the results store's blobs, temporary files and unfinished uploads
  // written less than this long ago (or twice the longest run, if longer), when other processes
  // may be writing results into it.
  int64_t keep_recent_files_seconds = 0;
  int64_t max_timeout_ms = 60'000;  // and the default timeout of a job
  sandbox::Limits limits;           // wall_timeout is set per job
  JobQuotas quotas;
  // Requests of one user that may wait for jobs at once (blocking runs and /wait): each holds a
  // thread of the server's wait lane, which one user must not fill.
  int max_waits_per_user = 4;
  // Requests of all users that may wait at once: fewer than the wait lane's threads
  // (http::ServerOptions::wait_threads), so that a wait or blocking run over the cap gets a thread
  // and its refusal at once instead of queueing for one behind the waits.
  int max_waits = 28;
};

// A user's own use of the server, against their quotas (nullopt: not limited). The bytes are
// those of outputs the user may read: what their held runs and owner-only logs keep counts against
// the quota but is not told (its size is the code's to choose, from private data).
struct QuotaUse {
  int64_t result_bytes = 0;
  int64_t log_bytes = 0;
  std::optional<int64_t> max_kept_bytes;
  int64_t unfinished_jobs = 0;
  std::optional<int64_t> max_unfinished_jobs;
  int64_t mock_outputs_kept = 0;
  // What the user's submitted code keeps (never deleted), against max_kept_bytes with their
  // outputs, and how many versions of it, against max_code_versions.
  int64_t code_bytes = 0;
  int64_t code_versions = 0;
  std::optional<int64_t> max_code_versions;
  // What the user's projects and project messages keep (never deleted), against max_kept_bytes
  // too, and how many of each, against their caps.
  int64_t project_bytes = 0;
  int64_t projects = 0;
  std::optional<int64_t> max_projects;
  int64_t project_messages = 0;
  std::optional<int64_t> max_project_messages;
};

struct SubmitCode {
  std::string name;
  std::string source;
  nlohmann::json inputs = nlohmann::json::object();  // {arg: {"asset_id"} | {"value"}}
  std::string output_policy = "single_execution";    // or "execute_count"
  std::optional<int64_t> limit;
  // Custom policies (user code, run in the sandbox with the function): {"source": Python defining
  // the classes, "input": {"class"} (its kwargs are `inputs`), "output": {"class",
  // "init_kwargs"}}, either policy optional. With "output", output_policy is "custom".
  std::optional<nlohmann::json> policy_code;
  // The worker pool it runs in (services/pools.h); its approval binds the pool's environment.
  std::string worker_pool_name = "default";
};

struct RunCode {
  std::optional<nlohmann::json> inputs;  // must match the policy when given
  bool mock = false;
  bool blocking = true;
  std::optional<int64_t> timeout_seconds;
  // A data owner's run of approved code on its author's behalf: a private run whose user is the
  // author, exactly as if the author had run it (its output policy counts it, output review holds
  // it). Owners only; approved code only; no inputs other than those the code's policy binds.
  bool for_requester = false;
  // A blocking run stops waiting (the job runs on) once this returns true: its client has gone.
  std::function<bool()> client_gone;
  // A blocking run's job comes with its result when it is at most this big (see GetJob).
  int64_t result_up_to = 0;
};

// A result a data owner deposits on a request (PySyft's request.deposit_result): in one of the
// formats a run's result has, with the stdout its requester may read.
struct DepositResult {
  std::string format;  // json | csv | npy | bytes
  std::string bytes;
  // A CSV result's typed sidecar, as a run's result carries it (see data::ParseSidecar); none: the
  // CSV is read as plain text.
  std::optional<nlohmann::json> meta;
  std::string stdout_text;
  std::string stderr_text;  // for data owners, as a run's
};

// A request's approval for repeated use (request.approve(repeat=sy.RateLimit(...))): the grant it
// makes (store::Grant). At least one limit; each 1 to kMaxGrantRuns.
struct RepeatGrant {
  std::optional<int64_t> per_minute;
  std::optional<int64_t> per_hour;
  std::optional<int64_t> per_day;
  double expires_in_days = 30;  // above 0, at most kMaxGrantDays
  // Further data scientists who may run the same code on the same inputs (emails or user ids);
  // the requester always may.
  std::vector<std::string> users;
};

struct Approval {
  store::CodeRequest request;
  std::optional<store::Grant> grant;  // the grant the approval made, if any
};

struct RunOutcome {
  store::Job job;
  bool created = true;  // false: the policy was used up and this is the last completed run
};

struct JobLogs {
  std::optional<std::string> stdout_text;  // null when the caller may not see it; from `since` on
  std::optional<std::string> stderr_text;
  // The offset to read on from: `since` plus the bytes in stdout_text. While the job runs, a
  // UTF-8 character whose last bytes have not arrived yet is left for the next read.
  int64_t next_since = 0;
  bool ended = false;
};

struct ResultFile {
  std::optional<std::string> bytes;          // a small result, kept in the database
  std::shared_ptr<blob::BlobReader> reader;  // else: its bytes
  std::string format;
  int64_t size = 0;
};

// The largest page of code, requests or jobs one listing answers, and a page of jobs by default.
inline constexpr int64_t kMaxListPageSize = 1000;
inline constexpr int64_t kDefaultJobPageSize = 500;
// A page of code or requests carries code sources, inputs and custom policies up to this many
// characters; past it, a row's are left out (UserCode::source_omitted) and read by id (a page of
// 1000 rows of 1 MiB sources held ~3 GiB at once).
inline constexpr int64_t kMaxListSourceChars = 4 << 20;

class Notifications;
class EndpointService;
class PoolService;

// Safe for concurrent use.
class CodeService {
 public:
  // Job results and logs are counted in `storage` (with the blobs).
  CodeService(store::Store& store, blob::BlobStore& blobs, const SettingsService& settings,
              jobs::JobQueue& queue, StorageMeter& storage, const Clock& clock,
              CodeOptions options);

  // The sandbox, once started (or why it could not be). Until one of these is called, runs are
  // queued and wait.
  void SetSandbox(std::unique_ptr<sandbox::Sandbox> sandbox);
  void SetSandboxFailure(Status why);
  // Where new requests, decisions and releases are announced (none until set). Call before
  // serving.
  void SetNotifications(Notifications* notifications) { notifications_ = notifications; }
  // Where the calls of code that took API endpoints as inputs go (none until set: such code
  // fails). Call before serving.
  void SetEndpoints(EndpointService* endpoints) { endpoints_ = endpoints; }
  // Worker pools other than the default (this service's own sandbox). Set once before serving.
  void SetPools(PoolService* pools) { pools_ = pools; }
  // A `datasite worker --pool` (no PoolService): its jobs are that pool's, and a private run's
  // approval must have bound `packages_hash`, this worker's environment. Set once before serving.
  void SetRunPool(std::string name, std::string packages_hash) {
    run_pool_ = std::move(name);
    run_pool_hash_ = std::move(packages_hash);
  }
  // Removes the files in the results directory that no completed job refers to: what the attempt of
  // a job running when the server died had written, and any other stray file; the file of a run
  // that another worker process is running now (a lease not `owner`'s that has not expired) stays.
  // Call before this process's job queue starts. Returns how many files it removed.
  int RemoveStrayResults(std::string_view owner = store::kLocalLeaseOwner);
  // Counts the results and logs jobs keep, and what submitted code keeps, in the storage meter.
  // Call once, at start-up.
  Status CountKeptBytes();

  // Stores a new version of the caller's code. The bytes it keeps (UserCode::stored_bytes) count
  // against the storage limit and, for a data scientist, their quota with what their jobs keep
  // and their number of versions: kResourceExhausted, naming the limit, when it would pass one.
  Result<store::UserCode> Submit(const Principal& caller, const SubmitCode& code);
  // What Submit would store for `code`, checked as Submit checks it but not stored: name, source,
  // output policy, custom policies and inputs (resolved against this server's assets, with its own
  // names). Sets source, name, code_hash (of the source), inputs, the output policy and
  // stored_bytes; the id, the author and the times are the caller's. `policy_spec` gets the custom
  // policies' spec (null for none). Sync re-derives received code through it.
  Result<store::UserCode> PrepareCode(const SubmitCode& code, nlohmann::json& policy_spec);
  // Listings are oldest first, in pages of `page_size` (1 to kMaxListPageSize) from page 1.
  Result<store::CodePage> ListCode(const Principal& caller, const std::optional<std::string>& name,
                                   int64_t page = 1, int64_t page_size = kMaxListPageSize);
  Result<store::UserCode> GetCode(const Principal& caller, const std::string& id);
  // GetCode without the code's source, inputs and policy spec (UserCode::source_omitted): for a
  // listing past its byte budget.
  Result<store::UserCode> GetCodeSummary(const Principal& caller, const std::string& id);

  Result<store::CodeRequest> CreateRequest(const Principal& caller, const std::string& code_id,
                                           const std::string& reason);
  // The request CreateRequest would insert, checked but not stored (for a project, which stores
  // it with its event in one transaction).
  Result<store::CodeRequest> NewRequest(const Principal& caller, const std::string& code_id,
                                        const std::string& reason);
  // Called in the transaction that inserts a new request, wherever it was made (CreateRequest, a
  // project): the one place a new request notifies the data owners (rows in `tx`). After the
  // commit, WakeNotifier(status of the transaction) lets the mail sender go.
  Status AnnounceRequest(store::Store& tx, const store::CodeRequest& request);
  void WakeNotifier(const Status& committed);
  // `project_id`: only the requests of that project.
  Result<store::RequestPage> ListRequests(const Principal& caller,
                                          const std::optional<std::string>& status,
                                          int64_t page = 1, int64_t page_size = kMaxListPageSize,
                                          const std::optional<std::string>& project_id = {});
  Result<store::CodeRequest> GetRequest(const Principal& caller, const std::string& id);
  // Approves the request; with `repeat`, also for repeated use: a grant (store::Grant) in the same
  // transaction. An approved request may be approved again with `repeat` (another grant);
  // code with custom policies may not (its policy counts its runs itself).
  Result<Approval> Approve(const Principal& caller, const std::string& id,
                           const std::optional<RepeatGrant>& repeat = std::nullopt);
  // A decision may change: approve after deny; deny after approve while no result of the
  // request was released (its unfinished runs are then held and killed). kFailedPrecondition
  // when the request already has that status, or a result was released.
  Result<store::CodeRequest> Deny(const Principal& caller, const std::string& id,
                                  const std::string& reason);
  Result<std::vector<store::RequestDecision>> RequestHistory(const Principal& caller,
                                                             const std::string& id);
  // Stores `result` as a completed private run of the request's code, which its requester reads
  // as the request's result once the request is approved (held until then). Data owners only.
  Result<store::Job> Deposit(const Principal& caller, const std::string& request_id,
                             DepositResult result);

  Result<RunOutcome> Run(const Principal& caller, const std::string& code_id, const RunCode& run);

  // A dataset's output checks (services/output_checks.h): {"dataset_id", "rules": {...} | null}.
  // Any data scientist reads them; data owners set them ({} removes them; audited).
  Result<nlohmann::json> GetOutputChecks(const Principal& caller, const std::string& dataset_id);
  Result<nlohmann::json> SetOutputChecks(const Principal& caller, const std::string& dataset_id,
                                         const nlohmann::json& rules);

  // Grants, newest first: every grant for data owners, the grants naming the caller for a data
  // scientist. `status`: "active", "revoked" or "expired".
  Result<store::GrantPage> ListGrants(const Principal& caller,
                                      const std::optional<std::string>& status, int64_t page = 1,
                                      int64_t page_size = kMaxListPageSize);
  // kNotFound for a data scientist the grant does not name.
  Result<store::Grant> GetGrant(const Principal& caller, const std::string& id);
  // Ends the grant (data owners): no run is admitted under it after this returns, and its runs
  // still queued or running are killed. kFailedPrecondition when revoked already.
  Result<store::Grant> RevokeGrant(const Principal& caller, const std::string& id);
  // What `user_id` may still run under the grant now.
  Result<GrantUse> UseOf(const store::Grant& grant, const std::string& user_id);
  int64_t NowMillis() const { return clock_.NowMillis(); }
  // For rendering what the service returned (names of the users a grant names).
  store::Store& store() const { return store_; }

  Result<store::JobPage> ListJobs(const Principal& caller,
                                  const std::optional<std::string>& code_id,
                                  const std::optional<std::string>& status, int64_t page = 1,
                                  int64_t page_size = kDefaultJobPageSize);
  // With `result_up_to` > 0, a completed job's result of at most that many bytes comes with it
  // (store::Store::GetJob; SmallResult then reads nothing more).
  Result<store::Job> GetJob(const Principal& caller, const std::string& id,
                            int64_t result_up_to = 0);
  // The job once it has ended, or as it is after `timeout` or once `client_gone` (when given)
  // returns true, whichever comes first; with its result as GetJob reads it.
  Result<store::Job> WaitJob(const Principal& caller, const std::string& id,
                             std::chrono::seconds timeout,
                             const std::function<bool()>& client_gone = nullptr,
                             int64_t result_up_to = 0);
  // Whether the caller may see the job's result and stdout now (not while held, unless an owner).
  bool MaySeeResult(const Principal& caller, const store::Job& job) const;
  // Whether the caller may see what a failed run said (its error_detail) and its stderr: data
  // owners always; its user for runs on the mocks, and for a private run once a data owner
  // released its error (see ReleaseError).
  bool MaySeeErrorDetail(const Principal& caller, const store::Job& job) const;
  // Whether the caller may read the job's stdout now: as MaySeeResult, except that a private run
  // of code with custom policies shows its stdout to its requester only once it completed (its
  // output policy accepted the result and kept its state) or a data owner released its error;
  // data owners always read it.
  bool MaySeeStdout(const Principal& caller, const store::Job& job) const;
  Result<ResultFile> JobResult(const Principal& caller, const std::string& id);
  // The bytes of a completed job's result when at most `max_bytes`; nullopt when larger. No
  // permission check: for rendering a job the caller may already see.
  // A result computed on private data is recorded in the audit log (job.read_result, as the
  // caller) before it is first returned to that caller by this process: a client polling an
  // ended job reads the same bytes again and again, and one entry per poll made every poll a
  // durable write (the download route, JobResult, records every read).
  Result<std::optional<std::string>> SmallResult(const Principal& caller, const store::Job& job,
                                                 int64_t max_bytes) const;
  // A job's stdout (from byte `since` on) to whoever may see it (MaySeeStdout) — while it runs
  // too: it streams into the store (see RunInSandbox) — and its stderr to data owners and admins.
  Result<JobLogs> Logs(const Principal& caller, const std::string& id, int64_t since = 0);
  Result<store::Job> Kill(const Principal& caller, const std::string& id);
  Result<store::Job> Release(const Principal& caller, const std::string& id);
  // Lets a failed private run's user read what it said (its error text and stderr). Data owners
  // only; kFailedPrecondition for a mock or review run, a run with no error, a held run (release
  // it first) or one already released.
  Result<store::Job> ReleaseError(const Principal& caller, const std::string& id);
  // The caller's own results and logs they may read, unfinished jobs and submitted code, with
  // their limits.
  Result<QuotaUse> Quota(const Principal& caller);
  const JobQuotas& quotas() const { return options_.quotas; }
  // Whether what the user keeps, with `what` of `new_bytes` just stored in `tx` (their code, their
  // projects and messages, and the outputs of their jobs they may read, mock outputs aside: they
  // expire to make room), fits their quota; else kResourceExhausted naming the limit. Data
  // scientists only: the caller skips it for data owners and admins.
  Status KeptFitsQuota(store::Store& tx, const std::string& user_id, const std::string& what,
                       int64_t new_bytes);

  // The queue's runner: runs one leased job in the sandbox.
  jobs::Outcome RunJob(const store::Job& job, const std::atomic<bool>& cancel);
  // The queue's ender (jobs::Ender): in the transaction that records the run's end, keeps what
  // fits its user's quota and the storage limit (KeepWithinQuota).
  // Without `keep` (the queue's last try), drops the run's result and logs instead, touching
  // nothing in the store.
  Status EndJob(store::Store& tx, const store::Job& job, jobs::Outcome& out, bool keep);

  // The blob of the run of `job_id` at `attempts` (CodeOptions::results): each run of a job has
  // its own, so that a run whose lease was taken (see Store::FinishJob) never writes over, or
  // removes, the result of the run that holds it.
  static std::string ResultBlobId(const std::string& job_id, int64_t attempts);
  // The bytes of a completed job's result kept out of the database: its run's blob, or a file
  // kept before results were blobs (named by run, or by job before that), or kept in the
  // directory's store before results moved to a bucket.
  // With `downloader`, for a download of theirs: read ahead within their share (see
  // services::OpenForDownload).
  Result<std::unique_ptr<blob::BlobReader>> OpenResult(const store::Job& job,
                                                       const Principal* downloader = nullptr) const;
  // Where the sandbox writes the result of a job's run, until it is stored: named by run, so that
  // RemoveStrayResults spares the runs going on in other processes.
  std::string RunningResultPath(const std::string& job_id, int64_t attempts) const;
  // Where a result of a job's run may have been kept on local disk before it was a blob of
  // CodeOptions::results.
  std::vector<std::string> LocalResultPaths(const std::string& job_id, int64_t attempts) const;
  // Removes the result of a job's run, under any of those names.
  void RemoveResultFile(const std::string& job_id, int64_t attempts) const;
  // The same once the changes made so far (the job's row saying its result is gone) are committed
  // (store::Store::AfterCommit).
  void RemoveResultFileAfterCommit(const std::string& job_id, int64_t attempts) const;

  // A held place among the waits of one user (TakeWaitPlace); given back on destruction.
  class WaitPlace {
   public:
    WaitPlace(CodeService* service, std::string user) : service_(service), user_(std::move(user)) {}
    WaitPlace(WaitPlace&& other) noexcept
        : service_(std::exchange(other.service_, nullptr)), user_(std::move(other.user_)) {}
    WaitPlace(const WaitPlace&) = delete;
    WaitPlace& operator=(const WaitPlace&) = delete;
    WaitPlace& operator=(WaitPlace&&) = delete;
    ~WaitPlace();

   private:
    CodeService* service_;
    std::string user_;
  };
  // A place for one more wait of `user_id`; kResourceExhausted past max_waits_per_user, or past
  // max_waits in all. Blocking runs and waits take one, and so do endpoint calls (they hold a
  // thread of the same wait lane).
  Result<WaitPlace> TakeWaitPlace(const std::string& user_id);

 private:
  // Makes the result file a run wrote at `path` (`size` bytes) the run's blob.
  Status KeepResult(const store::Job& job, const std::string& path, int64_t size);
  // What ReadCode reads: GetCode's whole code; without `used` (0) for a run, which reads it
  // nowhere (see Store::GetCodeToRun); a summary (see Store::GetCodeSummary).
  enum class CodeRead { kWhole, kToRun, kSummary };
  Result<store::UserCode> ReadCode(const Principal& caller, const std::string& id, CodeRead read);
  // Waits until the sandbox has started or failed; the sandbox, or why there is none.
  Result<sandbox::Sandbox*> WaitForSandbox(const std::atomic<bool>* cancel);
  Status SandboxUsable() const;
  // The bytes the caller's jobs keep that the caller may read, by the rules above (MaySeeResult,
  // MaySeeStdout, MaySeeErrorDetail), and in them what mock runs keep. Held results, owner-only
  // logs and a running job's charge are left out: their sizes may be the data's.
  struct KeptBytes {
    int64_t result = 0;
    int64_t log = 0;
    int64_t mock = 0;
  };
  Result<KeptBytes> KeptBytesOf(const Principal& caller);
  // The parts of `o` (an ended job, as it reads now) that `caller` may read.
  KeptBytes ReadableOf(const Principal& caller, const store::KeptOutput& o) const;
  // What the storage limit counts for `o` (a job as it reads now): each part its requester may
  // read at its size, each part they may not (a held run's everything, a private run's stderr, a
  // refused policy's stdout, a review run's everything) at its ceiling, --max-result-bytes for a
  // result and the log limit for stdout and stderr, whatever its size (empty too). The free space
  // then tells how many hidden parts the server keeps, never their sizes; the disk stays bounded.
  int64_t MeteredOf(const store::KeptOutput& o) const;
  // What a job is charged (store::Store::ChargeJobBytes) and metered (MeteredOf) once it reads
  // as `o.job` (RechargeOf) or `job` (RechargeFor) says: held, error released.
  struct Recharge {
    int64_t charged = 0;
    int64_t metered = 0;
  };
  Recharge RechargeOf(const store::KeptOutput& o) const;
  Result<Recharge> RechargeFor(const store::Job& job);
  jobs::Outcome RunInSandbox(const store::Job& job, const std::atomic<bool>& cancel);
  // The strictest output checks of the datasets whose assets `code` binds (none: no rule).
  Result<OutputRules> OutputRulesOf(const store::UserCode& code);
  // Checks a completed run's small result (out.result_data, its stdout in out) against `rules`:
  // holds it (out.held, out.held_reason) or rewrites it (suppressed and rounded counts).
  void ApplyOutputChecks(const OutputRules& rules, const store::UserCode& code,
                         const sandbox::JobSpec& spec, sandbox::JobResult& r, jobs::Outcome& out);
  // After a counted run of code with custom policies: stores the state they report (over the
  // version the run read). A completed run whose state can't be stored so — none reported, a
  // store error, another run wrote first — becomes a policy failure (fails closed).
  void KeepPolicyState(const store::CodePolicy& policy, sandbox::JobResult& r);
  // Counts what an ended job keeps (result and logs) against the storage limit and, for a data
  // scientist's job, their quota, after expiring mock outputs past the newest kept (and older
  // ones while the quota needs room); drops what would pass either, saying so in its error.
  // Drops a run's result (its file once `tx` commits): it ends errored, "not kept".
  void DropResult(store::Store& tx, const store::Job& job, jobs::Outcome& out) const;
  // A store error rolls the caller's transaction back.
  Status KeepWithinQuota(store::Store& tx, const store::Job& job, jobs::Outcome& out);
  // Charges `result_bytes` and `log_bytes` to the running job, in the store (`charged_bytes`,
  // the part its user may read, against `quota`) and `metered_bytes` (MeteredOf) in the storage
  // meter. "" when charged; else nothing is and it names the limit that refused ("your storage
  // quota of N bytes ...").
  Result<std::string> Charge(store::Store& tx, const store::Job& job, int64_t result_bytes,
                             int64_t log_bytes, int64_t charged_bytes, int64_t metered_bytes,
                             std::optional<int64_t> quota);
  Result<nlohmann::json> ResolveInputs(const nlohmann::json& inputs);
  // Whether the user's versions, with the one of `new_bytes` just inserted in `tx`, stay within
  // max_code_versions and their bytes within the quota (KeptFitsQuota).
  Status CodeFitsQuota(store::Store& tx, const std::string& user_id, int64_t new_bytes);
  // Run with `caller` as the job's user; `for_owner`, when set, is the data owner who runs it for
  // its requester (audited as job.run_for_requester, in their name).
  Result<RunOutcome> RunAs(const Principal& caller, const std::string& code_id, const RunCode& run,
                           const Principal* for_owner);
  // The grant a private run of `code` by `caller` is admitted under (nullopt: none applies, the
  // request and its output policy decide). kPermissionDenied when a grant names the caller for
  // this code but has ended, or binds other inputs; kResourceExhausted (429, with the wait) when
  // one of its windows is full.
  Result<std::optional<store::Grant>> GrantToRun(const Principal& caller,
                                                 const store::UserCode& code, int64_t now_ms);
  // Kills the queued and running jobs `f` selects (a grant's, or a request's grants'), which the
  // revocation that ends them has held; `what` names them in the log.
  void KillGrantRuns(store::JobFilter f, const std::string& what);
  // The refusal of a run under `grant` whose window is full, from the user's runs under it.
  Status WindowFull(const store::Grant& grant, const std::string& user_id, int64_t now_ms);
  // Binds the environment `code`'s pool runs now to its approved request `request_id`, audited
  // (Approve, once the environment changed since the approval).
  Status RebindEnvironment(store::Store& tx, const Principal& caller, const std::string& request_id,
                           const store::UserCode& code);
  // Appends an audit entry through `tx`: inside the transaction of the change it records.
  Status Audit(store::Store& tx, const Principal& actor, const std::string& action,
               const std::string& target, const std::string& detail = "");

  store::Store& store_;
  blob::BlobStore& blobs_;
  const SettingsService& settings_;
  jobs::JobQueue& queue_;
  StorageMeter& storage_;
  const Clock& clock_;
  Notifications* notifications_ = nullptr;  // Set once before serving.
  EndpointService* endpoints_ = nullptr;    // Set once before serving.
  PoolService* pools_ = nullptr;            // Set once before serving.
  std::string run_pool_, run_pool_hash_;    // SetRunPool
  const CodeOptions options_;

  mutable std::mutex sandbox_mu_;
  std::mutex waits_mu_;
  std::unordered_map<std::string, int> waits_;  // Guarded by waits_mu_: waits held, by user.
  int all_waits_ = 0;                           // Guarded by waits_mu_: the sum of waits_.
  // SmallResult's recorded reads ("actor\njob id\nfinished_at\nresult size"); forgotten all at
  // once past a bound, after
  // which a read is recorded again.
  mutable std::mutex inline_reads_mu_;
  mutable std::unordered_set<std::string> inline_reads_;  // Guarded by inline_reads_mu_.
  std::condition_variable sandbox_cv_;
  std::unique_ptr<sandbox::Sandbox> sandbox_;  // Guarded by sandbox_mu_.
  std::optional<Status> sandbox_failure_;      // Guarded by sandbox_mu_.
  // Result downloads read ahead, per account (OpenResult).
  mutable TransferSlots transfers_;
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_CODE_H_
