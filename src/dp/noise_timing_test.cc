// Timings of the samplers with the system CSPRNG, printed for the record (never asserted: this
// machine's load varies). Also prints the time of the most extreme inputs, which fixed work
// should make no different from random ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <vector>

#include "dp/noise.h"
#include "dp/random_for_test.h"

namespace datasite::dp {
namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double MicrosecondsPerCall(int calls, F f) {
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < calls; ++i) f();
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count() / calls;
}

volatile int64_t sink;

TEST(NoiseTimingTest, PrintsMicrosecondsPerSample) {
  RandomBits& random = SystemRandom();
  std::printf("%-34s %10s %10s %9s %12s\n", "sampler", "create us", "sample us", "bytes",
              "tv bound");
  for (int64_t scale : {1, 100, 1000000, 1000000000}) {
    const Clock::time_point start = Clock::now();
    auto s = DiscreteLaplace::Create({scale, 1});
    const double create = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    ASSERT_TRUE(s.ok());
    const double sample = MicrosecondsPerCall(20000, [&] { sink = s->Sample(random); });
    std::printf("discrete Laplace scale %-11lld %10.1f %10.2f %9zu %12.3g\n",
                static_cast<long long>(scale), create, sample, s->bytes_per_sample(),
                s->tv_bound());
  }
  for (int64_t sigma : {1, 100, 1000000, 1000000000}) {
    const Clock::time_point start = Clock::now();
    auto g = DiscreteGaussian::Create({sigma * sigma, 1});
    const double create = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
    ASSERT_TRUE(g.ok());
    const double sample = MicrosecondsPerCall(2000, [&] { sink = g->Sample(random); });
    std::printf("discrete Gaussian sigma %-10lld %10.1f %10.2f %9zu %12.3g\n",
                static_cast<long long>(sigma), create, sample, g->bytes_per_sample(),
                g->tv_bound());
  }
  for (Rational gamma : {Rational{1, 2}, Rational{10, 1}, Rational{63, 1}}) {
    auto b = BernoulliExp::Create(gamma);
    ASSERT_TRUE(b.ok());
    const double sample = MicrosecondsPerCall(5000, [&] { sink = b->Sample(random); });
    std::printf("BernoulliExp gamma %4lld/%-14lld %10s %10.2f %9zu %12.3g\n",
                static_cast<long long>(gamma.num), static_cast<long long>(gamma.den), "-", sample,
                b->bytes_per_sample(), b->tv_bound());
  }
  auto bernoulli = Bernoulli::Create({1, 3});
  ASSERT_TRUE(bernoulli.ok());
  std::printf("Bernoulli 1/3 %31.2f\n",
              MicrosecondsPerCall(100000, [&] { sink = bernoulli->Sample(random); }));
}

// Replays a fixed pattern of bytes, so that every source below costs the same memcpy.
class ReplayRandom final : public RandomBits {
 public:
  explicit ReplayRandom(std::vector<uint8_t> pattern) : pattern_(std::move(pattern)) {}
  void Fill(std::span<uint8_t> out) override {
    for (size_t done = 0; done < out.size();) {
      const size_t n = std::min(out.size() - done, pattern_.size() - next_);
      std::memcpy(out.data() + done, pattern_.data() + next_, n);
      done += n;
      next_ = (next_ + n) % pattern_.size();
    }
  }

 private:
  std::vector<uint8_t> pattern_;
  size_t next_ = 0;
};

TEST(NoiseTimingTest, ExtremeInputsTakeAsLongAsRandomOnes) {
  // All-zero words accept every digit and every candidate (the first Gaussian candidate kept);
  // all-0xff words reject everything; the split gives the largest Laplace values. Fixed work
  // should make them cost what random words cost, up to noise in the measurement.
  auto g = DiscreteGaussian::Create({10000, 1});
  auto s = DiscreteLaplace::Create({1000000, 1});
  ASSERT_TRUE(g.ok() && s.ok());
  std::vector<uint8_t> random_bytes(1 << 20);
  SeededRandomForTest(1).Fill(random_bytes);
  // Laplace samples of G1 all ones and G2 all zeros, repeated (a whole number of samples).
  const size_t half = s->bytes_per_sample() / 2;
  std::vector<uint8_t> split((1 << 20) / (2 * half) * (2 * half), 0xff);
  for (size_t i = 0; i < split.size(); i += 2 * half) {
    std::fill(split.begin() + i, split.begin() + i + half, 0x00);
  }
  const std::pair<const char*, std::vector<uint8_t>> patterns[] = {
      {"random", random_bytes},
      {"zeros", std::vector<uint8_t>(1 << 20, 0x00)},
      {"0xff", std::vector<uint8_t>(1 << 20, 0xff)},
      {"split", split}};
  for (const auto& [name, pattern] : patterns) {
    ReplayRandom source(pattern);
    const double gaussian = MicrosecondsPerCall(3000, [&] { sink = g->Sample(source); });
    const double laplace = MicrosecondsPerCall(30000, [&] { sink = s->Sample(source); });
    std::printf("%-7s Gaussian sigma 100: %7.2f us   Laplace scale 1e6: %6.3f us\n", name, gaussian,
                laplace);
  }
}

}  // namespace
}  // namespace datasite::dp
