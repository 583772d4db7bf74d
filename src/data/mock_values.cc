#include "data/mock_values.h"

#include <charconv>

namespace datasite::data::internal {

bool DrawChance(Rng& rng, double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return UniformUnit(rng) < p;
}

int64_t DrawInt(Rng& rng, const MockValueParams* params) {
  Int128 lo = kDefaultIntMin, hi = kDefaultIntMax;
  if (params != nullptr && params->bounds) {
    lo = params->bounds->imin;
    hi = params->bounds->imax;
  }
  return static_cast<int64_t>(UniformInt(rng, lo, hi));
}

double DrawReal(Rng& rng, const MockValueParams* params) {
  if (params != nullptr && params->bounds) {
    return UniformReal(rng, params->bounds->min, params->bounds->max);
  }
  return UniformReal(rng, kDefaultRealMin, kDefaultRealMax);
}

std::string FormatReal(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string text(buf, end);
  if (text.find_first_of(".eE") == std::string::npos) text += ".0";
  return text;
}

std::string DrawLabel(Rng& rng, std::string_view name) {
  std::string label(name);
  label += '_';
  label += std::to_string(1 + UniformIndex(rng, kSyntheticLabels));
  return label;
}

Status MockBudget::Check() const {
  if (used_ <= kMaxMockBytes) return Status::Ok();
  return InvalidArgumentError("the mock would be larger than " +
                              std::to_string(kMaxMockBytes >> 20) + " MiB; " + advice_);
}

}  // namespace datasite::data::internal
