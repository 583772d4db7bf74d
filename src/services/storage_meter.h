// StorageMeter: the bytes the server keeps on disk — blobs, job results and job logs — counted
// against one limit (--max-storage-bytes).
#ifndef DATASITE_SERVICES_STORAGE_METER_H_
#define DATASITE_SERVICES_STORAGE_METER_H_

#include <atomic>
#include <cstdint>

namespace datasite::services {

// Safe for concurrent use.
class StorageMeter {
 public:
  explicit StorageMeter(int64_t limit) : limit_(limit) {}
  StorageMeter(const StorageMeter&) = delete;
  StorageMeter& operator=(const StorageMeter&) = delete;

  int64_t limit() const { return limit_; }
  int64_t used() const { return used_.load(); }
  // Counts `bytes` more when the total stays within the limit; false (nothing counted) otherwise.
  bool TryAdd(int64_t bytes);
  // Counts `bytes` more (negative: fewer), whatever the limit: what is already on disk.
  void Add(int64_t bytes) { used_ += bytes; }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_STORAGE_METER_H_
