#include "dp/random_bits.h"

#include <pthread.h>
#include <sodium.h>
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace datasite::dp {
namespace {

// Bumped in a child after fork(): a thread's block filled under another generation is stale.
std::atomic<uint64_t> fork_generation{0};

void OnForkInChild() { fork_generation.fetch_add(1, std::memory_order_relaxed); }

// The kernel's CSPRNG. getrandom(2) without flags blocks only until the pool is first seeded, and
// a call may return fewer bytes if a signal arrives. Without it no noise can be drawn safely, so
// any other failure stops the process rather than sample from something weaker.
void GetRandom(uint8_t* out, size_t size) {
  while (size > 0) {
    const ssize_t n = getrandom(out, size, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::abort();
    }
    out += n;
    size -= static_cast<size_t>(n);
  }
}

// 16 KiB: one getrandom call per block costs about 3 ns per byte here, where libsodium's
// randombytes_buf (one call per 256 bytes) costs 5.4.
constexpr size_t kBlockBytes = 16384;

// One thread's unread random bytes: bytes[next, kBlockBytes).
struct Block {
  std::array<uint8_t, kBlockBytes> bytes{};
  size_t next = kBlockBytes;
  uint64_t generation = 0;
};

class SystemRandomBits final : public RandomBits {
 public:
  void Fill(std::span<uint8_t> out) override {
    // On the heap, so that threads that never draw noise carry no block.
    thread_local std::unique_ptr<Block> block = std::make_unique<Block>();
    Block& b = *block;
    const uint64_t generation = fork_generation.load(std::memory_order_relaxed);
    if (b.generation != generation) {
      sodium_memzero(b.bytes.data(), b.bytes.size());
      b.next = kBlockBytes;
      b.generation = generation;
    }
    size_t done = 0;
    while (done < out.size()) {
      if (b.next == kBlockBytes) {
        // A request of a block or more goes straight to the kernel.
        if (out.size() - done >= kBlockBytes) {
          GetRandom(out.data() + done, out.size() - done);
          return;
        }
        GetRandom(b.bytes.data(), b.bytes.size());
        b.next = 0;
      }
      const size_t n = std::min(out.size() - done, kBlockBytes - b.next);
      std::memcpy(out.data() + done, b.bytes.data() + b.next, n);
      sodium_memzero(b.bytes.data() + b.next, n);
      b.next += n;
      done += n;
    }
  }
};

}  // namespace

RandomBits& SystemRandom() {
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(nullptr, nullptr, OnForkInChild); });
  static SystemRandomBits instance;
  return instance;
}

}  // namespace datasite::dp
