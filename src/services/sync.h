// Sync (issue 14): a low side and a high side kept in step by signed bundles (docs/SYNC.md; the
// contract is the issue's). A server exports, per peer, the objects its side may send that the peer
// does not hold yet, as a bundle (sync/bundle.h); it loads a peer's bundle into a pending import,
// computes its diff against its own state, and applies the batches its owner accepts, in one store
// transaction per call.
//
// Direction rules, enforced here on both ends: a low side sends users (data scientists only),
// code, requests and projects; a high side sends datasets with their assets (mocks only),
// decisions on the requests it received and the jobs of approved requests as their requester sees
// them. A server refuses a bundle carrying any kind its side may not receive.
#ifndef DATASITE_SERVICES_SYNC_H_
#define DATASITE_SERVICES_SYNC_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "blob/blob_store.h"
#include "core/clock.h"
#include "core/status.h"
#include "services/code.h"
#include "services/principal.h"
#include "services/settings.h"
#include "services/storage_meter.h"
#include "store/store.h"
#include "sync/bundle.h"

namespace datasite::services {

// One syncable object as a bundle carries it.
struct SyncObject {
  std::string kind;
  std::string id;
  std::string root;  // the batch: "request:<id>", "dataset:<id>", "user:<id>", "project:<id>"
  int64_t version = 0;
  std::string hash;
  nlohmann::json fields;
  std::optional<std::string> blob;  // sha256 of the bytes it needs, if any
  // Export only: how to open the blob's bytes, how many there are, and its name in errors.
  std::function<Result<std::unique_ptr<blob::BlobReader>>()> blob_open;
  int64_t blob_size = 0;
  std::string blob_name;
};

// The hash of an object: lowercase hex SHA-256 of the canonical JSON of `fields` followed by the
// blob's sha256 ('' for none).
std::string SyncObjectHash(const nlohmann::json& fields, const std::optional<std::string>& blob);

// The owner's decisions on an import's batches.
struct SyncDecisions {
  std::vector<std::string> accept;
  std::vector<std::string> overwrite;
  std::vector<std::string> ignore;
  std::vector<std::pair<std::string, std::string>> deny;  // (batch, reason)
};

// Which part of an import's diff to answer. Without `fields`, each batch lists its objects' kind,
// id and status only; with it, every object also has its hash, version and its "incoming" and
// "local" fields. `offset` and `limit` (< 0: no limit) page the batches; the summary is always
// the whole diff's.
struct SyncDiffView {
  bool fields = false;
  int64_t offset = 0;
  int64_t limit = -1;
};

// A bundle ready to be sent: pull its bytes from `source`.
struct SyncExport {
  std::unique_ptr<sync::BundleSource> source;
  int64_t seq = 0;
};

class SyncService;

// Receives one uploaded bundle, a chunk at a time, verifying it as it streams. Not thread-safe.
// Destroying it before Finish removes what it staged.
class SyncImportSink {
 public:
  Status Write(std::string_view chunk) { return verifier_->Write(chunk); }
  // The diff of the verified bundle (the import is then pending).
  // The diff of the loaded bundle, as JSON text (see SyncService::Diff).
  Result<std::string> Finish();

 private:
  friend class SyncService;
  SyncImportSink(SyncService& service, Principal caller);

  SyncService& service_;
  Principal caller_;
  std::unique_ptr<sync::BundleVerifier> verifier_;
};

struct SyncOptions {
  // Where staging files go; must be on the blob store's file system. Empty: the blob store's
  // scratch paths.
  std::string staging_dir;
  // The storage limit a bundle's staged blobs count against (with those of pending imports);
  // none when null.
  StorageMeter* storage = nullptr;
};

// Safe for concurrent use. Every method is for admins only (kPermissionDenied otherwise).
class SyncService {
 public:
  SyncService(store::Store& store, blob::BlobStore& blobs, const SettingsService& settings,
              CodeService& code, const Clock& clock, SyncOptions options = {});
  ~SyncService();

  // {"name", "verify_key", "server_id", "side"}.
  Result<nlohmann::json> Identity(const Principal& caller) const;
  Result<std::vector<store::SyncPeer>> ListPeers(const Principal& caller);
  // kAlreadyExists when the name or key is taken; kInvalidArgument for a malformed name or key.
  Result<store::SyncPeer> AddPeer(const Principal& caller, const std::string& name,
                                  const std::string& verify_key);
  Result<store::SyncPeer> RotatePeer(const Principal& caller, const std::string& name,
                                     const std::string& verify_key);
  Status RevokePeer(const Principal& caller, const std::string& name);

  // The next bundle for `peer`: every object this side may send whose hash differs from what the
  // peer last said it holds, with the blobs they need. last_sent_seq moves, and what is sent is
  // recorded, in one transaction with the audit entry.
  Result<SyncExport> Export(const Principal& caller, const std::string& peer);

  // A sink for one uploaded bundle.
  Result<std::unique_ptr<SyncImportSink>> BeginImport(const Principal& caller);
  // The pending import's diff as it stands now (the part `view` asks for).
  Result<nlohmann::json> Diff(const Principal& caller, const std::string& import_id,
                              const SyncDiffView& view = {});
  // One batch of a pending import with its objects' fields, whether listed, ignored or with
  // nothing to change; kNotFound when the bundle has no such batch.
  Result<nlohmann::json> Batch(const Principal& caller, const std::string& import_id,
                               const std::string& batch);
  // Applies the decisions in one transaction (all or nothing) and returns {"applied", "ignored",
  // "denied", "summary", "batches"}: the batches written (their objects' kind, id and status as
  // they stand after) and the new summary, as JSON text. kAlreadyExists (409) for an accepted
  // batch in conflict not in overwrite.
  Result<std::string> Apply(const Principal& caller, const std::string& import_id,
                            const SyncDecisions& decisions);
  // (peer name, batch id) pairs.
  Result<std::vector<std::pair<std::string, std::string>>> Ignored(const Principal& caller);
  Status Unignore(const Principal& caller, const std::string& peer, const std::string& batch);

  // This side: "low" or "high".
  std::string side() const;

  // Test hook: called inside the apply's transaction after each object is written; an error from
  // it fails the apply (and rolls everything back).
  void SetApplyHookForTest(std::function<Status(const SyncObject&)> hook) {
    apply_hook_ = std::move(hook);
  }

 private:
  friend class SyncImportSink;
  struct Import;

  Status CheckHeader(const sync::BundleHeader& header);
  Result<std::string> Load(const Principal& caller, sync::VerifiedBundle bundle);
  // Every object of `kind` this server holds, projected as it would send it.
  Result<std::vector<SyncObject>> Project(const std::string& kind, const std::string& peer_key);
  // One local object projected (nullopt when absent).
  Result<std::optional<SyncObject>> ProjectOne(const std::string& kind, const std::string& id);
  // The statuses of the import's objects and batches against this side's state, computed anew
  // when a change was logged since they were last computed (each kind projected once).
  Status DiffLocked(Import& import);
  // The diff of the kept statuses: the summary and the page of batches `view` asks for.
  Result<nlohmann::json> RenderDiffLocked(Import& import, const SyncDiffView& view);
  // RenderDiffLocked(import, {}) as JSON text, written directly (the load's answer).
  Result<std::string> RenderDiffTextLocked(Import& import);
  // Called for each batch a view lists: its index in the import's batches, status and state.
  using BatchVisitor =
      std::function<void(size_t batch, const std::string& status, const std::string& state)>;
  // The diff's document without its batches (the summary, the ignored batches); calls
  // `listed_batch` for each batch of the view, in order.
  Result<nlohmann::json> WalkDiffLocked(Import& import, const SyncDiffView& view,
                                        const BatchVisitor& listed_batch);
  // (kind, id) of objects received from the import's peer: its ledger, and what this apply wrote.
  using ObjectKeys = std::set<std::pair<std::string, std::string>>;
  // Writes one received object. Every object it refers to (a code's author, a request's code, a
  // project's members) must be one received from the same peer (`from_peer`): a low side can
  // never attach its objects to this side's own accounts or to another peer's.
  Status ApplyObject(store::Store& tx, Import& import, const SyncObject& object,
                     const ObjectKeys& from_peer, std::vector<std::string>& adopted_blobs);
  std::string StagingPath();
  // Makes the received asset's mock (if any) a blob of this side, adopted from the import's
  // staging file (a copy when an earlier asset of this apply adopted the same bytes), recorded in
  // `tx`, and names it as `asset`'s mock. The blob ids it writes are added to `adopted`.
  Status AdoptMock(store::Store& tx, const Principal& caller, Import& import,
                   const SyncObject& object, store::Asset& asset, std::vector<std::string>& adopted,
                   std::map<std::string, std::string>& adopted_from);
  // A received asset of a dataset already here: inserted when new, its mock replaced when the
  // peer's changed (the replaced blob's id added to `released`, deleted after the commit).
  Status ApplySyncedAsset(store::Store& tx, const Principal& caller, Import& import,
                          const SyncObject& object, store::Asset asset,
                          std::vector<std::string>& adopted,
                          std::map<std::string, std::string>& adopted_from,
                          std::vector<std::string>& released);

  // Checks of a load and of an apply (the sync review's findings; docs/SYNC.md, "Limits and
  // checks"), kept apart from the machinery that diffs and writes.
  // A bundle's blobs are all used by its objects.
  static Status CheckBlobsUsed(const Import& import);
  // The header's blobs fit in the storage limit, with what pending imports have staged.
  Status CheckRoomForBlobs(const sync::BundleHeader& header);
  // Drops expired imports and, to make room for one more when asked, the oldest.
  // REQUIRES: mu_ held.
  void PruneImportsLocked(bool room_for_one);
  // Drops the pending imports of a peer whose key was revoked or rotated.
  void DropImportsOfPeer(const std::string& peer);
  // The import's signing key is still its peer's, and no newer bundle was applied since.
  Status CheckApplyAllowed(store::Store& tx, const Import& import);
  // Records what the first apply of an import acknowledges: its seq, the peer's inventory and
  // peer_seq_seen.
  Status RecordFirstApply(store::Store& tx, Import& import);
  // An object a batch writes either is new here or was received from this same peer: never an
  // object of this side's own or of another peer.
  Status CheckReceivedFromPeer(store::Store& tx, const Import& import, const SyncObject& object,
                               const ObjectKeys& ledger);
  // Each object of a loaded bundle is in a batch its kind allows (a request with its code and
  // requester; a dataset with its assets; a user with their code; a project alone), so that an
  // accepted batch writes only what the owner saw grouped under it.
  // A user or code may also travel in the batch of a request received from `peer` before (its
  // requester changed since), and no object is in the bundle twice.
  Status CheckBatchShapes(const std::vector<SyncObject>& objects, const std::string& peer);
  // Received code as this server would have stored it at submission (CodeService::PrepareCode):
  // inputs resolved against its own assets, the hash recomputed and checked.
  Result<store::UserCode> DeriveCode(const SyncObject& object, nlohmann::json& policy_spec);
  // A received user whose email (compared as accounts compare it) is another account's here.
  // `holders` (email -> account id) is read from the store on first use and kept by the caller.
  Result<bool> EmailHeldByAnother(const SyncObject& object,
                                  std::optional<std::map<std::string, std::string>>& holders);

  store::Store& store_;
  blob::BlobStore& blobs_;
  const SettingsService& settings_;
  CodeService& code_;
  const Clock& clock_;
  const SyncOptions options_;
  std::function<Status(const SyncObject&)> apply_hook_;

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<Import>> imports_;  // Guarded by mu_.
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_SYNC_H_
