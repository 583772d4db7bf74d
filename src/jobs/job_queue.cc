#include "jobs/job_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "obs/metrics.h"
#include "obs/request_id.h"

namespace datasite::jobs {

bool IsFinal(const std::string& status) { return status != "queued" && status != "running"; }

JobQueue::JobQueue(store::Store& store, const Clock& clock, QueueOptions options)
    : store_(store), clock_(clock), options_(options) {}

JobQueue::~JobQueue() { Stop(); }

Status JobQueue::Start(Runner runner, Ender ender) {
  ASSIGN_OR_RETURN(auto recovered,
                   store_.RecoverJobs(options_.max_attempts, clock_.NowMillis(), options_.owner));
  if (recovered.first || recovered.second) {
    spdlog::warn("jobs: {} interrupted job(s) queued again, {} ended", recovered.first,
                 recovered.second);
  }
  runner_ = std::move(runner);
  ender_ = std::move(ender);
  // A process queued, ended or asked to kill a job (heard on PostgreSQL): only what that
  // change concerns wakes. Each wake costs database round trips, so an idle slot does not try to
  // lease because a job ended, nor the heartbeat renew leases because one was queued.
  store_.SetJobsChangedListener([this](store::JobsChange change) {
    const bool all = change == store::JobsChange::kAnything;
    bool poke = false;
    {
      std::lock_guard lock(mu_);
      if (all || change == store::JobsChange::kQueued) ++queued_;
      if (all || change == store::JobsChange::kEnded) ++generation_;
      // A kill for a run of ours is seen by the heartbeat's renewal (which renews nothing when
      // nothing runs here; a run whose lease was just taken may not be in running_ yet).
      if (all || change == store::JobsChange::kKill) poke = heartbeat_poke_ = true;
    }
    if (all) {
      work_cv_.notify_all();
    } else if (change == store::JobsChange::kQueued) {
      work_cv_.notify_one();  // the slot that leases it wakes the next (WorkerLoop)
    }
    if (all || change == store::JobsChange::kEnded) done_cv_.notify_all();
    if (poke) heartbeat_cv_.notify_all();
  });
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  if (options_.workers > 0) heartbeat_ = std::thread([this] { HeartbeatLoop(); });
  return Status::Ok();
}

void JobQueue::Stop() {
  store_.SetJobsChangedListener(nullptr);  // before taking mu_, which the listener takes
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty() && !heartbeat_.joinable()) return;
    stopping_ = true;
    for (auto& [id, run] : running_) *run.cancel = true;
  }
  work_cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  // Only now: until every run has stopped, its lease must stay ours.
  {
    std::lock_guard lock(mu_);
    heartbeat_stopping_ = true;
  }
  heartbeat_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

std::unordered_multimap<std::string, JobQueue::Run>::iterator JobQueue::FindRun(
    const std::string& id, int64_t attempts) {
  auto [from, to] = running_.equal_range(id);
  for (auto it = from; it != to; ++it) {
    if (it->second.attempts == attempts) return it;
  }
  return running_.end();
}

Result<store::JobAdmission> JobQueue::Enqueue(const store::Job& job, const store::JobLimits& limits,
                                              const std::function<Status(store::Store&)>& also,
                                              store::Job* stored) {
  // Remembered before the insert: a slot may lease the job as soon as it commits.
  const std::string origin(obs::CurrentRequestId());
  if (!origin.empty()) {
    std::lock_guard lock(mu_);
    origins_[job.id] = origin;
    origin_order_.push_back(job.id);
    // Jobs leased by other processes are never looked up here: the oldest are forgotten.
    while (origin_order_.size() > kMaxOrigins) {
      origins_.erase(origin_order_.front());
      origin_order_.pop_front();
    }
  }
  store::JobAdmission admission = store::JobAdmission::kInserted;
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    ASSIGN_OR_RETURN(admission,
                     stored ? tx.InsertJob(job, limits, stored) : tx.InsertJob(job, limits));
    if (admission == store::JobAdmission::kInserted && also) return also(tx);
    return Status::Ok();
  });
  if (!st.ok() || admission != store::JobAdmission::kInserted) {
    std::lock_guard lock(mu_);
    origins_.erase(job.id);
    RETURN_IF_ERROR(st);
    return admission;
  }
  // With the request's id in the line (see obs/log_format.h): the link from a request to its job
  // in the logs, whichever process runs it.
  spdlog::info("jobs: {} queued", job.id);
  {
    std::lock_guard lock(mu_);
    ++queued_;
  }
  work_cv_.notify_one();
  return admission;
}

Status JobQueue::Kill(const std::string& id) {
  bool here = false;
  {
    std::lock_guard lock(mu_);
    auto [from, to] = running_.equal_range(id);
    for (auto it = from; it != to; ++it) {
      *it->second.cancel = true;
      here = true;
    }
  }
  // The flag goes to the database too (a job running here included): should this process stop
  // before the run ends, recovery ends the job killed instead of running it again.
  auto kill = store_.KillJob(id, clock_.NowMillis());
  if (here) return Status::Ok();
  RETURN_IF_ERROR(kill.status());
  if (*kill == store::JobKill::kKilled) {
    Finished();
    return Status::Ok();
  }
  // Running: here (leased between our two looks: cancelled now), or in another process, whose
  // heartbeat sees the flag.
  std::lock_guard lock(mu_);
  auto [from, to] = running_.equal_range(id);
  for (auto it = from; it != to; ++it) *it->second.cancel = true;
  return Status::Ok();
}

Result<store::Job> JobQueue::Wait(const std::string& id,
                                  std::chrono::steady_clock::time_point deadline,
                                  const std::function<bool()>& give_up, int64_t result_up_to) {
  std::chrono::milliseconds poll = options_.wait_poll;
  while (true) {
    uint64_t seen;
    {
      std::lock_guard lock(mu_);
      seen = generation_;
    }
    ASSIGN_OR_RETURN(store::Job job,
                     result_up_to > 0 ? store_.GetJob(id, result_up_to) : store_.GetJob(id));
    if (IsFinal(job.status)) return job;
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline || (give_up && give_up())) return job;
    // Woken at once by an end recorded here; the row is read again after `poll` for one recorded
    // by another process.
    std::unique_lock lock(mu_);
    if (stopping_) return job;
    done_cv_.wait_until(lock, std::min(deadline, now + poll),
                        [&] { return generation_ != seen || stopping_; });
    poll = std::min(poll * 2, options_.wait_poll_max);
  }
}

int JobQueue::RunsHere() {
  std::lock_guard lock(mu_);
  return static_cast<int>(running_.size());
}

void JobQueue::Finished() {
  {
    std::lock_guard lock(mu_);
    ++generation_;
  }
  done_cv_.notify_all();
}

void JobQueue::WorkerLoop() {
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    uint64_t seen;
    {
      std::lock_guard lock(mu_);
      seen = queued_;
    }
    const int64_t now = clock_.NowMillis();
    auto leased = store_.LeaseNextJob(now, options_.owner, now + options_.lease_ms, options_.pool);
    if (!leased.ok()) {
      spdlog::error("jobs: cannot lease: {}", leased.status().ToString());
    }
    if (!leased.ok()) {
      // The database failed (it may be down): a second before the next try, whatever wakes us.
      std::unique_lock lock(mu_);
      // Woken, too, like an idle slot: a notification that woke this slot must not be lost.
      work_cv_.wait_for(lock, std::chrono::seconds(1),
                        [&] { return queued_ != seen || stopping_; });
      continue;
    }
    if (!*leased) {
      std::unique_lock lock(mu_);
      // Woken by a job queued since the look (counted, so a wake between the look and this wait
      // is not lost); polling (once a second by default) also picks up jobs nothing told us of.
      work_cv_.wait_for(lock, options_.idle_poll, [&] { return queued_ != seen || stopping_; });
      continue;
    }
    store::Job job = std::move(**leased);
    // Since the job was created: a job run again after a lost lease counts its first run too.
    obs::JobQueueWait().Observe(std::max<double>(0, (now - job.created_at) / 1000.0));
    // More may be waiting: one more slot looks (one notification wakes one slot).
    {
      std::lock_guard lock(mu_);
      ++queued_;
    }
    work_cv_.notify_one();
    // The run logs under the id of the request that queued the job, when that was here.
    std::string origin;
    {
      std::lock_guard lock(mu_);
      if (auto it = origins_.find(job.id); it != origins_.end()) {
        origin = std::move(it->second);
        origins_.erase(it);
      }
    }
    obs::ScopedRequestId log_scope(origin);
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    {
      std::lock_guard lock(mu_);
      if (stopping_) *cancel = true;
      running_.emplace(job.id, Run{job.attempts, cancel});
    }
    Outcome out;
    try {
      out = runner_(job, *cancel);
    } catch (const std::exception& e) {
      spdlog::error("jobs: the runner of {} threw: {}", job.id, e.what());
      out = Outcome{};
      out.status = "errored";
      out.error = "internal error while running the job";
    }
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    if (stopping && out.status == "killed") {
      // Cut short by shutdown, not by a user: leave it running so the next start runs it again.
      std::lock_guard lock(mu_);
      running_.erase(FindRun(job.id, job.attempts));
      continue;
    }
    {
      std::lock_guard lock(mu_);
      FindRun(job.id, job.attempts)->second.ending = true;
    }
    // The end is recorded in one transaction: what the ender writes (a quota's charge), the end,
    // and its notifications. Each try starts again from the runner's outcome.
    auto ended = [&](Outcome o) {
      store::Job j = job;
      j.status = std::move(o.status);
      j.error = std::move(o.error);
      j.failure = std::move(o.failure);
      j.error_detail = std::move(o.error_detail);
      j.result_format = std::move(o.result_format);
      j.result_size = o.result_size;
      j.result_meta = std::move(o.result_meta);
      j.result_data = std::move(o.result_data);
      j.held = o.held;
      j.held_reason = std::move(o.held_reason);
      j.stdout_text = std::move(o.stdout_text);
      j.stderr_text = std::move(o.stderr_text);
      j.finished_at = clock_.NowMillis();
      return j;
    };
    auto record = [&](store::Store& tx, bool notify, bool keep) -> Status {
      Outcome o = out;
      if (ender_) RETURN_IF_ERROR(ender_(tx, job, o, keep));
      store::Job j = ended(std::move(o));
      // As recorded: the store may hold a private run by itself (output review turned on).
      ASSIGN_OR_RETURN(j.held, tx.FinishJob(j));
      if (notify && options_.on_finished) return options_.on_finished(tx, j);
      return Status::Ok();
    };
    // The end of a job matters more than its notification, and more than what it keeps: the
    // end is recorded without the notification when that fails, and the last try drops its
    // outputs rather than leave the run unrecorded (it would run again).
    auto finish = [&](bool keep) {
      Status st = store_.InTransaction([&](store::Store& tx) { return record(tx, true, keep); });
      if (st.ok() || st.code() == StatusCode::kFailedPrecondition || !options_.on_finished) {
        return st;
      }
      spdlog::error(
          "jobs: cannot record the end of {} with its notifications ({}); recording it "
          "without them",
          job.id, st.ToString());
      return store_.InTransaction([&](store::Store& tx) { return record(tx, false, keep); });
    };
    constexpr int kTries = 5;
    Status st = finish(true);
    for (int attempt = 1;
         !st.ok() && st.code() != StatusCode::kFailedPrecondition && attempt < kTries; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
      st = finish(attempt < kTries - 1);
    }
    if (!st.ok()) spdlog::error("jobs: cannot record the end of {}: {}", job.id, st.ToString());
    {
      // Only now: a kill until here finds the job running and gets "already ended" after.
      std::lock_guard lock(mu_);
      running_.erase(FindRun(job.id, job.attempts));
    }
    Finished();
  }
}

void JobQueue::HeartbeatLoop() {
  auto last_recovery = std::chrono::steady_clock::now();
  while (true) {
    {
      std::unique_lock lock(mu_);
      heartbeat_cv_.wait_for(lock, options_.heartbeat,
                             [&] { return heartbeat_stopping_ || heartbeat_poke_; });
      if (heartbeat_stopping_) return;
      heartbeat_poke_ = false;
    }
    // A poke is a kill for a run of ours, which renewing sees; expired leases are looked for
    // once a heartbeat period, however often pokes come.
    const auto now = std::chrono::steady_clock::now();
    const bool recover = now - last_recovery >= options_.heartbeat;
    if (recover) last_recovery = now;
    Heartbeat(recover);
  }
}

void JobQueue::Heartbeat(bool recover) {
  const int64_t now = clock_.NowMillis();
  // The runs going now, and only they: a run that starts after this look is renewed next time
  // (its lease is fresh), one whose end is being recorded is not renewed at all.
  std::vector<store::HeldLease> runs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, run] : running_) {
      if (!run.ending) runs.push_back({id, run.attempts, false});
    }
  }
  auto held = runs.empty() ? Result<std::vector<store::HeldLease>>(std::vector<store::HeldLease>())
                           : store_.RenewJobLeases(options_.owner, runs, now + options_.lease_ms);
  if (!held.ok()) {
    spdlog::error("jobs: cannot renew the leases of {}: {}", options_.owner,
                  held.status().ToString());
  } else {
    std::lock_guard lock(mu_);
    for (const store::HeldLease& run : runs) {
      auto it = FindRun(run.job_id, run.attempts);
      if (it == running_.end() || it->second.ending) continue;  // it ended meanwhile
      auto h = std::find_if(held->begin(), held->end(), [&](const store::HeldLease& l) {
        return l.job_id == run.job_id && l.attempts == run.attempts;
      });
      if (h == held->end()) {
        // Its lease expired and recovery gave the job to another run: this one records nothing
        // (FinishJob refuses it), so it may as well stop.
        if (!*it->second.cancel) {
          spdlog::warn("jobs: the lease of {} was lost; stopping its run", run.job_id);
        }
        *it->second.cancel = true;
      } else if (h->kill_requested) {
        *it->second.cancel = true;
      }
    }
  }
  if (!recover) return;
  // Expired leases (a worker process that died, or a run here whose end could not be recorded):
  // their jobs run again here or anywhere.
  auto recovered = store_.RecoverJobs(options_.max_attempts, now, std::nullopt);
  if (!recovered.ok()) {
    spdlog::error("jobs: cannot recover expired leases: {}", recovered.status().ToString());
    return;
  }
  if (recovered->first || recovered->second) {
    spdlog::warn("jobs: {} job(s) of a run that stopped queued again, {} ended", recovered->first,
                 recovered->second);
    work_cv_.notify_all();
    Finished();
  }
}

}  // namespace datasite::jobs
