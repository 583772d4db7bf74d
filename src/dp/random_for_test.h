// Deterministic random sources for the tests of this module. Never used outside tests: production
// code draws from SystemRandom().
#ifndef DATASITE_DP_RANDOM_FOR_TEST_H_
#define DATASITE_DP_RANDOM_FOR_TEST_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>

#include "dp/random_bits.h"

namespace datasite::dp {

// SplitMix64 (Steele, Lea and Flood 2014): a seeded stream that passes BigCrush, so the
// statistical tests are reproducible. Not thread-safe.
class SeededRandomForTest final : public RandomBits {
 public:
  explicit SeededRandomForTest(uint64_t seed) : state_(seed) {}

  void Fill(std::span<uint8_t> out) override {
    size_t i = 0;
    while (i < out.size()) {
      const uint64_t word = Next();
      const size_t n = std::min(out.size() - i, sizeof(word));
      std::memcpy(out.data() + i, &word, n);
      i += n;
    }
  }

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// Every byte the same value: the most extreme draws a sampler can see (all zeros make every
// "U < threshold" test succeed, all 0xff make it fail).
class ConstantRandomForTest final : public RandomBits {
 public:
  explicit ConstantRandomForTest(uint8_t byte) : byte_(byte) {}
  void Fill(std::span<uint8_t> out) override { std::memset(out.data(), byte_, out.size()); }

 private:
  uint8_t byte_;
};

// In each Fill, the first `zeros` bytes are 0x00 and the rest 0xff: for a discrete Laplace with
// zeros = 16 * bits(), every digit of G1 is 1 and every digit of G2 is 0, the largest value.
class SplitRandomForTest final : public RandomBits {
 public:
  explicit SplitRandomForTest(size_t zeros) : zeros_(zeros) {}
  void Fill(std::span<uint8_t> out) override {
    const size_t n = std::min(zeros_, out.size());
    std::memset(out.data(), 0x00, n);
    std::memset(out.data() + n, 0xff, out.size() - n);
  }

 private:
  size_t zeros_;
};

// Counts what passes through to another source. Not thread-safe.
class CountingRandomForTest final : public RandomBits {
 public:
  explicit CountingRandomForTest(RandomBits& inner) : inner_(inner) {}
  void Fill(std::span<uint8_t> out) override {
    ++calls_;
    bytes_ += out.size();
    inner_.Fill(out);
  }
  uint64_t calls() const { return calls_; }
  uint64_t bytes() const { return bytes_; }

 private:
  RandomBits& inner_;
  uint64_t calls_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace datasite::dp

#endif  // DATASITE_DP_RANDOM_FOR_TEST_H_
