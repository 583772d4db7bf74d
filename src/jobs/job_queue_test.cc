#include "jobs/job_queue.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "core/random.h"
#include "obs/request_id.h"
#include "store/test_database.h"

namespace datasite::jobs {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// On the engine of store::TestDatabase (DATASITE_TEST_ENGINE): the same tests on SQLite and on
// PostgreSQL.
class JobQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<store::TestDatabase>();
    store_ = Open();
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
  }

  // Another store on the same database: on PostgreSQL, what another process has (its own
  // connection and listener).
  std::unique_ptr<store::Store> Open() {
    auto s = db_->Open();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }
  bool postgres() const { return db_->postgres(); }

  std::string AddCode(store::Store& s) {
    store::UserCode c;
    c.id = NewUuid();
    c.user_id = "u1";
    c.name = "f";
    c.source = "def f():\n    return 1\n";
    c.code_hash = NewUuid();
    c.inputs = "{}";
    c.output_policy = "single_execution";
    EXPECT_TRUE(s.InsertCode(c).ok());
    return c.id;
  }

  store::Job NewJob(const std::string& code_id, const std::string& kind = "private",
                    const std::string& user_id = "u1") {
    store::Job j;
    j.id = NewUuid();
    j.code_id = code_id;
    j.user_id = user_id;
    j.kind = kind;
    j.inputs = "{}";
    j.timeout_ms = 1000;
    j.created_at = clock_.NowMillis();
    return j;
  }

  store::Job WaitFor(JobQueue& q, const std::string& id) {
    auto j = q.Wait(id, steady_clock::now() + std::chrono::seconds(10));
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return *j;
  }

  // For the tests of several processes sharing one queue (below); call these inside
  // ASSERT_NO_FATAL_FAILURE.
  //
  // Starts `api`, a queue with no workers standing for an API process (it queues, kills and waits),
  // and queues through it a job of new code, returned in `job`.
  void StartApiAndEnqueue(JobQueue& api, store::Job& job);
  // A worker process (a queue with `worker_options` on `worker_store`) runs a job that `api`
  // queued, until `api` kills it: the job ends killed. `job_id` is that job's.
  void KillARunOfAnotherProcess(store::Store& worker_store, const QueueOptions& worker_options,
                                JobQueue& api, std::string& job_id);

  std::unique_ptr<store::TestDatabase> db_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
};

Outcome Completed(const std::string& value) {
  Outcome o;
  o.status = "completed";
  o.result_format = "json";
  o.result_size = static_cast<int64_t>(value.size());
  o.stdout_text = value;
  return o;
}

// What the ender writes commits with the end; an ender that keeps failing does not leave the run
// unrecorded (it would run again): the last try asks it to drop what the run keeps instead.
TEST_F(JobQueueTest, TheEndIsRecordedEvenWhenItsEnderKeepsFailing) {
  JobQueue q(*store_, clock_, {.workers = 1});
  std::atomic<int> tries{0};
  ASSERT_TRUE(q.Start([](const store::Job&, const std::atomic<bool>&) { return Completed("r"); },
                      [&](store::Store&, const store::Job&, Outcome& out, bool keep) -> Status {
                        ++tries;
                        if (keep) return UnavailableError("the quota's store is down");
                        out.status = "errored";
                        out.stdout_text.clear();
                        out.error = "dropped";
                        return Status::Ok();
                      })
                  .ok());
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
  auto done = WaitFor(q, job.id);
  EXPECT_EQ(done.status, "errored");
  EXPECT_EQ(done.error, "dropped");
  EXPECT_EQ(tries.load(), 5);
}

TEST_F(JobQueueTest, QueuedJobRunsAndWaitSeesTheEnd) {
  JobQueue q(*store_, clock_, {.workers = 2});
  ASSERT_TRUE(q.Start([](const store::Job& j, const std::atomic<bool>&) {
                 return Completed("ran " + j.id);
               }).ok());
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
  auto done = WaitFor(q, job.id);
  EXPECT_EQ(done.status, "completed");
  // Regression: every poll of a job read its logs (up to megabytes) under the store's lock.
  EXPECT_TRUE(done.stdout_text.empty());
  EXPECT_EQ(store_->GetJobLogs(job.id)->first, "ran " + job.id);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_GT(done.finished_at, 0);
}

TEST_F(JobQueueTest, RunLogsUnderTheRequestIdThatQueuedIt) {
  std::mutex mu;
  std::string seen = "(not run)";
  JobQueue q(*store_, clock_, {.workers = 1});
  ASSERT_TRUE(q.Start([&](const store::Job&, const std::atomic<bool>&) {
                 std::lock_guard lock(mu);
                 seen = std::string(obs::CurrentRequestId());
                 return Completed("1");
               }).ok());
  auto job = NewJob(AddCode(*store_));
  {
    obs::ScopedRequestId request("req-42");
    ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
  }
  WaitFor(q, job.id);
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, "req-42");
}

TEST_F(JobQueueTest, RunnerErrorIsRecorded) {
  JobQueue q(*store_, clock_, {.workers = 1});
  ASSERT_TRUE(q.Start([](const store::Job&, const std::atomic<bool>&) {
                 Outcome o;
                 o.status = "errored";
                 o.error = "ZeroDivisionError: division by zero";
                 return o;
               }).ok());
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
  auto done = WaitFor(q, job.id);
  EXPECT_EQ(done.status, "errored");
  EXPECT_EQ(done.error, "ZeroDivisionError: division by zero");
}

TEST_F(JobQueueTest, JobsRunOldestFirst) {
  std::vector<std::string> order;
  std::mutex mu;
  auto code = AddCode(*store_);
  std::vector<store::Job> jobs;
  for (int i = 0; i < 5; ++i) {
    jobs.push_back(NewJob(code));
    ASSERT_EQ(*store_->InsertJob(jobs.back(), {}), store::JobAdmission::kInserted);
  }
  JobQueue q(*store_, clock_, {.workers = 1});
  ASSERT_TRUE(q.Start([&](const store::Job& j, const std::atomic<bool>&) {
                 std::lock_guard lock(mu);
                 order.push_back(j.id);
                 return Completed("");
               }).ok());
  WaitFor(q, jobs.back().id);
  std::lock_guard lock(mu);
  ASSERT_EQ(order.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(order[i], jobs[i].id);
}

// The user of each job `n` leases return, in order.
std::vector<std::string> LeaseUsers(store::Store& s, const Clock& clock, int n) {
  std::vector<std::string> users;
  for (int i = 0; i < n; ++i) {
    auto leased = s.LeaseNextJob(clock.NowMillis());
    EXPECT_TRUE(leased.ok() && leased->has_value());
    if (!leased.ok() || !*leased) break;
    users.push_back((*leased)->user_id);
  }
  return users;
}

// Regression (issue 11, queue flood): a scientist queued 60 mock runs and the owner's trivial job,
// leased oldest first, waited for all of them.
TEST_F(JobQueueTest, OwnersJobIsLeasedBeforeAScientistsFlood) {
  auto code = AddCode(*store_);
  for (int i = 0; i < 60; ++i) {
    ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "scientist"), {}),
              store::JobAdmission::kInserted);
    clock_.AdvanceMillis(1);
  }
  store::Job review = NewJob(code, "review", "owner");
  review.priority = 1;
  ASSERT_EQ(*store_->InsertJob(review, {}), store::JobAdmission::kInserted);
  auto leased = store_->LeaseNextJob(clock_.NowMillis());
  ASSERT_TRUE(leased.ok() && leased->has_value());
  EXPECT_EQ((*leased)->id, review.id);
  EXPECT_EQ(LeaseUsers(*store_, clock_, 2), (std::vector<std::string>{"scientist", "scientist"}));
}

TEST_F(JobQueueTest, TwoScientistsTakeTurnsWhateverEachQueued) {
  auto code = AddCode(*store_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), {}), store::JobAdmission::kInserted);
  }
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "b"), {}), store::JobAdmission::kInserted);
  }
  EXPECT_EQ(LeaseUsers(*store_, clock_, 7),
            (std::vector<std::string>{"a", "b", "a", "b", "a", "a", "a"}));
  EXPECT_FALSE(store_->LeaseNextJob(clock_.NowMillis())->has_value());
}

TEST_F(JobQueueTest, TheUserWhoseLastJobStartedLongestAgoGoesFirst) {
  auto code = AddCode(*store_);
  for (const char* user : {"a", "b"}) {
    ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", user), {}), store::JobAdmission::kInserted);
  }
  EXPECT_EQ(LeaseUsers(*store_, clock_, 2), (std::vector<std::string>{"a", "b"}));
  // b ran last: a's new job, though queued after b's, goes first.
  ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "b"), {}), store::JobAdmission::kInserted);
  ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), {}), store::JobAdmission::kInserted);
  EXPECT_EQ(LeaseUsers(*store_, clock_, 2), (std::vector<std::string>{"a", "b"}));
}

TEST_F(JobQueueTest, OwnersTakeTurnsAmongThemselvesBeforeAnyScientist) {
  auto code = AddCode(*store_);
  ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "s"), {}), store::JobAdmission::kInserted);
  for (const char* user : {"o1", "o1", "o2"}) {
    store::Job j = NewJob(code, "review", user);
    j.priority = 1;
    ASSERT_EQ(*store_->InsertJob(j, {}), store::JobAdmission::kInserted);
  }
  EXPECT_EQ(LeaseUsers(*store_, clock_, 4), (std::vector<std::string>{"o1", "o2", "o1", "s"}));
}

TEST_F(JobQueueTest, TurnsSurviveAReopen) {
  auto code = AddCode(*store_);
  ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), {}), store::JobAdmission::kInserted);
  EXPECT_EQ(LeaseUsers(*store_, clock_, 1), (std::vector<std::string>{"a"}));
  store_.reset();
  store_ = Open();
  ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), {}), store::JobAdmission::kInserted);
  ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "b"), {}), store::JobAdmission::kInserted);
  EXPECT_EQ(LeaseUsers(*store_, clock_, 2), (std::vector<std::string>{"b", "a"}));
}

TEST_F(JobQueueTest, PerUserCapRefusesQueuedOrRunningJobsPastIt) {
  auto code = AddCode(*store_);
  const store::JobLimits cap{.max_unfinished = 2};
  ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), cap), store::JobAdmission::kInserted);
  ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), cap), store::JobAdmission::kInserted);
  EXPECT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), cap),
            store::JobAdmission::kTooManyUnfinished);
  // Another user has a cap of their own; without a cap nothing is refused.
  EXPECT_EQ(*store_->InsertJob(NewJob(code, "mock", "b"), cap), store::JobAdmission::kInserted);
  EXPECT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), {}), store::JobAdmission::kInserted);
  // A running job still counts; one that ended does not.
  auto leased = store_->LeaseNextJob(clock_.NowMillis());
  ASSERT_TRUE(leased.ok() && leased->has_value());
  ASSERT_EQ((*leased)->user_id, "a");
  EXPECT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), cap),
            store::JobAdmission::kTooManyUnfinished);
  store::Job done = **leased;
  done.status = "completed";
  ASSERT_TRUE(store_->FinishJob(done).ok());
  ASSERT_TRUE(store_
                  ->KillJob(store_->ListJobs({.user_id = "a", .status = "queued"})->items.at(0).id,
                            clock_.NowMillis())
                  .ok());
  EXPECT_EQ(*store_->InsertJob(NewJob(code, "mock", "a"), cap), store::JobAdmission::kInserted);
}

TEST_F(JobQueueTest, OwnersJobRunsBeforeAFloodQueuedAheadOfIt) {
  auto code = AddCode(*store_);
  std::vector<std::string> order;
  std::mutex mu;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(*store_->InsertJob(NewJob(code, "mock", "scientist"), {}),
              store::JobAdmission::kInserted);
  }
  store::Job review = NewJob(code, "review", "owner");
  review.priority = 1;
  ASSERT_EQ(*store_->InsertJob(review, {}), store::JobAdmission::kInserted);
  JobQueue q(*store_, clock_, {.workers = 1});
  ASSERT_TRUE(q.Start([&](const store::Job& j, const std::atomic<bool>&) {
                 std::lock_guard lock(mu);
                 order.push_back(j.id);
                 return Completed("");
               }).ok());
  EXPECT_EQ(WaitFor(q, review.id).status, "completed");
  std::lock_guard lock(mu);
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), review.id);
}

TEST_F(JobQueueTest, OutputPolicyLimitRefusesMorePrivateRuns) {
  auto code = AddCode(*store_);
  const store::JobLimits two{.max_private_runs = 2};
  EXPECT_EQ(*store_->InsertJob(NewJob(code), two), store::JobAdmission::kInserted);
  EXPECT_EQ(*store_->InsertJob(NewJob(code), two), store::JobAdmission::kInserted);
  EXPECT_EQ(*store_->InsertJob(NewJob(code), two), store::JobAdmission::kPolicyUsedUp);
  // Other kinds are not limited.
  EXPECT_EQ(*store_->InsertJob(NewJob(code, "mock"), two), store::JobAdmission::kInserted);
}

// Regression (custom policies): two private runs of one code could both read the same policy state.
TEST_F(JobQueueTest, OneUnfinishedPrivateRunPerCodeWhenAsked) {
  auto code = AddCode(*store_);
  auto other = AddCode(*store_);
  const store::JobLimits one{.one_unfinished_private = true};
  EXPECT_EQ(*store_->InsertJob(NewJob(code), one), store::JobAdmission::kInserted);
  clock_.AdvanceMillis(1);  // leased first below
  EXPECT_EQ(*store_->InsertJob(NewJob(code), one), store::JobAdmission::kPrivateRunUnfinished);
  // Other code, other kinds, and runs without the limit are not refused.
  EXPECT_EQ(*store_->InsertJob(NewJob(other), one), store::JobAdmission::kInserted);
  EXPECT_EQ(*store_->InsertJob(NewJob(code, "mock"), one), store::JobAdmission::kInserted);
  EXPECT_EQ(*store_->InsertJob(NewJob(code, "review"), one), store::JobAdmission::kInserted);
  // Running still counts; once it ended the next one is let in.
  auto leased = store_->LeaseNextJob(clock_.NowMillis());
  ASSERT_TRUE(leased.ok() && leased->has_value());
  ASSERT_EQ((*leased)->code_id, code);
  ASSERT_EQ((*leased)->kind, "private");
  EXPECT_EQ(*store_->InsertJob(NewJob(code), one), store::JobAdmission::kPrivateRunUnfinished);
  store::Job done = **leased;
  done.status = "errored";
  ASSERT_TRUE(store_->FinishJob(done).ok());
  EXPECT_EQ(*store_->InsertJob(NewJob(code), one), store::JobAdmission::kInserted);
}

// Starts `q` with a runner that sets `started`, runs until cancelled, then reports a kill.
void StartUntilCancelled(JobQueue& q, std::atomic<bool>& started) {
  ASSERT_TRUE(q.Start([&started](const store::Job&, const std::atomic<bool>& cancel) {
                 started = true;
                 while (!cancel) std::this_thread::sleep_for(milliseconds(1));
                 Outcome o;
                 o.status = "killed";
                 o.error = "killed";
                 return o;
               }).ok());
}

TEST_F(JobQueueTest, KillingAQueuedJobMeansItNeverRuns) {
  std::atomic<int> runs{0};
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*store_->InsertJob(job, {}), store::JobAdmission::kInserted);
  JobQueue q(*store_, clock_, {.workers = 1});
  // Killed before the workers start.
  ASSERT_TRUE(q.Kill(job.id).ok());
  ASSERT_TRUE(q.Start([&](const store::Job&, const std::atomic<bool>&) {
                 ++runs;
                 return Completed("");
               }).ok());
  auto done = WaitFor(q, job.id);
  EXPECT_EQ(done.status, "killed");
  q.Stop();
  EXPECT_EQ(runs.load(), 0);
  EXPECT_EQ(q.Kill(job.id).code(), StatusCode::kFailedPrecondition);
}

TEST_F(JobQueueTest, KillingARunningJobCancelsIt) {
  std::atomic<bool> started{false};
  JobQueue q(*store_, clock_, {.workers = 1});
  StartUntilCancelled(q, started);
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
  while (!started) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(q.Kill(job.id).ok());
  EXPECT_EQ(WaitFor(q, job.id).status, "killed");
}

TEST_F(JobQueueTest, WaitReturnsTheRunningJobAtTheDeadline) {
  std::atomic<bool> release{false};
  JobQueue q(*store_, clock_, {.workers = 1});
  ASSERT_TRUE(q.Start([&](const store::Job&, const std::atomic<bool>& cancel) {
                 while (!release && !cancel) std::this_thread::sleep_for(milliseconds(1));
                 return Completed("");
               }).ok());
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
  auto j = q.Wait(job.id, steady_clock::now() + milliseconds(50));
  ASSERT_TRUE(j.ok());
  EXPECT_FALSE(IsFinal(j->status));
  release = true;
  EXPECT_EQ(WaitFor(q, job.id).status, "completed");
}

// Regression (a cold attack): a wait whose client had gone held its thread until its deadline.
TEST_F(JobQueueTest, WaitEndsEarlyWhenItsCallerGivesUp) {
  std::atomic<bool> release{false};
  JobQueue q(*store_, clock_, {.workers = 1});
  ASSERT_TRUE(q.Start([&](const store::Job&, const std::atomic<bool>& cancel) {
                 while (!release && !cancel) std::this_thread::sleep_for(milliseconds(1));
                 return Completed("");
               }).ok());
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
  int asked = 0;
  // Gives up when asked the second time: the wait has polled the job once meanwhile.
  auto j =
      q.Wait(job.id, steady_clock::now() + std::chrono::seconds(30), [&] { return ++asked == 2; });
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(asked, 2);
  EXPECT_FALSE(IsFinal(j->status));
  release = true;
  EXPECT_EQ(WaitFor(q, job.id).status, "completed");
}

TEST_F(JobQueueTest, JobCutShortByStopRunsAgainAfterRestart) {
  auto job = NewJob(AddCode(*store_));
  {
    std::atomic<bool> started{false};
    JobQueue q(*store_, clock_, {.workers = 1});
    ASSERT_TRUE(q.Start([&](const store::Job&, const std::atomic<bool>& cancel) {
                   started = true;
                   while (!cancel) std::this_thread::sleep_for(milliseconds(1));
                   Outcome o;
                   o.status = "killed";
                   return o;
                 }).ok());
    ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
    while (!started) std::this_thread::sleep_for(milliseconds(1));
    q.Stop();
    EXPECT_EQ(store_->GetJob(job.id)->status, "running");
  }
  JobQueue q(*store_, clock_, {.workers = 1});
  ASSERT_TRUE(q.Start([](const store::Job&, const std::atomic<bool>&) {
                 return Completed("second");
               }).ok());
  auto done = WaitFor(q, job.id);
  EXPECT_EQ(done.status, "completed");
  EXPECT_EQ(done.attempts, 2);
}

TEST_F(JobQueueTest, CrashLeavesQueuedJobsQueuedAndRequeuesRunningOnes) {
  auto code = AddCode(*store_);
  auto running = NewJob(code);
  auto queued = NewJob(code);
  ASSERT_EQ(*store_->InsertJob(running, {}), store::JobAdmission::kInserted);
  ASSERT_EQ(*store_->InsertJob(queued, {}), store::JobAdmission::kInserted);
  ASSERT_TRUE(store_->LeaseNextJob(clock_.NowMillis())->has_value());
  // "Crash": the store is closed with the job running and reopened.
  store_.reset();
  store_ = Open();
  EXPECT_EQ(store_->GetJob(running.id)->status, "running");
  EXPECT_EQ(store_->GetJob(queued.id)->status, "queued");
  JobQueue q(*store_, clock_, {.workers = 1});
  ASSERT_TRUE(
      q.Start([](const store::Job&, const std::atomic<bool>&) { return Completed(""); }).ok());
  EXPECT_EQ(WaitFor(q, running.id).status, "completed");
  EXPECT_EQ(WaitFor(q, queued.id).status, "completed");
}

TEST_F(JobQueueTest, JobInterruptedTwiceEndsInterruptedWithAReason) {
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*store_->InsertJob(job, {}), store::JobAdmission::kInserted);
  ASSERT_TRUE(store_->LeaseNextJob(clock_.NowMillis())->has_value());
  ASSERT_EQ(store_->RecoverJobs(2, clock_.NowMillis())->first, 1);
  ASSERT_TRUE(store_->LeaseNextJob(clock_.NowMillis())->has_value());
  std::atomic<int> runs{0};
  JobQueue q(*store_, clock_, {.workers = 1, .max_attempts = 2});
  ASSERT_TRUE(q.Start([&](const store::Job&, const std::atomic<bool>&) {
                 ++runs;
                 return Completed("");
               }).ok());
  auto done = WaitFor(q, job.id);
  EXPECT_EQ(done.status, "interrupted");
  EXPECT_NE(done.error.find("interrupted"), std::string::npos);
  EXPECT_EQ(runs.load(), 0);
}

// ---- Several processes sharing one queue (issue 15): each JobQueue here stands for one process
// (its own running jobs, cancel flags and wake-ups); they share only the database.

QueueOptions Process(const std::string& owner, int workers,
                     milliseconds heartbeat = milliseconds(20)) {
  QueueOptions o;
  o.workers = workers;
  o.owner = owner;
  o.heartbeat = heartbeat;
  return o;
}

void JobQueueTest::StartApiAndEnqueue(JobQueue& api, store::Job& job) {
  ASSERT_TRUE(api.Start(nullptr).ok());
  job = NewJob(AddCode(*store_));
  ASSERT_EQ(*api.Enqueue(job, {}), store::JobAdmission::kInserted);
}

void JobQueueTest::KillARunOfAnotherProcess(store::Store& worker_store,
                                            const QueueOptions& worker_options, JobQueue& api,
                                            std::string& job_id) {
  std::atomic<bool> started{false};
  JobQueue worker(worker_store, clock_, worker_options);
  StartUntilCancelled(worker, started);
  store::Job job;
  ASSERT_NO_FATAL_FAILURE(StartApiAndEnqueue(api, job));
  job_id = job.id;
  while (!started) std::this_thread::sleep_for(milliseconds(1));
  ASSERT_TRUE(api.Kill(job.id).ok());
  EXPECT_EQ(WaitFor(api, job.id).status, "killed");
}

TEST_F(JobQueueTest, AKillFromAnotherProcessCancelsTheRun) {
  JobQueue api(*store_, clock_, Process("api-1", 0));
  std::string id;
  ASSERT_NO_FATAL_FAILURE(KillARunOfAnotherProcess(*store_, Process("worker-1", 1), api, id));
  EXPECT_EQ(api.Kill(id).code(), StatusCode::kFailedPrecondition);
}

TEST_F(JobQueueTest, AWaitSeesAnEndRecordedByAnotherProcessAtOnce) {
  std::atomic<bool> release{false};
  JobQueue worker(*store_, clock_, Process("worker-1", 1));
  ASSERT_TRUE(worker
                  .Start([&](const store::Job&, const std::atomic<bool>& cancel) {
                    while (!release && !cancel) std::this_thread::sleep_for(milliseconds(1));
                    return Completed("done");
                  })
                  .ok());
  JobQueue api(*store_, clock_, Process("api-1", 0));
  store::Job job;
  ASSERT_NO_FATAL_FAILURE(StartApiAndEnqueue(api, job));
  std::thread finisher([&] {
    std::this_thread::sleep_for(milliseconds(100));
    release = true;
  });
  auto started = steady_clock::now();
  auto done = api.Wait(job.id, started + std::chrono::seconds(60));
  auto waited = steady_clock::now() - started;
  finisher.join();
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->status, "completed");
  // Not the deadline (a wait that only another process's end would wake sleeps it out).
  EXPECT_LT(waited, std::chrono::seconds(30));
}

// PostgreSQL: what one process queues, kills or ends, another hears at once (no polling: its
// slots would look after a minute, its heartbeat after a minute).
QueueOptions Deaf(const std::string& owner, int workers) {
  QueueOptions o = Process(owner, workers, std::chrono::minutes(1));
  o.idle_poll = std::chrono::minutes(1);
  return o;
}

// Starts `worker` with a runner that completes every job, and lets its slots look, find nothing
// and wait. Call inside ASSERT_NO_FATAL_FAILURE.
void StartAndLetWait(JobQueue& worker) {
  ASSERT_TRUE(worker
                  .Start([](const store::Job& j, const std::atomic<bool>&) {
                    return Completed("ran " + j.id);
                  })
                  .ok());
  std::this_thread::sleep_for(milliseconds(200));
}

TEST_F(JobQueueTest, AJobQueuedElsewhereIsLeasedWhenItsNotificationComes) {
  if (!postgres()) GTEST_SKIP() << "SQLite's one server hears no notification";
  auto other = Open();
  JobQueue worker(*other, clock_, Deaf("worker-1", 1));
  ASSERT_NO_FATAL_FAILURE(StartAndLetWait(worker));
  JobQueue api(*store_, clock_, Deaf("api-1", 0));
  store::Job job;
  ASSERT_NO_FATAL_FAILURE(StartApiAndEnqueue(api, job));
  EXPECT_EQ(WaitFor(api, job.id).status, "completed");
}

// PostgreSQL folds the notifications of one transaction with the same payload into one: the slot
// it wakes leases until none is left (and wakes another at each lease).
TEST_F(JobQueueTest, JobsQueuedInOneTransactionElsewhereAllRun) {
  if (!postgres()) GTEST_SKIP() << "SQLite's one server hears no notification";
  auto other = Open();
  JobQueue worker(*other, clock_, Deaf("worker-1", 2));
  ASSERT_NO_FATAL_FAILURE(StartAndLetWait(worker));
  const std::string code = AddCode(*store_);
  std::vector<store::Job> jobs;
  for (int i = 0; i < 6; ++i) jobs.push_back(NewJob(code, "mock"));
  ASSERT_TRUE(store_
                  ->InTransaction([&](store::Store& tx) -> Status {
                    for (const auto& j : jobs) RETURN_IF_ERROR(tx.InsertJob(j, {}).status());
                    return Status::Ok();
                  })
                  .ok());
  JobQueue api(*store_, clock_, Deaf("api-1", 0));
  ASSERT_TRUE(api.Start(nullptr).ok());
  for (const auto& j : jobs) EXPECT_EQ(WaitFor(api, j.id).status, "completed") << j.id;
}

TEST_F(JobQueueTest, AKillFromElsewhereReachesTheRunWithoutWaitingForAHeartbeat) {
  if (!postgres()) GTEST_SKIP() << "SQLite's one server hears no notification";
  auto other = Open();
  JobQueue api(*store_, clock_, Deaf("api-1", 0));
  std::string id;
  ASSERT_NO_FATAL_FAILURE(KillARunOfAnotherProcess(*other, Deaf("worker-1", 1), api, id));
}

TEST_F(JobQueueTest, AStartingWorkerLeavesALiveWorkersJobsAlone) {
  std::atomic<bool> started{false};
  JobQueue first(*store_, clock_, Process("worker-1", 1));
  StartUntilCancelled(first, started);
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*first.Enqueue(job, {}), store::JobAdmission::kInserted);
  while (!started) std::this_thread::sleep_for(milliseconds(1));
  std::atomic<int> second_runs{0};
  JobQueue second(*store_, clock_, Process("worker-2", 1));
  ASSERT_TRUE(second
                  .Start([&](const store::Job&, const std::atomic<bool>&) {
                    ++second_runs;
                    return Completed("");
                  })
                  .ok());
  std::this_thread::sleep_for(milliseconds(200));  // several of its heartbeats
  auto now = store_->GetJob(job.id);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->status, "running");
  EXPECT_EQ(now->attempts, 1);
  EXPECT_EQ(now->lease_owner, "worker-1");
  EXPECT_EQ(second_runs.load(), 0);
  ASSERT_TRUE(second.Kill(job.id).ok());
  EXPECT_EQ(WaitFor(second, job.id).status, "killed");
}

TEST_F(JobQueueTest, AnExpiredLeaseRunsAgainElsewhereAndTheLateEndIsNotRecorded) {
  // The first worker stalls (its heartbeat never comes in this test) past its lease.
  std::atomic<bool> started{false}, release{false};
  JobQueue stalled(*store_, clock_, Process("worker-1", 1, std::chrono::hours(1)));
  ASSERT_TRUE(stalled
                  .Start([&](const store::Job&, const std::atomic<bool>&) {
                    started = true;
                    while (!release) std::this_thread::sleep_for(milliseconds(1));
                    return Completed("late");
                  })
                  .ok());
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*stalled.Enqueue(job, {}), store::JobAdmission::kInserted);
  while (!started) std::this_thread::sleep_for(milliseconds(1));
  clock_.AdvanceMillis(31'000);  // past the 30 s lease
  JobQueue other(*store_, clock_, Process("worker-2", 1));
  ASSERT_TRUE(
      other.Start([&](const store::Job&, const std::atomic<bool>&) { return Completed("again"); })
          .ok());
  auto done = WaitFor(other, job.id);
  EXPECT_EQ(done.status, "completed");
  EXPECT_EQ(done.attempts, 2);
  EXPECT_EQ(done.lease_owner, "worker-2");
  release = true;
  stalled.Stop();  // its run ended and tried to record "late"
  auto logs = store_->GetJobLogs(job.id);
  ASSERT_TRUE(logs.ok());
  EXPECT_EQ(logs->first, "again");
  EXPECT_EQ(store_->GetJob(job.id)->status, "completed");
}

TEST_F(JobQueueTest, AJobKilledWhileItsWorkerWasGoneEndsKilled) {
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*store_->InsertJob(job, {}), store::JobAdmission::kInserted);
  const int64_t now = clock_.NowMillis();
  ASSERT_TRUE(store_->LeaseNextJob(now, "worker-1", now + 30'000)->has_value());
  EXPECT_EQ(*store_->KillJob(job.id, now), store::JobKill::kRequested);
  // Not before its lease expires...
  EXPECT_EQ(store_->RecoverJobs(2, now + 1'000, std::nullopt)->second, 0);
  EXPECT_EQ(store_->GetJob(job.id)->status, "running");
  // ...then it ends as it was asked to, and never runs again.
  EXPECT_EQ(store_->RecoverJobs(2, now + 31'000, std::nullopt)->second, 1);
  EXPECT_EQ(store_->GetJob(job.id)->status, "killed");
  EXPECT_FALSE(store_->LeaseNextJob(now + 31'000)->has_value());
}

TEST_F(JobQueueTest, OnlyTheRunHoldingTheLeaseRecordsTheEnd) {
  auto job = NewJob(AddCode(*store_));
  ASSERT_EQ(*store_->InsertJob(job, {}), store::JobAdmission::kInserted);
  const int64_t now = clock_.NowMillis();
  auto first = store_->LeaseNextJob(now, "worker-1", now + 30'000);
  ASSERT_TRUE(first.ok() && first->has_value());
  ASSERT_EQ(store_->RecoverJobs(2, now + 31'000, std::nullopt)->first, 1);
  auto second = store_->LeaseNextJob(now + 31'000, "worker-1", now + 61'000);
  ASSERT_TRUE(second.ok() && second->has_value());
  // The first run, under the same owner name but an earlier attempt, may not record its end.
  store::Job late = **first;
  late.status = "completed";
  EXPECT_EQ(store_->FinishJob(late).status().code(), StatusCode::kFailedPrecondition);
  store::Job other = **second;
  other.lease_owner = "worker-2";
  other.status = "completed";
  EXPECT_EQ(store_->FinishJob(other).status().code(), StatusCode::kFailedPrecondition);
  store::Job current = **second;
  current.status = "completed";
  EXPECT_TRUE(store_->FinishJob(current).ok());
}

// A job leased between the heartbeat's look at its runs and its renewal is not taken for one
// whose lease was lost (found by a cold review: it ended "killed" with nobody killing it, in 3 of
// 7 runs of 3000 jobs on one core).
TEST_F(JobQueueTest, AFreshLeaseIsNotTakenForALostOne) {
  std::atomic<int> cancelled{0};
  JobQueue q(*store_, clock_, Process("local", 4, milliseconds(1)));
  ASSERT_TRUE(q.Start([&](const store::Job&, const std::atomic<bool>& cancel) {
                 auto until = steady_clock::now() + std::chrono::microseconds(1000);
                 while (steady_clock::now() < until) {
                   if (cancel) {
                     ++cancelled;
                     Outcome k;
                     k.status = "killed";
                     k.error = "killed";
                     return k;
                   }
                 }
                 return Completed("");
               }).ok());
  const std::string code = AddCode(*store_);
  std::vector<std::string> ids;
  for (int i = 0; i < 3000; ++i) {
    auto job = NewJob(code, "mock", "u" + std::to_string(i % 7));
    ASSERT_EQ(*q.Enqueue(job, {}), store::JobAdmission::kInserted);
    ids.push_back(job.id);
  }
  int killed = 0;
  for (const auto& id : ids) killed += WaitFor(q, id).status == "killed";
  EXPECT_EQ(killed, 0) << "runs cancelled: " << cancelled.load();
}

// A heartbeat renews the leases of the runs it names only: a lease its owner holds for no run (its
// end could not be recorded, say) expires and is recovered.
TEST_F(JobQueueTest, ALeaseNoRunHoldsIsNotRenewed) {
  const std::string code = AddCode(*store_);
  auto a = NewJob(code), b = NewJob(code);
  ASSERT_EQ(*store_->InsertJob(a, {}), store::JobAdmission::kInserted);
  ASSERT_EQ(*store_->InsertJob(b, {}), store::JobAdmission::kInserted);
  const int64_t now = clock_.NowMillis();
  auto first = *store_->LeaseNextJob(now, "worker-1", now + 30'000);
  auto second = *store_->LeaseNextJob(now, "worker-1", now + 30'000);
  ASSERT_TRUE(first && second);
  auto held =
      store_->RenewJobLeases("worker-1", {{first->id, first->attempts, false}}, now + 90'000);
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].job_id, first->id);
  EXPECT_EQ(store_->GetJob(first->id)->lease_expires_at, now + 90'000);
  EXPECT_EQ(store_->GetJob(second->id)->lease_expires_at, now + 30'000);
  EXPECT_EQ(store_->RecoverJobs(2, now + 31'000, std::nullopt)->first, 1);
  EXPECT_EQ(store_->GetJob(second->id)->status, "queued");
  EXPECT_EQ(store_->GetJob(first->id)->status, "running");
  // A run at another attempt, or of another owner, renews nothing.
  EXPECT_TRUE(
      store_->RenewJobLeases("worker-2", {{first->id, first->attempts, false}}, now)->empty());
  EXPECT_TRUE(
      store_->RenewJobLeases("worker-1", {{first->id, first->attempts + 1, false}}, now)->empty());
}

TEST_F(JobQueueTest, WaitForUnknownJobIsNotFound) {
  JobQueue q(*store_, clock_, {.workers = 1});
  EXPECT_EQ(q.Wait("nope", steady_clock::now()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(q.Kill("nope").code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace datasite::jobs
