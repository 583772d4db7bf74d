// The `datasite` binary: `launch` runs a server; the other subcommands are a CLI.
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/admin_commands.h"
#include "cli/audit_commands.h"
#include "cli/dataset_commands.h"
#include "cli/local_commands.h"
#include "cli/request_commands.h"
#include "cli/sync_commands.h"
#include "server/launch.h"
#include "server/migrate.h"
#include "server/worker.h"
#include "services/settings.h"

namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using datasite::server::LaunchOptions;
  CLI::App app{"datasite: a Datasite server and its command line"};
  app.require_subcommand(1);

  LaunchOptions launch;
  launch.app.root_email = EnvOr("DATASITE_ROOT_EMAIL", datasite::services::kDefaultRootEmail);
  launch.app.root_password =
      EnvOr("DATASITE_ROOT_PASSWORD", datasite::services::kDefaultRootPassword);
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  launch.app.workers = static_cast<int>(cores);
  launch.app.io_threads = static_cast<int>(std::min(cores, 4u));
  launch.app.request_threads = static_cast<int>(std::max(4u, 2 * cores));
  launch.app.heavy_threads = static_cast<int>(cores);
  std::string server_type, side;
  bool signup = false, auto_approval = false;
  auto* l = app.add_subcommand("launch", "Launch a local datasite server");
  l->add_option("--name", launch.name, "Server name (storage is kept under this name)")->required();
  l->add_option("--port", launch.port, "Port number, or 'auto' for a free one")
      ->capture_default_str();
  l->add_option("--host", launch.host,
                "IP address to bind. Only a loopback address (the default) while the root "
                "password is the default 'changethis'; 0.0.0.0 listens on every interface")
      ->capture_default_str();
  l->add_option("--allowed-host", launch.app.allowed_hosts,
                "A host name clients use to reach this server (repeatable). Requests for other "
                "names are refused; localhost and IP addresses are always answered");
  l->add_flag("--reset", launch.reset, "Wipe this server's storage first");
  l->add_flag("--dev-mode", launch.dev_mode,
              "Development server: verbose logging; on loopback, short and common passwords are "
              "accepted with a warning");
  auto* type_opt = l->add_option("--server-type", server_type, "datasite, gateway or enclave")
                       ->check(CLI::IsMember({"datasite", "gateway", "enclave"}));
  auto* side_opt = l->add_option("--side", side, "high (private data) or low (mock data only)")
                       ->check(CLI::IsMember({"high", "low"}));
  l->add_option("--workers", launch.app.workers, "Job worker slots (default: one per core)");
  l->add_flag("--external-workers", launch.app.external_workers,
              "Jobs are run by `datasite worker` processes on this data directory (with --workers "
              "0, runs are queued for them instead of refused)");
  l->add_option("--job-timeout", launch.app.job_timeout_seconds,
                "Longest wall-clock time of a job, in seconds (default 60)");
  l->add_option("--job-memory-bytes", launch.app.job_limits.memory_bytes,
                "Address-space limit of a job's process (default 2 GiB)");
  l->add_option("--job-cpu-seconds", launch.app.job_limits.cpu_seconds,
                "CPU-time limit of a job (default 60)");
  l->add_option("--max-result-bytes", launch.app.job_limits.max_result_bytes,
                "Largest result a job may return (default 256 MiB)");
  l->add_option("--python", launch.app.python,
                "The Python that runs jobs in the sandbox (default /usr/bin/python3)");
  l->add_option("--data-dir", launch.data_dir,
                "Storage directory (default: $XDG_DATA_HOME/datasite/NAME)");
  l->add_option("--database", launch.app.database,
                "PostgreSQL URL postgresql://USER@HOST:PORT/DB holding the server's metadata and "
                "job queue (env DATASITE_DATABASE_URL; default: SQLite in the data directory). A "
                "password on the command line is visible to local users: give it in the "
                "environment variable or ~/.pgpass")
      ->envname("DATASITE_DATABASE_URL");
  l->add_option("--storage-dir", launch.app.storage_dir,
                "With --database: the directory (absolute path, existing) for blobs and job "
                "results instead of the data directory; the same one for every replica and worker "
                "of this datasite, and for no other datasite");
  l->add_flag("--detach", launch.detach,
              "Return once ready; the server keeps running in the background");
  l->add_option("--root-email", launch.app.root_email,
                "Root admin email at first start (env DATASITE_ROOT_EMAIL)");
  l->add_option("--root-password", launch.app.root_password,
                "Root admin password at first start (env DATASITE_ROOT_PASSWORD)");
  auto* signup_opt = l->add_flag("--signup", signup, "Allow self-registration");
  auto* auto_opt = l->add_flag("--association-request-auto-approval", auto_approval,
                               "Accept gateway association requests automatically");
  l->add_option("--login-attempts-per-minute", launch.app.accounts.login.attempts_per_source,
                "Login and sign-up attempts allowed per client address per minute")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  l->add_option("--guest-sessions-per-minute", launch.app.accounts.guest_sessions_per_minute,
                "Guest sessions one client address may start per minute")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  l->add_option("--max-guest-sessions", launch.app.accounts.max_guest_sessions,
                "Guest sessions alive at once; more are refused until some expire")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{100'000'000}));
  l->add_option("--trusted-proxy", launch.app.trusted_proxies,
                "Address of a reverse proxy whose X-Forwarded-For names the client (repeatable); "
                "from any other peer the header is ignored and the peer address is the client")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

  l->add_option("--max-blob-bytes", launch.app.datasets.max_blob_bytes, "Largest upload, in bytes")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 50));
  l->add_option("--max-storage-bytes", launch.app.datasets.max_storage_bytes,
                "Most bytes the server keeps: uploads, job results and job logs together")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 55));
  l->add_option("--mail-batch-ms", launch.app.notifications.batch_window_ms,
                "A recipient's notification mails within this window go out as one")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{86'400'000}));
  l->add_option("--mail-retry-max-ms", launch.app.notifications.retry_max_ms,
                "Longest wait between two attempts to send a mail (the waits double up to it)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{86'400'000}));
  l->add_option("--password-reset-ttl-seconds", launch.app.password_reset.token_ttl_seconds,
                "How long a password reset token stays valid")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{7 * 86'400}));
  l->add_option("--max-queued-jobs-per-user", launch.app.job_quotas.max_unfinished_jobs,
                "Jobs one data scientist may have queued or running at once; more are refused "
                "(429). Data owners and admins are not limited, and their runs go first")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  l->add_option("--user-quota-bytes", launch.app.job_quotas.max_kept_bytes,
                "Bytes of job results and logs one data scientist may keep (all within "
                "--max-storage-bytes); a result past it is not kept")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 55));
  l->add_option("--mock-results-kept", launch.app.job_quotas.mock_outputs_kept,
                "Newest mock runs per user whose result and logs are kept; older ones expire "
                "(also sooner, oldest first, when the user's quota needs room)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));

  datasite::server::WorkerOptions worker;
  worker.workers = static_cast<int>(cores);
  auto* w = app.add_subcommand(
      "worker",
      "Run the jobs of a datasite launched on this machine with --external-workers, from another "
      "process (any number of them)");
  w->add_option("--data-dir", worker.data_dir,
                "The server's storage directory (not needed with --database and --storage-dir)");
  w->add_option("--database", worker.database,
                "As the server's --database (env DATASITE_DATABASE_URL; default: SQLite in the "
                "data directory)")
      ->envname("DATASITE_DATABASE_URL");
  w->add_option("--storage-dir", worker.storage_dir,
                "As the servers' --storage-dir (with --database; then no --data-dir is needed)");
  w->add_option("--name", worker.name,
                "The name this worker's job leases carry: unique among running workers, the same "
                "across restarts (default: HOST-PID)");
  w->add_option("--workers", worker.workers, "Job slots (default: one per core)");
  w->add_option("--job-timeout", worker.job_timeout_seconds,
                "Longest wall-clock time of a job, in seconds (default 60; as the server's)");
  w->add_option("--job-memory-bytes", worker.job_limits.memory_bytes,
                "Address-space limit of a job's process (default 2 GiB)");
  w->add_option("--job-cpu-seconds", worker.job_limits.cpu_seconds,
                "CPU-time limit of a job (default 60)");
  w->add_option("--max-result-bytes", worker.job_limits.max_result_bytes,
                "As the server's --max-result-bytes (required: a worker does not read the server's "
                "limits)")
      ->required();
  w->add_option("--python", worker.python,
                "The Python that runs jobs in the sandbox (default /usr/bin/python3)");
  w->add_option(
       "--max-storage-bytes", worker.datasets.max_storage_bytes,
       "As the server's --max-storage-bytes (required: a worker does not read the server's limits)")
      ->required()
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 55));
  w->add_option(
       "--user-quota-bytes", worker.job_quotas.max_kept_bytes,
       "As the server's --user-quota-bytes (required: a worker does not read the server's limits)")
      ->required()
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 55));
  w->add_option(
       "--mock-results-kept", worker.job_quotas.mock_outputs_kept,
       "As the server's --mock-results-kept (required: a worker does not read the server's limits)")
      ->required()
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1000000}));

  datasite::server::MigrateOptions migrate;
  auto* mig = app.add_subcommand(
      "migrate",
      "Move a stopped datasite's metadata from SQLite in its data directory to an empty "
      "PostgreSQL database (blobs and job results stay in the directory)");
  mig->add_option("--from", migrate.from, "The data directory")->required();
  mig->add_option("--to", migrate.to, "postgresql://USER[:PASSWORD]@HOST:PORT/DB, empty")
      ->required();

  std::string land_name, land_dir;
  auto* d = app.add_subcommand("land", "Stop a local server");
  d->add_option("name", land_name, "Server name")->required();
  d->add_option("--data-dir", land_dir, "Storage directory, if it was given at launch");

  auto* ls = app.add_subcommand("list", "List the local servers that run");
  auto* ver = app.add_subcommand("version", "Print the version");
  datasite::cli::AddDatasetCommands(app);
  datasite::cli::AddRequestCommands(app);
  datasite::cli::AddAdminCommands(app);
  datasite::cli::AddAuditCommands(app);
  datasite::cli::AddSyncCommands(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "error: " << e.what() << "\nRun with --help for usage." << std::endl;
    return 2;
  }

  if (l->parsed()) {
    if (type_opt->count()) launch.app.launch.server_type = server_type;
    if (side_opt->count()) launch.app.launch.server_side_type = side;
    if (signup_opt->count()) launch.app.launch.signup_enabled = signup;
    if (auto_opt->count()) launch.app.launch.association_request_auto_approval = auto_approval;
    return datasite::server::RunLaunch(std::move(launch));
  }
  if (w->parsed()) return datasite::server::RunWorker(std::move(worker));
  if (mig->parsed()) return datasite::server::RunMigrate(migrate);
  if (d->parsed()) return datasite::cli::RunLand(land_name, land_dir);
  if (ls->parsed()) return datasite::cli::RunList();
  if (ver->parsed()) {
    std::cout << "datasite " << datasite::services::kVersion << std::endl;
    return 0;
  }
  if (int rc = datasite::cli::RunDatasetCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunRequestCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunAdminCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunAuditCommand(); rc >= 0) return rc;
  if (int rc = datasite::cli::RunSyncCommand(); rc >= 0) return rc;
  return 0;
}
