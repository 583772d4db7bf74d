// Store: the server's metadata database. One repository method per object kind; no business rules.
//
// The embedded implementation is SQLite in WAL mode (NewSqliteStore); PostgreSQL will implement the
// same interface for clusters.
#ifndef DATASITE_STORE_STORE_H_
#define DATASITE_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace datasite::store {

struct User {
  std::string id;
  std::string email;  // lower-cased, unique
  std::string name;
  int role = 0;  // auth::Role value
  std::string institution;
  std::string website;
  std::string password_hash;  // argon2id encoded string
  bool is_root = false;
  int64_t created_at = 0;  // unix seconds
  int64_t updated_at = 0;
};

struct UserPage {
  std::vector<User> items;
  int64_t total = 0;
};

struct Session {
  std::string token_hash;              // SHA-256 of the bearer token, raw bytes
  std::optional<std::string> user_id;  // empty for guest sessions
  int role = 0;
  int64_t created_at = 0;
  int64_t expires_at = 0;
};

struct Settings {
  std::string id;
  std::string name;
  std::string organization;
  std::string description;
  std::string deployed_on;  // YYYY-MM-DD
  bool signup_enabled = false;
  bool notifications_enabled = false;
  std::string admin_email;
  std::string server_type;       // datasite | gateway | enclave
  std::string server_side_type;  // high | low
  bool association_request_auto_approval = false;
  bool allow_guest_sessions = true;
  std::string welcome_markdown;
  bool output_review = false;  // hold results of approved code until a data owner releases them
};

struct Identity {
  std::string server_id;    // UUID
  std::string verify_key;   // ed25519 public key, raw 32 bytes
  std::string signing_key;  // ed25519 secret key, raw 64 bytes
  int64_t created_at = 0;
};

struct AuditEvent {
  int64_t at = 0;
  std::string actor;   // user id, "guest", or "system"
  std::string action;  // e.g. "user.login"
  std::string target;
  std::string detail;
};

struct Blob {
  std::string id;
  std::string owner_id;
  int64_t size = 0;
  std::string sha256;  // lowercase hex
  std::string format;  // csv | json | npy | raw
  std::string schema;  // JSON text
  int64_t created_at = 0;
};

struct Contributor {
  std::string name;
  std::string email;
  std::string role;
};

struct Asset {
  std::string id;
  std::string dataset_id;
  std::string name;
  std::string description;
  std::string format;
  bool mock_is_real = false;
  std::optional<std::string> data_blob_id;  // empty on a low-side server
  std::optional<std::string> mock_blob_id;  // empty for an empty mock
  // Filled when read from the store: the blobs the ids name.
  std::optional<Blob> data_blob;
  std::optional<Blob> mock_blob;
};

struct Dataset {
  std::string id;
  std::string name;
  std::string summary;
  std::string description;
  std::string citation;
  std::string url;
  std::vector<Contributor> contributors;
  std::string uploader_id;
  std::string uploader_name;   // filled when read from the store
  std::string uploader_email;  // filled when read from the store
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::vector<Asset> assets;  // in upload order
};

struct DatasetPage {
  std::vector<Dataset> items;
  int64_t total = 0;
};

// A data scientist's function, as submitted. Immutable once stored.
struct UserCode {
  std::string id;
  std::string user_id;
  std::string name;     // the Python function's name
  int64_t version = 0;  // 1, 2, ... per (user, name); assigned by InsertCode
  std::string source;
  std::string code_hash;      // SHA-256 of source, lowercase hex; unique per user
  std::string inputs;         // JSON text: {arg: {"asset_id": id} | {"value": json}}
  std::string output_policy;  // "single_execution" | "execute_count"
  int64_t output_limit = 1;
  int64_t created_at = 0;
  // Filled when read from the store.
  std::string user_name;
  std::string user_email;
  int64_t used = 0;  // completed private runs
  std::optional<std::string> request_id;
  std::optional<std::string> request_status;
};

struct CodeRequest {
  std::string id;
  std::string code_id;
  std::string user_id;  // who asked (the code's author)
  std::string reason;
  std::string status;  // pending | approved | denied
  std::optional<std::string> deny_reason;
  std::optional<std::string> reviewer_id;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  // Filled when read from the store.
  std::string user_name;
  std::string user_email;
  std::string reviewer_name;
  std::string reviewer_email;
};

struct Job {
  std::string id;
  std::string code_id;
  std::string user_id;  // who started it
  std::string kind;     // private | mock | review
  std::string status;   // queued | running | completed | errored | timed_out | killed | interrupted
  std::string inputs;   // JSON text of the bindings it runs with
  int64_t timeout_ms = 0;
  int64_t attempts = 0;  // times it was leased
  std::string error;
  std::string result_format;  // set when completed
  int64_t result_size = 0;
  // A small result kept in the database itself (one sync makes job end and result durable);
  // written by FinishJob, read only by GetJobResult. Empty: the result is in a file.
  std::optional<std::string> result_data;
  bool held = false;  // result withheld from the requester until released
  // Written by FinishJob, read only by GetJobLogs (GetJob and ListJobs leave them empty, so that
  // polling a job never reads its logs).
  std::string stdout_text;
  std::string stderr_text;
  int64_t created_at = 0;   // unix milliseconds
  int64_t started_at = 0;   // 0 = not yet
  int64_t finished_at = 0;  // 0 = not yet
  // Filled when read from the store.
  std::string code_name;
  std::string user_name;
  std::string user_email;
};

struct JobFilter {
  std::optional<std::string> user_id;
  std::optional<std::string> code_id;
  std::optional<std::string> status;
  bool include_review = true;  // false: only private and mock jobs
  int64_t limit = 500;
};

// Safe for concurrent use.
class Store {
 public:
  virtual ~Store() = default;

  virtual Result<std::optional<Identity>> GetIdentity() = 0;
  virtual Status PutIdentity(const Identity& identity) = 0;

  virtual Result<std::optional<Settings>> GetSettings() = 0;
  virtual Status PutSettings(const Settings& settings) = 0;

  // kAlreadyExists when the email is taken.
  virtual Status InsertUser(const User& user) = 0;
  // kNotFound when absent.
  virtual Result<User> GetUserById(const std::string& id) = 0;
  virtual Result<User> GetUserByEmail(const std::string& email) = 0;
  // Users whose email or name contains `search` (all when empty), oldest first.
  virtual Result<UserPage> ListUsers(const std::string& search, int64_t offset, int64_t limit) = 0;
  // kAlreadyExists when the new email is taken; kNotFound when the user is gone.
  virtual Status UpdateUser(const User& user) = 0;
  // Also deletes the user's sessions. kNotFound when absent.
  virtual Status DeleteUser(const std::string& id) = 0;

  virtual Status InsertSession(const Session& session) = 0;
  // kNotFound when absent (expiry is the caller's business).
  virtual Result<Session> GetSession(const std::string& token_hash) = 0;
  virtual Status DeleteSession(const std::string& token_hash) = 0;
  // Deletes every session of the user except the one with `keep_token_hash`.
  virtual Status DeleteUserSessions(const std::string& user_id,
                                    const std::string& keep_token_hash) = 0;
  virtual Status DeleteExpiredSessions(int64_t now) = 0;
  // Guest sessions (those of no user) that have not expired at `now`.
  virtual Result<int64_t> CountGuestSessions(int64_t now) = 0;
  // Changes whenever a user or a session may have been updated or deleted (it moves before the
  // change, under the store's lock): what a cached session check must be redone after.
  virtual int64_t AuthVersion() = 0;

  virtual Status InsertBlob(const Blob& blob) = 0;
  // kNotFound when absent.
  virtual Result<Blob> GetBlob(const std::string& id) = 0;
  // kFailedPrecondition when an asset uses it; kNotFound when absent.
  virtual Status DeleteBlob(const std::string& id) = 0;
  // Ids of every recorded blob.
  virtual Result<std::vector<std::string>> AllBlobIds() = 0;
  // Blobs created before `before` that no asset uses.
  virtual Result<std::vector<std::string>> UnusedBlobIds(int64_t before) = 0;
  virtual Result<int64_t> TotalBlobBytes() = 0;

  // Inserts the dataset and its assets in one transaction. kAlreadyExists when a live dataset has
  // the name; kFailedPrecondition when a blob is already used by another asset.
  virtual Status InsertDataset(const Dataset& dataset) = 0;
  // A live (not deleted) dataset by id or by name; kNotFound otherwise.
  virtual Result<Dataset> GetDataset(const std::string& id_or_name) = 0;
  // The live dataset holding the asset with this id; kNotFound otherwise.
  virtual Result<Dataset> GetDatasetByAsset(const std::string& asset_id) = 0;
  // Changes whenever a dataset, or a user (an uploader's name or email), may have changed: what
  // a cached dataset listing must be rendered anew after.
  virtual int64_t CatalogVersion() = 0;
  // Live datasets whose name or description contains `search`, newest first. Their assets are
  // read, in the same snapshot, for every dataset when `needs_assets` is empty, else only for
  // those it returns true for; it is called once per dataset, in page order, under the store's
  // lock (so it must not call the store).
  virtual Result<DatasetPage> ListDatasets(
      const std::string& search, int64_t offset, int64_t limit,
      const std::function<bool(const Dataset&)>& needs_assets) = 0;
  // Metadata only (not assets). kAlreadyExists on a name clash; kNotFound when gone.
  virtual Status UpdateDataset(const Dataset& dataset) = 0;
  // Marks it deleted (frees its name) and releases its blobs for clean-up. kNotFound when absent.
  virtual Status SoftDeleteDataset(const std::string& id, int64_t now) = 0;

  // Assigns code.version (one more than the user's newest version of that name) and stores it.
  // kAlreadyExists when the user already submitted the same source.
  virtual Result<int64_t> InsertCode(const UserCode& code) = 0;
  virtual Result<UserCode> GetCode(const std::string& id) = 0;
  // The user's code with this hash; kNotFound when none.
  virtual Result<UserCode> FindCodeByHash(const std::string& user_id, const std::string& hash) = 0;
  // Newest first; empty filters match everything.
  virtual Result<std::vector<UserCode>> ListCode(const std::optional<std::string>& user_id,
                                                 const std::optional<std::string>& name) = 0;

  // kAlreadyExists when the code already has a request.
  virtual Status InsertRequest(const CodeRequest& request) = 0;
  virtual Result<CodeRequest> GetRequest(const std::string& id) = 0;
  virtual Result<std::vector<CodeRequest>> ListRequests(
      const std::optional<std::string>& user_id, const std::optional<std::string>& status) = 0;
  // Moves a pending request to `status`; kFailedPrecondition when it was already decided.
  virtual Status DecideRequest(const std::string& id, const std::string& status,
                               const std::optional<std::string>& deny_reason,
                               const std::string& reviewer_id, int64_t now) = 0;

  // Inserts a queued job. With `max_private_runs`, refuses (returns false) when the code already
  // has that many private jobs queued, running or completed — checked and inserted atomically.
  virtual Result<bool> InsertJob(const Job& job, std::optional<int64_t> max_private_runs) = 0;
  // Without its logs (see GetJobLogs).
  virtual Result<Job> GetJob(const std::string& id) = 0;
  // The job's stdout and stderr, as (stdout, stderr). kNotFound when absent.
  virtual Result<std::pair<std::string, std::string>> GetJobLogs(const std::string& id) = 0;
  virtual Result<std::vector<Job>> ListJobs(const JobFilter& filter) = 0;
  // The newest completed private job of a code; kNotFound when none.
  virtual Result<Job> LastCompletedPrivateJob(const std::string& code_id) = 0;
  // Marks the oldest queued job running (attempts + 1) and returns it; nullopt when none is queued.
  virtual Result<std::optional<Job>> LeaseNextJob(int64_t now) = 0;
  // Records the end of a running job: status, error, result and logs. kFailedPrecondition when the
  // job is not running (it was killed while queued, say).
  virtual Status FinishJob(const Job& job) = 0;
  // The result bytes FinishJob kept in the database; nullopt when it kept none.
  virtual Result<std::optional<std::string>> GetJobResult(const std::string& id) = 0;
  // queued → killed. kFailedPrecondition when it is not queued.
  virtual Status KillQueuedJob(const std::string& id, int64_t now) = 0;
  virtual Status ReleaseJob(const std::string& id) = 0;
  // After a crash: running jobs leased fewer than `max_attempts` times go back to the queue, the
  // others end `interrupted`. Returns how many were requeued and interrupted.
  virtual Result<std::pair<int64_t, int64_t>> RecoverJobs(int64_t max_attempts, int64_t now) = 0;

  virtual Status AppendAudit(const AuditEvent& event) = 0;
  virtual Result<std::vector<AuditEvent>> RecentAudit(int64_t limit) = 0;

  // Runs the database's own integrity check; kInternal with its report when it fails.
  virtual Status CheckIntegrity() = 0;
};

// Opens (creating if needed) the SQLite database at `path` and brings its schema up to date.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

}  // namespace datasite::store

#endif  // DATASITE_STORE_STORE_H_
