#include "dp/random_bits.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <set>
#include <thread>
#include <vector>

namespace datasite::dp {
namespace {

using Bytes = std::array<uint8_t, 32>;

Bytes Draw() {
  Bytes b{};
  SystemRandom().Fill(b);
  return b;
}

TEST(SystemRandomTest, DrawsAreDistinct) {
  std::set<Bytes> seen;
  for (int i = 0; i < 10000; ++i) EXPECT_TRUE(seen.insert(Draw()).second);
}

TEST(SystemRandomTest, LargeAndOddSizedRequestsAreFilled) {
  // Larger than a block (straight from the kernel) and not a multiple of anything.
  std::vector<uint8_t> big(100003, 0);
  SystemRandom().Fill(big);
  size_t zeros = 0;
  for (uint8_t b : big) zeros += b == 0;
  EXPECT_LT(zeros, 600u);  // about 391 expected
  std::vector<uint8_t> empty;
  SystemRandom().Fill(empty);
}

TEST(SystemRandomTest, ThreadsDrawDifferentBytes) {
  std::array<Bytes, 4> drawn{};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < drawn.size(); ++t) {
    threads.emplace_back([&drawn, t] { drawn[t] = Draw(); });
  }
  for (std::thread& t : threads) t.join();
  const std::set<Bytes> distinct(drawn.begin(), drawn.end());
  EXPECT_EQ(distinct.size(), drawn.size());
}

TEST(SystemRandomTest, AForkedChildDoesNotReplayTheParentsBuffer) {
  // Leave most of this thread's block unread, then fork: without the fork handler, the child's
  // next bytes would be the parent's next bytes.
  Draw();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const Bytes child = Draw();
    const ssize_t written = write(fds[1], child.data(), child.size());
    _exit(written == static_cast<ssize_t>(child.size()) ? 0 : 1);
  }
  const Bytes parent = Draw();
  Bytes child{};
  ASSERT_EQ(read(fds[0], child.data(), child.size()), static_cast<ssize_t>(child.size()));
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(fds[0]);
  close(fds[1]);
  EXPECT_NE(parent, child);
}

}  // namespace
}  // namespace datasite::dp
