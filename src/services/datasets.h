// Datasets: blobs (streamed uploads), generated mocks, datasets with assets, and who may read which
// bytes.
//
// Private bytes go to data owners and admins only; everyone allowed on the server reads metadata
// and mocks. A dataset becomes visible in one transaction, after all of its blobs are durable.
#ifndef DATASITE_SERVICES_DATASETS_H_
#define DATASITE_SERVICES_DATASETS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "blob/blob_store.h"
#include "core/clock.h"
#include "core/status.h"
#include "data/mock_params.h"
#include "services/principal.h"
#include "services/settings.h"
#include "services/storage_meter.h"
#include "services/transfer_slots.h"
#include "store/store.h"

namespace datasite::services {

struct DatasetsOptions {
  int64_t max_blob_bytes = 64ll << 30;
  int64_t max_storage_bytes = 1ll << 40;
  int64_t unused_blob_ttl_seconds = 24 * 3600;
  // Recover leaves the blob files (committed or not) written less than this long ago: when other
  // processes upload into the same blob store (--storage-dir), a fresh file may be one of their
  // uploads in flight. 0: every file is this process's, and none is in flight at start-up.
  int64_t keep_recent_files_seconds = 0;
  // Uploads (mock generation included) one account may have in progress at once.
  int max_uploads_per_user = 4;
  // Blob and asset downloads one account may have read ahead at once, and all guests together;
  // more are sent without read-ahead (from an object store, a request per piece).
  int max_downloads_per_user = 4;
  int max_downloads_of_guests = 8;
};

// One upload in progress. Not thread-safe (the HTTP layer calls it one chunk at a time). Destroying
// it before Finish removes everything it wrote.
class BlobUpload {
 public:
  virtual ~BlobUpload() = default;
  // kResourceExhausted past the blob or storage limit.
  virtual Status Write(std::string_view chunk) = 0;
  // Checks the bytes parse as their format, makes them durable and records the blob.
  virtual Result<store::Blob> Finish() = 0;
};

struct NewAsset {
  std::string name;
  std::string description;
  std::optional<std::string> data_blob_id;
  std::optional<std::string> mock_blob_id;
  bool mock_is_real = false;
  // Descriptive metadata, kept as given: people credited, and data subjects as a JSON array of
  // objects {name, description?, aliases?, members?} (checked by the API layer).
  std::vector<store::Contributor> contributors;
  std::string data_subjects_json = "[]";
  // Typed sidecars of a CSV data file and mock (data/sidecar.h), checked against the blobs.
  std::optional<nlohmann::json> data_meta;
  std::optional<nlohmann::json> mock_meta;
};

struct NewDataset {
  std::string name;
  std::string summary;
  std::string description;
  std::string citation;
  std::string url;
  std::vector<store::Contributor> contributors;
  std::vector<NewAsset> assets;
};

struct DatasetPatch {
  std::optional<std::string> name;
  std::optional<std::string> summary;
  std::optional<std::string> description;
  std::optional<std::string> citation;
  std::optional<std::string> url;
  std::optional<std::vector<store::Contributor>> contributors;
};

// The bytes of a blob, for a download: read from `reader`, opened before the answer starts.
struct BlobBytes {
  std::unique_ptr<blob::BlobReader> reader;
  store::Blob blob;
};

// Safe for concurrent use.
class Datasets {
 public:
  Datasets(store::Store& store, blob::BlobStore& blobs, const SettingsService& settings,
           const Clock& clock, DatasetsOptions options);

  // At start-up, before serving (once): removes temporary files of broken uploads, blob files no
  // row records (both only when older than keep_recent_files_seconds), and blobs no asset has used
  // for longer than the TTL; counts the rest in storage().
  Status Recover();
  // Counts the stored blobs in storage(), and nothing else: for a process that shares the
  // storage of a server and must not clean it up (`datasite worker`).
  Status CountStoredBytes();
  // Everything the server keeps against --max-storage-bytes: blobs here, job results and logs in
  // the code service.
  StorageMeter& storage() { return storage_; }

  // `collect_unused`: the hourly clean-up of unused blobs rides along (uploads only: a mock
  // generated in a request that holds the store must not start with writes, see
  // store::Store::RunIdempotent).
  // `size`: the upload's size when the client states it before sending (a Content-Length);
  // writing more, or finishing with fewer, fails the upload.
  Result<std::unique_ptr<BlobUpload>> StartUpload(const Principal& caller,
                                                  const std::string& format,
                                                  std::optional<int64_t> size = std::nullopt,
                                                  bool collect_unused = true);
  // The uploader's (or an admin's) own blob.
  Result<BlobBytes> ReadBlob(const Principal& caller, const std::string& blob_id);
  Status DeleteBlob(const Principal& caller, const std::string& blob_id);
  // A new blob holding a mock of `blob_id`, owned by the caller, made from `params` (see
  // data::GenerateMock: the mock shows the structure of the blob and what `params` declare).
  Result<store::Blob> MakeMock(const Principal& caller, const std::string& blob_id,
                               const data::MockParams& params, uint64_t seed);
  // Replaces the mock of an asset with one generated anew from its private data (data owners and
  // admins); the old mock blob is deleted. Clears the asset's mock_needs_regeneration. Returns the
  // dataset as it is now. kFailedPrecondition when the asset has no private data on this server.
  Result<store::Dataset> RegenerateMock(const Principal& caller, const std::string& dataset,
                                        const std::string& asset, const data::MockParams& params,
                                        uint64_t seed);

  Result<store::Dataset> Create(const Principal& caller, const NewDataset& input);

  // The server-wide data subject registry. Data owners and admins add a subject (JSON as checked
  // by the API: {name, description?, aliases?, members?}) with its members; a subject without
  // members whose name is registered is refused (kAlreadyExists), members registered already are
  // linked as they are. Returns how many subjects were new. Everyone logged in lists them.
  Result<int> AddDataSubject(const Principal& caller, const nlohmann::json& subject);
  Result<std::vector<store::DataSubject>> ListDataSubjects(const Principal& caller);
  // `needs_assets`: see Store::ListDatasets.
  Result<store::DatasetPage> List(
      const Principal& caller, const std::string& search, int64_t page, int64_t page_size,
      const std::function<bool(const store::Dataset&)>& needs_assets = {});
  // See Store::CatalogVersion.
  int64_t CatalogVersion() const { return store_.CatalogVersion(); }
  Result<store::Dataset> Get(const Principal& caller, const std::string& id_or_name);
  Result<store::Dataset> Update(const Principal& caller, const std::string& id,
                                const DatasetPatch& patch);
  Status Delete(const Principal& caller, const std::string& id);
  // An asset's mock (anyone allowed on the server) or private data (data owners and admins).
  Result<BlobBytes> AssetBytes(const Principal& caller, const std::string& dataset,
                               const std::string& asset, bool private_data);

  // Deletes blobs no asset has used since before `now - ttl`. Returns how many.
  Result<int> CollectUnusedBlobs();

 private:
  friend class BlobUploadImpl;
  Result<store::Blob> OwnBlob(const Principal& caller, const std::string& blob_id);
  // A new blob, owned by the caller, holding a mock of the blob `in`.
  Result<store::Blob> GenerateMockBlob(const Principal& caller, const store::Blob& in,
                                       const data::MockParams& params, uint64_t seed);
  Status DeleteBlobFully(const std::string& blob_id);
  // Opens `blob` for a download by `caller`, holding one of the caller's download slots while the
  // reader lives; past them, without the store's read-ahead (BlobStore::OpenWithoutReadAhead).
  Result<BlobBytes> OpenForDownload(const Principal& caller, store::Blob blob);
  // Appends an audit entry through `tx`: inside the transaction of the change it records.
  Status Audit(store::Store& tx, const Principal& actor, const std::string& action,
               const std::string& target, const std::string& detail = "");

  store::Store& store_;
  blob::BlobStore& blobs_;
  const SettingsService& settings_;
  const Clock& clock_;
  const DatasetsOptions options_;
  std::atomic<int64_t> last_collect_{0};
  // Recorded blobs (counted by Recover) and the bytes written by uploads in flight.
  StorageMeter storage_{options_.max_storage_bytes};
  // Uploads and downloads in flight, per account (options_.max_*).
  TransferSlots transfers_;
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_DATASETS_H_
