#include "services/transfer_slots.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace datasite::services {
namespace {

TEST(TransferSlotsTest, AKeyGetsAtMostItsLimitAndOthersAreUntouched) {
  TransferSlots slots;
  std::vector<TransferSlots::Slot> held;
  for (int i = 0; i < 3; ++i) {
    auto s = slots.TryTake("user:a", 3);
    ASSERT_TRUE(s.has_value()) << i;
    held.push_back(std::move(*s));
  }
  EXPECT_FALSE(slots.TryTake("user:a", 3).has_value());
  EXPECT_EQ(slots.held("user:a"), 3);
  EXPECT_TRUE(slots.TryTake("user:b", 3).has_value());
  EXPECT_EQ(slots.held("user:b"), 0);  // the slot above was dropped at once
}

TEST(TransferSlotsTest, ASlotIsGivenBackWhenItGoesAndOnlyOnce) {
  TransferSlots slots;
  auto first = slots.TryTake("k", 1);
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(slots.TryTake("k", 1).has_value());
  TransferSlots::Slot moved = std::move(*first);
  first.reset();  // the moved-from slot holds nothing
  EXPECT_EQ(slots.held("k"), 1);
  { TransferSlots::Slot gone = std::move(moved); }
  EXPECT_EQ(slots.held("k"), 0);
  EXPECT_TRUE(slots.TryTake("k", 1).has_value());
}

TEST(TransferSlotsTest, ALimitOfZeroRefusesEverything) {
  TransferSlots slots;
  EXPECT_FALSE(slots.TryTake("k", 0).has_value());
  EXPECT_EQ(slots.held("k"), 0);
}

TEST(TransferSlotsTest, ASlotMayOutliveItsTransferSlots) {
  std::optional<TransferSlots::Slot> slot;
  {
    TransferSlots slots;
    slot = slots.TryTake("k", 1);
    ASSERT_TRUE(slot.has_value());
  }
  slot.reset();  // must not touch freed memory (ASan would say so)
}

TEST(TransferSlotsTest, ConcurrentTakersNeverPassTheLimit) {
  TransferSlots slots;
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto s = slots.TryTake("k", 2);
        if (!s) continue;
        int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(slots.held("k"), 0);
}

}  // namespace
}  // namespace datasite::services
