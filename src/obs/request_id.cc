#include "obs/request_id.h"

#include <random>

namespace datasite::obs {
namespace {

thread_local std::string_view current_id;

}  // namespace

bool IsSafeRequestId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string NewRequestId() {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t v = gen();
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) id[static_cast<size_t>(i)] = kHex[v & 0xf];
  return id;
}

std::string_view CurrentRequestId() { return current_id; }

ScopedRequestId::ScopedRequestId(std::string_view id) : previous_(current_id) { current_id = id; }

ScopedRequestId::~ScopedRequestId() { current_id = previous_; }

}  // namespace datasite::obs
