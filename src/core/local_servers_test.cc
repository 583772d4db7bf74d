#include "core/local_servers.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace datasite {
namespace {

namespace fs = std::filesystem;

class LocalServersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/datasite-local-servers-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  RuntimeInfo Info(int pid) const { return {"t", pid, "127.0.0.1", 1, "http://x", dir_}; }

  std::string dir_;
};

// Waits until `pid`'s main thread shows as exiting, or `ms` pass.
bool WaitExiting(int pid, int ms) {
  for (int i = 0; i < ms / 10; ++i) {
    if (ProcessIsExiting(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST_F(LocalServersTest, ProcessIsExitingIsFalseForLiveAndMissingProcesses) {
  EXPECT_FALSE(ProcessIsExiting(::getpid()));
  EXPECT_FALSE(ProcessIsExiting(0));
  EXPECT_FALSE(ProcessIsExiting(-1));
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) ::_exit(0);
  ASSERT_TRUE(WaitExiting(child, 5000)) << "an unreaped child reads as exiting";
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  EXPECT_FALSE(ProcessIsExiting(child)) << "a reaped child is no process at all";
}

TEST_F(LocalServersTest, SecondLockOnOneDirectoryIsRefused) {
  auto first = DataDirLock::Acquire(dir_);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_TRUE(IsLocked(dir_));
  auto second = DataDirLock::Acquire(dir_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  first->reset();
  EXPECT_FALSE(IsLocked(dir_));
  EXPECT_TRUE(DataDirLock::Acquire(dir_).ok());
}

TEST_F(LocalServersTest, LiveHolderFailsAtOnceWithoutWaiting) {
  auto held = DataDirLock::Acquire(dir_);
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(WriteRuntimeInfo(Info(::getpid())).ok());
  auto start = std::chrono::steady_clock::now();
  auto again = DataDirLock::AcquireAfterExit(dir_, 10000);
  auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_LT(waited, std::chrono::seconds(5)) << "a live holder is no reason to wait";
}

// The race a restart after SIGKILL meets: the killed server's main thread is already a zombie while
// another of its threads still holds the open files (and so the lock) for a moment.
TEST_F(LocalServersTest, WaitsForAnExitingHolderToLetGo) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto lock = DataDirLock::Acquire(dir_);
    if (!lock.ok() || !WriteRuntimeInfo(Info(::getpid())).ok()) ::_exit(1);
    lock->release();  // held by the process until its last thread is gone
    pthread_t lingerer;
    pthread_create(
        &lingerer, nullptr,
        [](void*) -> void* {
          std::this_thread::sleep_for(std::chrono::milliseconds(1500));
          ::_exit(0);
        },
        nullptr);
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1) ::_exit(1);
    ::syscall(SYS_exit, 0);  // ends only the main thread, which then reads as a zombie
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  ASSERT_TRUE(WaitExiting(child, 5000));
  EXPECT_FALSE(DataDirLock::Acquire(dir_).ok()) << "the lingering thread still holds the lock";
  auto lock = DataDirLock::AcquireAfterExit(dir_, 15000);
  EXPECT_TRUE(lock.ok()) << lock.status().message();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// Regression (issue 12): a server launched with --data-dir was found by neither `list`, `land NAME`
// nor `--server NAME`.
TEST_F(LocalServersTest, AServerWithItsOwnDataDirIsFoundByName) {
  const std::string xdg = dir_ + "/xdg";
  const std::string elsewhere = dir_ + "/elsewhere";
  fs::create_directories(elsewhere);
  ASSERT_EQ(::setenv("XDG_DATA_HOME", xdg.c_str(), 1), 0);
  EXPECT_FALSE(FindRunningServerByName("away").has_value());

  auto lock = DataDirLock::Acquire(elsewhere);
  ASSERT_TRUE(lock.ok()) << lock.status().message();
  ASSERT_TRUE(WriteRuntimeInfo({"away", ::getpid(), "127.0.0.1", 1, "http://x", elsewhere}).ok());
  ASSERT_TRUE(RegisterDataDir("away", elsewhere).ok());

  auto found = FindRunningServerByName("away");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->data_dir, elsewhere);
  auto listed = ListRunningServers();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name, "away");

  // Another name recorded for the same directory does not find it (the server there is "away").
  ASSERT_TRUE(RegisterDataDir("other", elsewhere).ok());
  EXPECT_FALSE(FindRunningServerByName("other").has_value());
  EXPECT_EQ(ListRunningServers().size(), 1u);

  lock->reset();
  EXPECT_FALSE(FindRunningServerByName("away").has_value()) << "a stopped server is not found";
  EXPECT_TRUE(ListRunningServers().empty());
  ::unsetenv("XDG_DATA_HOME");
}

TEST_F(LocalServersTest, TheDefaultDataDirIsNotRecorded) {
  const std::string xdg = dir_ + "/xdg";
  ASSERT_EQ(::setenv("XDG_DATA_HOME", xdg.c_str(), 1), 0);
  ASSERT_TRUE(RegisterDataDir("home", xdg + "/datasite/home").ok());
  EXPECT_FALSE(fs::exists(xdg + "/datasite/.elsewhere/home"));
  EXPECT_EQ(RegisterDataDir("../bad", dir_).code(), StatusCode::kInvalidArgument);
  ::unsetenv("XDG_DATA_HOME");
}

}  // namespace
}  // namespace datasite
