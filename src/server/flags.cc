#include "server/flags.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <thread>

namespace datasite::server {
namespace {

constexpr const char* kDatabaseEnv = "DATASITE_DATABASE_URL";

// Gives every option of `cmd` that has no variable yet (all but --database and --blob)
// PREFIX<FLAG>, so that no flag is left without one.
void SetEnvNames(CLI::App& cmd, std::string_view prefix) {
  for (CLI::Option* opt : cmd.get_options()) {
    if (opt == cmd.get_help_ptr() || opt->get_lnames().empty()) continue;
    if (opt->get_envname().empty()) opt->envname(EnvName(prefix, opt->get_lnames().front()));
  }
}

int Cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// --blob (servers and workers): empty, or an s3:// URL (blob::ParseS3BlobUrl reads the rest).
std::string CheckBlobUrl(const std::string& url) {
  return url.empty() || url.rfind("s3://", 0) == 0 ? std::string()
                                                   : std::string("--blob takes an s3:// URL");
}

// --endpoint-egress HOST:PORT (servers and workers), repeated or comma-separated.
CLI::Option* AddEndpointEgress(CLI::App* c, std::vector<net::EgressTarget>* egress,
                               const char* more) {
  return c
      ->add_option_function<std::vector<std::string>>(
          "--endpoint-egress",
          [egress](const std::vector<std::string>& targets) {
            egress->clear();
            for (const std::string& t : targets) egress->push_back(*net::ParseEgressTarget(t));
          },
          std::string("A HOST:PORT that API endpoints' private functions may connect to "
                      "(repeat it, or separate with commas; default none: they have no "
                      "network). Mock functions and data scientists' code never may") +
              more)
      ->delimiter(',')
      ->check([](const std::string& t) {
        auto parsed = net::ParseEgressTarget(t);
        return parsed.ok() ? std::string() : parsed.status().message();
      });
}

}  // namespace

std::string EnvName(std::string_view prefix, std::string_view flag) {
  flag.remove_prefix(std::min(flag.find_first_not_of('-'), flag.size()));
  std::string name(prefix);
  for (char c : flag) {
    name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

CLI::App* AddServerCommand(CLI::App& app, ServerRole role, LaunchOptions& o) {
  const bool serve = role == ServerRole::kApiReplica;
  const int cores = Cores();
  o.app.io_threads = std::min(cores, 4);
  o.app.request_threads = std::max(4, 2 * cores);
  o.app.heavy_threads = cores;
  // An API replica runs no job itself: `datasite worker` processes take them from the queue.
  o.app.workers = serve ? 0 : cores;
  o.app.external_workers = serve;

  CLI::App* l =
      serve ? app.add_subcommand(
                  "serve",
                  "Serve the API of a datasite without running its jobs: `datasite worker` "
                  "processes run them. Any number of replicas may share one --database")
            : app.add_subcommand("launch", "Launch a local datasite server that runs its own jobs");
  auto* name = l->add_option(
      "--name", o.name,
      serve ? "Server name, stored in the database (and the default data directory's name). "
              "Without it, serve keeps the name the datasite has (then give --data-dir)"
            : "Server name (storage is kept under this name)");
  if (!serve) name->required();
  l->add_option("--port", o.port, "Port number, or 'auto' for a free one")->capture_default_str();
  l->add_option("--host", o.host,
                "IP address to bind. Only a loopback address (the default) while the root "
                "password is the default 'changethis'; 0.0.0.0 listens on every interface")
      ->capture_default_str();
  l->add_option("--allowed-host", o.app.allowed_hosts,
                "A host name clients use to reach this server (repeatable; comma-separated in "
                "the environment). Requests for other names are refused; localhost and IP "
                "addresses are always answered")
      ->delimiter(',');
  l->add_flag("--reset", o.reset,
              "Wipe this server's data directory first. Refused with --database: replicas share "
              "that database, and one must not wipe it under the others (drop and create it "
              "yourself)");
  l->add_flag("--dev-mode", o.dev_mode,
              "Development server: verbose logging; on loopback, short and common passwords are "
              "accepted with a warning");
  l->add_option_function<std::string>(
       "--server-type", [&o](const std::string& v) { o.app.launch.server_type = v; },
       "datasite, gateway or enclave")
      ->check(CLI::IsMember({"datasite", "gateway", "enclave"}));
  l->add_option_function<std::string>(
       "--side", [&o](const std::string& v) { o.app.launch.server_side_type = v; },
       "high (private data) or low (mock data only)")
      ->check(CLI::IsMember({"high", "low"}));
  l->add_option("--workers", o.app.workers,
                serve ? "Job worker slots in this process (default 0: jobs run in `datasite "
                        "worker` processes)"
                      : "Job worker slots (default: one per core)");
  l->add_flag("--external-workers", o.app.external_workers,
              serve ? "Jobs are (also) run by `datasite worker` processes: on by default; "
                      "--external-workers=false with --workers 0 refuses runs"
                    : "Jobs are run by `datasite worker` processes on this data directory (with "
                      "--workers 0, runs are queued for them instead of refused)");
  l->add_option("--job-timeout", o.app.job_timeout_seconds,
                "Longest wall-clock time of a job, in seconds (default 60)");
  l->add_option("--job-memory-bytes", o.app.job_limits.memory_bytes,
                "Address-space limit of a job's process (default 2 GiB)");
  l->add_option("--job-cpu-seconds", o.app.job_limits.cpu_seconds,
                "CPU-time limit of a job (default 60)");
  l->add_option("--max-result-bytes", o.app.job_limits.max_result_bytes,
                "Largest result a job may return (default 256 MiB)");
  l->add_option("--python", o.app.python,
                "The Python that runs jobs in the sandbox (default /usr/bin/python3)");
  AddEndpointEgress(l, &o.app.endpoint_egress, "");
  l->add_option("--envs-dir", o.app.envs_dir,
                "Where worker images built from requirements go, one virtualenv each: a directory "
                "the sandbox's uid 65534 can reach (default: ENVS under the data directory, or "
                "/var/lib/datasite/envs/NAME when run as root, whose data directory it can't)")
      ->envname("DATASITE_ENVS_DIR");
  l->add_option("--data-dir", o.data_dir,
                "Storage directory (default: $XDG_DATA_HOME/datasite/NAME)");
  l->add_option("--database", o.app.database,
                "PostgreSQL URL postgresql://USER@HOST:PORT/DB holding the server's metadata and "
                "job queue (default: SQLite in the data directory). A password on the command "
                "line is visible to local users: give it in the environment variable or ~/.pgpass")
      ->envname(kDatabaseEnv);
  l->add_option("--storage-dir", o.app.storage_dir,
                "With --database: the directory (absolute path, existing) for blobs and job "
                "results instead of the data directory; the same one for every replica and worker "
                "of this datasite, and for no other datasite");
  l->add_option("--blob", o.app.blob,
                "Keep blobs (datasets' data and mocks) in an S3-compatible bucket: "
                "s3://BUCKET/PREFIX?endpoint=URL&region=R[&credentials=FILE]; keys from "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or FILE), never logged (default: the "
                "storage directory)")
      ->envname("DATASITE_BLOB")
      ->check(CheckBlobUrl);
  l->add_flag("--detach", o.detach,
              "Return once ready; the server keeps running in the background (its log in "
              "DATA_DIR/server.log)");
  l->add_option("--root-email", o.app.root_email, "Root admin email at first start");
  l->add_option("--root-password", o.app.root_password,
                "Root admin password at first start (visible to local users on the command line: "
                "prefer the environment variable, or --root-password-file)");
  l->add_option("--root-password-file", o.root_password_file,
                "A file holding the root admin password at first start (a container's secret): "
                "read at start, its trailing newline dropped; not with --root-password")
      ->each([&o](const std::string&) { o.root_password_file_given = true; });
  // Set only when given: a restart without them keeps what the settings say. The values are
  // checked first, as CLI11 (2.1) throws std::invalid_argument on a flag function's bad value.
  const CLI::IsMember yes_or_no({"true", "false", "1", "0", "on", "off", "yes", "no"},
                                CLI::ignore_case);
  l->add_flag_function(
       "--signup", [&o](std::int64_t n) { o.app.launch.signup_enabled = n > 0; },
       "Allow self-registration")
      ->check(yes_or_no);
  l->add_flag_function(
       "--association-request-auto-approval",
       [&o](std::int64_t n) { o.app.launch.association_request_auto_approval = n > 0; },
       "Accept gateway association requests automatically")
      ->check(yes_or_no);
  l->add_option("--login-attempts-per-minute", o.app.accounts.login.attempts_per_source,
                "Login and sign-up attempts allowed per client address per minute")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  l->add_option("--guest-sessions-per-minute", o.app.accounts.guest_sessions_per_minute,
                "Guest sessions one client address may start per minute")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  l->add_option(
       "--max-guest-sessions", o.app.accounts.max_guest_sessions,
       "Guest sessions alive at once (a client address may start 1/64 of them, a network 1/32); "
       "more are refused until some expire")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}));
  l->add_option("--trusted-proxy", o.app.trusted_proxies,
                "Address (or network, ADDRESS/PREFIX) of a reverse proxy whose X-Forwarded-For "
                "names the client (repeatable; comma-separated in the environment); from any "
                "other peer the header is ignored and the peer address is the client")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->delimiter(',');
  l->add_option("--max-connections-per-address", o.app.max_connections_per_address,
                "Open connections one client address (an IPv6 /64) may hold; more are closed at "
                "accept. A --trusted-proxy may hold up to the server's limit (10000)")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000));
  l->add_option("--header-timeout-seconds", o.app.header_timeout_seconds,
                "A new connection's first request headers must arrive within this (a kept-alive "
                "connection may idle 30 s); also the grace for a request body, which must then "
                "arrive at 64 KiB/s or more")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{3600}));
  l->add_option("--body-memory-bytes", o.app.body_memory_bytes,
                "Request bodies (other than uploads) held in memory at once, server-wide; one "
                "client address (an IPv6 /64) may hold a sixteenth of it; a request that would "
                "pass either is answered 503 with Retry-After")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1} << 20, int64_t{1} << 40));
  l->add_option("--tls-cert", o.app.tls_cert_file,
                "Serve HTTPS with this PEM certificate chain (server certificate first; with "
                "--tls-key). TLS 1.2 and 1.3 only; SIGHUP reloads both files");
  l->add_option("--tls-key", o.app.tls_key_file,
                "The private key of --tls-cert (PEM); refused when its group or others may read "
                "it (chmod 600)");
  l->add_option("--max-blob-bytes", o.app.datasets.max_blob_bytes, "Largest upload, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 50));
  l->add_option("--max-storage-bytes", o.app.datasets.max_storage_bytes,
                "Most bytes the server keeps: uploads, job results and job logs together")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 55));
  l->add_option("--mail-batch-ms", o.app.notifications.batch_window_ms,
                "A recipient's notification mails within this window go out as one")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{86'400'000}));
  l->add_option("--mail-retry-max-ms", o.app.notifications.retry_max_ms,
                "Longest wait between two attempts to send a mail (the waits double up to it)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{86'400'000}));
  l->add_option("--password-reset-ttl-seconds", o.app.password_reset.token_ttl_seconds,
                "How long a password reset token stays valid")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{7 * 86'400}));
  l->add_option("--max-queued-jobs-per-user", o.app.job_quotas.max_unfinished_jobs,
                "Jobs one data scientist may have queued or running at once; more are refused "
                "(429). Data owners and admins are not limited, and their runs go first")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  l->add_option("--user-quota-bytes", o.app.job_quotas.max_kept_bytes,
                "Bytes of job results and logs one data scientist may keep (all within "
                "--max-storage-bytes); a result past it is not kept")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 55));
  l->add_option("--max-code-per-user", o.app.job_quotas.max_code_versions,
                "Code versions one data scientist may submit (their bytes count against "
                "--user-quota-bytes); more are refused")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  l->add_option("--max-projects-per-user", o.app.job_quotas.max_projects,
                "Projects one data scientist may create (each notifies every data owner and "
                "admin; their names and descriptions count against --user-quota-bytes); more are "
                "refused")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  l->add_option("--max-project-messages-per-user", o.app.job_quotas.max_project_messages,
                "Project messages one data scientist may post (their text counts against "
                "--user-quota-bytes); more are refused")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  l->add_option("--mock-results-kept", o.app.job_quotas.mock_outputs_kept,
                "Newest mock runs per user whose result and logs are kept; older ones expire "
                "(also sooner, oldest first, when the user's quota needs room; a lowered limit "
                "applies from each user's next mock run)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  l->add_option("--metrics-address", o.app.metrics_address,
                "HOST:PORT where Prometheus metrics are served at /metrics, without "
                "authentication: keep it on loopback or a private network (off when not given)");
  l->add_option("--log-format", o.log_format, "Log lines as text or as one JSON object per line")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  SetEnvNames(*l, "DATASITE_");
  return l;
}

CLI::App* AddWorkerCommand(CLI::App& app, WorkerOptions& w) {
  w.workers = Cores();
  auto* c = app.add_subcommand(
      "worker",
      "Run the jobs of a datasite served on this machine by `datasite serve` (or `launch "
      "--external-workers`), from another process (any number of them)");
  c->add_option("--data-dir", w.data_dir,
                "The server's storage directory (not needed with --database and --storage-dir)");
  c->add_option("--database", w.database,
                "As the server's --database (default: SQLite in the data directory)")
      ->envname(kDatabaseEnv);
  c->add_option("--storage-dir", w.storage_dir,
                "As the servers' --storage-dir (with --database; then no --data-dir is needed)");
  // The servers' variable, as for --database: a worker beside them must find the same blobs.
  c->add_option("--blob", w.blob, "As the servers' --blob")
      ->envname("DATASITE_BLOB")
      ->check(CheckBlobUrl);
  c->add_option("--job-lease-seconds", w.job_lease_seconds,
                "How long a running job's lease lasts without this worker's heartbeat (renewed "
                "every second): the jobs of a worker that died run again elsewhere this long after")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{2}, int64_t{3600}));
  c->add_option("--name", w.name,
                "The name this worker's job leases carry: unique among running workers, the same "
                "across restarts (default: HOST-PID)");
  c->add_option("--workers", w.workers, "Job slots (default: one per core)");
  c->add_option("--pool", w.pool,
                "The worker pool whose jobs this worker runs (default 'default'): launched "
                "through the API first; its image's Python and environment must exist here (in "
                "Kubernetes, one Deployment per pool, its container image holding the environment)")
      ->envname("DATASITE_WORKER_POOL");
  c->add_option("--job-timeout", w.job_timeout_seconds,
                "Longest wall-clock time of a job, in seconds (default 60; as the server's)");
  c->add_option("--job-memory-bytes", w.job_limits.memory_bytes,
                "Address-space limit of a job's process (default 2 GiB)");
  c->add_option("--job-cpu-seconds", w.job_limits.cpu_seconds,
                "CPU-time limit of a job (default 60)");
  c->add_option("--max-result-bytes", w.job_limits.max_result_bytes,
                "As the server's --max-result-bytes (required: a worker does not read the server's "
                "limits)")
      ->required();
  c->add_option("--python", w.python,
                "The Python that runs jobs in the sandbox (default /usr/bin/python3)");
  AddEndpointEgress(c, &w.endpoint_egress, " (as the servers': jobs' endpoint calls run here)");
  c->add_option(
       "--max-storage-bytes", w.datasets.max_storage_bytes,
       "As the server's --max-storage-bytes (required: a worker does not read the server's limits)")
      ->required()
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 55));
  c->add_option(
       "--user-quota-bytes", w.job_quotas.max_kept_bytes,
       "As the server's --user-quota-bytes (required: a worker does not read the server's limits)")
      ->required()
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 55));
  c->add_option(
       "--mock-results-kept", w.job_quotas.mock_outputs_kept,
       "As the server's --mock-results-kept (required: a worker does not read the server's limits)")
      ->required()
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  // Not DATASITE_<FLAG>: a worker beside a server in one environment must not take, say, the
  // server's DATASITE_WORKERS or DATASITE_NAME.
  SetEnvNames(*c, "DATASITE_WORKER_");
  return c;
}

}  // namespace datasite::server
