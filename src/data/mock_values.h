// What the three mock writers share: drawing one value from an owner's parameters or the defaults,
// synthetic labels, and the cap on a mock's size.
#ifndef DATASITE_DATA_MOCK_VALUES_H_
#define DATASITE_DATA_MOCK_VALUES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "data/mock_params.h"
#include "data/sampling.h"

namespace datasite::data::internal {

// True with chance `p` (never when p is 0, always when p is 1).
bool DrawChance(Rng& rng, double p);

// An integer uniform in the owner's bounds, else in [kDefaultIntMin, kDefaultIntMax].
// REQUIRES: bounds, when given, are integers.
int64_t DrawInt(Rng& rng, const MockValueParams* params);
// A float uniform in the owner's bounds, else in [kDefaultRealMin, kDefaultRealMax].
double DrawReal(Rng& rng, const MockValueParams* params);

// The shortest text that reads back as `v`, always with a '.' or an exponent, so that it reads
// back as a float and not an integer: 3 -> "3.0".
std::string FormatReal(double v);

// "<name>_<k>" with k uniform in [1, kSyntheticLabels]: a label whose length depends on the name
// alone.
std::string DrawLabel(Rng& rng, std::string_view name);

// Counts the bytes of a mock as they are written; Check() refuses a mock past kMaxMockBytes, with
// `advice` on what to ask for instead. Not thread-safe.
class MockBudget {
 public:
  explicit MockBudget(std::string advice) : advice_(std::move(advice)) {}
  void Add(uint64_t bytes) { used_ += bytes; }
  Status Check() const;

 private:
  std::string advice_;
  uint64_t used_ = 0;
};

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_MOCK_VALUES_H_
