// App: the composition root. Opens the store, bootstraps identity, settings and the root admin,
// wires the services into the HTTP API and serves it.
#ifndef DATASITE_SERVER_APP_H_
#define DATASITE_SERVER_APP_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blob/blob_store.h"
#include "core/status.h"
#include "net/egress.h"
#include "sandbox/sandbox.h"
#include "services/accounts.h"
#include "services/code.h"
#include "services/datasets.h"
#include "services/endpoints.h"
#include "services/notifications.h"
#include "services/password_reset.h"
#include "services/settings.h"

namespace datasite::server {

struct AppConfig {
  std::string data_dir;  // must exist
  // The database: empty for SQLite in the data directory, or a postgresql:// URL
  // (--database, DATASITE_DATABASE_URL).
  std::string database;
  // Where blobs and job results are kept (--storage-dir): one directory shared by every replica
  // and worker of a datasite, which ValidateStorageDir has checked. Empty: the data directory.
  std::string storage_dir;
  // Where blobs are kept instead of the storage directory (--blob): empty, or
  // s3://BUCKET/PREFIX?endpoint=URL&region=R (see blob::ParseS3BlobUrl); job results stay in the
  // storage directory.
  std::string blob;
  // The address to bind. Any other than a loopback address is refused while the root admin's
  // password is the published default (kDefaultRootPassword).
  std::string host = "127.0.0.1";
  // Host names answered besides localhost and IP addresses (http::AllowedHosts); each already
  // checked by http::ValidateAllowedHost.
  std::vector<std::string> allowed_hosts;
  uint16_t port = 0;
  services::LaunchSettings launch;
  std::string root_email = services::kDefaultRootEmail;
  std::string root_password = services::kDefaultRootPassword;
  services::AccountsOptions accounts;
  services::DatasetsOptions datasets;
  int workers = 0;  // job worker slots: warm sandboxed Python processes; 0 runs no code here
  // Jobs are run (also) by `datasite worker` processes sharing the data directory: with no slots
  // here, runs are queued for them rather than refused.
  bool external_workers = false;
  int64_t job_timeout_seconds = 60;  // the longest (and default) wall-clock time of a job
  std::string python = "/usr/bin/python3";
  // The hosts API endpoints' private functions may connect to (--endpoint-egress); none by default.
  std::vector<net::EgressTarget> endpoint_egress;
  // Where built worker environments go (services/pools.h); '' for the default (EnvsDir).
  std::string envs_dir;
  sandbox::Limits job_limits;  // per job (the wall-clock limit is job_timeout_seconds)
  services::JobQuotas job_quotas;
  services::NotificationsOptions notifications;
  services::PasswordResetOptions password_reset;
  int io_threads = 2;
  int request_threads = 4;
  int heavy_threads = 2;
  size_t body_limit = 1 << 20;
  // See http::ServerOptions: open connections per client address (--max-connections-per-address),
  // the deadline of a new connection's first request headers (--header-timeout-seconds), and the
  // bytes of request bodies held in memory at once (--body-memory-bytes).
  int max_connections_per_address = 64;
  int64_t header_timeout_seconds = 10;
  int64_t body_memory_bytes = 256 << 20;
  // Proxies whose X-Forwarded-For names the client (--trusted-proxy); addresses.
  std::vector<std::string> trusted_proxies;
  // HTTPS with this PEM certificate chain and key (--tls-cert, --tls-key); both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
  // HOST:PORT where Prometheus metrics are served without authentication (--metrics-address);
  // empty: no metrics are kept or served.
  std::string metrics_address;
};

// Not thread-safe: start and stop it from one thread.
class App {
 public:
  ~App();
  // Opens everything and starts serving; readiness is on when it returns.
  static Result<std::unique_ptr<App>> Start(const AppConfig& config);
  uint16_t port() const;
  // The datasite's name as stored: --name, or the stored one when none was given.
  std::string name() const;
  // Reads the TLS certificate and key again (SIGHUP); on error the old ones stay. See
  // http::HttpServer::ReloadTls.
  Status ReloadTls();
  // Graceful: stops accepting, finishes in-flight requests (up to `grace`), closes the database.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

 private:
  struct Parts;
  explicit App(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

// Whether no other machine can reach the server: it listens on loopback, and names no host (an
// --allowed-host) or proxy (a --trusted-proxy) through which others would reach it.
bool OnlyThisMachine(const AppConfig& config);

// The database file inside a data directory.
std::string DatabasePath(const std::string& data_dir);
// "<host name>-<pid>" (`unknown_host` when the host has no name): a name of this process, for
// the leases it takes.
std::string HostAndPid(const char* unknown_host);
// The store a server or worker uses: SQLite in `data_dir` when `database` is empty, else the
// PostgreSQL database at that URL. kInvalidArgument for anything else.
Result<std::unique_ptr<store::Store>> OpenDatabase(const std::string& database,
                                                   const std::string& data_dir);
// The job results directory inside a data (or storage) directory.
std::string ResultsPath(const std::string& data_dir);
// How the API endpoints of a datasite whose storage is `storage` run (services/endpoints.h): like
// its jobs (`code`'s limits and longest timeout), in a sandbox of `python` started at the first
// call, writing calls' results under `storage`/endpoint-calls.
services::EndpointOptions EndpointOptionsFor(const std::string& python, const std::string& storage,
                                             const std::vector<net::EgressTarget>& egress,
                                             const services::CodeOptions& code);
// The blob directory inside a data (or storage) directory.
std::string BlobPath(const std::string& data_dir);
// The blob store: `blob` (--blob: empty for the directory BlobPath(storage), else an s3:// URL,
// its credentials from the AWS_* variables or the URL's credentials file) with local scratch
// files under BlobPath(storage). kInvalidArgument for a URL ParseS3BlobUrl refuses.
Result<std::unique_ptr<blob::BlobStore>> OpenBlobStore(const std::string& blob,
                                                       const std::string& storage);
// The store of job results too large for the database (services::CodeOptions::results): the
// directory ResultsPath(storage), or with an s3:// `blob` the same bucket under PREFIX/results/
// (which the blob store's listings skip: its names are no UUIDs), local scratch files under
// ResultsPath(storage).
Result<std::unique_ptr<blob::BlobStore>> OpenResultStore(const std::string& blob,
                                                         const std::string& storage);

// How long a process sharing a storage directory or a bucket leaves the blob files (and
// unfinished uploads) it finds there at start-up (Datasets::Recover,
// CodeService::RemoveStrayResults): a fresh one may be an upload in flight on another process.
inline constexpr int64_t kSharedStorageGraceSeconds = 3600;
// Checks a --storage-dir: empty (none), or an absolute path to an existing directory given with a
// PostgreSQL `database` (with SQLite the data directory is the one place). kInvalidArgument
// otherwise, saying why.
Status ValidateStorageDir(const std::string& storage_dir, const std::string& database);
// Makes the storage directory `dir` this datasite's: writes `server_id` to its DATASITE_ID file
// when there is none yet, and creates its blobs and results directories (owner only).
// kFailedPrecondition when DATASITE_ID names another datasite: one directory never holds the
// files of two.
Status ClaimStorageDir(const std::string& dir, const std::string& server_id);

}  // namespace datasite::server

#endif  // DATASITE_SERVER_APP_H_
