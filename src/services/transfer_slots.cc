#include "services/transfer_slots.h"

namespace datasite::services {

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
