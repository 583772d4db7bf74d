#include "server/worker.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "blob/blob_store.h"
#include "core/random.h"
#include "jobs/job_queue.h"
#include "net/smtp.h"
#include "server/app.h"
#include "server/launch.h"
#include "services/notifications.h"
#include "services/pools.h"
#include "services/settings.h"
#include "store/store.h"

namespace datasite::server {
namespace {

// Everything a worker holds, torn down in reverse order.
struct Parts {
  std::unique_ptr<store::Store> store;
  std::unique_ptr<services::SettingsService> settings;
  std::unique_ptr<blob::BlobStore> blobs;
  std::unique_ptr<blob::BlobStore> results;  // job results (CodeOptions::results)
  std::unique_ptr<services::Datasets> datasets;
  std::unique_ptr<net::MailTransport> mail;
  std::unique_ptr<services::Notifications> notifications;
  std::unique_ptr<services::EndpointService> endpoints;  // outlives the queue, whose jobs call it
  std::unique_ptr<jobs::JobQueue> queue;
  std::unique_ptr<services::CodeService> code;

  ~Parts() {
    if (queue) queue->Stop();
    code.reset();
    queue.reset();
  }
};

Status Start(WorkerOptions o, Parts& p) {
  if (o.database.empty() && !std::filesystem::exists(DatabasePath(o.data_dir))) {
    return FailedPreconditionError("no datasite in " + o.data_dir +
                                   ": launch one there first (datasite launch --data-dir " +
                                   o.data_dir + " --workers 0 --external-workers)");
  }
  const Clock& clock = SystemClock();
  ASSIGN_OR_RETURN(p.store, OpenDatabase(o.database, o.data_dir));
  p.settings = std::make_unique<services::SettingsService>(*p.store, clock);
  RETURN_IF_ERROR(p.settings->Load());
  const std::string& storage = o.storage_dir.empty() ? o.data_dir : o.storage_dir;
  if (!o.storage_dir.empty()) {
    RETURN_IF_ERROR(ClaimStorageDir(o.storage_dir, p.settings->identity().server_id));
  }
  ASSIGN_OR_RETURN(p.blobs, OpenBlobStore(o.blob, storage));
  ASSIGN_OR_RETURN(p.results, OpenResultStore(o.blob, storage));
  // The server's storage is shared, not this process's to clean up: only counted.
  p.datasets =
      std::make_unique<services::Datasets>(*p.store, *p.blobs, *p.settings, clock, o.datasets);
  RETURN_IF_ERROR(p.datasets->CountStoredBytes());
  // Notifications of a job's end are written with it; the server sends the mail.
  p.mail = net::NewCurlMailTransport();
  p.notifications = std::make_unique<services::Notifications>(*p.store, clock, *p.settings, *p.mail,
                                                              services::NotificationsOptions{});
  jobs::QueueOptions queue_options{.workers = o.workers};
  queue_options.owner = o.name;
  queue_options.pool = o.pool;
  // A pool's worker runs its image's environment (as recorded when the pool was launched).
  sandbox::Options sandbox_options;
  sandbox_options.python = o.python;
  sandbox_options.slots = o.workers;
  if (o.pool != services::kDefaultPool) {
    auto pool = p.store->GetPoolRecord("pool", o.pool);
    if (!pool.ok()) {
      return FailedPreconditionError("no worker pool '" + o.pool +
                                     "': launch it through the API first (client.worker_pools."
                                     "launch)");
    }
    nlohmann::json pool_doc = nlohmann::json::parse(pool->doc, nullptr, false);
    auto image = p.store->GetPoolRecord("image", pool_doc.value("image_id", ""));
    if (!image.ok()) return FailedPreconditionError("the pool's image is gone");
    nlohmann::json image_doc = nlohmann::json::parse(image->doc, nullptr, false);
    sandbox_options.python = image_doc.value("python", o.python);
    sandbox_options.env_root = image_doc.value("path", "");
    for (const auto& m : image_doc.value("imports", nlohmann::json::array()))
      sandbox_options.preload.push_back(m.get<std::string>());
    if (pool_doc.contains("memory_bytes"))
      o.job_limits.memory_bytes = pool_doc["memory_bytes"].get<uint64_t>();
    if (pool_doc.contains("cpu_seconds"))
      o.job_limits.cpu_seconds = pool_doc["cpu_seconds"].get<uint32_t>();
  }
  queue_options.lease_ms = o.job_lease_seconds * 1000;
  queue_options.on_finished = [notifications = p.notifications.get()](store::Store& tx,
                                                                      const store::Job& job) {
    return notifications->OnJobEnded(tx, job);
  };
  p.queue = std::make_unique<jobs::JobQueue>(*p.store, clock, queue_options);
  services::CodeOptions code_options;
  code_options.results = p.results.get();
  code_options.results_dir = ResultsPath(storage);
  // A worker shares the results' store with the servers and other workers.
  code_options.keep_recent_files_seconds = kSharedStorageGraceSeconds;
  code_options.max_timeout_ms = o.job_timeout_seconds * 1000;
  code_options.limits = o.job_limits;
  code_options.quotas = o.job_quotas;
  p.code = std::make_unique<services::CodeService>(*p.store, *p.blobs, *p.settings, *p.queue,
                                                   p.datasets->storage(), clock, code_options);
  p.code->SetNotifications(p.notifications.get());
  // Jobs that took API endpoints as inputs call them from here.
  p.endpoints = std::make_unique<services::EndpointService>(
      *p.store, *p.blobs, clock,
      EndpointOptionsFor(o.python, storage, o.endpoint_egress, code_options));
  p.code->SetEndpoints(p.endpoints.get());
  auto sandbox = sandbox::StartSandbox(sandbox_options);
  if (!sandbox.ok()) {
    return FailedPreconditionError("the sandbox can't start: " + sandbox.status().message());
  }
  spdlog::info("sandbox: {}", (*sandbox)->Describe());
  {
    // What approvals of the pool's code bind, published for the API servers (PoolService).
    const std::string hash =
        services::PackagesHash((*sandbox)->Environment(), sandbox_options.env_root);
    if (o.pool != services::kDefaultPool) p.code->SetRunPool(o.pool, hash);
    RETURN_IF_ERROR(p.store->PutPoolRecord(
        {"pool_env", o.pool,
         nlohmann::json{
             {"packages_hash", hash},
             {"modules", (*sandbox)->Environment().value("modules", nlohmann::json::array())}}
             .dump(),
         clock.NowMillis()}));
    spdlog::info("worker pool {}: environment {}", o.pool, hash);
  }
  p.code->SetSandbox(std::move(*sandbox));
  p.code->RemoveStrayResults(o.name);
  RETURN_IF_ERROR(p.code->CountKeptBytes());
  return p.queue->Start(
      [code = p.code.get()](const store::Job& job, const std::atomic<bool>& cancel) {
        return code->RunJob(job, cancel);
      },
      [code = p.code.get()](store::Store& tx, const store::Job& job, jobs::Outcome& out,
                            bool keep) { return code->EndJob(tx, job, out, keep); });
}

}  // namespace

int RunWorker(WorkerOptions o) {
  auto fail = [](const Status& st, int code) {
    std::cerr << "error: " << st.message() << std::endl;
    return code;
  };
  if (Status st = ValidateStorageDir(o.storage_dir, o.database); !st.ok()) return fail(st, 2);
  if (o.data_dir.empty() && o.storage_dir.empty()) {
    return fail(InvalidArgumentError("--data-dir is required (or --database and --storage-dir)"),
                2);
  }
  if (o.workers < 1 || o.workers > 256) {
    return fail(InvalidArgumentError("--workers must be 1 to 256"), 2);
  }
  if (o.job_timeout_seconds < 1 || o.job_timeout_seconds > 7 * 24 * 3600) {
    return fail(InvalidArgumentError("--job-timeout must be 1 to 604800 seconds"), 2);
  }
  if (o.name.empty()) o.name = HostAndPid("worker");
  if (o.name.size() > 200) return fail(InvalidArgumentError("--name is too long"), 2);
  if (!InitCrypto()) return fail(InternalError("libsodium failed to initialize"), 1);
  spdlog::set_default_logger(spdlog::stderr_color_mt("datasite-worker"));

  const sigset_t signals = BlockStopSignals();

  auto parts = std::make_unique<Parts>();
  if (Status st = Start(o, *parts); !st.ok()) return fail(st, 1);
  std::cout << "Worker " << o.name << " runs the jobs of "
            << (o.storage_dir.empty() ? o.data_dir : o.storage_dir) << " in " << o.workers
            << " slot(s)" << std::endl;
  int sig = 0;
  sigwait(&signals, &sig);
  // Runs cut short stay leased to this name: a worker restarted under it takes them back at once,
  // any other once their lease expires.
  spdlog::info("received signal {}; stopping", sig);
  parts.reset();
  return 0;
}

}  // namespace datasite::server
