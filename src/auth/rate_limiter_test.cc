#include "auth/rate_limiter.h"

#include <gtest/gtest.h>

#include <string>

#include "core/clock.h"

namespace datasite::auth {
namespace {

constexpr int64_t kWindowMs = 60'000;

TEST(RateLimiterTest, UnknownKeyIsAllowed) {
  FakeClock clock;
  RateLimiter limiter(clock, 3, kWindowMs);
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 0);
}

TEST(RateLimiterTest, AllowsUpToMaxEvents) {
  FakeClock clock;
  RateLimiter limiter(clock, 3, kWindowMs);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 0) << i;
    limiter.Record("a");
  }
}

TEST(RateLimiterTest, RefusesPastLimit) {
  FakeClock clock;
  RateLimiter limiter(clock, 3, kWindowMs);
  for (int i = 0; i < 3; ++i) limiter.Record("a");
  EXPECT_GE(limiter.SecondsUntilAllowed("a"), 1);
}

TEST(RateLimiterTest, WaitIsTheWholeWindowRightAfterTheEvents) {
  FakeClock clock;
  RateLimiter limiter(clock, 3, kWindowMs);
  for (int i = 0; i < 3; ++i) limiter.Record("a");
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 60);
}

TEST(RateLimiterTest, WaitCountsFromTheOldestEventInTheWindow) {
  FakeClock clock;
  RateLimiter limiter(clock, 3, kWindowMs);
  limiter.Record("a");  // t = 0
  clock.AdvanceMillis(10'000);
  limiter.Record("a");  // t = 10 s
  clock.AdvanceMillis(10'000);
  limiter.Record("a");  // t = 20 s
  // The event at t = 0 ages out at t = 60 s: 40 s from now.
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 40);
}

TEST(RateLimiterTest, WaitRoundsUpPartialSeconds) {
  FakeClock clock;
  RateLimiter limiter(clock, 1, kWindowMs);
  limiter.Record("a");
  clock.AdvanceMillis(57'001);  // 2999 ms left
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 3);
  clock.AdvanceMillis(2'000);  // 999 ms left
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 1);
}

TEST(RateLimiterTest, AllowsAgainAfterTheWindowPasses) {
  FakeClock clock;
  RateLimiter limiter(clock, 3, kWindowMs);
  for (int i = 0; i < 3; ++i) limiter.Record("a");
  clock.AdvanceMillis(kWindowMs - 1);
  EXPECT_GE(limiter.SecondsUntilAllowed("a"), 1);
  clock.AdvanceMillis(1);
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 0);
}

TEST(RateLimiterTest, WindowSlidesOneEventAtATime) {
  FakeClock clock;
  RateLimiter limiter(clock, 2, kWindowMs);
  limiter.Record("a");  // t = 0
  clock.AdvanceMillis(30'000);
  limiter.Record("a");  // t = 30 s
  clock.AdvanceMillis(30'000);
  // t = 60 s: the first event has aged out, the second has not.
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 0);
  limiter.Record("a");
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 30);
}

TEST(RateLimiterTest, ResetForgetsKey) {
  FakeClock clock;
  RateLimiter limiter(clock, 2, kWindowMs);
  limiter.Record("a");
  limiter.Record("a");
  ASSERT_GE(limiter.SecondsUntilAllowed("a"), 1);
  limiter.Reset("a");
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 0);
  // After a reset the full budget is available again.
  limiter.Record("a");
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 0);
}

TEST(RateLimiterTest, ResetOfUnknownKeyIsHarmless) {
  FakeClock clock;
  RateLimiter limiter(clock, 1, kWindowMs);
  limiter.Record("a");
  limiter.Reset("b");
  EXPECT_GE(limiter.SecondsUntilAllowed("a"), 1);
}

TEST(RateLimiterTest, KeysAreIndependent) {
  FakeClock clock;
  RateLimiter limiter(clock, 2, kWindowMs);
  limiter.Record("a");
  limiter.Record("a");
  EXPECT_GE(limiter.SecondsUntilAllowed("a"), 1);
  EXPECT_EQ(limiter.SecondsUntilAllowed("b"), 0);
  limiter.Record("b");
  EXPECT_EQ(limiter.SecondsUntilAllowed("b"), 0);
  limiter.Reset("b");
  EXPECT_GE(limiter.SecondsUntilAllowed("a"), 1);
}

TEST(RateLimiterTest, RecordingPastLimitDoesNotExtendTheWait) {
  FakeClock clock;
  RateLimiter limiter(clock, 2, kWindowMs);
  limiter.Record("a");
  limiter.Record("a");
  clock.AdvanceMillis(30'000);
  limiter.Record("a");  // counted even though refused: the window now holds t = 0 and t = 30 s
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 30);
}

TEST(RateLimiterTest, MaxKeysEvictsTheStalestKey) {
  FakeClock clock;
  RateLimiter limiter(clock, 1, kWindowMs, /*max_keys=*/2);
  limiter.Record("a");
  clock.AdvanceMillis(1'000);
  limiter.Record("b");
  clock.AdvanceMillis(1'000);
  limiter.Record("c");  // the map is full of live keys: "a", seen longest ago, goes
  EXPECT_EQ(limiter.SecondsUntilAllowed("a"), 0);
  EXPECT_GE(limiter.SecondsUntilAllowed("b"), 1);
  EXPECT_GE(limiter.SecondsUntilAllowed("c"), 1);
}

TEST(RateLimiterTest, MaxKeysStaysBoundedUnderManyKeys) {
  FakeClock clock;
  RateLimiter limiter(clock, 1, kWindowMs, /*max_keys=*/10);
  for (int i = 0; i < 1000; ++i) {
    limiter.Record("key" + std::to_string(i));
    clock.AdvanceMillis(1);
  }
  // Only the 10 most recent keys can still be tracked; the newest always is.
  int tracked = 0;
  for (int i = 0; i < 1000; ++i) {
    if (limiter.SecondsUntilAllowed("key" + std::to_string(i)) > 0) ++tracked;
  }
  EXPECT_EQ(tracked, 10);
  EXPECT_GE(limiter.SecondsUntilAllowed("key999"), 1);
  EXPECT_GE(limiter.SecondsUntilAllowed("key990"), 1);
  EXPECT_EQ(limiter.SecondsUntilAllowed("key989"), 0);
}

TEST(RateLimiterTest, MaxKeysDropsExpiredKeysFirst) {
  FakeClock clock;
  RateLimiter limiter(clock, 1, kWindowMs, /*max_keys=*/2);
  limiter.Record("old");
  clock.AdvanceMillis(kWindowMs + 1);
  limiter.Record("b");
  limiter.Record("c");  // "old" has expired: it makes room, "b" stays
  EXPECT_GE(limiter.SecondsUntilAllowed("b"), 1);
  EXPECT_GE(limiter.SecondsUntilAllowed("c"), 1);
}

}  // namespace
}  // namespace datasite::auth

namespace datasite::auth {
namespace {

TEST(RateLimiterTest, CountIsTheEventsInTheWindow) {
  FakeClock clock;
  RateLimiter limiter(clock, 3, kWindowMs);
  EXPECT_EQ(limiter.Count("a"), 0);
  limiter.Record("a");
  limiter.Record("a");
  EXPECT_EQ(limiter.Count("a"), 2);
  clock.AdvanceMillis(kWindowMs);
  EXPECT_EQ(limiter.Count("a"), 0);
}

TEST(ConcurrencyLimitTest, RefusesPastItsSlotsAndFreesOnRelease) {
  ConcurrencyLimit limit(2);
  auto a = limit.TryAcquire();
  auto b = limit.TryAcquire();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(limit.TryAcquire());
  a.reset();
  EXPECT_TRUE(limit.TryAcquire());
}

TEST(ConcurrencyLimitTest, AMovedSlotIsReleasedOnce) {
  ConcurrencyLimit limit(1);
  {
    auto a = limit.TryAcquire();
    ASSERT_TRUE(a);
    auto moved = std::move(*a);
    a.reset();
    EXPECT_FALSE(limit.TryAcquire());
  }
  auto again = limit.TryAcquire();
  EXPECT_TRUE(again);
  EXPECT_FALSE(limit.TryAcquire());
}

}  // namespace
}  // namespace datasite::auth
