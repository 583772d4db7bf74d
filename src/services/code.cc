#include "services/code.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <spdlog/spdlog.h>

#include "core/random.h"
#include "core/sha256.h"
#include "data/sidecar.h"
#include "jobs/job_queue.h"
#include "obs/metrics.h"
#include "services/endpoints.h"
#include "services/job_failure.h"
#include "services/notifications.h"
#include "services/output_checks.h"
#include "services/pools.h"
#include "services/projects.h"
#include "services/source_check.h"

namespace datasite::services {
namespace {

using nlohmann::json;

constexpr size_t kMaxSourceBytes = 1 << 20;
constexpr size_t kMaxInputs = 64;
constexpr size_t kMaxReasonBytes = 10'000;
constexpr int64_t kMaxRunLimit = 1'000'000;
constexpr uint64_t kMaxResultInDatabase = 1 << 20;
constexpr size_t kMaxPolicySourceBytes = 256 << 10;
constexpr size_t kMaxPolicyKwargsBytes = 64 << 10;

bool IsIdentifierChar(char c, bool first) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (!first && c >= '0' && c <= '9');
}

bool IsIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 100) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!IsIdentifierChar(s[i], i == 0)) return false;
  }
  return true;
}

Status NeedDataScientist(const Principal& p) {
  if (!p.user_id || p.role < auth::Role::kDataScientist) {
    return PermissionDeniedError("code, requests and jobs need a data scientist account or higher");
  }
  return Status::Ok();
}

// Makes `path` durable: its bytes and its directory entry.
Status SyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return InternalError("cannot open the result file");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return InternalError("cannot sync the result file");
  int dir = ::open(std::filesystem::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
  return Status::Ok();
}

// Checks a submission's custom policies (see SubmitCode::policy_code); the spec to store: the
// source and, per policy, its class and the init kwargs the output policy is made with.
Result<json> CheckPolicyCode(const json& in, bool custom_output) {
  if (!in.is_object()) return InvalidArgumentError("'policy_code' must be an object");
  for (const auto& [k, v] : in.items()) {
    if (k != "source" && k != "input" && k != "output") {
      return InvalidArgumentError("unknown field 'policy_code." + k.substr(0, 64) + "'");
    }
  }
  if (!in.contains("source") || !in["source"].is_string() ||
      in["source"].get_ref<const std::string&>().empty() ||
      in["source"].get_ref<const std::string&>().size() > kMaxPolicySourceBytes) {
    return InvalidArgumentError("'policy_code.source' must be 1 byte to 256 KiB of Python");
  }
  const std::string& source = in["source"].get_ref<const std::string&>();
  if (Status st = CheckSourceShownAsRun(source); !st.ok()) {
    return InvalidArgumentError("'policy_code.source', " + st.message());
  }
  json spec = {{"source", source}, {"input", nullptr}, {"output", nullptr}};
  for (const char* which : {"input", "output"}) {
    if (!in.contains(which) || in[which].is_null()) continue;
    const json& p = in[which];
    const std::string where = std::string("'policy_code.") + which;
    if (!p.is_object() || !p.contains("class") || !p["class"].is_string() ||
        !IsIdentifier(p["class"].get<std::string>())) {
      return InvalidArgumentError(where + ".class' must name the policy's class");
    }
    for (const auto& [k, v] : p.items()) {
      if (k != "class" && k != "init_kwargs") {
        return InvalidArgumentError("unknown field " + where + "." + k.substr(0, 64) + "'");
      }
    }
    json kwargs = p.value("init_kwargs", json::object());
    if (!kwargs.is_object()) return InvalidArgumentError(where + ".init_kwargs' must be an object");
    for (const auto& [k, v] : kwargs.items()) {
      if (!IsIdentifier(k)) {
        return InvalidArgumentError(where + ".init_kwargs' has a key that is no Python name");
      }
    }
    if (kwargs.dump().size() > kMaxPolicyKwargsBytes) {
      return InvalidArgumentError(where + ".init_kwargs' is larger than 64 KiB");
    }
    if (std::string(which) == "input" && !kwargs.empty()) {
      return InvalidArgumentError(
          "'policy_code.input.init_kwargs': an input policy's keyword arguments are the code's "
          "'inputs' (its bindings)");
    }
    spec[which] = {{"class", p["class"]}, {"init_kwargs", kwargs}};
  }
  if (spec["input"].is_null() && spec["output"].is_null()) {
    return InvalidArgumentError("'policy_code' names no policy: give 'input', 'output' or both");
  }
  if (spec["output"].is_null() == custom_output) {
    return InvalidArgumentError(
        "a custom output policy is given as output_policy {\"kind\": \"custom\"} with "
        "'policy_code.output', both or neither");
  }
  return spec;
}

Status CheckPage(int64_t page, int64_t page_size) {
  if (page < 1) return InvalidArgumentError("page must be 1 or more");
  if (page_size < 1 || page_size > kMaxListPageSize) {
    return InvalidArgumentError("page_size must be between 1 and " +
                                std::to_string(kMaxListPageSize));
  }
  return Status::Ok();
}

// The job's requester as the rules of what they may read see them (never a data owner: a data
// owner's own runs charge no quota).
Principal RequesterOf(const store::Job& job) {
  Principal p;
  p.role = auth::Role::kDataScientist;
  p.user_id = job.user_id;
  return p;
}

// The grant `repeat` makes on approving request `r` of `code`, checked and its users resolved
// (emails or ids of data scientists; the requester first), not stored.
Result<store::Grant> NewGrant(store::Store& store, const store::CodeRequest& r,
                              const store::UserCode& code, const RepeatGrant& repeat,
                              const std::string& owner_id, int64_t now_ms) {
  if (!code.policy_spec.empty()) {
    return InvalidArgumentError(
        "code with custom policies can't be approved for repeated use: its output policy counts "
        "its runs itself");
  }
  if (!repeat.per_minute && !repeat.per_hour && !repeat.per_day) {
    return InvalidArgumentError("'repeat' needs at least one of per_minute, per_hour and per_day");
  }
  for (const auto& limit : {repeat.per_minute, repeat.per_hour, repeat.per_day}) {
    if (limit && (*limit < 1 || *limit > kMaxGrantRuns)) {
      return InvalidArgumentError("each limit of 'repeat' must be 1 to " +
                                  std::to_string(kMaxGrantRuns) + " runs");
    }
  }
  // NaN fails both comparisons.
  if (!(repeat.expires_in_days > 0 && repeat.expires_in_days <= kMaxGrantDays)) {
    return InvalidArgumentError("'expires_in_days' must be above 0 and at most 3650");
  }
  if (repeat.users.size() > 100) {
    return InvalidArgumentError("a grant names at most 100 users");
  }
  store::Grant g;
  g.id = NewUuid();
  g.request_id = r.id;
  g.code_id = code.id;
  g.code_hash = code.code_hash;
  g.inputs = code.inputs;
  g.per_minute = repeat.per_minute;
  g.per_hour = repeat.per_hour;
  g.per_day = repeat.per_day;
  g.created_by = owner_id;
  g.created_at = now_ms;
  g.expires_at = now_ms + static_cast<int64_t>(repeat.expires_in_days * 86'400'000.0);
  g.user_ids.push_back(r.user_id);
  for (const std::string& who : repeat.users) {
    const std::string shown = who.substr(0, 200);
    auto user =
        who.find('@') != std::string::npos ? store.GetUserByEmail(who) : store.GetUserById(who);
    if (user.status().code() == StatusCode::kNotFound) {
      return InvalidArgumentError("'users': no user '" + shown + "'");
    }
    if (!user.ok()) return user.status();
    if (auth::RoleFromInt(user->role) != auth::Role::kDataScientist) {
      return InvalidArgumentError("'users': '" + shown +
                                  "' is not a data scientist (grants name data scientists)");
    }
    if (std::find(g.user_ids.begin(), g.user_ids.end(), user->id) == g.user_ids.end()) {
      g.user_ids.push_back(user->id);
    }
  }
  return g;
}

// What the audit log says of a new grant: its request, code, limits, expiry and users.
std::string GrantDetail(const store::Grant& g) {
  std::string d = "request:" + g.request_id + " code:" + g.code_id;
  if (g.per_minute) d += " per_minute:" + std::to_string(*g.per_minute);
  if (g.per_hour) d += " per_hour:" + std::to_string(*g.per_hour);
  if (g.per_day) d += " per_day:" + std::to_string(*g.per_day);
  d += " expires:" + FormatIsoTime(g.expires_at / 1000) + " users:";
  for (size_t i = 0; i < g.user_ids.size(); ++i) d += (i ? "," : "") + g.user_ids[i];
  return d;
}

}  // namespace

CodeService::CodeService(store::Store& store, blob::BlobStore& blobs,
                         const SettingsService& settings, jobs::JobQueue& queue,
                         StorageMeter& storage, const Clock& clock, CodeOptions options)
    : store_(store),
      blobs_(blobs),
      settings_(settings),
      queue_(queue),
      storage_(storage),
      clock_(clock),
      options_(std::move(options)) {
  std::error_code ec;
  std::filesystem::create_directories(options_.results_dir + "/running", ec);
}

void CodeService::SetSandbox(std::unique_ptr<sandbox::Sandbox> sandbox) {
  {
    std::lock_guard lock(sandbox_mu_);
    sandbox_ = std::move(sandbox);
  }
  sandbox_cv_.notify_all();
}

void CodeService::SetSandboxFailure(Status why) {
  {
    std::lock_guard lock(sandbox_mu_);
    sandbox_failure_ = std::move(why);
  }
  sandbox_cv_.notify_all();
}

int CodeService::RemoveStrayResults(std::string_view owner) {
  const int64_t now = clock_.NowMillis();
  // Whether the result of `id`'s run at `attempts` (nullopt: a result kept before runs were
  // named) is stray: a completed job's result is in its row or in the blob of the run that
  // completed it; only the latter is kept, unless the result expired. Another run's (one whose
  // lease was taken) is stray, but for a run going on in another process now.
  auto stray = [&](const std::string& id, std::optional<int64_t> attempts) {
    auto job = store_.GetJob(id);
    if (!job.ok()) return job.status().code() == StatusCode::kNotFound;  // a store error: keep
    auto in_row = store_.GetJobResult(id);
    if (job->status == "running" && attempts == job->attempts && job->lease_owner != owner &&
        job->lease_expires_at >= now) {
      return false;
    }
    return job->status != "completed" || job->result_expired ||
           (in_row.ok() && in_row->has_value()) || (attempts && *attempts != job->attempts);
  };
  // Only blobs older than any run can last: another process (a worker, a replica, a deposit) may
  // be storing a result now, its blob before the job's row says so.
  const int64_t longest_run_s = 2 * options_.max_timeout_ms / 1000 + 60;
  const int64_t written_before =
      clock_.NowSeconds() - std::max(options_.keep_recent_files_seconds, longest_run_s);
  int removed = 0;
  auto blobs = options_.results->List(written_before);
  if (!blobs.ok()) spdlog::warn("jobs: listing results: {}", blobs.status().ToString());
  for (const std::string& name : blobs.ok() ? *blobs : std::vector<std::string>{}) {
    const size_t dot = name.find('.');
    if (dot == std::string::npos) continue;  // not a run's (CodeOptions::results holds no other)
    const int64_t attempts = std::stoll(name.substr(dot + 1));  // digits: see blob::IsBlobId
    if (stray(name.substr(0, dot), attempts) && options_.results->Delete(name).ok()) ++removed;
  }
  // Result files of runs (RunningResultPath): only a run going on in another process keeps its.
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator(options_.results_dir + "/running", ec)) {
    const std::string name = entry.path().filename().string();
    const size_t dot = name.find('.');
    bool live = false;
    if (blob::IsBlobId(name) && dot != std::string::npos) {
      auto job = store_.GetJob(name.substr(0, dot));
      live = !job.ok()
                 ? job.status().code() != StatusCode::kNotFound
                 : job->status == "running" && job->lease_owner != owner &&
                       job->lease_expires_at >= now && ResultBlobId(job->id, job->attempts) == name;
    }
    if (!live && std::filesystem::remove(entry.path(), ec)) ++removed;
  }
  // Files of results kept before they were blobs: "<job id>.<attempts>", or "<job id>".
  for (const auto& entry : std::filesystem::directory_iterator(options_.results_dir, ec)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    const size_t dot = name.find('.');
    std::optional<int64_t> attempts;
    if (dot != std::string::npos) {
      try {
        attempts = std::stoll(name.substr(dot + 1));
      } catch (const std::exception&) {
        attempts = -1;  // no run's
      }
    }
    if (stray(name.substr(0, dot), attempts) && std::filesystem::remove(entry.path(), ec)) {
      ++removed;
    }
  }
  if (removed > 0) spdlog::warn("jobs: removed {} stray result(s)", removed);
  Status cleaned = options_.results->RemoveTemporaryFiles(written_before);
  if (!cleaned.ok()) spdlog::warn("jobs: cleaning up results: {}", cleaned.ToString());
  return removed;
}

Status CodeService::CountKeptBytes() {
  ASSIGN_OR_RETURN(int64_t kept, store_.TotalJobBytes());
  ASSIGN_OR_RETURN(int64_t code, store_.TotalCodeBytes());
  storage_.Add(kept + code);
  return Status::Ok();
}

Status CodeService::SandboxUsable() const {
  std::lock_guard lock(sandbox_mu_);
  if (sandbox_failure_) {
    return UnavailableError("this server can't run code: " + sandbox_failure_->message());
  }
  return Status::Ok();
}

Result<sandbox::Sandbox*> CodeService::WaitForSandbox(const std::atomic<bool>* cancel) {
  std::unique_lock lock(sandbox_mu_);
  while (!sandbox_ && !sandbox_failure_) {
    if (cancel && *cancel) return UnavailableError("cancelled while the sandbox was starting");
    sandbox_cv_.wait_for(lock, std::chrono::milliseconds(50));
  }
  if (sandbox_failure_) {
    return UnavailableError("this server can't run code: " + sandbox_failure_->message());
  }
  return sandbox_.get();
}

std::string CodeService::ResultBlobId(const std::string& job_id, int64_t attempts) {
  return job_id + "." + std::to_string(attempts);
}

std::string CodeService::RunningResultPath(const std::string& job_id, int64_t attempts) const {
  return options_.results_dir + "/running/" + ResultBlobId(job_id, attempts);
}

std::vector<std::string> CodeService::LocalResultPaths(const std::string& job_id,
                                                       int64_t attempts) const {
  // A file named by run, or by job before runs were named; or the directory store's blob when
  // the results have since moved to a bucket.
  const std::string run = ResultBlobId(job_id, attempts);
  const std::string& dir = options_.results_dir;
  return {dir + "/" + run, dir + "/" + job_id, dir + "/" + run.substr(0, 2) + "/" + run};
}

Result<std::unique_ptr<blob::BlobReader>> CodeService::OpenResult(
    const store::Job& job, const Principal* downloader) const {
  const std::string run = ResultBlobId(job.id, job.attempts);
  auto blob = downloader ? OpenForDownload(transfers_, DownloadShares{}, *downloader,
                                           *options_.results, run)
                         : options_.results->Open(run);
  if (blob.ok() || blob.status().code() != StatusCode::kNotFound) return blob;
  for (const std::string& path : LocalResultPaths(job.id, job.attempts)) {
    auto file = blob::OpenFileReader(path);
    if (file.ok() || file.status().code() != StatusCode::kNotFound) return file;
  }
  return InternalError("the result of job " + job.id + " is missing");
}

void CodeService::RemoveResultFileAfterCommit(const std::string& job_id, int64_t attempts) const {
  store_.AfterCommit([this, job_id, attempts] { RemoveResultFile(job_id, attempts); });
}

void CodeService::RemoveResultFile(const std::string& job_id, int64_t attempts) const {
  const std::string run = ResultBlobId(job_id, attempts);
  Status gone = options_.results->Delete(run);
  if (!gone.ok()) spdlog::warn("job {}: removing its result: {}", job_id, gone.ToString());
  std::error_code ec;
  for (const std::string& path : LocalResultPaths(job_id, attempts)) {
    std::filesystem::remove(path, ec);
  }
}

Status CodeService::RebindEnvironment(store::Store& tx, const Principal& caller,
                                      const std::string& request_id, const store::UserCode& code) {
  RETURN_IF_ERROR(pools_->BindApproval(tx, code.id));
  return Audit(tx, caller, "request.approve_environment", "request:" + request_id,
               "code:" + code.id + " pool:" + code.worker_pool_name);
}

Status CodeService::Audit(store::Store& tx, const Principal& actor, const std::string& action,
                          const std::string& target, const std::string& detail) {
  return tx.AppendAudit({clock_.NowSeconds(), actor.AuditName(), action, target, detail});
}

// Checks each binding and records, for assets, where they come from (names as they were at
// submission, so a listing needs no look-up).
Result<json> CodeService::ResolveInputs(const json& inputs) {
  if (!inputs.is_object()) return InvalidArgumentError("'inputs' must be an object");
  if (inputs.size() > kMaxInputs) return InvalidArgumentError("at most 64 inputs");
  json out = json::object();
  for (const auto& [arg, binding] : inputs.items()) {
    if (!IsIdentifier(arg)) {
      return InvalidArgumentError("input '" + arg.substr(0, 100) + "' is not a Python identifier");
    }
    if (!binding.is_object() || binding.size() != 1 ||
        !(binding.contains("asset_id") || binding.contains("value") ||
          binding.contains("endpoint"))) {
      return InvalidArgumentError("input '" + arg +
                                  "' must be {\"asset_id\": ...}, {\"value\": ...} or "
                                  "{\"endpoint\": \"service.method\"}");
    }
    if (binding.contains("value")) {
      out[arg] = {{"value", binding["value"]}};
      continue;
    }
    if (binding.contains("endpoint")) {
      // An API endpoint (services/endpoints.h): the code calls it; which function runs is decided
      // per call (the private one only in a run on private data).
      if (!binding["endpoint"].is_string()) {
        return InvalidArgumentError("input '" + arg + "': endpoint must be a path string");
      }
      const std::string path = binding["endpoint"];
      auto endpoint = store_.GetApiEndpoint(path);
      if (!endpoint.ok()) {
        if (endpoint.status().code() == StatusCode::kNotFound) {
          return NotFoundError("input '" + arg + "': no API endpoint at '" + path.substr(0, 128) +
                               "'");
        }
        return endpoint.status();
      }
      out[arg] = {{"endpoint", path}};
      continue;
    }
    if (!binding["asset_id"].is_string()) {
      return InvalidArgumentError("input '" + arg + "': asset_id must be a string");
    }
    std::string asset_id = binding["asset_id"];
    auto dataset = store_.GetDatasetByAsset(asset_id);
    if (!dataset.ok()) {
      if (dataset.status().code() == StatusCode::kNotFound) {
        return NotFoundError("input '" + arg + "': no asset with id '" + asset_id.substr(0, 64) +
                             "'");
      }
      return dataset.status();
    }
    for (const auto& a : dataset->assets) {
      if (a.id != asset_id) continue;
      out[arg] = {{"asset_id", a.id},
                  {"dataset_id", dataset->id},
                  {"dataset", dataset->name},
                  {"asset", a.name},
                  {"format", a.format}};
    }
  }
  return out;
}

Result<store::UserCode> CodeService::PrepareCode(const SubmitCode& in, json& policy_spec) {
  if (!IsIdentifier(in.name)) {
    return InvalidArgumentError("'name' must be the function's name (a Python identifier)");
  }
  if (in.source.empty() || in.source.size() > kMaxSourceBytes) {
    return InvalidArgumentError("'source' must be 1 byte to 1 MiB of Python");
  }
  // The function that runs is the one named, as Python reads names: the source may hold nothing a
  // display hides or Python reads as another name, and defines the function once.
  if (Status st = CheckSourceShownAsRun(in.source); !st.ok()) {
    return InvalidArgumentError("'source', " + st.message());
  }
  const int definitions = CountTopLevelDefinitions(in.source, in.name);
  if (definitions == 0) {
    return InvalidArgumentError("'source' must define a top-level function named '" + in.name +
                                "'");
  }
  if (definitions > 1) {
    return InvalidArgumentError("'source' defines '" + in.name + "' " +
                                std::to_string(definitions) +
                                " times; the last would run: define it once");
  }
  store::UserCode code;
  code.output_policy = in.output_policy;
  if (in.output_policy == "single_execution") {
    if (in.limit && *in.limit != 1) {
      return InvalidArgumentError("a single_execution policy has limit 1");
    }
    code.output_limit = 1;
  } else if (in.output_policy == "execute_count") {
    if (!in.limit || *in.limit < 1 || *in.limit > kMaxRunLimit) {
      return InvalidArgumentError("an execute_count policy needs a limit from 1 to 1000000");
    }
    code.output_limit = *in.limit;
  } else if (in.output_policy == "custom") {
    if (in.limit) return InvalidArgumentError("a custom output policy has no limit");
    code.output_limit = 0;
  } else {
    return InvalidArgumentError(
        "output_policy.kind must be 'single_execution', 'execute_count' or 'custom'");
  }
  policy_spec = nullptr;
  if (in.policy_code) {
    ASSIGN_OR_RETURN(policy_spec, CheckPolicyCode(*in.policy_code, in.output_policy == "custom"));
  } else if (in.output_policy == "custom") {
    return InvalidArgumentError("a custom output policy needs its 'policy_code'");
  }
  ASSIGN_OR_RETURN(json inputs, ResolveInputs(in.inputs));
  code.name = in.name;
  code.source = in.source;
  code.code_hash = Sha256Hex(in.source);
  code.inputs = inputs.dump();
  code.stored_bytes = static_cast<int64_t>(code.source.size() + code.inputs.size() +
                                           (policy_spec.is_null() ? 0 : policy_spec.dump().size()));
  return code;
}

Result<store::UserCode> CodeService::Submit(const Principal& caller, const SubmitCode& in) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  json policy_spec;
  ASSIGN_OR_RETURN(store::UserCode code, PrepareCode(in, policy_spec));
  if (in.worker_pool_name != kDefaultPool) {
    if (pools_ == nullptr)
      return InvalidArgumentError("worker_pool_name: this server has only the default pool");
    RETURN_IF_ERROR(pools_->CheckPoolName(in.worker_pool_name));
  }
  code.id = NewUuid();
  code.user_id = *caller.user_id;
  code.created_at = clock_.NowSeconds();
  // Taken now, so that submissions together can't pass the limit; given back if not stored.
  if (!storage_.TryAdd(code.stored_bytes)) {
    return ResourceExhaustedError("the code (" + std::to_string(code.stored_bytes) +
                                  " bytes) was not stored: it would pass the server's storage "
                                  "limit of " +
                                  std::to_string(storage_.limit()) +
                                  " bytes (a data owner can free space by deleting datasets, or "
                                  "raise it with --max-storage-bytes)");
  }
  // The code and its policies are stored together: what is approved is both.
  Status stored = store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertCode(code).status());
    // Checked once inserted (a resubmission is told so first), in the transaction that inserts,
    // under the writers' lock: two submissions of one user can't both pass the quota.
    if (!caller.IsDataOwner())
      RETURN_IF_ERROR(CodeFitsQuota(tx, *caller.user_id, code.stored_bytes));
    if (!policy_spec.is_null()) RETURN_IF_ERROR(tx.PutCodePolicy(code.id, policy_spec.dump()));
    if (pools_ != nullptr) {
      if (auto pool = pools_->CodePoolRecord(code.id, in.worker_pool_name))
        RETURN_IF_ERROR(tx.PutPoolRecord(*pool));
    }
    return Audit(tx, caller, "code.submit", "code:" + code.id, code.name);
  });
  if (!stored.ok()) storage_.Add(-code.stored_bytes);
  if (stored.code() == StatusCode::kAlreadyExists) {
    auto earlier = store_.FindCodeByHash(code.user_id, code.code_hash);
    std::string which = earlier.ok()
                            ? " as '" + earlier->name + "' version " +
                                  std::to_string(earlier->version) + " (id " + earlier->id + ")"
                            : "";
    return AlreadyExistsError("this code was already submitted" + which);
  }
  RETURN_IF_ERROR(stored);
  ASSIGN_OR_RETURN(store::UserCode c, store_.GetCode(code.id));
  if (!caller.IsDataOwner()) c.policy_state.clear();
  return c;
}

Status CodeService::CodeFitsQuota(store::Store& tx, const std::string& user_id, int64_t new_bytes) {
  ASSIGN_OR_RETURN(store::CodeUsage code, tx.UserCodeUsage(user_id));
  if (code.versions > options_.quotas.max_code_versions) {
    return ResourceExhaustedError("you have " + std::to_string(code.versions - 1) +
                                  " code versions, the most one user may keep: a data owner can "
                                  "raise it (--max-code-per-user)");
  }
  return KeptFitsQuota(tx, user_id, "the code", new_bytes);
}

Status CodeService::KeptFitsQuota(store::Store& tx, const std::string& user_id,
                                  const std::string& what, int64_t new_bytes) {
  // Mock outputs aside, as for a run (Run): they expire to make room.
  ASSIGN_OR_RETURN(store::JobUsage jobs, tx.UserJobUsage(user_id));
  const int64_t outputs = jobs.charged_bytes - jobs.mock_bytes;
  const int64_t max = options_.quotas.max_kept_bytes;
  if (jobs.code_bytes + jobs.project_bytes + outputs > max) {
    return ResourceExhaustedError(
        what + " (" + std::to_string(new_bytes) + " bytes) was not stored: with your code (" +
        std::to_string(jobs.code_bytes) + " bytes), your projects and messages (" +
        std::to_string(jobs.project_bytes) + " bytes) and your jobs' results and logs (" +
        std::to_string(outputs) + " bytes) it would pass your storage quota of " +
        std::to_string(max) + " bytes (--user-quota-bytes)");
  }
  return Status::Ok();
}

Result<store::CodePage> CodeService::ListCode(const Principal& caller,
                                              const std::optional<std::string>& name, int64_t page,
                                              int64_t page_size) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  RETURN_IF_ERROR(CheckPage(page, page_size));
  std::optional<std::string> user;
  if (!caller.IsDataOwner()) user = caller.user_id;
  ASSIGN_OR_RETURN(store::CodePage list, store_.ListCode(user, name, (page - 1) * page_size,
                                                         page_size, kMaxListSourceChars));
  if (!caller.IsDataOwner()) {
    for (auto& c : list.items) c.policy_state.clear();  // see GetCode
  }
  return list;
}

Result<store::UserCode> CodeService::GetCode(const Principal& caller, const std::string& id) {
  return ReadCode(caller, id, CodeRead::kWhole);
}

Result<store::UserCode> CodeService::GetCodeSummary(const Principal& caller,
                                                    const std::string& id) {
  return ReadCode(caller, id, CodeRead::kSummary);
}

Result<store::UserCode> CodeService::ReadCode(const Principal& caller, const std::string& id,
                                              CodeRead read) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  auto code = read == CodeRead::kWhole   ? store_.GetCode(id)
              : read == CodeRead::kToRun ? store_.GetCodeToRun(id)
                                         : store_.GetCodeSummary(id);
  if (!code.ok()) return code.status();
  if (!caller.IsDataOwner() && !caller.IsSelf(code->user_id))
    return NotFoundError("code not found");
  // What custom policies kept was computed on private data: data owners only.
  if (!caller.IsDataOwner()) code->policy_state.clear();
  return code;
}

Result<store::CodeRequest> CodeService::NewRequest(const Principal& caller,
                                                   const std::string& code_id,
                                                   const std::string& reason) {
  ASSIGN_OR_RETURN(store::UserCode code, GetCode(caller, code_id));
  if (!caller.IsSelf(code.user_id)) {
    return PermissionDeniedError("only the code's author may request to run it");
  }
  if (reason.size() > kMaxReasonBytes) return InvalidArgumentError("'reason' is too long");
  if (code.request_id) {
    return AlreadyExistsError("this code already has a request (id " + *code.request_id + ", " +
                              code.request_status.value_or("pending") + ")");
  }
  store::CodeRequest r;
  r.id = NewUuid();
  r.code_id = code.id;
  r.user_id = code.user_id;
  r.reason = reason;
  r.status = "pending";
  r.created_at = r.updated_at = clock_.NowSeconds();
  return r;
}

Result<store::CodeRequest> CodeService::CreateRequest(const Principal& caller,
                                                      const std::string& code_id,
                                                      const std::string& reason) {
  ASSIGN_OR_RETURN(store::CodeRequest r, NewRequest(caller, code_id, reason));
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertRequest(r));
    RETURN_IF_ERROR(Audit(tx, caller, "request.submit", "request:" + r.id, "code:" + r.code_id));
    return AnnounceRequest(tx, r);
  });
  WakeNotifier(st);
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("this code already has a request");
  }
  RETURN_IF_ERROR(st);
  return store_.GetRequest(r.id);
}

Status CodeService::AnnounceRequest(store::Store& tx, const store::CodeRequest& request) {
  if (!notifications_) return Status::Ok();
  ASSIGN_OR_RETURN(store::UserCode code, tx.GetCode(request.code_id));
  return notifications_->OnNewRequest(tx, request, code.name);
}

void CodeService::WakeNotifier(const Status& committed) {
  if (notifications_ && committed.ok()) notifications_->Wake();
}

Result<store::RequestPage> CodeService::ListRequests(const Principal& caller,
                                                     const std::optional<std::string>& status,
                                                     int64_t page, int64_t page_size,
                                                     const std::optional<std::string>& project_id) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  if (status && *status != "pending" && *status != "approved" && *status != "denied") {
    return InvalidArgumentError("status must be pending, approved or denied");
  }
  RETURN_IF_ERROR(CheckPage(page, page_size));
  std::optional<std::string> user;
  if (!caller.IsDataOwner()) user = caller.user_id;
  return store_.ListRequests(user, status, project_id, (page - 1) * page_size, page_size);
}

Result<store::CodeRequest> CodeService::GetRequest(const Principal& caller, const std::string& id) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  auto r = store_.GetRequest(id);
  if (!r.ok()) return r.status();
  if (!caller.IsDataOwner() && !caller.IsSelf(r->user_id))
    return NotFoundError("request not found");
  return r;
}

Result<Approval> CodeService::Approve(const Principal& caller, const std::string& id,
                                      const std::optional<RepeatGrant>& repeat) {
  if (!caller.IsDataOwner())
    return PermissionDeniedError("only data owners and admins approve requests");
  ASSIGN_OR_RETURN(store::CodeRequest r, GetRequest(caller, id));
  // Code submitted before the server refused hidden characters is checked before it is approved.
  ASSIGN_OR_RETURN(store::UserCode code, store_.GetCode(r.code_id));
  if (Status st = CheckSourceShownAsRun(code.source); !st.ok()) {
    return FailedPreconditionError("this code can't be approved: its source, " + st.message() +
                                   "; deny the request");
  }
  if (settings_.Get().server_side_type == "low") {
    return FailedPreconditionError(
        "this is a low-side server: it holds no private data, so code can't be approved to run "
        "on it");
  }
  const int64_t now = clock_.NowSeconds();
  std::optional<store::Grant> grant;
  if (repeat) {
    ASSIGN_OR_RETURN(grant,
                     NewGrant(store_, r, code, *repeat, *caller.user_id, clock_.NowMillis()));
  }
  // Approving an approved request again only adds the grant.
  if (grant && r.status == "approved") {
    RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
      // Read again under the transaction's lock: a denial that won the race ends it here.
      ASSIGN_OR_RETURN(store::CodeRequest now_r, tx.GetRequest(id));
      if (now_r.status != "approved") {
        return FailedPreconditionError("the request was " + now_r.status +
                                       " meanwhile: approve it again");
      }
      RETURN_IF_ERROR(tx.InsertGrant(*grant));
      // The environment its pool runs now, if it changed since (as approving again without a
      // grant does): the grant's runs would otherwise all be refused.
      if (pools_ != nullptr && pools_->EnvironmentChanged(code))
        RETURN_IF_ERROR(RebindEnvironment(tx, caller, id, code));
      return Audit(tx, caller, "grant.create", "grant:" + grant->id, GrantDetail(*grant));
    }));
    ASSIGN_OR_RETURN(grant, store_.GetGrant(grant->id));
    ASSIGN_OR_RETURN(store::CodeRequest again, store_.GetRequest(id));
    return Approval{std::move(again), std::move(grant)};
  }
  // Approving an approved request again, once its pool's environment changed since (its private
  // runs were refused: "needs a new review"): binds the environment there is now.
  if (!grant && r.status == "approved" && pools_ != nullptr && pools_->EnvironmentChanged(code)) {
    RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
      ASSIGN_OR_RETURN(store::CodeRequest now_r, tx.GetRequest(id));
      if (now_r.status != "approved") {
        return FailedPreconditionError("the request was " + now_r.status +
                                       " meanwhile: approve it again");
      }
      return RebindEnvironment(tx, caller, id, code);
    }));
    ASSIGN_OR_RETURN(store::CodeRequest again, store_.GetRequest(id));
    return Approval{std::move(again), std::nullopt};
  }
  int64_t metered_more = 0;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    metered_more = 0;
    if (grant) {
      RETURN_IF_ERROR(tx.InsertGrant(*grant));
      RETURN_IF_ERROR(Audit(tx, caller, "grant.create", "grant:" + grant->id, GrantDetail(*grant)));
    }
    ASSIGN_OR_RETURN(std::vector<store::KeptOutput> outputs, tx.UserKeptOutputs(r.user_id));
    RETURN_IF_ERROR(tx.DecideRequest(id, "approved", std::nullopt, *caller.user_id, now));
    // What runs is bound with it: the code's pool's environment as it is now.
    if (pools_ != nullptr) RETURN_IF_ERROR(pools_->BindApproval(tx, r.code_id));
    // The approval releases the results deposited before it: each is charged and counted as its
    // requester reads it now, as one deposited after the approval is.
    for (auto& o : outputs) {
      if (o.job.code_id != r.code_id || !o.job.deposited || !o.job.held) continue;
      o.job.held = false;
      const Recharge after = RechargeOf(o);
      RETURN_IF_ERROR(tx.SetJobChargedBytes(o.job.id, after.charged));
      ASSIGN_OR_RETURN(int64_t was, tx.SetJobMeteredBytes(o.job.id, after.metered));
      metered_more += after.metered - was;
    }
    RETURN_IF_ERROR(AppendDecisionEvent(tx, r, "approved", std::nullopt, *caller.user_id, now));
    RETURN_IF_ERROR(Audit(tx, caller, "request.approve", "request:" + id, "code:" + r.code_id));
    return notifications_ ? notifications_->OnDecision(tx, r, "approved", *caller.user_id)
                          : Status::Ok();
  }));
  storage_.Add(metered_more);
  Approval out;
  ASSIGN_OR_RETURN(out.request, store_.GetRequest(id));
  if (grant) {
    ASSIGN_OR_RETURN(out.grant, store_.GetGrant(grant->id));
  }
  return out;
}

Result<store::CodeRequest> CodeService::Deny(const Principal& caller, const std::string& id,
                                             const std::string& reason) {
  if (!caller.IsDataOwner())
    return PermissionDeniedError("only data owners and admins deny requests");
  if (reason.empty() || reason.size() > kMaxReasonBytes) {
    return InvalidArgumentError("'reason' must be 1 to 10000 characters");
  }
  ASSIGN_OR_RETURN(store::CodeRequest r, GetRequest(caller, id));
  // The reason is free text (it may quote data): the request's history keeps it, not the log.
  const int64_t now = clock_.NowSeconds();
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.DecideRequest(id, "denied", reason, *caller.user_id, now));
    // A denial ends the request's grants too: its code runs under none of them again.
    RETURN_IF_ERROR(tx.RevokeRequestGrants(id, *caller.user_id, clock_.NowMillis()));
    RETURN_IF_ERROR(AppendDecisionEvent(tx, r, "denied", reason, *caller.user_id, now));
    RETURN_IF_ERROR(Audit(tx, caller, "request.deny", "request:" + id,
                          "code:" + r.code_id + (r.status == "approved" ? " (was approved)" : "")));
    return notifications_ ? notifications_->OnDecision(tx, r, "denied", *caller.user_id)
                          : Status::Ok();
  }));
  {
    // The runs admitted under the request's grants (named scientists' code too) were held by
    // the revocation; they are stopped.
    store::JobFilter g;
    g.grant_request_id = id;
    KillGrantRuns(g, "request " + id);
  }
  if (r.status == "approved") {
    // The store held the runs still going; they are stopped too.
    store::JobFilter f;
    f.code_id = r.code_id;
    f.include_review = false;
    for (f.offset = 0;; f.offset += f.limit) {
      auto jobs = store_.ListJobs(f);
      if (!jobs.ok()) break;
      for (const auto& j : jobs->items) {
        if (j.kind == "private" && !jobs::IsFinal(j.status)) (void)queue_.Kill(j.id);
      }
      if (f.offset + f.limit >= jobs->total) break;
    }
  }
  return store_.GetRequest(id);
}

Result<std::vector<store::RequestDecision>> CodeService::RequestHistory(const Principal& caller,
                                                                        const std::string& id) {
  ASSIGN_OR_RETURN(store::CodeRequest r, GetRequest(caller, id));
  return store_.RequestHistory(r.id);
}

Result<store::Job> CodeService::Deposit(const Principal& caller, const std::string& request_id,
                                        DepositResult result) {
  if (!caller.IsDataOwner())
    return PermissionDeniedError("only data owners and admins deposit results");
  ASSIGN_OR_RETURN(store::CodeRequest r, GetRequest(caller, request_id));
  if (result.format != "json" && result.format != "csv" && result.format != "npy" &&
      result.format != "bytes") {
    return InvalidArgumentError("'format' must be json, csv, npy or bytes");
  }
  if (result.bytes.size() > options_.limits.max_result_bytes) {
    return InvalidArgumentError("the result is larger than the result limit");
  }
  std::string meta_text;
  if (result.meta) {
    if (result.format != "csv") return InvalidArgumentError("only a csv result has a 'meta'");
    try {
      meta_text = result.meta->dump(-1, ' ', false, json::error_handler_t::strict);
    } catch (const json::exception&) {
      return InvalidArgumentError("'meta' is not valid UTF-8");
    }
    auto checked = data::ParseSidecar(meta_text, std::nullopt);
    if (!checked.ok()) return InvalidArgumentError("'meta': " + checked.status().message());
  }
  if (result.stdout_text.size() > options_.limits.max_log_bytes ||
      result.stderr_text.size() > options_.limits.max_log_bytes) {
    return InvalidArgumentError("'stdout' or 'stderr' is larger than the log limit");
  }
  const int64_t size = static_cast<int64_t>(result.bytes.size());
  store::Job job;
  job.id = NewUuid();
  job.code_id = r.code_id;
  job.user_id = r.user_id;
  job.inputs = "{}";
  job.created_at = job.started_at = job.finished_at = clock_.NowMillis();
  job.result_format = result.format;
  job.result_size = size;
  job.result_meta = std::move(meta_text);
  job.held = r.status != "approved";
  job.stdout_text = std::move(result.stdout_text);
  job.stderr_text = std::move(result.stderr_text);
  job.kind = "private";
  job.status = "completed";
  job.deposited = true;
  // Counted as its requester reads it (a held one at its ceilings: see MeteredOf).
  const int64_t kept = MeteredOf({job, size, static_cast<int64_t>(job.stdout_text.size()),
                                  static_cast<int64_t>(job.stderr_text.size())});
  if (!storage_.TryAdd(kept)) {
    return ResourceExhaustedError("the server's storage limit of " +
                                  std::to_string(storage_.limit()) + " bytes is reached");
  }
  Status st = Status::Ok();
  if (result.bytes.size() <= kMaxResultInDatabase) {
    job.result_data = std::move(result.bytes);
  } else {
    const auto n = static_cast<int64_t>(result.bytes.size());
    auto writer = options_.results->NewWriterFor(ResultBlobId(job.id, job.attempts), n, n);
    st = writer.ok() ? (*writer)->Append(result.bytes) : writer.status();
    if (st.ok()) st = (*writer)->Commit().status();
  }
  if (st.ok()) {
    st = store_.InTransaction([&](store::Store& tx) -> Status {
      RETURN_IF_ERROR(tx.InsertDepositedJob(job));
      RETURN_IF_ERROR(tx.SetJobMeteredBytes(job.id, kept).status());
      return Audit(tx, caller, "request.deposit", "request:" + r.id, "job:" + job.id);
    });
  }
  if (!st.ok()) {
    RemoveResultFile(job.id, job.attempts);
    storage_.Add(-kept);
    return st;
  }
  return store_.GetJob(job.id);
}

Result<RunOutcome> CodeService::Run(const Principal& caller, const std::string& code_id,
                                    const RunCode& run) {
  if (!run.for_requester) return RunAs(caller, code_id, run, nullptr);
  if (!caller.authenticated()) return UnauthenticatedError("log in first");
  if (!caller.IsDataOwner()) {
    return PermissionDeniedError("only a data owner runs code for its requester");
  }
  if (run.mock) return InvalidArgumentError("'for_requester' runs on private data: drop 'mock'");
  if (settings_.Get().server_side_type == "low") {
    return FailedPreconditionError(
        "this is a low-side server: it holds no private data to run on for the requester");
  }
  ASSIGN_OR_RETURN(store::UserCode code, ReadCode(caller, code_id, CodeRead::kToRun));
  if (code.request_status != "approved") {
    return FailedPreconditionError(
        "code is run for its requester only once its request is approved (it is " +
        code.request_status.value_or(std::string("not requested")) + ")");
  }
  ASSIGN_OR_RETURN(store::User author, store_.GetUserById(code.user_id));
  // The run is the author's own: their role (never above a data scientist's for this run, so it
  // is limited, counted and held as theirs), their id.
  Principal requester;
  requester.user_id = author.id;
  requester.email = author.email;
  requester.role = std::min(auth::RoleFromInt(author.role), auth::Role::kDataScientist);
  if (!requester.authenticated()) {
    return FailedPreconditionError("the code's author has no account that may run code");
  }
  return RunAs(requester, code_id, run, &caller);
}

Result<RunOutcome> CodeService::RunAs(const Principal& caller, const std::string& code_id,
                                      const RunCode& run, const Principal* for_owner) {
  // A blocking run waits as /wait does, counted for whoever sent it, and is refused before
  // anything is queued when that person already waits for too many.
  std::optional<WaitPlace> place;
  if (run.blocking) {
    const Principal& sender = for_owner != nullptr ? *for_owner : caller;
    ASSIGN_OR_RETURN(WaitPlace p, TakeWaitPlace(sender.user_id.value_or("")));
    place.emplace(std::move(p));
  }
  ASSIGN_OR_RETURN(store::UserCode code, ReadCode(caller, code_id, CodeRead::kToRun));
  json bound = json::parse(code.inputs);
  const bool author = caller.IsSelf(code.user_id);
  std::string kind;
  if (run.mock) {
    kind = "mock";
  } else if (author && (!caller.IsDataOwner() || code.request_status == "approved")) {
    kind = "private";
  } else {
    // A data owner's run on private data, of anyone's code (GetCode let only owners through for
    // someone else's), needs no approval and counts against no policy.
    kind = "review";
  }
  // A data owner's review may run the code on other data than its policy binds (PySyft's
  // request.code.run(data=...)): an asset, a value, or a blob the owner uploaded.
  json overrides = json::object();
  if (kind == "review" && caller.IsDataOwner() && run.inputs) {
    if (!run.inputs->is_object()) return InvalidArgumentError("'inputs' must be an object");
    for (const auto& [arg, v] : run.inputs->items()) {
      if (!bound.contains(arg)) {
        return InvalidArgumentError("argument '" + arg.substr(0, 100) +
                                    "' is not in the code's input policy");
      }
      if (!v.is_object() || v.size() != 1 ||
          !(v.contains("asset_id") || v.contains("value") || v.contains("blob_id") ||
            v.contains("endpoint"))) {
        return InvalidArgumentError(
            "input '" + arg +
            "' must be {\"asset_id\"}, {\"value\"}, {\"blob_id\"} or {\"endpoint\"}");
      }
      if (v.contains("endpoint")) {
        ASSIGN_OR_RETURN(json resolved, ResolveInputs(json{{arg, v}}));
        overrides[arg] = resolved[arg];
        continue;
      }
      if (v.contains("blob_id")) {
        if (!v["blob_id"].is_string()) {
          return InvalidArgumentError("input '" + arg + "': blob_id must be a string");
        }
        auto blob = store_.GetBlob(v["blob_id"].get<std::string>());
        if (!blob.ok()) return NotFoundError("input '" + arg + "': no such blob");
        overrides[arg] = {{"blob_id", blob->id}, {"format", blob->format}};
      } else if (v.contains("asset_id")) {
        ASSIGN_OR_RETURN(json resolved, ResolveInputs(json{{arg, v}}));
        overrides[arg] = resolved[arg];
      } else {
        overrides[arg] = v;
      }
    }
  } else if (run.inputs) {
    if (!run.inputs->is_object()) return InvalidArgumentError("'inputs' must be an object");
    for (const auto& [arg, v] : run.inputs->items()) {
      if (!bound.contains(arg)) {
        return InvalidArgumentError("argument '" + arg.substr(0, 100) +
                                    "' is not in the code's input policy");
      }
      const json& b = bound[arg];
      const char* key = b.contains("value")      ? "value"
                        : b.contains("endpoint") ? "endpoint"
                                                 : "asset_id";
      const bool same = v.is_object() && v.size() == 1 && v.contains(key) && v[key] == b[key];
      if (!same) {
        return InvalidArgumentError("argument '" + arg +
                                    "' differs from the code's input policy (ExactMatch)");
      }
    }
    for (const auto& [arg, b] : bound.items()) {
      if (!run.inputs->contains(arg)) {
        return InvalidArgumentError("argument '" + arg + "' of the input policy is missing");
      }
    }
  }
  int64_t timeout_ms = options_.max_timeout_ms;
  if (run.timeout_seconds) {
    if (*run.timeout_seconds < 1 || *run.timeout_seconds * 1000 > options_.max_timeout_ms) {
      return InvalidArgumentError("timeout_seconds must be 1 to " +
                                  std::to_string(options_.max_timeout_ms / 1000));
    }
    timeout_ms = *run.timeout_seconds * 1000;
  }
  // A low side never runs on private data: its author's private run answers with the newest run
  // the high side synced here (docs/SYNC.md), once the request checks below pass.
  const bool synced_run = kind == "private" && settings_.Get().server_side_type == "low";
  if (kind != "mock" && !synced_run && settings_.Get().server_side_type == "low") {
    return FailedPreconditionError(
        "this is a low-side server: it holds no private data (run with mock=True)");
  }
  if (!synced_run) RETURN_IF_ERROR(SandboxUsable());
  std::optional<int64_t> max_runs;
  // A data scientist's private run may be admitted under a grant, without its request or output
  // policy; a denied request's code never is.
  std::optional<store::Grant> grant;
  // A data owner's run for the requester is the request's (its output policy counts it), not a
  // use of the scientist's grant.
  if (kind == "private" && !synced_run && !caller.IsDataOwner() && for_owner == nullptr &&
      code.request_status != "denied") {
    ASSIGN_OR_RETURN(grant, GrantToRun(caller, code, clock_.NowMillis()));
  }
  if (kind == "private" && !grant) {
    if (!code.request_status) {
      return PermissionDeniedError(
          "this code has no request yet: ask with client.code.request_code_execution");
    }
    if (*code.request_status != "approved") {
      auto req = store_.GetRequest(*code.request_id);
      std::string why = *code.request_status == "denied" && req.ok() && req->deny_reason
                            ? ": " + *req->deny_reason
                            : "";
      return PermissionDeniedError("the request to run this code is " + *code.request_status + why);
    }
    // A custom output policy counts runs itself, in the sandbox.
    if (code.output_policy != "custom") max_runs = code.output_limit;
  }
  if (synced_run) {
    auto synced = store_.LastSyncedJob(code.id);
    if (synced.status().code() == StatusCode::kNotFound) {
      return FailedPreconditionError(
          "approved on the high side; its result has not been synced here yet");
    }
    if (!synced.ok()) return synced.status();
    return RunOutcome{*synced, false};
  }
  // Resolve assets to the blobs the job reads, now, so the job runs on what was bound.
  json job_inputs = json::object();
  for (const auto& [arg, bound_arg] : bound.items()) {
    const json& b = overrides.contains(arg) ? overrides[arg] : bound_arg;
    if (b.contains("value") || b.contains("blob_id") || b.contains("endpoint")) {
      job_inputs[arg] = b;
      continue;
    }
    auto dataset = store_.GetDatasetByAsset(b["asset_id"].get<std::string>());
    if (!dataset.ok()) {
      return FailedPreconditionError("input '" + arg + "': the asset '" +
                                     b.value("asset", std::string()) + "' no longer exists");
    }
    for (const auto& a : dataset->assets) {
      if (a.id != b["asset_id"]) continue;
      const auto& blob = kind == "mock" ? a.mock_blob : a.data_blob;
      if (!blob) {
        return FailedPreconditionError("input '" + arg + "': asset '" + a.name + "' has no " +
                                       (kind == "mock" ? "mock" : "private data"));
      }
      job_inputs[arg] = {{"blob_id", blob->id}, {"format", blob->format}};
    }
  }
  const bool limited = !caller.IsDataOwner();
  if (storage_.used() >= storage_.limit()) {
    // The caller's own mock outputs make room, oldest first, when they can: a user who filled
    // the storage with them is never locked out by them.
    const int64_t need = storage_.used() - storage_.limit() + 1;
    ASSIGN_OR_RETURN(store::JobUsage usage, store_.UserJobUsage(*caller.user_id));
    if (usage.mock_bytes >= need) {
      ASSIGN_OR_RETURN(
          std::vector<store::ExpiredOutput> expired,
          store_.ExpireMockOutputs(*caller.user_id, std::numeric_limits<int64_t>::max(), need,
                                   clock_.NowMillis()));
      for (const auto& e : expired) {
        if (e.result_in_file) RemoveResultFileAfterCommit(e.job_id, e.attempts);
        storage_.Add(-e.freed_bytes);
      }
    }
  }
  if (storage_.used() >= storage_.limit()) {
    return ResourceExhaustedError(
        "the server's storage limit of " + std::to_string(storage_.limit()) +
        " bytes is reached: no job can keep a result (a data owner can free space by deleting "
        "datasets, or raise it with --max-storage-bytes)");
  }
  if (limited) {
    // Mock outputs make room for new ones (they expire oldest first), so only what else the
    // user's jobs keep can fill the quota. The quota counts only what the user may read (see
    // Store::ChargeJobBytes): the size of the rest may be the data's.
    ASSIGN_OR_RETURN(store::JobUsage usage, store_.UserJobUsage(*caller.user_id));
    const int64_t readable = usage.charged_bytes - usage.mock_bytes;
    const int64_t max = options_.quotas.max_kept_bytes;
    if (readable + usage.code_bytes + usage.project_bytes >= max) {
      return ResourceExhaustedError(
          "your jobs' results and logs (" + std::to_string(readable) + " bytes), your code (" +
          std::to_string(usage.code_bytes) + " bytes) and your projects and messages (" +
          std::to_string(usage.project_bytes) + " bytes) take your whole storage quota of " +
          std::to_string(max) + " bytes: a data owner can raise it (--user-quota-bytes)");
    }
  }
  store::Job job;
  job.id = NewUuid();
  job.code_id = code.id;
  job.user_id = *caller.user_id;
  job.kind = kind;
  job.inputs = job_inputs.dump();
  job.timeout_ms = timeout_ms;
  job.created_at = clock_.NowMillis();
  // Data owners' and admins' runs (reviews above all) go before every data scientist's.
  job.priority = limited ? 0 : 1;
  store::JobLimits limits{.max_private_runs = max_runs};
  if (limited) limits.max_unfinished = options_.quotas.max_unfinished_jobs;
  limits.one_unfinished_private = !code.policy_spec.empty();
  if (grant) {
    job.grant_id = grant->id;
    limits.grant_windows = GrantWindows(*grant);
  }
  // A review run (a data owner's run on private data) and a private run are both recorded.
  // A run not waited for answers the job as stored by the insert.
  std::optional<store::Job> stored;
  if (!run.blocking) stored.emplace();
  ASSIGN_OR_RETURN(
      store::JobAdmission admission,
      queue_.Enqueue(
          job, limits,
          [&](store::Store& tx) {
            if (for_owner) {
              return Audit(tx, *for_owner, "job.run_for_requester", "job:" + job.id,
                           "private run of code:" + code.id + " for user:" + job.user_id);
            }
            return Audit(tx, caller, kind == "review" ? "job.review_run" : "job.create",
                         "job:" + job.id,
                         kind + " run of code:" + code.id +
                             (grant ? " under grant:" + grant->id : std::string()));
          },
          stored ? &*stored : nullptr));
  if (admission == store::JobAdmission::kTooManyUnfinished) {
    return ResourceExhaustedError("you have " +
                                  std::to_string(options_.quotas.max_unfinished_jobs) +
                                  " jobs queued or running, the most this server allows per user; "
                                  "wait for one to end, or kill one")
        .WithRetryAfter(5);
  }
  if (admission == store::JobAdmission::kGrantEnded) {
    obs::GrantRefusals(obs::GrantRefusal::kEnded).Add();
    return PermissionDeniedError("the grant to run this code (" + grant->id +
                                 ") ended while the run was admitted: ask for a new review");
  }
  if (admission == store::JobAdmission::kGrantWindowFull) {
    return WindowFull(*grant, job.user_id, job.created_at);
  }
  if (admission == store::JobAdmission::kPrivateRunUnfinished) {
    return FailedPreconditionError(
        "a private run of this code is still queued or running: code with custom policies runs "
        "on private data one run at a time (each run reads the policy state the last one kept); "
        "wait for it to end, then run again");
  }
  RunOutcome out;
  std::string job_id = job.id;
  if (admission == store::JobAdmission::kPolicyUsedUp) {
    // The output policy is used up: answer the last run instead of running again.
    auto last = store_.LastCompletedPrivateJob(code.id);
    if (last.ok()) {
      out.created = false;
      out.job = std::move(*last);
      return out;
    }
    // None completed (they failed, or still run): the newest private run, whatever its state.
    store::JobFilter f;
    f.code_id = code.id;
    f.user_id = code.user_id;
    f.include_review = false;
    f.newest_first = true;
    ASSIGN_OR_RETURN(auto page, store_.ListJobs(f));
    const auto& jobs = page.items;
    auto it = std::find_if(jobs.begin(), jobs.end(),
                           [](const store::Job& j) { return j.kind == "private"; });
    if (it == jobs.end()) {
      return FailedPreconditionError("the output policy of this code is used up");
    }
    out.created = false;
    job_id = it->id;
  }
  if (!run.blocking) {
    if (admission == store::JobAdmission::kInserted) {
      out.job = std::move(*stored);
    } else {
      ASSIGN_OR_RETURN(out.job, store_.GetJob(job_id));
    }
    return out;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms + 30'000);
  ASSIGN_OR_RETURN(out.job, queue_.Wait(job_id, deadline, run.client_gone, run.result_up_to));
  return out;
}

Result<std::optional<store::Grant>> CodeService::GrantToRun(const Principal& caller,
                                                            const store::UserCode& code,
                                                            int64_t now_ms) {
  // Custom policies are code that runs with the function on private data, and are not part of
  // the hash: a grant never covers them (the approved code had none).
  if (!code.policy_spec.empty()) return std::optional<store::Grant>();
  ASSIGN_OR_RETURN(std::vector<store::Grant> grants,
                   store_.GrantsFor(code.code_hash, *caller.user_id));
  if (grants.empty()) return std::optional<store::Grant>();
  const json mine = json::parse(code.inputs, nullptr, false);
  const store::Grant* ended = nullptr;
  const store::Grant* other_inputs = nullptr;
  std::string differing_arg;
  const store::Grant* full = nullptr;  // of the active ones, the one with room soonest
  int64_t full_until = 0;
  for (const store::Grant& g : grants) {  // newest first
    // The same source may define other functions: the one called must be the approved one.
    const std::string differs =
        code.name != g.code_name
            ? "(the function called, '" + code.name.substr(0, 100) + "' for '" + g.code_name + "')"
            : FirstDifferentBinding(json::parse(g.inputs, nullptr, false), mine);
    if (!differs.empty()) {
      if (!other_inputs) other_inputs = &g, differing_arg = differs;
      continue;
    }
    if (GrantStatus(g, now_ms) != "active") {
      if (!ended) ended = &g;
      continue;
    }
    ASSIGN_OR_RETURN(GrantUse use, UseOf(g, *caller.user_id));
    if (!use.next_run_at) return std::optional<store::Grant>(g);
    if (!full || *use.next_run_at < full_until) full = &g, full_until = *use.next_run_at;
  }
  if (full) return WindowFull(*full, *caller.user_id, now_ms);
  // The caller's own approved request still decides where the grants that don't fit came from
  // other requests; a grant of the code's own request that ended ends its repeated use.
  const bool own_approved = code.request_status == "approved";
  if (ended && own_approved && ended->request_id != code.request_id.value_or("")) ended = nullptr;
  if (other_inputs && own_approved) other_inputs = nullptr;
  if (!ended && !other_inputs) return std::optional<store::Grant>();
  if (ended) {
    obs::GrantRefusals(obs::GrantRefusal::kEnded).Add();
    const std::string when =
        FormatIsoTime((ended->revoked_at ? *ended->revoked_at : ended->expires_at) / 1000);
    return PermissionDeniedError("the grant to run this code repeatedly (" + ended->id + ") " +
                                 (ended->revoked_at ? "was revoked at " : "expired at ") + when +
                                 ": ask for a new review (client.code.request_code_execution)");
  }
  obs::GrantRefusals(obs::GrantRefusal::kInputs).Add();
  return PermissionDeniedError(
      "a grant names you for this code, but your code differs from the approved code in " +
      (differing_arg.front() == '('
           ? differing_arg
           : "argument '" + differing_arg.substr(0, 100) + "' (your code binds it to other data)") +
      ": submit it with the same function and inputs");
}

Status CodeService::WindowFull(const store::Grant& grant, const std::string& user_id,
                               int64_t now_ms) {
  obs::GrantRefusals(obs::GrantRefusal::kRateLimit).Add();
  ASSIGN_OR_RETURN(std::vector<int64_t> times,
                   store_.GrantRunTimes(grant.id, user_id, now_ms - kDayMs));
  const GrantUse use = UseOfGrant(grant, times, now_ms);
  if (!use.next_run_at) {
    // A run ended between the refusal and this count: there is room now.
    return ResourceExhaustedError("the grant's limit was reached a moment ago; run again")
        .WithRetryAfter(1);
  }
  const int64_t wait_ms = std::max<int64_t>(*use.next_run_at - now_ms, 0);
  const int64_t wait_s = std::max<int64_t>((wait_ms + 999) / 1000, 1);
  return ResourceExhaustedError(
             "this code's grant allows " + std::to_string(use.full_limit) +
             (use.full_limit == 1 ? " run" : " runs") + " per " + use.full_window +
             " and you have used " + (use.full_limit == 1 ? "it" : "them") +
             ": the next run is allowed at " + FormatIsoTime((*use.next_run_at + 999) / 1000) +
             " (in " + std::to_string(wait_s) + " s)")
      .WithRetryAfter(static_cast<int>(std::min<int64_t>(wait_s, 86'400)));
}

Result<GrantUse> CodeService::UseOf(const store::Grant& grant, const std::string& user_id) {
  const int64_t now_ms = clock_.NowMillis();
  ASSIGN_OR_RETURN(std::vector<int64_t> times,
                   store_.GrantRunTimes(grant.id, user_id, now_ms - kDayMs));
  return UseOfGrant(grant, times, now_ms);
}

Result<json> CodeService::GetOutputChecks(const Principal& caller, const std::string& dataset_id) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  ASSIGN_OR_RETURN(store::Dataset d, store_.GetDataset(dataset_id));
  ASSIGN_OR_RETURN(std::string text, store_.GetOutputChecks(d.id));
  json rules = nullptr;
  if (!text.empty()) {
    ASSIGN_OR_RETURN(OutputRules parsed, ParseOutputRules(json::parse(text, nullptr, false)));
    rules = OutputRulesJson(parsed);
  }
  return json{{"dataset_id", d.id}, {"dataset", d.name}, {"rules", std::move(rules)}};
}

Result<json> CodeService::SetOutputChecks(const Principal& caller, const std::string& dataset_id,
                                          const json& rules) {
  if (!caller.IsDataOwner()) {
    return PermissionDeniedError("only data owners and admins set a dataset's output checks");
  }
  ASSIGN_OR_RETURN(store::Dataset d, store_.GetDataset(dataset_id));
  ASSIGN_OR_RETURN(OutputRules parsed, ParseOutputRules(rules));
  const std::string text = parsed.any() ? OutputRulesJson(parsed).dump() : std::string();
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.SetOutputChecks(d.id, text, *caller.user_id, clock_.NowMillis()));
    return Audit(tx, caller, "dataset.output_checks", "dataset:" + d.id,
                 text.empty() ? "removed" : text);
  }));
  return GetOutputChecks(caller, d.id);
}

Result<store::GrantPage> CodeService::ListGrants(const Principal& caller,
                                                 const std::optional<std::string>& status,
                                                 int64_t page, int64_t page_size) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  if (status && *status != "active" && *status != "revoked" && *status != "expired") {
    return InvalidArgumentError("status must be active, revoked or expired");
  }
  RETURN_IF_ERROR(CheckPage(page, page_size));
  std::optional<std::string> user;
  if (!caller.IsDataOwner()) user = caller.user_id;
  return store_.ListGrants(user, status, clock_.NowMillis(), (page - 1) * page_size, page_size);
}

Result<store::Grant> CodeService::GetGrant(const Principal& caller, const std::string& id) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  auto g = store_.GetGrant(id);
  if (!g.ok()) return g.status();
  if (!caller.IsDataOwner() &&
      std::find(g->user_ids.begin(), g->user_ids.end(), *caller.user_id) == g->user_ids.end()) {
    return NotFoundError("grant not found");
  }
  return g;
}

void CodeService::KillGrantRuns(store::JobFilter f, const std::string& what) {
  f.include_review = false;
  f.limit = kMaxListPageSize;
  for (const char* status : {"queued", "running"}) {
    f.status = status;
    auto jobs = store_.ListJobs(f);
    if (!jobs.ok()) {
      // Held already; the start of each checks its grant again.
      spdlog::warn("{}: its runs under grants were not listed to stop: {}", what,
                   jobs.status().ToString());
      continue;
    }
    for (const auto& j : jobs->items) (void)queue_.Kill(j.id);
  }
}

Result<store::Grant> CodeService::RevokeGrant(const Principal& caller, const std::string& id) {
  if (!caller.IsDataOwner())
    return PermissionDeniedError("only data owners and admins revoke grants");
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.RevokeGrant(id, *caller.user_id, clock_.NowMillis()));
    return Audit(tx, caller, "grant.revoke", "grant:" + id);
  }));
  // No run is admitted under it from here on (InsertJob checks revoked_at); those admitted before
  // are stopped.
  store::JobFilter f;
  f.grant_id = id;
  KillGrantRuns(f, "grant " + id);
  return store_.GetGrant(id);
}

Result<store::JobPage> CodeService::ListJobs(const Principal& caller,
                                             const std::optional<std::string>& code_id,
                                             const std::optional<std::string>& status, int64_t page,
                                             int64_t page_size) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  static const char* kStatuses[] = {"queued",    "running", "completed",  "errored",
                                    "timed_out", "killed",  "interrupted"};
  if (status &&
      std::find(std::begin(kStatuses), std::end(kStatuses), *status) == std::end(kStatuses)) {
    return InvalidArgumentError(
        "status must be queued, running, completed, errored, timed_out, killed or interrupted");
  }
  RETURN_IF_ERROR(CheckPage(page, page_size));
  store::JobFilter f;
  f.code_id = code_id;
  f.status = status;
  f.offset = (page - 1) * page_size;
  f.limit = page_size;
  if (!caller.IsDataOwner()) {
    f.user_id = caller.user_id;
    f.include_review = false;
  }
  return store_.ListJobs(f);
}

Result<store::Job> CodeService::GetJob(const Principal& caller, const std::string& id,
                                       int64_t result_up_to) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  auto job = result_up_to > 0 ? store_.GetJob(id, result_up_to) : store_.GetJob(id);
  if (!job.ok()) return job.status();
  if (!caller.IsDataOwner() && (!caller.IsSelf(job->user_id) || job->kind == "review")) {
    return NotFoundError("job not found");
  }
  return job;
}

bool CodeService::MaySeeResult(const Principal& caller, const store::Job& job) const {
  if (caller.IsDataOwner()) return true;
  return caller.IsSelf(job.user_id) && job.kind != "review" && !job.held;
}

bool CodeService::MaySeeErrorDetail(const Principal& caller, const store::Job& job) const {
  if (caller.IsDataOwner()) return true;
  return MaySeeResult(caller, job) && (job.kind == "mock" || job.error_released);
}

bool CodeService::MaySeeStdout(const Principal& caller, const store::Job& job) const {
  if (caller.IsDataOwner()) return true;
  if (!MaySeeResult(caller, job)) return false;
  if (job.kind != "private" || job.status == "completed" || job.error_released) return true;
  // What a custom policy's run printed before its output policy decided may quote private values
  // the policy then refuses: held like its error text. Unreadable policies hold it too.
  auto policy = store_.GetCodePolicy(job.code_id);
  return policy.ok() && !policy->has_value();
}

Result<ResultFile> CodeService::JobResult(const Principal& caller, const std::string& id) {
  ASSIGN_OR_RETURN(store::Job job, GetJob(caller, id));
  if (job.status != "completed") {
    return FailedPreconditionError("the job has no result: it is " + job.status);
  }
  if (!MaySeeResult(caller, job)) {
    return FailedPreconditionError("the result is held until a data owner releases it");
  }
  if (job.result_expired) {
    return NotFoundError("the result of this mock run expired: only the newest " +
                         std::to_string(options_.quotas.mock_outputs_kept) +
                         " mock runs per user keep their result and logs; run it again");
  }
  ResultFile f{std::nullopt, nullptr, job.result_format, job.result_size};
  ASSIGN_OR_RETURN(f.bytes, store_.GetJobResult(job.id));
  if (!f.bytes) {
    ASSIGN_OR_RETURN(f.reader, OpenResult(job, &caller));
  }
  // A result computed on private data leaves the server: recorded before it is handed out.
  if (job.kind != "mock") {
    RETURN_IF_ERROR(Audit(store_, caller, "job.read_result", "job:" + job.id, job.kind + " run"));
  }
  return f;
}

Result<std::optional<std::string>> CodeService::SmallResult(const Principal& caller,
                                                            const store::Job& job,
                                                            int64_t max_bytes) const {
  if (job.status != "completed" || job.result_expired || job.result_size > max_bytes) {
    return std::optional<std::string>();
  }
  if (job.kind != "mock") {
    // The run's end is part of the key: a job replaced by sync (same id, another result) is
    // recorded again at its first read.
    const std::string read = caller.AuditName() + "\n" + job.id + "\n" +
                             std::to_string(job.finished_at) + "\n" +
                             std::to_string(job.result_size);
    bool recorded;
    {
      std::lock_guard lock(inline_reads_mu_);
      recorded = inline_reads_.contains(read);
    }
    if (!recorded) {
      RETURN_IF_ERROR(
          store_.AppendAudit({clock_.NowSeconds(), caller.AuditName(), "job.read_result",
                              "job:" + job.id, job.kind + " run (inline)"}));
      constexpr size_t kMaxRemembered = 100'000;
      std::lock_guard lock(inline_reads_mu_);
      if (inline_reads_.size() >= kMaxRemembered) inline_reads_.clear();
      inline_reads_.insert(read);
    }
  }
  if (job.result_data) return job.result_data;  // read with the job (GetJob's result_up_to)
  ASSIGN_OR_RETURN(auto bytes, store_.GetJobResult(job.id));
  if (bytes) return bytes;
  ASSIGN_OR_RETURN(auto reader, OpenResult(job));
  std::string out(static_cast<size_t>(reader->size()), '\0');
  for (size_t at = 0; at < out.size();) {
    ASSIGN_OR_RETURN(size_t got, reader->Read(out.data() + at, out.size() - at));
    if (got == 0) return InternalError("the result of job " + job.id + " ended early");
    at += got;
  }
  return std::optional<std::string>(std::move(out));
}

namespace {

// The length of `text` without a UTF-8 sequence cut short at its end.
size_t WholeUtf8Prefix(const std::string& text) {
  size_t n = text.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

}  // namespace

Result<JobLogs> CodeService::Logs(const Principal& caller, const std::string& id, int64_t since) {
  ASSIGN_OR_RETURN(store::Job job, GetJob(caller, id));
  since = std::max<int64_t>(since, 0);
  JobLogs logs;
  logs.next_since = since;
  logs.ended = jobs::IsFinal(job.status);
  if (!MaySeeResult(caller, job) && !caller.IsDataOwner()) return logs;
  // Who may read stdout is decided on the row the logs come from: a private run under output
  // review marks itself held in the same update that streams its first bytes, and a custom
  // policy's run shows it only once completed.
  ASSIGN_OR_RETURN(store::JobOutput output, store_.ReadJobOutput(job.id, since));
  job.status = output.status;
  job.held = output.held;
  logs.ended = jobs::IsFinal(job.status);
  if (MaySeeStdout(caller, job)) {
    if (!logs.ended) output.stdout_text.resize(WholeUtf8Prefix(output.stdout_text));
    logs.next_since = since + static_cast<int64_t>(output.stdout_text.size());
    logs.stdout_text = std::move(output.stdout_text);
  }
  // While the job runs its stderr is the data owners' only (a mock run's user reads it at the end).
  if (MaySeeErrorDetail(caller, job) && (logs.ended || caller.IsDataOwner())) {
    logs.stderr_text = std::move(output.stderr_text);
  }
  return logs;
}

Result<store::Job> CodeService::WaitJob(const Principal& caller, const std::string& id,
                                        std::chrono::seconds timeout,
                                        const std::function<bool()>& client_gone,
                                        int64_t result_up_to) {
  // Who may see it may wait for it; one that has ended needs no wait.
  ASSIGN_OR_RETURN(store::Job job, GetJob(caller, id, result_up_to));
  if (jobs::IsFinal(job.status)) return job;
  ASSIGN_OR_RETURN(WaitPlace place, TakeWaitPlace(caller.user_id.value_or("")));
  return queue_.Wait(id, std::chrono::steady_clock::now() + timeout, client_gone, result_up_to);
}

Result<CodeService::WaitPlace> CodeService::TakeWaitPlace(const std::string& user_id) {
  std::lock_guard lock(waits_mu_);
  if (all_waits_ >= options_.max_waits) {
    Status st = ResourceExhaustedError(
        "the server is already waiting for " + std::to_string(options_.max_waits) +
        " jobs at once: try again shortly, or poll GET /api/v1/jobs/{id}");
    return st.WithRetryAfter(1);
  }
  int& held = waits_[user_id];
  if (held >= options_.max_waits_per_user) {
    if (held == 0) waits_.erase(user_id);
    Status st = ResourceExhaustedError(
        "you are already waiting for " + std::to_string(options_.max_waits_per_user) +
        " jobs at once: wait for fewer together, or poll GET /api/v1/jobs/{id}");
    return st.WithRetryAfter(1);
  }
  ++held;
  ++all_waits_;
  return WaitPlace(this, user_id);
}

CodeService::WaitPlace::~WaitPlace() {
  if (service_ == nullptr) return;
  std::lock_guard lock(service_->waits_mu_);
  --service_->all_waits_;
  auto it = service_->waits_.find(user_);
  if (it != service_->waits_.end() && --it->second <= 0) service_->waits_.erase(it);
}

Result<store::Job> CodeService::Kill(const Principal& caller, const std::string& id) {
  ASSIGN_OR_RETURN(store::Job job, GetJob(caller, id));
  RETURN_IF_ERROR(queue_.Kill(id));
  // The kill is the queue's (it may stop a running process): its entry follows it.
  RETURN_IF_ERROR(Audit(store_, caller, "job.kill", "job:" + id));
  return queue_.Wait(id, std::chrono::steady_clock::now() + std::chrono::seconds(5));
}

Result<store::Job> CodeService::Release(const Principal& caller, const std::string& id) {
  if (!caller.IsDataOwner())
    return PermissionDeniedError("only data owners and admins release results");
  ASSIGN_OR_RETURN(store::Job job, GetJob(caller, id));
  if (!jobs::IsFinal(job.status)) {
    return FailedPreconditionError("the job has not ended yet: it is " + job.status);
  }
  if (!job.held) {
    return FailedPreconditionError(
        "nothing to release: job " + job.id +
        " holds no result (output review was off when it ran, or it was released already)");
  }
  // What it shows its requester now counts against their quota, past it if need be: the data
  // owner chose to show it, and the quota then refuses the requester's next runs.
  store::Job released = job;
  released.held = false;
  ASSIGN_OR_RETURN(Recharge after, RechargeFor(released));
  int64_t was_metered = 0;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.ReleaseJob(id));
    RETURN_IF_ERROR(tx.SetJobChargedBytes(id, after.charged));
    ASSIGN_OR_RETURN(was_metered, tx.SetJobMeteredBytes(id, after.metered));
    RETURN_IF_ERROR(Audit(tx, caller, "job.release", "job:" + id, "code:" + job.code_id));
    return notifications_ && job.kind == "private"
               ? notifications_->OnResultReleased(tx, job, *caller.user_id)
               : Status::Ok();
  }));
  // Counted at its size now (past the limit if need be, as the quota is).
  storage_.Add(after.metered - was_metered);
  return store_.GetJob(id);
}

Result<store::Job> CodeService::ReleaseError(const Principal& caller, const std::string& id) {
  if (!caller.IsDataOwner()) {
    return PermissionDeniedError("only data owners and admins release a run's error");
  }
  ASSIGN_OR_RETURN(store::Job job, GetJob(caller, id));
  if (job.kind == "mock") {
    return FailedPreconditionError("a run on the mocks shows its error to its user already");
  }
  if (job.kind == "review") {
    return FailedPreconditionError("a data owner's review run has no requester to release to");
  }
  if (!jobs::IsFinal(job.status) || job.error_detail.empty()) {
    return FailedPreconditionError("the job has no error to release: it is " + job.status);
  }
  if (job.held) {
    return FailedPreconditionError(
        "the job is held for output review: release it first (job.release())");
  }
  if (job.error_released) return FailedPreconditionError("the job's error was already released");
  store::Job released = job;
  released.error_released = true;
  ASSIGN_OR_RETURN(Recharge after, RechargeFor(released));
  int64_t was_metered = 0;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.ReleaseJobError(id));
    RETURN_IF_ERROR(tx.SetJobChargedBytes(id, after.charged));
    ASSIGN_OR_RETURN(was_metered, tx.SetJobMeteredBytes(id, after.metered));
    return Audit(tx, caller, "job.release_error", "job:" + id);
  }));
  storage_.Add(after.metered - was_metered);
  return store_.GetJob(id);
}

CodeService::KeptBytes CodeService::ReadableOf(const Principal& caller,
                                               const store::KeptOutput& o) const {
  KeptBytes kept;
  kept.result = o.job.status == "completed" && MaySeeResult(caller, o.job) ? o.result_bytes : 0;
  kept.log = (MaySeeStdout(caller, o.job) ? o.stdout_bytes : 0) +
             (MaySeeErrorDetail(caller, o.job) ? o.stderr_bytes : 0);
  if (o.job.kind == "mock") kept.mock = kept.result + kept.log;
  return kept;
}

Result<CodeService::KeptBytes> CodeService::KeptBytesOf(const Principal& caller) {
  ASSIGN_OR_RETURN(std::vector<store::KeptOutput> outputs, store_.UserKeptOutputs(*caller.user_id));
  KeptBytes kept;
  for (const auto& o : outputs) {
    // A running job's charge is not split into its parts yet: none of it is told.
    if (!jobs::IsFinal(o.job.status)) continue;
    const KeptBytes readable = ReadableOf(caller, o);
    kept.result += readable.result;
    kept.log += readable.log;
    kept.mock += readable.mock;
  }
  return kept;
}

int64_t CodeService::MeteredOf(const store::KeptOutput& o) const {
  const Principal requester = RequesterOf(o.job);
  const auto result_cap = static_cast<int64_t>(options_.limits.max_result_bytes);
  const auto log_cap = static_cast<int64_t>(options_.limits.max_log_bytes);
  return (MaySeeResult(requester, o.job) ? o.result_bytes : result_cap) +
         (MaySeeStdout(requester, o.job) ? o.stdout_bytes : log_cap) +
         (MaySeeErrorDetail(requester, o.job) ? o.stderr_bytes : log_cap);
}

CodeService::Recharge CodeService::RechargeOf(const store::KeptOutput& o) const {
  const KeptBytes readable = ReadableOf(RequesterOf(o.job), o);
  // A job that keeps nothing (its output did not fit) counts nothing, released or not.
  return {readable.result + readable.log, o.metered_bytes == 0 ? 0 : MeteredOf(o)};
}

Result<CodeService::Recharge> CodeService::RechargeFor(const store::Job& job) {
  ASSIGN_OR_RETURN(std::vector<store::KeptOutput> outputs, store_.UserKeptOutputs(job.user_id));
  for (auto& o : outputs) {
    if (o.job.id != job.id) continue;
    o.job.held = job.held;
    o.job.error_released = job.error_released;
    return RechargeOf(o);
  }
  return Recharge{};
}

Result<QuotaUse> CodeService::Quota(const Principal& caller) {
  RETURN_IF_ERROR(NeedDataScientist(caller));
  ASSIGN_OR_RETURN(store::JobUsage usage, store_.UserJobUsage(*caller.user_id));
  ASSIGN_OR_RETURN(KeptBytes kept, KeptBytesOf(caller));
  QuotaUse q;
  q.result_bytes = kept.result;
  q.log_bytes = kept.log;
  q.unfinished_jobs = usage.unfinished;
  q.mock_outputs_kept = options_.quotas.mock_outputs_kept;
  ASSIGN_OR_RETURN(store::CodeUsage code, store_.UserCodeUsage(*caller.user_id));
  q.code_bytes = code.bytes;
  q.code_versions = code.versions;
  ASSIGN_OR_RETURN(store::ProjectUsage projects, store_.UserProjectUsage(*caller.user_id));
  q.project_bytes = projects.bytes;
  q.projects = projects.projects;
  q.project_messages = projects.messages;
  if (!caller.IsDataOwner()) {
    q.max_kept_bytes = options_.quotas.max_kept_bytes;
    q.max_unfinished_jobs = options_.quotas.max_unfinished_jobs;
    q.max_code_versions = options_.quotas.max_code_versions;
    q.max_projects = options_.quotas.max_projects;
    q.max_project_messages = options_.quotas.max_project_messages;
  }
  return q;
}

Status CodeService::KeepResult(const store::Job& job, const std::string& path, int64_t size) {
  RETURN_IF_ERROR(SyncFile(path));
  ASSIGN_OR_RETURN(auto sha, blob::Sha256OfFile(path));
  if (sha.second != size) {
    return InternalError("the result file holds " + std::to_string(sha.second) + " bytes, not " +
                         std::to_string(size));
  }
  return options_.results->AdoptFileAs(ResultBlobId(job.id, job.attempts), path, size, sha.first)
      .status();
}

jobs::Outcome CodeService::RunJob(const store::Job& job, const std::atomic<bool>& cancel) {
  return RunInSandbox(job, cancel);
}

void CodeService::DropResult(store::Store& tx, const store::Job& job, jobs::Outcome& out) const {
  if (!out.result_data) {
    // This run's result only, once the end that drops it is recorded.
    tx.AfterCommit([this, id = ResultBlobId(job.id, job.attempts)] {
      Status gone = options_.results->Delete(id);
      if (!gone.ok()) spdlog::warn("removing the dropped result {}: {}", id, gone.ToString());
    });
  }
  out.result_data.reset();
  out.status = "errored";
  out.failure = FailureName(FailureKind::kNotKept);
  out.result_format.clear();
  out.result_size = 0;
}

Status CodeService::EndJob(store::Store& tx, const store::Job& job, jobs::Outcome& out, bool keep) {
  if (!out.held_reason.empty()) {
    // Which rule held which run, in the end's own transaction (the rule, never a value).
    RETURN_IF_ERROR(tx.AppendAudit(
        {clock_.NowSeconds(), "server", "job.held_by_rule", "job:" + job.id, out.held_reason}));
  }
  if (keep) return KeepWithinQuota(tx, job, out);
  spdlog::error("job {}: its outputs could not be counted; its end is recorded without them",
                job.id);
  if (out.status == "completed") DropResult(tx, job, out);
  out.result_meta.clear();
  out.stdout_text.clear();
  out.stderr_text.clear();
  out.error = "the job's output could not be stored";
  out.error_detail.clear();
  return Status::Ok();
}

Result<std::string> CodeService::Charge(store::Store& tx, const store::Job& job,
                                        int64_t result_bytes, int64_t log_bytes,
                                        int64_t charged_bytes, int64_t metered_bytes,
                                        std::optional<int64_t> quota) {
  ASSIGN_OR_RETURN(bool charged, tx.ChargeJobBytes(job, result_bytes, log_bytes, charged_bytes,
                                                   metered_bytes, quota));
  if (!charged) {
    return "your storage quota of " + std::to_string(*quota) + " bytes (--user-quota-bytes)";
  }
  if (storage_.TryAdd(metered_bytes)) {
    // Taken now, so that jobs ending together can't pass the limit; given back if the end is not
    // recorded after all.
    tx.AfterRollback([this, metered_bytes] { storage_.Add(-metered_bytes); });
    return std::string();
  }
  RETURN_IF_ERROR(tx.ChargeJobBytes(job, 0, 0, 0, std::nullopt).status());
  return "the server's storage limit of " + std::to_string(storage_.limit()) + " bytes";
}

Status CodeService::KeepWithinQuota(store::Store& tx, const store::Job& job, jobs::Outcome& out) {
  const int64_t logs = static_cast<int64_t>(out.stdout_text.size() + out.stderr_text.size());
  const int64_t result = out.status == "completed" ? out.result_size : 0;
  std::optional<int64_t> quota;
  if (job.priority == 0) quota = options_.quotas.max_kept_bytes;
  auto drop_result = [&] { DropResult(tx, job, out); };
  // The quota is charged only what the user may read of this run as it ends (a private run's
  // stderr, a held run's everything, a refused policy's stdout: nothing), so whether it keeps
  // its output, and which mock outputs make room, never depends on a size they can't read. A run
  // the store holds at FinishJob after all (output review turned on meanwhile) charges nothing.
  store::KeptOutput ended{job, result, static_cast<int64_t>(out.stdout_text.size()),
                          static_cast<int64_t>(out.stderr_text.size())};
  ended.job.status = out.status;
  ended.job.held = ended.job.held || out.held;
  auto readable = [&] {
    const KeptBytes r = ReadableOf(RequesterOf(job), ended);
    return r.result + r.log;
  };
  const int64_t charged = readable();
  // The storage limit counts what its requester may not read at its ceiling (MeteredOf), so the
  // server's free space, and which outputs it keeps, never tell that size either. A run the store
  // holds meanwhile (its request denied, or output review turned on, while it ran) counts as held.
  store::KeptOutput metered_view = ended;
  const bool ask_held = job.kind == "private" && !metered_view.job.held;
  // The user's usage, for the quota; read with the stored job's held flag when both are needed.
  std::optional<store::JobUsage> usage;
  if (quota) {
    ASSIGN_OR_RETURN(
        usage, ask_held ? tx.UserJobUsage(job.user_id, job.id) : tx.UserJobUsage(job.user_id));
  }
  if (ask_held) {
    std::optional<bool> stored_held;
    if (usage) {
      stored_held = usage->job_held;
    } else {
      auto stored = tx.GetJob(job.id);
      if (!stored.ok() && stored.status().code() != StatusCode::kNotFound) return stored.status();
      if (stored.ok()) stored_held = stored->held;
    }
    metered_view.job.held = settings_.Get().output_review || !stored_held || *stored_held;
  }
  auto metered = [&] {
    metered_view.result_bytes = ended.result_bytes;
    metered_view.job.status = ended.job.status;
    return MeteredOf(metered_view);
  };
  // What the quota needs freed, taken from the user's oldest mock outputs (when that can make
  // room: not for an output larger than what else they keep leaves); a new mock output also
  // pushes out those past the newest kept.
  int64_t need = 0;
  if (quota) {
    // The user's code, projects and messages count too (they never expire to make room).
    const int64_t kept = usage->charged_bytes + usage->code_bytes + usage->project_bytes;
    if (kept - usage->mock_bytes + charged <= *quota) need = kept + charged - *quota;
  }
  // Only a mock output's end can push one past the newest kept (every mock end keeps to the
  // limit), so other ends look only when the quota needs room: a query fewer per job.
  std::vector<store::ExpiredOutput> expired;
  if (need > 0 || job.kind == "mock") {
    const int64_t keep = options_.quotas.mock_outputs_kept - (job.kind == "mock" ? 1 : 0);
    ASSIGN_OR_RETURN(expired, tx.ExpireMockOutputs(job.user_id, keep, std::max<int64_t>(need, 0),
                                                   clock_.NowMillis()));
  }
  for (const auto& e : expired) {
    if (e.result_in_file) RemoveResultFileAfterCommit(e.job_id, e.attempts);
    storage_.Add(-e.freed_bytes);
    tx.AfterRollback([this, freed = e.freed_bytes] { storage_.Add(freed); });
  }
  ASSIGN_OR_RETURN(std::string refused, Charge(tx, job, result, logs, charged, metered(), quota));
  if (refused.empty()) return Status::Ok();
  // A run on private data tells its requester what was not kept, not its size: the size of what
  // the code wrote (its stderr above all) is the code's to choose. Data owners read the sizes.
  const bool sizes_public = job.kind == "mock";
  auto tell = [&](const std::string& what, int64_t bytes, const std::string& rest) {
    const std::string sized = what + " (" + std::to_string(bytes) + " bytes)" + rest;
    const std::string told = sizes_public ? sized : what + rest;
    out.error = out.error.empty() ? told : out.error + "; " + told;
    if (!sizes_public) {
      out.error_detail = out.error_detail.empty() ? sized : out.error_detail + "; " + sized;
    }
  };
  if (result > 0) {
    drop_result();
    out.error.clear();
    tell("the result", result, " was not kept: it would pass " + refused);
    ended.result_bytes = 0;
    ended.job.status = out.status;
    ASSIGN_OR_RETURN(refused, Charge(tx, job, 0, logs, readable(), metered(), quota));
    if (refused.empty()) return Status::Ok();
  }
  out.stdout_text.clear();
  out.stderr_text.clear();
  tell("its logs", logs, " were not kept: they would pass " + refused);
  return Status::Ok();
}

Result<OutputRules> CodeService::OutputRulesOf(const store::UserCode& code) {
  OutputRules rules;
  const json bound = json::parse(code.inputs, nullptr, false);
  if (!bound.is_object()) return rules;
  for (const auto& [arg, b] : bound.items()) {
    if (!b.is_object() || !b.contains("asset_id")) continue;
    std::string dataset_id = b.value("dataset_id", std::string());
    if (dataset_id.empty()) {
      ASSIGN_OR_RETURN(store::Dataset d,
                       store_.GetDatasetByAsset(b["asset_id"].get<std::string>()));
      dataset_id = d.id;
    }
    ASSIGN_OR_RETURN(std::string text, store_.GetOutputChecks(dataset_id));
    if (text.empty()) continue;
    const json parsed = json::parse(text, nullptr, false);
    ASSIGN_OR_RETURN(OutputRules theirs, ParseOutputRules(parsed));
    rules = Strictest(rules, theirs);
  }
  return rules;
}

void CodeService::ApplyOutputChecks(const OutputRules& rules, const store::UserCode& code,
                                    const sandbox::JobSpec& spec, sandbox::JobResult& r,
                                    jobs::Outcome& out) {
  std::vector<InputTable> inputs;
  if (rules.no_row_level) {
    const json bound = json::parse(code.inputs, nullptr, false);
    for (const auto& in : spec.inputs) {
      const json b = bound.is_object() && bound.contains(in.name) ? bound[in.name] : json();
      const std::string name =
          b.is_object() ? b.value("dataset", std::string()) + "/" + b.value("asset", std::string())
                        : in.name;
      InputTable t;
      t.name = name;
      if (in.format == "csv") {
        auto read = ReadInputTable(name, in.path);
        if (read.ok()) t = std::move(*read);
      }
      inputs.push_back(std::move(t));
    }
  }
  const Verdict v = CheckOutput(rules, r.result_format, *out.result_data, r.result_meta,
                                static_cast<int64_t>(out.stdout_text.size()), inputs);
  if (!v.held.empty()) {
    out.held = true;
    out.held_reason = v.held;
    return;
  }
  if (v.result) out.result_data = *v.result;
  if (v.meta) r.result_meta = *v.meta;
}

jobs::Outcome CodeService::RunInSandbox(const store::Job& job, const std::atomic<bool>& cancel) {
  jobs::Outcome out;
  out.status = "errored";
  // Until the sandbox says how the run ended: nothing of the code has run (not counted).
  out.failure = FailureName(FailureKind::kEnvironment);
  // The code's worker pool, when not the default: its sandbox, held for the run, and its limits.
  auto code = job.code_to_run ? Result<store::UserCode>(*job.code_to_run)
                              : store_.GetCodeToRun(job.code_id);
  if (!code.ok()) {
    out.error = "the job's code is gone";
    return out;
  }
  // Under a grant, the environment that holds is the one the grant's request bound, in its pool:
  // a scientist the grant names runs the same source as code of their own, which no approval
  // bound (a cold review ran such code in an environment no one approved).
  std::optional<store::UserCode> bound;
  if (job.kind == "private" && job.grant_id) {
    auto grant = store_.GetGrant(*job.grant_id);
    auto request = grant.ok() ? store_.GetRequest(grant->request_id)
                              : Result<store::CodeRequest>(grant.status());
    if (request.ok() && request->code_id != code->id) {
      auto approved = store_.GetCode(request->code_id);
      if (!approved.ok()) {
        out.error = "the code the grant approved is gone";
        return out;
      }
      if (approved->worker_pool_name != code->worker_pool_name) {
        out.error = "the grant approved this code for worker pool '" + approved->worker_pool_name +
                    "', not '" + code->worker_pool_name + "': submit it for that pool";
        return out;
      }
      bound = *code;
      bound->approved_environment = approved->approved_environment;
    }
  }
  const store::UserCode& held = bound ? *bound : *code;
  PoolRun pool;
  if (pools_ != nullptr) {
    auto found = pools_->ForRun(held, job.kind == "private");
    if (!found.ok()) {
      out.error = found.status().message();
      return out;
    }
    pool = std::move(*found);
  } else if (!run_pool_.empty() && job.kind == "private" &&
             held.approved_environment != run_pool_hash_) {
    out.error =
        "the worker pool '" + run_pool_ +
        "' runs another environment than the one approved: the code needs a new review (the "
        "owner approves the request again)";
    return out;
  }
  auto sandbox =
      pool.sandbox ? Result<sandbox::Sandbox*>(pool.sandbox.get()) : WaitForSandbox(&cancel);
  if (!sandbox.ok()) {
    out.status = cancel ? "killed" : "errored";
    out.error = sandbox.status().message();
    return out;
  }
  // In the default pool an approval binds the server's environment once it was known
  // (PoolService::BindApproval); one made before binds none.
  if (job.kind == "private" && !pool.sandbox && run_pool_.empty() &&
      !held.approved_environment.empty() &&
      held.approved_environment != EnvironmentHash(**sandbox)) {
    out.error =
        "the default worker pool runs another environment than the one approved (its Python or "
        "packages changed): the code needs a new review (the owner approves the request again)";
    return out;
  }
  if (job.kind == "private" && job.grant_id) {
    // Admitted under a grant: it runs unless the grant was revoked since (a revocation kills the
    // runs it finds; this catches one admitted in the moment before), and only as the code the
    // grant approved.
    auto grant = store_.GetGrant(*job.grant_id);
    auto request = grant.ok() ? store_.GetRequest(grant->request_id)
                              : Result<store::CodeRequest>(grant.status());
    if (!grant.ok() || grant->revoked_at || !request.ok() || request->status != "approved" ||
        grant->code_hash != code->code_hash || grant->code_name != code->name ||
        !code->policy_spec.empty()) {
      out.status = "killed";
      out.failure = FailureName(FailureKind::kKilled);
      out.error =
          "the grant this run was admitted under ended (revoked, or its request denied) before "
          "the run started";
      return out;
    }
  } else if (job.kind == "private" && code->request_status != "approved") {
    // Its request was denied after the run was queued (a denial holds the runs queued before it;
    // this catches one queued in the moment after).
    out.status = "killed";
    out.failure = FailureName(FailureKind::kKilled);
    out.error = "the request to run this code was denied before the run started";
    return out;
  }
  sandbox::JobSpec spec;
  spec.source = code->source;
  spec.function_name = code->name;
  spec.function_line = TopLevelDefinitionLine(code->source, code->name);
  spec.limits = pool.sandbox ? pool.limits : options_.limits;
  spec.limits.wall_timeout = std::chrono::milliseconds(
      pool.timeout_ms > 0 ? std::min(job.timeout_ms, pool.timeout_ms) : job.timeout_ms);
  json inputs = json::parse(job.inputs, nullptr, false);
  // The sandbox is given files: each input blob as a local file, held until the run is over.
  std::vector<blob::LocalFile> input_files;
  // Endpoints the code took as inputs: its calls are answered by the endpoint service, for the
  // job's user, on the private function only in a run on private data.
  JobCallContext calls;
  bool endpoint_checked = false;
  for (const auto& [arg, b] : inputs.items()) {
    if (b.contains("value")) {
      spec.constants[arg] = b["value"];
      continue;
    }
    if (b.contains("endpoint")) {
      const std::string path = b["endpoint"];
      if (endpoints_ == nullptr) {
        out.error = "input '" + arg + "': this server calls no API endpoints";
        return out;
      }
      spec.endpoints.push_back({arg, path, endpoints_->ParamsOf(path)});
      calls.bound_paths.push_back(path);
      continue;
    }
    auto file = blobs_.Materialize(b.value("blob_id", std::string()));
    if (!file.ok()) {
      out.error = file.status().code() == StatusCode::kNotFound
                      ? "input '" + arg + "': its data is gone (the dataset was deleted)"
                      : "input '" + arg + "': its data could not be read";
      if (file.status().code() != StatusCode::kNotFound) {
        spdlog::error("job {}: input {}: {}", job.id, arg, file.status().ToString());
      }
      return out;
    }
    std::string format = b.value("format", std::string("raw"));
    std::string meta;
    if (format == "csv") {
      auto blob = store_.GetBlob(b.value("blob_id", std::string()));
      if (!blob.ok()) {
        out.error = "input '" + arg + "': its data is gone (the dataset was deleted)";
        return out;
      }
      meta = std::move(blob->meta);
    }
    spec.inputs.push_back({arg, file->path(), std::move(format), std::move(meta)});
    input_files.push_back(std::move(*file));
  }
  if (!spec.endpoints.empty()) {
    auto user = store_.GetUserById(job.user_id);
    if (!user.ok()) {
      out.error = "the job's user is gone";
      return out;
    }
    calls.user.role = auth::RoleFromInt(user->role);
    calls.user.user_id = user->id;
    calls.user.email = user->email;
    calls.private_run = job.kind != "mock";
    calls.job_id = job.id;
    // A data scientist's run on private data whose endpoints check their private results is
    // checked by rule: held while it prints, as a grant's run is.
    endpoint_checked =
        job.kind == "private" && !calls.user.IsDataOwner() &&
        std::any_of(calls.bound_paths.begin(), calls.bound_paths.end(),
                    [this](const std::string& p) { return endpoints_->HasOutputChecks(p); });
    spec.on_call = [this, &calls](const sandbox::EndpointCall& call) {
      return endpoints_->CallFromJob(calls, call);
    };
  }
  // A run nobody reviews (admitted under a grant) passes its datasets' output checks before its
  // requester reads anything of it; unreadable rules fail it closed.
  std::optional<OutputRules> checks;
  if (job.kind == "private" && job.grant_id) {
    auto rules = OutputRulesOf(*code);
    if (!rules.ok()) {
      spdlog::error("job {}: its output checks: {}", job.id, rules.status().ToString());
      out.error = "the output checks of its datasets could not be read";
      return out;
    }
    if (rules->any()) checks = *rules;
  }
  // Custom policies run in the job's process around the function: on a private run they may
  // refuse it and keep state; a data owner's review applies them without counting; a mock run
  // (the scientist's own check on the mocks) runs the function alone.
  std::optional<store::CodePolicy> policy;
  if (!code->policy_spec.empty() && job.kind != "mock") {
    auto p = store_.GetCodePolicy(code->id);
    if (!p.ok() || !p->has_value()) {
      out.error = "the code's policies could not be read";
      return out;
    }
    policy = std::move(**p);
    json pspec = json::parse(policy->spec, nullptr, false);
    json state = policy->state.empty() ? json(nullptr) : json::parse(policy->state, nullptr, false);
    if (!pspec.is_object() || state.is_discarded()) {
      out.error = "the code's policies could not be read";
      return out;
    }
    if (pspec["input"].is_object()) {
      // An input policy is made with the code's bindings: constants as their values, assets as
      // their ids.
      json kwargs = json::object();
      json bound = json::parse(code->inputs, nullptr, false);
      if (bound.is_object()) {
        for (const auto& [arg, b] : bound.items()) {
          kwargs[arg] = b.contains("value") ? b["value"] : b.value("asset_id", json(nullptr));
        }
      }
      pspec["input"]["init_kwargs"] = std::move(kwargs);
    }
    const bool counts = job.kind == "private";
    spec.policy = {{"source", pspec["source"]}, {"input", pspec["input"]},
                   {"output", pspec["output"]}, {"state", std::move(state)},
                   {"kind", job.kind},          {"check", counts},
                   {"update", counts}};
  }
  // The sandbox writes a local file: kept in the database when small, else made the run's blob.
  // Named by run, so that a process starting meanwhile knows it for a live run's (see
  // RemoveStrayResults); removed at the end (gone already once adopted).
  const blob::LocalFile scratch(RunningResultPath(job.id, job.attempts), /*remove=*/true);
  const std::string& result_path = scratch.path();
  // With output review on, everything a private run produces — result, stdout, and the error of a
  // failed run, which may quote private values — waits for a data owner. Decided from the settings
  // at each write, not at the start: review turned on while the job runs holds it (the store
  // decides again in the same update, see Store::FinishJob).
  // A run checked by rule is held while it prints: printed output is free text no rule reads.
  auto review_now = [this, &job, &checks, endpoint_checked] {
    return job.kind == "private" &&
           (checks.has_value() || endpoint_checked || settings_.Get().output_review);
  };
  // The job's stdout goes to the store while it runs (live logs), marked held with it, so that
  // whoever may see its result can read it before the job ends (see Logs).
  bool streaming = true;
  spec.on_stdout = [this, &job, &review_now, &streaming](std::string_view chunk) {
    if (!streaming) return;
    Status st = store_.AppendJobStdout(job, chunk, review_now());
    if (st.ok()) return;
    streaming = false;  // the rest shows when the job ends
    spdlog::warn("job {}: its live stdout is not stored: {}", job.id, st.ToString());
  };
  // Its stderr too, for data owners only while it runs (see Logs).
  bool streaming_stderr = true;
  spec.on_stderr = [this, &job, &streaming_stderr](std::string_view chunk) {
    if (!streaming_stderr) return;
    Status st = store_.AppendJobStderr(job, chunk);
    if (st.ok()) return;
    streaming_stderr = false;
    spdlog::warn("job {}: its live stderr is not stored: {}", job.id, st.ToString());
  };
  auto r = (*sandbox)->Run(spec, result_path, &cancel);
  // Held by output review; a run checked by rule is held below only if a rule holds it (or it
  // printed, which held its row already).
  out.held = job.kind == "private" && settings_.Get().output_review;
  if (r.ok() && r->outcome == sandbox::Outcome::kOk && !r->result_meta.empty()) {
    // Written by the job: checked like an owner's upload, kept as the JSON text it is.
    auto meta = data::ParseSidecar(r->result_meta, std::nullopt);
    if (!meta.ok()) {
      r->outcome = sandbox::Outcome::kError;
      r->error = "the result's sidecar was refused: " + meta.status().message();
    }
  }
  if (!r.ok()) {
    spdlog::error("job {}: the sandbox could not run it: {}", job.id, r.status().ToString());
    out.error = "the sandbox could not run the job (details in the server log)";
    return out;
  }
  if (r->outcome == sandbox::Outcome::kEnvironment) {
    // Found before any of the code ran, from its source alone: its requester is told which
    // module, and where it is.
    std::vector<std::string> where =
        pools_ != nullptr ? pools_->PoolsWithModule(r->missing_module) : std::vector<std::string>{};
    std::string names;
    for (const std::string& n : where) names += (names.empty() ? "" : ", ") + n;
    out.error = r->error + " in worker pool '" +
                (run_pool_.empty() ? code->worker_pool_name : run_pool_) +
                "' (nothing of the code ran; the run was not counted). " +
                (pools_ == nullptr ? "Pools are listed in client.worker_pools."
                 : names.empty()   ? "No pool has it."
                                   : "Pools that have it: " + names);
    return out;
  }
  if (r->outcome == sandbox::Outcome::kSandboxFailure && !r->started) {
    spdlog::error("job {}: the sandbox could not start it: {}", job.id, r->error);
    out.error =
        "the sandbox could not start the job (nothing of the code ran; the run was not "
        "counted; details in the server log)";
    return out;
  }
  // The code ran: whatever fails from here on counts.
  out.failure = FailureName(FailureKind::kSandbox);
  if (policy && job.kind == "private") KeepPolicyState(*policy, *r);
  out.stdout_text = std::move(r->stdout_text);
  out.stderr_text = std::move(r->stderr_text);
  out.error = r->error;
  if (!calls.held_reason.empty() && job.kind == "private") {
    // An endpoint's output checks held a private result the code was given.
    out.held = true;
    out.held_reason = calls.held_reason;
  }
  if ((checks || endpoint_checked) && !out.stdout_text.empty()) {
    // Whatever the run's end: a failed run's stdout is its requester's too, and the sandbox
    // streams only what a run printed before its last quarter second.
    out.held = true;
    if (out.held_reason.empty())  // an endpoint's rule that held it is the reason told
      out.held_reason =
          "printed_output: a run checked by rule may not print (no rule reads free text)";
  }
  switch (r->outcome) {
    case sandbox::Outcome::kOk: {
      if (r->result_bytes <= kMaxResultInDatabase) {
        // Small results go into the job's row: the one sync of FinishJob makes them durable.
        std::ifstream in(result_path, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        if (!in || ss.str().size() != r->result_bytes) {
          spdlog::error("job {}: its result file could not be read back", job.id);
          out.error = "the job's result could not be read back";
          return out;
        }
        out.result_data = ss.str();
        if (checks) {
          ApplyOutputChecks(*checks, *code, spec, *r, out);
          if (!out.held_reason.empty()) spdlog::info("job {}: held: {}", job.id, out.held_reason);
        }
      } else {
        if (checks) {
          out.held = true;
          out.held_reason = "max_result_bytes: results over 1 MiB are not checked by rule";
        }
        Status kept = KeepResult(job, result_path, static_cast<int64_t>(r->result_bytes));
        if (!kept.ok()) {
          spdlog::error("job {}: {}", job.id, kept.ToString());
          out.error = "the job's result could not be stored";
          return out;
        }
      }
      out.status = "completed";
      out.failure.clear();
      out.result_format = r->result_format;
      out.result_size = out.result_data ? static_cast<int64_t>(out.result_data->size())
                                        : static_cast<int64_t>(r->result_bytes);
      out.result_meta = std::move(r->result_meta);
      return out;
    }
    case sandbox::Outcome::kTimeout:
      out.status = "timed_out";
      break;
    case sandbox::Outcome::kKilled:
      out.status = "killed";
      if (out.error.empty()) out.error = "killed";
      break;
    case sandbox::Outcome::kError:
    case sandbox::Outcome::kResourceLimit:
    case sandbox::Outcome::kPolicy:
    case sandbox::Outcome::kEnvironment:  // answered above
      break;
    case sandbox::Outcome::kSandboxFailure:
      // Its detail may name host paths: for the log only.
      spdlog::error("job {}: sandbox failure: {}", job.id, out.error);
      out.error = "the sandbox failed while running the job (details in the server log)";
      break;
  }
  const FailureKind failure = ClassifyFailure(r->outcome, r->error, r->policy_refusal);
  out.failure = FailureName(failure);
  if (job.kind != "mock") {
    // What a run on private data failed with may be of its code's choosing (an exception's text
    // and type name, an exit code, a signal) and quote private values: its requester sees the
    // kind of failure, data owners what was said.
    out.error_detail = std::move(out.error);
    out.error = PrivateFailureText(failure);
  }
  return out;
}

void CodeService::KeepPolicyState(const store::CodePolicy& policy, sandbox::JobResult& r) {
  auto fail_closed = [&r](const std::string& why) {
    r.outcome = sandbox::Outcome::kPolicy;
    r.policy_refusal = "error";
    r.error = why;
  };
  const bool refused = r.outcome == sandbox::Outcome::kPolicy && r.policy_refusal != "error";
  if (r.outcome != sandbox::Outcome::kOk && !refused) return;  // failed: the state stays
  if (r.policy_state.empty()) {
    // Every counted run reports its policies' state; without it nothing is released.
    if (r.outcome == sandbox::Outcome::kOk) fail_closed("the run reported no policy state");
    return;
  }
  auto written = store_.UpdateCodePolicyState(policy.code_id, policy.version, r.policy_state);
  if (!written.ok()) {
    spdlog::error("code {}: its policies' state was not stored: {}", policy.code_id,
                  written.status().ToString());
    if (r.outcome == sandbox::Outcome::kOk) fail_closed("the policies' state could not be stored");
    return;
  }
  if (!*written && r.outcome == sandbox::Outcome::kOk) {
    // Another run of this code ended first and kept its state: this run counted against the one
    // it read, so its result is not released.
    fail_closed("another run of this code changed its policies' state meanwhile; run it again");
  }
}

}  // namespace datasite::services
