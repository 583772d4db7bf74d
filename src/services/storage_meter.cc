#include "services/storage_meter.h"

namespace datasite::services {

bool StorageMeter::TryAdd(int64_t bytes) {
  int64_t used = used_.load();
  do {
    if (used + bytes > limit_) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes));
  return true;
}

}  // namespace datasite::services
