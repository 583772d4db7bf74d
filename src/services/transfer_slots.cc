#include "services/transfer_slots.h"

namespace datasite::services {

namespace {

// A download's reader that holds one of its caller's download slots until the download ends.
class SlotReader : public blob::BlobReader {
 public:
  SlotReader(std::unique_ptr<blob::BlobReader> reader, TransferSlots::Slot slot)
      : reader_(std::move(reader)), slot_(std::move(slot)) {}
  int64_t size() const override { return reader_->size(); }
  Result<size_t> ReadAt(int64_t offset, char* buf, size_t n) override {
    return reader_->ReadAt(offset, buf, n);
  }

 private:
  std::unique_ptr<blob::BlobReader> reader_;
  const TransferSlots::Slot slot_;
};

}  // namespace

Result<std::unique_ptr<blob::BlobReader>> OpenForDownload(TransferSlots& slots,
                                                          const DownloadShares& shares,
                                                          const Principal& caller,
                                                          blob::BlobStore& store,
                                                          const std::string& id) {
  const bool guest = !caller.user_id;
  std::optional<TransferSlots::Slot> slot =
      slots.TryTake(guest ? "download guests" : "download " + *caller.user_id,
                    guest ? shares.guests : shares.per_user);
  if (!slot) return store.OpenWithoutReadAhead(id);
  ASSIGN_OR_RETURN(auto reader, store.Open(id));
  return std::unique_ptr<blob::BlobReader>(
      std::make_unique<SlotReader>(std::move(reader), std::move(*slot)));
}

TransferSlots::TransferSlots() : state_(std::make_shared<Slot::State>()) {}

std::optional<TransferSlots::Slot> TransferSlots::TryTake(const std::string& key, int limit) {
  std::lock_guard<std::mutex> lock(state_->mu);
  int& n = state_->held[key];
  if (n >= limit) {
    if (n == 0) state_->held.erase(key);
    return std::nullopt;
  }
  ++n;
  return Slot(state_, key);
}

int TransferSlots::held(const std::string& key) const {
  std::lock_guard<std::mutex> lock(state_->mu);
  auto it = state_->held.find(key);
  return it == state_->held.end() ? 0 : it->second;
}

TransferSlots::Slot& TransferSlots::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    state_ = std::move(other.state_);
    key_ = std::move(other.key_);
  }
  return *this;
}

void TransferSlots::Slot::Release() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    auto it = state_->held.find(key_);
    if (it != state_->held.end() && --it->second <= 0) state_->held.erase(it);
  }
  state_.reset();
}

}  // namespace datasite::services
