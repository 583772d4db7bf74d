// TransferSlots: how many uploads (or downloads read ahead) one caller may have in flight at once,
// so that one account (or all guests together) can't hold every buffer of the blob store (an S3
// store's part and read-window budgets are shared by the whole server).
#ifndef DATASITE_SERVICES_TRANSFER_SLOTS_H_
#define DATASITE_SERVICES_TRANSFER_SLOTS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "blob/blob_store.h"
#include "core/status.h"
#include "services/principal.h"

namespace datasite::services {

// Safe for concurrent use. A Slot may outlive the TransferSlots that gave it.
class TransferSlots {
 public:
  // Holds one of a key's slots until destroyed. Move-only.
  class Slot {
   public:
    Slot(Slot&& other) noexcept = default;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { Release(); }

   private:
    friend class TransferSlots;
    struct State;
    Slot(std::shared_ptr<State> state, std::string key)
        : state_(std::move(state)), key_(std::move(key)) {}
    void Release();

    std::shared_ptr<State> state_;
    std::string key_;
  };

  TransferSlots();

  // One of `key`'s slots when fewer than `limit` are held; nullopt otherwise.
  std::optional<Slot> TryTake(const std::string& key, int limit);
  // How many of `key`'s slots are held.
  int held(const std::string& key) const;

 private:
  std::shared_ptr<Slot::State> state_;
};

struct TransferSlots::Slot::State {
  mutable std::mutex mu;
  std::unordered_map<std::string, int> held;  // keys with at least one slot held
};

// Downloads read ahead at once (an object store's read-ahead memory is the server's to share):
// per account, and for all guests together (a guest session costs nothing to make).
struct DownloadShares {
  int per_user = 4;
  int guests = 8;
};

// A reader of blob `id` in `store` for a download by `caller`: read ahead while it holds one of
// the caller's download slots (given back when the reader goes); past them, without read-ahead
// (BlobStore::OpenWithoutReadAhead: slower from an object store, never refused).
Result<std::unique_ptr<blob::BlobReader>> OpenForDownload(TransferSlots& slots,
                                                          const DownloadShares& shares,
                                                          const Principal& caller,
                                                          blob::BlobStore& store,
                                                          const std::string& id);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_TRANSFER_SLOTS_H_
