// A set of 64-bit hashes that stops growing at a fixed size: enough to count distinct values
// (up to the cap) in constant memory.
#ifndef DATASITE_DATA_BOUNDED_HASH_SET_H_
#define DATASITE_DATA_BOUNDED_HASH_SET_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace datasite::data::internal {

// Open addressing with linear probing; at most 2 * max_size slots of 8 bytes, allocated as it
// grows. Not thread-safe.
class BoundedHashSet {
 public:
  explicit BoundedHashSet(size_t max_size = 0) : max_size_(max_size) {}

  // Adds `hash` unless the set already holds max_size hashes.
  void Insert(uint64_t hash) {
    if (hash == 0) hash = 1;  // 0 marks an empty slot.
    if (Contains(hash) || size_ >= max_size_) return;
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    Place(slots_, hash);
    ++size_;
  }
  bool Contains(uint64_t hash) const {
    if (hash == 0) hash = 1;
    if (slots_.empty()) return false;
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      if (slots_[i] == hash) return true;
      if (slots_[i] == 0) return false;
    }
  }
  size_t size() const { return size_; }
  // True once Insert no longer adds: the true number of distinct values may be larger.
  bool full() const { return size_ >= max_size_; }

 private:
  static void Place(std::vector<uint64_t>& slots, uint64_t hash) {
    size_t mask = slots.size() - 1;
    size_t i = hash & mask;
    while (slots[i] != 0) i = (i + 1) & mask;
    slots[i] = hash;
  }
  void Grow() {
    std::vector<uint64_t> bigger(slots_.empty() ? 16 : slots_.size() * 2, 0);
    for (uint64_t h : slots_) {
      if (h != 0) Place(bigger, h);
    }
    slots_.swap(bigger);
  }

  size_t max_size_;
  size_t size_ = 0;
  std::vector<uint64_t> slots_;
};

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_BOUNDED_HASH_SET_H_
