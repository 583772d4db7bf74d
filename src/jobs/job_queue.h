// The durable job queue: jobs live in the store, so a crash loses none; N worker threads lease them
// one at a time, in the store's fair order (data owners' runs first, then users by turns, each
// user's jobs oldest first; see Store::LeaseNextJob), and hand each to a runner (the code
// service, which runs it in the sandbox).
//
// Its contract lives in the database, so that several processes may share one queue (API
// servers that only enqueue, worker processes that only run): a lease names its owner (this
// queue's `owner`) and expires unless the owner's heartbeat renews it; a kill of a job running
// elsewhere raises a flag its owner's heartbeat acts on; a wait watches the job's row; and the
// jobs of a worker that died come back once their lease expires (any queue's heartbeat recovers
// them), or at once when a worker of the same name starts again.
//
// Thread model: `workers` threads block on the store and the runner, and one heartbeat thread
// (when there are workers); Enqueue, Kill and Wait may be called from any thread. Safe for
// concurrent use.
#ifndef DATASITE_JOBS_JOB_QUEUE_H_
#define DATASITE_JOBS_JOB_QUEUE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "store/store.h"

namespace datasite::jobs {

// How a run ended, as the runner reports it.
struct Outcome {
  std::string status;  // completed | errored | timed_out | killed
  std::string error;
  std::string failure;       // the failure kind (services/job_failure.h); empty when completed
  std::string error_detail;  // what a failed run on private data said (see store::Job)
  std::string result_format;
  int64_t result_size = 0;
  std::string result_meta;                 // a CSV result's typed sidecar, '' for none
  std::optional<std::string> result_data;  // a small result, kept in the database
  bool held = false;
  std::string held_reason;  // why a rule held it (see store::Job::held_reason)
  std::string stdout_text;
  std::string stderr_text;
};

// Runs one leased job. `cancel` becomes true when the job is killed or the queue stops. Must not
// throw.
using Runner = std::function<Outcome(const store::Job& job, const std::atomic<bool>& cancel)>;
// Called first in the transaction that records the end of a run (`job` as leased), with its
// outcome, which it may change before it is recorded (what a quota does not let the run keep);
// what it writes through `tx` commits with the end. An error rolls the transaction back, and the
// end is recorded again from the runner's outcome (see QueueOptions::on_finished). Effects outside
// the store wait for the commit (Store::AfterCommit) or are undone at a rollback
// (Store::AfterRollback). The last try has `keep` false: the end must be recorded, so the ender
// drops what the run would keep (its result and logs) without counting anything in the store.
using Ender =
    std::function<Status(store::Store& tx, const store::Job& job, Outcome& out, bool keep)>;

struct QueueOptions {
  int workers = 1;
  // A job found running after a crash is run again until it has been leased this many times.
  int64_t max_attempts = 2;
  // Called with the store of the transaction that records a job's end (FinishJob), so what it
  // writes (notifications, mail) commits with it; when that transaction fails, the end is
  // recorded alone (a job's end matters more than its notification).
  std::function<Status(store::Store& tx, const store::Job& job)> on_finished;
  // The name this queue's leases carry: unique among live processes sharing the database, and
  // the same across restarts of one (store::kLocalLeaseOwner for the all-in-one server).
  std::string owner = std::string(store::kLocalLeaseOwner);
  // Takes only the jobs of this worker pool ('': every job; see Store::LeaseNextJob).
  std::string pool;
  // How long a lease lasts without a heartbeat, and how often the heartbeat renews leases, acts
  // on kill flags and recovers other workers' expired leases.
  int64_t lease_ms = 30'000;
  std::chrono::milliseconds heartbeat{1'000};
  // How often an idle worker slot looks for a job nothing told it of (a job queued here, or
  // heard of on PostgreSQL, wakes one at once).
  std::chrono::milliseconds idle_poll{1'000};
  // How often a Wait reads the job's row, for an end recorded by another process (an end
  // recorded here wakes it at once): first after `wait_poll`, then twice as long each time, up
  // to `wait_poll_max`.
  std::chrono::milliseconds wait_poll{50};
  std::chrono::milliseconds wait_poll_max{400};
};

bool IsFinal(const std::string& status);

class JobQueue {
 public:
  JobQueue(store::Store& store, const Clock& clock, QueueOptions options);
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Puts back in the queue (or ends `interrupted`) the jobs this owner's previous life was
  // running and those whose lease expired, then starts the workers and the heartbeat. Call once.
  Status Start(Runner runner, Ender ender = nullptr);
  // Stops leasing, cancels running jobs and joins the workers. A job cut short by Stop stays
  // `running` in the store, so the next Start (or, once its lease expires, another worker) runs it
  // again. Idempotent.
  void Stop();

  // Stores `job` as queued, unless `limits` refuse it, and wakes a worker (see Store::InsertJob).
  // `also`, when given, runs in the same transaction as the insert once the job is admitted (its
  // audit entry), and an error from it un-queues the job. `stored`, when given, gets the job as
  // stored once admitted (Store::InsertJob).
  Result<store::JobAdmission> Enqueue(const store::Job& job, const store::JobLimits& limits,
                                      const std::function<Status(store::Store&)>& also = nullptr,
                                      store::Job* stored = nullptr);
  // A queued job ends `killed` at once; a running one is cancelled (here at once, in another
  // process at its owner's next heartbeat) and ends `killed` when its runner returns.
  // kFailedPrecondition when the job already ended.
  Status Kill(const std::string& id);
  // Waits until the job has ended or `deadline` passes, or `give_up` (when given) returns true;
  // answers the job as stored then. Sees an end recorded by another process within
  // `wait_poll_max` (sooner early on), and asks `give_up` as often. With `result_up_to` > 0 the
  // job is read with its result as store::Store::GetJob(id, result_up_to) reads it.
  Result<store::Job> Wait(const std::string& id, std::chrono::steady_clock::time_point deadline,
                          const std::function<bool()>& give_up = nullptr, int64_t result_up_to = 0);

  int workers() const { return options_.workers; }
  // Jobs running in this process now (each holds one of its slots).
  int RunsHere();

 private:
  void WorkerLoop();
  void HeartbeatLoop();
  // Renews this owner's leases and cancels the runs whose job was killed or whose lease was lost.
  // Renews the leases of the runs here (and sees kills asked for them); with `recover`, also
  // queues again (or ends) the jobs whose lease expired anywhere.
  void Heartbeat(bool recover);
  void Finished();

  store::Store& store_;
  const Clock& clock_;
  const QueueOptions options_;
  Runner runner_;
  Ender ender_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // a job was queued, or stopping
  std::condition_variable done_cv_;  // a job ended
  // Counts ended jobs (and changes heard from other processes). Guarded by mu_.
  uint64_t generation_ = 0;
  bool stopping_ = false;  // Guarded by mu_.
  // A run going here: its attempt (a job whose lease this process lost and leased again may have
  // two), its cancel flag, and whether its end is being recorded (its lease is then no longer
  // renewed: should recording fail for good, the lease expires and the job is recovered).
  struct Run {
    int64_t attempts = 0;
    std::shared_ptr<std::atomic<bool>> cancel;
    bool ending = false;
  };
  // The runs going here, by job id. Guarded by mu_.
  std::unordered_multimap<std::string, Run> running_;
  // Finds the run of `id` at `attempts`, or running_.end(). REQUIRES: mu_ held.
  std::unordered_multimap<std::string, Run>::iterator FindRun(const std::string& id,
                                                              int64_t attempts);
  std::condition_variable heartbeat_cv_;  // heartbeat_stopping_
  // Set by Stop once the workers are joined: the heartbeat renews leases while runs are stopping.
  bool heartbeat_stopping_ = false;  // Guarded by mu_.
  // Another process changed a job (a kill, maybe): the heartbeat runs now. Guarded by mu_.
  bool heartbeat_poke_ = false;
  // Counts jobs queued (here, or heard of) and leases taken, so that a worker slot that found
  // nothing waits only until the count moves. Guarded by mu_.
  uint64_t queued_ = 0;
  // The request ids (obs/request_id.h) of jobs queued here, by job id, until a slot here leases
  // them; the oldest of kMaxOrigins go (jobs leased by other processes). Guarded by mu_.
  static constexpr size_t kMaxOrigins = 4096;
  std::unordered_map<std::string, std::string> origins_;
  std::deque<std::string> origin_order_;  // the ids of origins_, oldest first (some gone)
  std::vector<std::thread> threads_;
  std::thread heartbeat_;
};

}  // namespace datasite::jobs

#endif  // DATASITE_JOBS_JOB_QUEUE_H_
