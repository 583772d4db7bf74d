// `datasite worker`: a process that runs the jobs of a datasite launched elsewhere on this
// machine, sharing its data directory (database, blobs, results), or its PostgreSQL database and
// storage directory (blobs, results). Any number of workers, each with its own sandbox slots and
// its own lease name, take jobs from the one queue in the database; the server (`datasite launch
// --workers 0 --external-workers`) only queues them.
#ifndef DATASITE_SERVER_WORKER_H_
#define DATASITE_SERVER_WORKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "net/egress.h"
#include "sandbox/sandbox.h"
#include "services/code.h"
#include "services/datasets.h"

namespace datasite::server {

struct WorkerOptions {
  std::string data_dir;  // a datasite's (`launch --data-dir`); it must have started once
  std::string database;  // as the server's --database (empty: SQLite in data_dir)
  // As the servers' --storage-dir (needs `database`); then no data_dir is needed.
  std::string storage_dir;
  std::string blob;  // as the servers' --blob (see AppConfig::blob)
  // The name its leases carry: unique among the workers that run at once, and the same across
  // restarts of one (a worker restarted under its name takes back at once the jobs it was
  // running). Default: "<host name>-<pid>".
  std::string name;
  int workers = 1;                   // job slots: warm sandboxed Python processes
  std::string pool = "default";      // the worker pool whose jobs it runs (services/pools.h)
  int64_t job_lease_seconds = 30;    // a lease's life without a heartbeat (see jobs::QueueOptions)
  int64_t job_timeout_seconds = 60;  // as the server's --job-timeout
  std::string python = "/usr/bin/python3";
  std::vector<net::EgressTarget> endpoint_egress;  // as the server's --endpoint-egress
  sandbox::Limits job_limits;
  services::JobQuotas job_quotas;
  services::DatasetsOptions datasets;  // max_storage_bytes: as the server's
};

// Runs until SIGINT/SIGTERM; returns the process exit code.
int RunWorker(WorkerOptions options);

}  // namespace datasite::server

#endif  // DATASITE_SERVER_WORKER_H_
