#include "services/storage_meter.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace datasite::services {
namespace {

TEST(StorageMeterTest, TryAddCountsUpToTheLimitAndNoFurther) {
  StorageMeter meter(100);
  EXPECT_TRUE(meter.TryAdd(60));
  EXPECT_TRUE(meter.TryAdd(40));
  EXPECT_FALSE(meter.TryAdd(1));
  EXPECT_EQ(meter.used(), 100);
  meter.Add(-30);
  EXPECT_FALSE(meter.TryAdd(31));
  EXPECT_TRUE(meter.TryAdd(30));
  EXPECT_EQ(meter.used(), 100);
}

TEST(StorageMeterTest, AddCountsWhatIsOnDiskPastTheLimit) {
  StorageMeter meter(10);
  meter.Add(25);
  EXPECT_EQ(meter.used(), 25);
  EXPECT_FALSE(meter.TryAdd(0 + 1));
}

TEST(StorageMeterTest, ConcurrentTryAddsNeverPassTheLimit) {
  StorageMeter meter(1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&meter] {
      for (int i = 0; i < 1000; ++i) (void)meter.TryAdd(3);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(meter.used(), 1000);
  EXPECT_GT(meter.used(), 1000 - 3);
}

}  // namespace
}  // namespace datasite::services
