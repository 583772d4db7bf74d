// Where the samplers' randomness comes from.
//
// Every sampler in this module takes a RandomBits& so that tests can pass a deterministic source.
// Production code passes SystemRandom(), the operating system's CSPRNG; nothing outside tests may
// use a seeded generator.
#ifndef DATASITE_DP_RANDOM_BITS_H_
#define DATASITE_DP_RANDOM_BITS_H_

#include <cstdint>
#include <span>

namespace datasite::dp {

// A source of independent, uniformly random bytes. Implementations say whether they are
// thread-safe.
class RandomBits {
 public:
  virtual ~RandomBits() = default;
  // Overwrites every byte of `out` with random bytes.
  virtual void Fill(std::span<uint8_t> out) = 0;
};

// A CSPRNG keyed by the operating system's: per thread, a 32-byte key from getrandom(2) (again
// every MiB) expanded by ChaCha20 with fast key erasure into 16 KiB blocks (allocated on a thread's
// first draw); bytes handed out, and every spent key, are wiped. A child made by fork() discards
// the block and key it inherited (pthread_atfork), so parent and child never share noise. If
// getrandom fails (other than by a signal) the process aborts: there is no weaker fallback. Safe
// for concurrent use; lives for the whole process.
RandomBits& SystemRandom();

}  // namespace datasite::dp

#endif  // DATASITE_DP_RANDOM_BITS_H_
