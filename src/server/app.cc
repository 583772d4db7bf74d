#include "server/app.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/api.h"
#include "api/operations.h"
#include "auth/password.h"
#include "blob/s3_blob_store.h"
#include "core/random.h"
#include "http/client_address.h"
#include "http/request_policy.h"
#include "http/router.h"
#include "http/server.h"
#include "jobs/job_queue.h"
#include "sandbox/sandbox.h"
#include "server/metrics.h"
#include "store/store.h"

namespace datasite::server {

struct App::Parts {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<blob::BlobStore> blobs;
  std::unique_ptr<blob::BlobStore> results;  // job results (CodeOptions::results)
  std::unique_ptr<services::Datasets> datasets;
  std::unique_ptr<services::StoreEventLog> shared_events;  // with --database: the login limits'
  std::unique_ptr<services::Accounts> accounts;
  std::unique_ptr<services::SettingsService> settings;
  std::unique_ptr<jobs::JobQueue> queue;
  std::unique_ptr<services::CodeService> code;
  std::unique_ptr<services::ProjectService> projects;
  std::unique_ptr<net::MailTransport> mail;
  std::unique_ptr<services::Notifications> notifications;  // before the store goes
  std::unique_ptr<services::PasswordResets> resets;
  std::unique_ptr<services::AuditService> audit;
  std::unique_ptr<services::SyncService> sync;
  std::unique_ptr<services::EndpointService> endpoints;
  std::unique_ptr<services::DpService> dp;
  std::unique_ptr<services::PoolService> pools;  // before code: it borrows code's sandbox
  std::thread sandbox_starter;

  ~Parts() {
    if (queue) queue->Stop();
    if (sandbox_starter.joinable()) sandbox_starter.join();
  }
  std::atomic<bool> ready{false};
  std::unique_ptr<api::ApiContext> api;
  http::Router router;
  std::unique_ptr<ServerMetrics> metrics;  // with --metrics-address
  std::unique_ptr<http::HttpServer> http;
};

bool OnlyThisMachine(const AppConfig& config) {
  return http::IsLoopbackAddress(config.host) && config.allowed_hosts.empty() &&
         config.trusted_proxies.empty();
}

std::string DatabasePath(const std::string& data_dir) { return data_dir + "/datasite.db"; }
std::string BlobPath(const std::string& data_dir) { return data_dir + "/blobs"; }

namespace {

// The bucket of an s3:// --blob URL with its credentials, `subfolder` (if any) under its prefix,
// and local scratch files under `scratch_dir`.
Result<std::unique_ptr<blob::BlobStore>> OpenBucket(const std::string& blob,
                                                    const std::string& subfolder,
                                                    const std::string& scratch_dir) {
  ASSIGN_OR_RETURN(blob::S3BlobStoreOptions options,
                   blob::ParseS3BlobUrl(blob, [](const char* name) -> std::optional<std::string> {
                     const char* value = std::getenv(name);
                     if (value == nullptr) return std::nullopt;
                     return std::string(value);
                   }));
  if (!subfolder.empty()) {
    while (!options.prefix.empty() && options.prefix.back() == '/') options.prefix.pop_back();
    options.prefix = options.prefix.empty() ? subfolder : options.prefix + "/" + subfolder;
  }
  options.scratch_dir = scratch_dir;
  return blob::NewS3BlobStore(std::move(options));
}

}  // namespace

Result<std::unique_ptr<blob::BlobStore>> OpenBlobStore(const std::string& blob,
                                                       const std::string& storage) {
  if (blob.empty()) return blob::NewFileBlobStore(BlobPath(storage));
  return OpenBucket(blob, "", BlobPath(storage) + "/s3-scratch");
}

Result<std::unique_ptr<blob::BlobStore>> OpenResultStore(const std::string& blob,
                                                         const std::string& storage) {
  if (blob.empty()) return blob::NewFileBlobStore(ResultsPath(storage));
  return OpenBucket(blob, "results", ResultsPath(storage) + "/s3-scratch");
}

std::string HostAndPid(const char* unknown_host) {
  char host[256] = {0};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host[0] ? host : unknown_host) + "-" + std::to_string(::getpid());
}

Result<std::unique_ptr<store::Store>> OpenDatabase(const std::string& database,
                                                   const std::string& data_dir) {
  if (database.empty()) return store::OpenSqliteStore(DatabasePath(data_dir));
  if (store::IsPostgresUrl(database)) return store::OpenPostgresStore(database);
  return InvalidArgumentError(
      "--database must be a postgresql://USER@HOST:PORT/DB URL (leave it out for SQLite in the "
      "data directory)");
}
std::string ResultsPath(const std::string& data_dir) { return data_dir + "/results"; }

services::EndpointOptions EndpointOptionsFor(const std::string& python, const std::string& storage,
                                             const std::vector<net::EgressTarget>& egress,
                                             const services::CodeOptions& code) {
  services::EndpointOptions o;
  o.egress = egress;
  o.max_timeout_ms = code.max_timeout_ms;
  o.default_timeout_ms = std::min<int64_t>(60'000, code.max_timeout_ms);
  o.limits = code.limits;
  o.scratch_dir = storage + "/endpoint-calls";
  sandbox::Options sandbox;
  sandbox.python = python;
  sandbox.slots = 2;  // one user runs one call at a time, so one slot is always another's
  o.sandbox = sandbox;
  o.check_path = [](std::string_view path) { return api::CheckCustomEndpointPath(path); };
  return o;
}

Status ValidateStorageDir(const std::string& storage_dir, const std::string& database) {
  if (storage_dir.empty()) return Status::Ok();
  if (database.empty()) {
    return InvalidArgumentError(
        "--storage-dir needs --database (PostgreSQL): it is the directory the replicas and workers "
        "of one database share, and with SQLite the data directory already holds the blobs and "
        "results; leave --storage-dir out");
  }
  if (storage_dir.front() != '/') {
    return InvalidArgumentError("--storage-dir must be an absolute path, not '" + storage_dir +
                                "'");
  }
  struct stat st;
  if (::stat(storage_dir.c_str(), &st) != 0) {
    const int err = errno;
    return InvalidArgumentError("--storage-dir " + storage_dir + " can't be used (" +
                                std::strerror(err) +
                                "): create it first, the same directory for every replica and "
                                "worker of this datasite");
  }
  if (!S_ISDIR(st.st_mode)) {
    return InvalidArgumentError("--storage-dir " + storage_dir + " is not a directory");
  }
  return Status::Ok();
}

namespace {

// The datasite id in a DATASITE_ID file; "" when there is none.
Result<std::string> ReadDatasiteId(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return std::string();
    return UnavailableError("cannot read " + path + ": " + std::strerror(err));
  }
  char buf[128];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  const int err = errno;
  ::close(fd);
  if (n < 0) return UnavailableError("cannot read " + path + ": " + std::strerror(err));
  std::string id(buf, static_cast<size_t>(n));
  return id.substr(0, id.find('\n'));
}

// Writes `id` to a new file at `path`, durable before it appears there; OK when another process
// made the file first (the caller reads which id it holds).
Status WriteDatasiteId(const std::string& path, const std::string& id) {
  const std::string temp = path + "." + NewUuid() + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    return UnavailableError("cannot write " + temp + ": " + std::strerror(err));
  }
  const std::string line = id + "\n";
  bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                 ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  // Linked, not renamed: of two processes claiming a new directory at once, one wins.
  int rc = -1;
  if (written) {
    rc = ::link(temp.c_str(), path.c_str());
    err = errno;
  }
  ::unlink(temp.c_str());
  if (!written || (rc != 0 && err != EEXIST)) {
    return UnavailableError("cannot write " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

}  // namespace

Status ClaimStorageDir(const std::string& dir, const std::string& server_id) {
  const std::string path = dir + "/DATASITE_ID";
  ASSIGN_OR_RETURN(std::string owner, ReadDatasiteId(path));
  if (owner.empty()) {
    RETURN_IF_ERROR(WriteDatasiteId(path, server_id));
    ASSIGN_OR_RETURN(owner, ReadDatasiteId(path));
  }
  if (owner != server_id) {
    return FailedPreconditionError(
        "the storage directory " + dir + " holds the files of datasite " + owner +
        " (its DATASITE_ID file), not of this datasite, " + server_id +
        " (the database's): give each datasite a storage directory of its own");
  }
  // Private data: readable by the datasite's own user only, as inside a data directory.
  for (const std::string& sub : {BlobPath(dir), ResultsPath(dir)}) {
    if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST) {
      const int err = errno;
      return UnavailableError("cannot create " + sub + ": " + std::strerror(err));
    }
  }
  return Status::Ok();
}

namespace {

// A server reachable from other machines must not let anyone in with the published root password.
Status RefuseOpenDefaultPassword(const AppConfig& config, bool needs_root,
                                 services::Accounts& accounts) {
  if (http::IsLoopbackAddress(config.host)) return Status::Ok();
  bool is_default = false;
  if (needs_root) {
    is_default = config.root_password == services::kDefaultRootPassword;
  } else {
    ASSIGN_OR_RETURN(is_default, accounts.RootHasDefaultPassword());
  }
  if (!is_default) return Status::Ok();
  return FailedPreconditionError(
      "refusing to listen on " + config.host +
      ", where other machines can reach it, while the root admin's password is the published "
      "default '" +
      services::kDefaultRootPassword + "'. " +
      (needs_root
           ? "Set another one for this new server with DATASITE_ROOT_PASSWORD or --root-password, "
             "or launch on loopback (--host 127.0.0.1, the default)."
           : "Launch on loopback (--host 127.0.0.1, the default), log in as the root admin and "
             "change the password (client.account.set_password), then launch on " +
                 config.host + " again."));
}

// Nor with accounts whose passwords a development server accepted although they are short or
// common.
Status RefuseOpenDevelopmentPasswords(const AppConfig& config, bool needs_root,
                                      services::Accounts& accounts) {
  if (OnlyThisMachine(config) || needs_root) return Status::Ok();
  ASSIGN_OR_RETURN(auto emails, accounts.UsersWithDevelopmentPasswords(5));
  if (emails.empty()) return Status::Ok();
  std::string list;
  for (const auto& e : emails) list += (list.empty() ? "" : ", ") + e;
  return FailedPreconditionError(
      "refusing to listen on " + config.host +
      " or behind --allowed-host/--trusted-proxy, where other machines can reach it, while "
      "accounts have passwords that only a development server accepts (short or common): " +
      list + (emails.size() == 5 ? " and maybe more" : "") +
      ". Launch on loopback (--host 127.0.0.1, the default) with no --allowed-host or "
      "--trusted-proxy and without --dev-mode, set each a password of at least 8 characters "
      "that is not a common one, then launch as before again.");
}

}  // namespace

App::App(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

App::~App() { Stop(std::chrono::milliseconds(0)); }

Result<std::unique_ptr<App>> App::Start(const AppConfig& config) {
  std::string metrics_host;
  uint16_t metrics_port = 0;
  if (!config.metrics_address.empty()) {
    RETURN_IF_ERROR(ParseListenAddress(config.metrics_address, &metrics_host, &metrics_port));
  }
  auto p = std::make_unique<Parts>();
  ASSIGN_OR_RETURN(p->store, OpenDatabase(config.database, config.data_dir));
  const Clock& clock = SystemClock();
  p->settings = std::make_unique<services::SettingsService>(*p->store, clock);
  services::LaunchSettings launch = config.launch;
  auto root_email = services::NormalizeEmail(config.root_email);
  if (!root_email.ok()) return InvalidArgumentError("root email: " + root_email.status().message());
  launch.admin_email = *root_email;
  services::AccountsOptions accounts = config.accounts;
  // Password changes, sign-ups and user creations hash on at most half the heavy threads, so
  // logins always have the rest.
  accounts.hashing_slots = std::max(1, config.heavy_threads / 2);
  // The development rules for passwords never apply where other machines can reach the server.
  if (!OnlyThisMachine(config)) {
    accounts.password_rules = auth::PasswordRules::kStandard;
  }
  if (!config.database.empty()) {
    // Replicas share the database: so do the login limits, or each replica would give its own.
    p->shared_events = std::make_unique<services::StoreEventLog>(*p->store);
    accounts.shared_events = p->shared_events.get();
  }
  p->accounts = std::make_unique<services::Accounts>(*p->store, clock, accounts);
  // At first start the root password is hashed (~100 ms) while the rest of start-up goes on.
  ASSIGN_OR_RETURN(bool needs_root, p->accounts->NeedsRootAdmin());
  std::future<Result<std::string>> root_hash;
  if (needs_root) {
    if (config.root_password.empty())
      return InvalidArgumentError("the root admin password must not be empty");
    root_hash = std::async(std::launch::async, [password = config.root_password] {
      return auth::HashPassword(password);
    });
  }
  RETURN_IF_ERROR(RefuseOpenDefaultPassword(config, needs_root, *p->accounts));
  RETURN_IF_ERROR(RefuseOpenDevelopmentPasswords(config, needs_root, *p->accounts));
  RETURN_IF_ERROR(p->settings->Bootstrap(launch));
  RETURN_IF_ERROR(p->store->DeleteExpiredSessions(clock.NowSeconds()));
  // Blobs and results: in the data directory, or in the storage directory every replica and
  // worker shares, where what others are writing must outlive this one's start-up clean-up.
  const bool shared_storage = !config.storage_dir.empty();
  const std::string& storage = shared_storage ? config.storage_dir : config.data_dir;
  services::DatasetsOptions datasets_options = config.datasets;
  if (shared_storage) {
    RETURN_IF_ERROR(ClaimStorageDir(storage, p->settings->identity().server_id));
  }
  // Other processes may be writing into a shared directory or a bucket as this one starts.
  const bool shared_blobs = shared_storage || !config.blob.empty();
  if (shared_blobs) datasets_options.keep_recent_files_seconds = kSharedStorageGraceSeconds;
  ASSIGN_OR_RETURN(p->blobs, OpenBlobStore(config.blob, storage));
  ASSIGN_OR_RETURN(p->results, OpenResultStore(config.blob, storage));
  p->datasets = std::make_unique<services::Datasets>(*p->store, *p->blobs, *p->settings, clock,
                                                     datasets_options);
  RETURN_IF_ERROR(p->datasets->Recover());

  p->mail = net::NewCurlMailTransport();
  p->notifications = std::make_unique<services::Notifications>(*p->store, clock, *p->settings,
                                                               *p->mail, config.notifications);
  p->accounts->SetNotifications(p->notifications.get());
  p->resets = std::make_unique<services::PasswordResets>(*p->store, clock, *p->accounts,
                                                         *p->notifications, config.password_reset);
  jobs::QueueOptions queue_options{.workers = config.workers};
  if (!config.database.empty()) {
    // Replicas share the database: each one's leases carry a name of its own, so that one
    // starting never takes over (and runs again) the jobs another one runs.
    queue_options.owner = "server-" + HostAndPid("host");
  }
  queue_options.on_finished = [notifications = p->notifications.get()](store::Store& tx,
                                                                       const store::Job& job) {
    return notifications->OnJobEnded(tx, job);
  };
  p->queue = std::make_unique<jobs::JobQueue>(*p->store, clock, queue_options);
  services::CodeOptions code_options;
  code_options.results = p->results.get();
  code_options.results_dir = ResultsPath(storage);
  if (shared_blobs) code_options.keep_recent_files_seconds = kSharedStorageGraceSeconds;
  code_options.max_timeout_ms = config.job_timeout_seconds * 1000;
  code_options.limits = config.job_limits;
  code_options.quotas = config.job_quotas;
  // Four of the wait lane's threads stay free of waits: they answer the waits refused over the
  // cap, and blocking runs before they take their place (see CodeOptions::max_waits).
  code_options.max_waits = http::ServerOptions().wait_threads - 4;
  p->code = std::make_unique<services::CodeService>(*p->store, *p->blobs, *p->settings, *p->queue,
                                                    p->datasets->storage(), clock, code_options);
  p->code->SetNotifications(p->notifications.get());
  {
    services::PoolOptions pool_options;
    pool_options.python = config.python;
    pool_options.envs_dir = config.envs_dir;
    if (pool_options.envs_dir.empty()) {
      // The sandbox's uid reaches neither a root server's data directory nor what is under it.
      pool_options.envs_dir = geteuid() == 0
                                  ? "/var/lib/datasite/envs/" +
                                        std::filesystem::path(config.data_dir).filename().string()
                                  : (std::filesystem::path(config.data_dir) / "envs").string();
    }
    pool_options.limits = code_options.limits;
    pool_options.max_timeout_ms = code_options.max_timeout_ms;
    pool_options.local = config.workers > 0;
    p->pools = std::make_unique<services::PoolService>(*p->store, clock, pool_options);
    p->code->SetPools(p->pools.get());
  }

  p->pools->Load();  // started with the default pool's sandbox below; or run by workers
  if (config.workers == 0 && config.external_workers) {
    spdlog::info("jobs: run by datasite worker processes on {}", storage);
  } else if (config.workers == 0) {
    p->code->SetSandboxFailure(
        FailedPreconditionError("it was launched with --workers 0, so no job runs"));
  } else {
    // The warm Python processes take a few hundred milliseconds to import pandas; the server
    // serves meanwhile and jobs wait in the queue.
    p->sandbox_starter = std::thread([code = p->code.get(), pools = p->pools.get(),
                                      workers = config.workers, python = config.python] {
      sandbox::Options options;
      options.python = python;
      options.slots = workers;
      auto sandbox = sandbox::StartSandbox(options);
      if (sandbox.ok()) {
        spdlog::info("sandbox: {}", (*sandbox)->Describe());
        sandbox::Sandbox* default_pool = sandbox->get();
        code->SetSandbox(std::move(*sandbox));
        pools->SetDefaultSandbox(default_pool);
        pools->Restore();  // the other pools, each a sandbox of its own
      } else {
        spdlog::error("sandbox: {}; this server will refuse to run code",
                      sandbox.status().message());
        code->SetSandboxFailure(sandbox.status());
        pools->Restore();  // each tries its own, and is listed as failed with its reason
      }
    });
  }

  p->endpoints = std::make_unique<services::EndpointService>(
      *p->store, *p->blobs, clock,
      EndpointOptionsFor(config.python, storage, config.endpoint_egress, code_options));
  if (config.workers == 0 && !config.external_workers) {
    p->endpoints->SetSandboxFailure(
        FailedPreconditionError("it was launched with --workers 0, so no code runs"));
  }
  p->code->SetEndpoints(p->endpoints.get());

  p->projects = std::make_unique<services::ProjectService>(*p->store, *p->code, clock);
  p->projects->SetNotifications(p->notifications.get());
  p->audit = std::make_unique<services::AuditService>(*p->store);
  services::SyncOptions sync_options;
  sync_options.storage = &p->datasets->storage();
  p->sync = std::make_unique<services::SyncService>(*p->store, *p->blobs, *p->settings, *p->code,
                                                    clock, sync_options);
  p->api.reset(new api::ApiContext{*p->accounts, *p->settings, *p->datasets, *p->code, *p->projects,
                                   *p->audit, p->ready, p->notifications.get(), p->resets.get(),
                                   p->sync.get(), p->endpoints.get()});
  p->dp = std::make_unique<services::DpService>(*p->store, *p->blobs, clock);
  p->api->dp = p->dp.get();
  p->api->pools = p->pools.get();
  p->api->database_ready = [store = p->store.get()] { return store->Ping(); };
  p->api->idempotency_store = p->store.get();
  api::AddRoutes(p->router, *p->api);
  http::ServerOptions options;
  options.host = config.host;
  options.allowed_hosts = config.allowed_hosts;
  options.port = config.port;
  options.io_threads = config.io_threads;
  options.request_threads = config.request_threads;
  options.heavy_threads = config.heavy_threads;
  options.body_limit = config.body_limit;
  options.max_connections_per_address = config.max_connections_per_address;
  options.header_timeout = std::chrono::seconds(config.header_timeout_seconds);
  options.body_memory_budget = static_cast<uint64_t>(config.body_memory_bytes);
  for (const std::string& proxy : config.trusted_proxies) {
    auto network = http::CanonicalNetwork(proxy);
    if (!network.ok()) {
      return InvalidArgumentError(
          "--trusted-proxy takes an IP address or a network "
          "ADDRESS/PREFIX: " +
          network.status().message());
    }
    options.trusted_proxies.push_back(*network);
  }
  options.upload_limit = static_cast<uint64_t>(config.datasets.max_blob_bytes);
  options.tls_cert_file = config.tls_cert_file;
  options.tls_key_file = config.tls_key_file;
  if (!config.metrics_address.empty()) {
    p->metrics = std::make_unique<ServerMetrics>(*p->store, *p->queue);
    options.observer = p->metrics.get();
    RETURN_IF_ERROR(p->metrics->Listen(metrics_host, metrics_port, config.allowed_hosts));
    if (!http::IsLoopbackAddress(metrics_host)) {
      spdlog::warn(
          "metrics: served without authentication on {}, off loopback: anyone who "
          "reaches it sees this server's activity",
          config.metrics_address);
    }
    spdlog::info("metrics: http://{}/metrics", config.metrics_address);
  }
  ASSIGN_OR_RETURN(p->http, http::NewHttpServer(p->router, options));
  if (root_hash.valid()) {
    ASSIGN_OR_RETURN(std::string hash, root_hash.get());
    RETURN_IF_ERROR(p->accounts->CreateRootAdmin(*root_email, hash));
  }
  // Workers start (and recover jobs a crash left running) only once the port is bound, so a start
  // that fails spends none of a job's attempts. Before them, what interrupted runs wrote goes.
  p->code->RemoveStrayResults();
  RETURN_IF_ERROR(p->code->CountKeptBytes());
  RETURN_IF_ERROR(p->queue->Start(
      [code = p->code.get()](const store::Job& job, const std::atomic<bool>& cancel) {
        return code->RunJob(job, cancel);
      },
      [code = p->code.get()](store::Store& tx, const store::Job& job, jobs::Outcome& out,
                             bool keep) { return code->EndJob(tx, job, out, keep); }));
  p->notifications->Start();
  p->http->Start();
  p->ready = true;
  return std::unique_ptr<App>(new App(std::move(p)));
}

uint16_t App::port() const { return parts_->http->port(); }

Status App::ReloadTls() { return parts_->http->ReloadTls(); }

std::string App::name() const { return parts_->settings->Get().name; }

void App::Stop(std::chrono::milliseconds grace) {
  if (!parts_ || !parts_->http) return;
  parts_->ready = false;
  // Stopping the queue first ends blocking waits, so in-flight requests can finish.
  parts_->queue->Stop();
  parts_->http->Shutdown(grace);
  if (parts_->metrics) parts_->metrics->Stop();  // its gauges read the store
  if (parts_->sandbox_starter.joinable()) parts_->sandbox_starter.join();
  if (parts_->notifications) parts_->notifications->Stop();
  parts_->code.reset();
  parts_->queue.reset();
  parts_->http.reset();
  parts_->datasets.reset();
  parts_->blobs.reset();
  parts_->resets.reset();
  parts_->notifications.reset();
  parts_->mail.reset();
  parts_->accounts.reset();
  parts_->settings.reset();
  parts_->store.reset();  // closes the database cleanly
}

}  // namespace datasite::server
