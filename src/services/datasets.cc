#include "services/datasets.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <tuple>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/random.h"
#include "data/format.h"
#include "data/mock.h"
#include "data/schema.h"
#include "data/sidecar.h"
#include "services/accounts.h"

namespace datasite::services {

using auth::Role;

namespace {

constexpr int64_t kMaxPageSize = 1000;
constexpr size_t kMaxAssets = 100;
constexpr size_t kMaxContributors = 100;

Status CheckField(const char* field, const std::string& value, size_t max, bool required) {
  if (required && value.empty())
    return InvalidArgumentError(std::string(field) + " must not be empty");
  if (value.size() > max) {
    return InvalidArgumentError(std::string(field) + " must be at most " + std::to_string(max) +
                                " characters");
  }
  return Status::Ok();
}

// Names show in URLs and tables: printable, no slashes.
Status CheckName(const char* what, const std::string& name) {
  RETURN_IF_ERROR(CheckField(what, name, 128, true));
  for (unsigned char c : name) {
    if (c < 0x20 || c == '/' || c == 0x7f) {
      return InvalidArgumentError(std::string(what) +
                                  " must not contain '/' or control characters");
    }
  }
  if (name.front() == ' ' || name.back() == ' ') {
    return InvalidArgumentError(std::string(what) + " must not start or end with a space");
  }
  return Status::Ok();
}

// Datasets are found by id or by name, so a name may not look like an id.
Status CheckDatasetName(const std::string& name) {
  RETURN_IF_ERROR(CheckName("dataset name", name));
  if (IsUuid(name)) return InvalidArgumentError("a dataset name may not be a UUID");
  return Status::Ok();
}

constexpr size_t kMaxAssetMetadataBytes = 64 << 10;

Status CheckContributors(std::vector<store::Contributor>& cs);

// The JSON object kept as an asset's metadata: its contributors (checked like a dataset's) and its
// data subjects.
Result<std::string> AssetMetadata(const NewAsset& a) {
  auto contributors = a.contributors;
  RETURN_IF_ERROR(CheckContributors(contributors));
  auto subjects = nlohmann::json::parse(a.data_subjects_json, nullptr, false);
  if (!subjects.is_array()) return InvalidArgumentError("data_subjects must be an array");
  if (contributors.empty() && subjects.empty()) return std::string("{}");
  nlohmann::json people = nlohmann::json::array();
  for (const auto& c : contributors) {
    people.push_back({{"name", c.name},
                      {"email", c.email},
                      {"role", c.role},
                      {"phone", c.phone},
                      {"note", c.note}});
  }
  std::string text = nlohmann::json{{"contributors", people}, {"data_subjects", subjects}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > kMaxAssetMetadataBytes) {
    return InvalidArgumentError("asset '" + a.name + "': contributors and data subjects take " +
                                std::to_string(text.size()) + " bytes; at most 64 KiB");
  }
  return text;
}

Status CheckContributors(std::vector<store::Contributor>& cs) {
  if (cs.size() > kMaxContributors) return InvalidArgumentError("at most 100 contributors");
  for (auto& c : cs) {
    RETURN_IF_ERROR(CheckField("contributor name", c.name, 128, true));
    RETURN_IF_ERROR(CheckField("contributor role", c.role, 128, false));
    RETURN_IF_ERROR(CheckField("contributor phone", c.phone, 64, false));
    RETURN_IF_ERROR(CheckField("contributor note", c.note, 1024, false));
    if (!c.email.empty()) {
      auto email = NormalizeEmail(c.email);
      if (!email.ok())
        return InvalidArgumentError("contributor " + c.name + ": " + email.status().message());
      c.email = *email;
    }
  }
  return Status::Ok();
}

bool CanReadPrivate(const Principal& p) { return auth::AtLeast(p.role, Role::kDataOwner); }

}  // namespace

class BlobUploadImpl : public BlobUpload {
 public:
  BlobUploadImpl(Datasets& owner, Principal caller, data::Format format,
                 std::unique_ptr<blob::BlobWriter> writer, TransferSlots::Slot slot)
      : owner_(owner),
        caller_(std::move(caller)),
        format_(format),
        writer_(std::move(writer)),
        slot_(std::move(slot)) {}

  ~BlobUploadImpl() override { owner_.storage_.Add(-written_); }

  Status Write(std::string_view chunk) override {
    int64_t n = static_cast<int64_t>(chunk.size());
    // Counted as it is written, so that parallel uploads can't pass the limit.
    if (!owner_.storage_.TryAdd(n)) {
      return ResourceExhaustedError("the server's storage limit of " +
                                    std::to_string(owner_.options_.max_storage_bytes) +
                                    " bytes would be passed by this upload");
    }
    written_ += n;
    return writer_->Append(chunk);
  }

  Result<store::Blob> Finish() override {
    ASSIGN_OR_RETURN(blob::BlobInfo info, writer_->Commit());
    // Refuse what does not parse before anything becomes visible: a committed blob without a row
    // is an orphan, deleted here (or at start-up by Recover, after a crash). The parser reads a
    // file: the directory store's committed file itself.
    auto schema = InferSchema(info.id);
    if (!schema.ok()) {
      (void)owner_.blobs_.Delete(info.id);
      return schema.status();
    }
    store::Blob b{info.id,
                  *caller_.user_id,
                  info.size,
                  info.sha256,
                  std::string(data::FormatName(format_)),
                  schema->dump(),
                  owner_.clock_.NowSeconds()};
    Status st = owner_.store_.InTransaction([&](store::Store& tx) -> Status {
      RETURN_IF_ERROR(tx.InsertBlob(b));
      RETURN_IF_ERROR(
          owner_.Audit(tx, caller_, "blob.upload", "blob:" + b.id,
                       std::to_string(b.size) + " bytes " + b.format + " sha256 " + b.sha256));
      if (generated_from_.empty()) return Status::Ok();
      return owner_.Audit(tx, caller_, "blob.generate_mock", "blob:" + b.id,
                          "from blob:" + generated_from_);
    });
    if (!st.ok()) {
      (void)owner_.blobs_.Delete(info.id);
      return st;
    }
    owner_.storage_.Add(b.size);  // the bytes written stop counting when this upload goes
    return b;
  }

  // The blob is a mock generated from `blob_id`: recorded with it (schema version 6 reads this).
  void set_generated_from(std::string blob_id) { generated_from_ = std::move(blob_id); }

 private:
  Result<nlohmann::json> InferSchema(const std::string& blob_id) {
    // Raw bytes have nothing to parse: a bucket's blob is not fetched back to say so.
    if (auto known = data::SchemaWithoutBytes(format_)) return *known;
    ASSIGN_OR_RETURN(blob::LocalFile file, owner_.blobs_.Materialize(blob_id));
    return data::InferSchema(format_, file.path());
  }

  Datasets& owner_;
  const Principal caller_;
  const data::Format format_;
  std::unique_ptr<blob::BlobWriter> writer_;
  const TransferSlots::Slot slot_;  // one of the uploader's, until this upload goes
  int64_t written_ = 0;
  std::string generated_from_;
};

Datasets::Datasets(store::Store& store, blob::BlobStore& blobs, const SettingsService& settings,
                   const Clock& clock, DatasetsOptions options)
    : store_(store), blobs_(blobs), settings_(settings), clock_(clock), options_(options) {}

Status Datasets::Audit(store::Store& tx, const Principal& actor, const std::string& action,
                       const std::string& target, const std::string& detail) {
  return tx.AppendAudit({clock_.NowSeconds(), actor.AuditName(), action, target, detail});
}

Status Datasets::DeleteBlobFully(const std::string& blob_id) {
  ASSIGN_OR_RETURN(store::Blob b, store_.GetBlob(blob_id));
  // Row first, file once the row's deletion is committed: a crash in between leaves a file
  // without a row, which Recover removes.
  RETURN_IF_ERROR(store_.DeleteBlob(blob_id));
  storage_.Add(-b.size);
  store_.AfterCommit([this, blob_id] {
    Status gone = blobs_.Delete(blob_id);
    if (!gone.ok()) spdlog::warn("deleting the file of blob {}: {}", blob_id, gone.ToString());
  });
  return Status::Ok();
}

Status Datasets::Recover() {
  std::optional<int64_t> written_before;
  if (options_.keep_recent_files_seconds > 0) {
    written_before = clock_.NowSeconds() - options_.keep_recent_files_seconds;
  }
  RETURN_IF_ERROR(blobs_.RemoveTemporaryFiles(written_before));
  ASSIGN_OR_RETURN(auto removable, blobs_.List(written_before));
  ASSIGN_OR_RETURN(auto recorded, store_.AllBlobIds());
  std::unordered_set<std::string> known(recorded.begin(), recorded.end());
  ASSIGN_OR_RETURN(auto on_disk, blobs_.List());
  int orphans = 0;
  for (const auto& id : removable) {
    if (known.count(id)) continue;
    RETURN_IF_ERROR(blobs_.Delete(id));
    ++orphans;
  }
  if (orphans > 0) spdlog::info("removed {} blob files of uploads that never completed", orphans);
  std::unordered_set<std::string> present(on_disk.begin(), on_disk.end());
  for (const auto& id : recorded) {
    if (!present.count(id)) spdlog::error("blob {} is recorded but its file is missing", id);
  }
  RETURN_IF_ERROR(CollectUnusedBlobs().status());
  return CountStoredBytes();
}

Status Datasets::CountStoredBytes() {
  ASSIGN_OR_RETURN(int64_t stored, store_.TotalBlobBytes());
  storage_.Add(stored);
  return Status::Ok();
}

Result<int> Datasets::CollectUnusedBlobs() {
  int64_t now = clock_.NowSeconds();
  last_collect_ = now;
  ASSIGN_OR_RETURN(auto unused, store_.UnusedBlobIds(now - options_.unused_blob_ttl_seconds));
  int n = 0;
  for (const auto& id : unused) {
    Status st = DeleteBlobFully(id);
    if (st.ok()) {
      ++n;
    } else if (st.code() !=
               StatusCode::kFailedPrecondition) {  // taken by a dataset meanwhile: keep
      return st;
    }
  }
  if (n > 0) spdlog::info("deleted {} blobs no dataset used", n);
  return n;
}

Result<std::unique_ptr<BlobUpload>> Datasets::StartUpload(const Principal& caller,
                                                          const std::string& format,
                                                          std::optional<int64_t> size,
                                                          bool collect_unused) {
  if (!CanReadPrivate(caller) || !caller.user_id) {
    return PermissionDeniedError("only data owners and admins can upload data");
  }
  ASSIGN_OR_RETURN(data::Format f, data::ParseFormat(format));
  // Clean-up of abandoned blobs rides along with uploads, at most once an hour.
  if (collect_unused && clock_.NowSeconds() - last_collect_.load() > 3600)
    RETURN_IF_ERROR(CollectUnusedBlobs().status());
  if (storage_.used() >= storage_.limit()) {
    return ResourceExhaustedError("the server's storage limit of " +
                                  std::to_string(options_.max_storage_bytes) + " bytes is reached");
  }
  std::optional<TransferSlots::Slot> slot =
      transfers_.TryTake("upload " + *caller.user_id, options_.max_uploads_per_user);
  if (!slot) {
    return ResourceExhaustedError("you have " + std::to_string(options_.max_uploads_per_user) +
                                  " uploads in progress, as many as an account may; wait for "
                                  "one to finish")
        .WithRetryAfter(5);
  }
  ASSIGN_OR_RETURN(auto writer, blobs_.NewWriter(options_.max_blob_bytes, size));
  return std::unique_ptr<BlobUpload>(
      new BlobUploadImpl(*this, caller, f, std::move(writer), std::move(*slot)));
}

Result<BlobBytes> Datasets::OpenForDownload(const Principal& caller, store::Blob blob) {
  ASSIGN_OR_RETURN(auto reader, services::OpenForDownload(transfers_,
                                                          {options_.max_downloads_per_user,
                                                           options_.max_downloads_of_guests},
                                                          caller, blobs_, blob.id));
  return BlobBytes{std::move(reader), std::move(blob)};
}

Result<store::Blob> Datasets::OwnBlob(const Principal& caller, const std::string& blob_id) {
  if (!CanReadPrivate(caller))
    return PermissionDeniedError("only data owners and admins have blobs");
  auto b = IsUuid(blob_id) ? store_.GetBlob(blob_id) : Result<store::Blob>(NotFoundError(""));
  // A blob is its uploader's alone, admins included, until a dataset publishes it. Someone else's
  // blob answers exactly like a missing one.
  if (!b.ok() || b->owner_id != caller.user_id.value_or("")) {
    if (!b.ok() && b.status().code() != StatusCode::kNotFound) return b.status();
    return NotFoundError("no blob with id " + blob_id.substr(0, 64));
  }
  return b;
}

Result<BlobBytes> Datasets::ReadBlob(const Principal& caller, const std::string& blob_id) {
  ASSIGN_OR_RETURN(store::Blob b, OwnBlob(caller, blob_id));
  return OpenForDownload(caller, std::move(b));
}

Status Datasets::DeleteBlob(const Principal& caller, const std::string& blob_id) {
  ASSIGN_OR_RETURN(store::Blob b, OwnBlob(caller, blob_id));
  RETURN_IF_ERROR(DeleteBlobFully(b.id));
  // The file is gone with the row (DeleteBlobFully): the entry can only follow it.
  return Audit(store_, caller, "blob.delete", "blob:" + b.id);
}

Result<store::Blob> Datasets::MakeMock(const Principal& caller, const std::string& blob_id,
                                       const data::MockParams& params, uint64_t seed) {
  ASSIGN_OR_RETURN(store::Blob in, OwnBlob(caller, blob_id));
  return GenerateMockBlob(caller, in, params, seed);
}

Result<store::Blob> Datasets::GenerateMockBlob(const Principal& caller, const store::Blob& in,
                                               const data::MockParams& params, uint64_t seed) {
  const std::string& blob_id = in.id;
  ASSIGN_OR_RETURN(data::Format f, data::ParseFormat(in.format));
  // The generator reads a file: the directory store's committed file itself.
  ASSIGN_OR_RETURN(blob::LocalFile private_file, blobs_.Materialize(blob_id));
  ASSIGN_OR_RETURN(auto upload,
                   StartUpload(caller, in.format, std::nullopt, /*collect_unused=*/false));
  static_cast<BlobUploadImpl*>(upload.get())->set_generated_from(blob_id);
  // Generate into a scratch file, then stream it through an ordinary upload (hash, fsync, record).
  std::string scratch = blobs_.ScratchPath();
  struct Remove {
    std::string path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove{scratch};
  ASSIGN_OR_RETURN(auto schema, data::GenerateMock(f, private_file.path(), scratch, params, seed));
  (void)schema;
  std::ifstream file(scratch, std::ios::binary);
  std::vector<char> buf(1 << 20);
  while (file) {
    file.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = file.gcount();
    if (n <= 0) break;
    RETURN_IF_ERROR(upload->Write(std::string_view(buf.data(), static_cast<size_t>(n))));
  }
  if (file.bad()) return InternalError("reading the generated mock failed");
  return upload->Finish();
}

Result<store::Dataset> Datasets::RegenerateMock(const Principal& caller, const std::string& dataset,
                                                const std::string& asset_name,
                                                const data::MockParams& params, uint64_t seed) {
  if (!CanReadPrivate(caller) || !caller.user_id) {
    return PermissionDeniedError("only data owners and admins can generate mocks");
  }
  ASSIGN_OR_RETURN(store::Dataset d, store_.GetDataset(dataset));
  auto it = std::find_if(d.assets.begin(), d.assets.end(),
                         [&](const auto& a) { return a.name == asset_name; });
  if (it == d.assets.end())
    return NotFoundError("dataset '" + d.name + "' has no asset '" + asset_name + "'");
  if (!it->data_blob) {
    return FailedPreconditionError("asset '" + asset_name +
                                   "' has no private data on this server to make a mock of; "
                                   "upload a mock instead");
  }
  ASSIGN_OR_RETURN(store::Blob mock, GenerateMockBlob(caller, *it->data_blob, params, seed));
  Result<std::optional<std::string>> replaced = std::optional<std::string>();
  Status changed = store_.InTransaction([&](store::Store& tx) -> Status {
    replaced = tx.ReplaceAssetMock(it->id, mock.id, clock_.NowSeconds());
    RETURN_IF_ERROR(replaced.status());
    return Audit(tx, caller, "asset.regenerate_mock", "dataset:" + d.id,
                 asset_name + " mock blob:" + mock.id);
  });
  if (!changed.ok()) replaced = changed;
  if (!replaced.ok()) {
    (void)DeleteBlobFully(mock.id);
    return replaced.status();
  }
  if (*replaced) {
    Status st = DeleteBlobFully(**replaced);
    if (!st.ok()) spdlog::warn("deleting the replaced mock blob {}: {}", **replaced, st.message());
  }
  return store_.GetDataset(d.id);
}

namespace {

// The sidecar `meta` of an asset's CSV `blob`, checked (data/sidecar.h) against its column count,
// as the JSON text to keep.
Result<std::string> CheckedSidecar(const std::string& asset, const char* which,
                                   const store::Blob& blob, const nlohmann::json& meta) {
  auto fail = [&](const Status& st) {
    return InvalidArgumentError("asset '" + asset + "' " + which + "_meta: " + st.message());
  };
  if (blob.format != "csv") return fail(InvalidArgumentError("only a CSV file has a sidecar"));
  nlohmann::json schema = nlohmann::json::parse(blob.schema, nullptr, false);
  std::optional<size_t> columns;
  if (schema.is_object() && schema.contains("columns") && schema["columns"].is_array())
    columns = schema["columns"].size();
  std::string text;
  try {
    text = meta.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
  } catch (const nlohmann::json::exception&) {
    return fail(InvalidArgumentError("it is not valid UTF-8"));
  }
  auto checked = data::ParseSidecar(text, columns);
  if (!checked.ok()) return fail(checked.status());
  return text;
}

}  // namespace

namespace {

// `subject` and its members, parents before their members, into `out`.
Status FlattenDataSubject(const nlohmann::json& subject, const std::string& parent,
                          const Principal& caller, int64_t now,
                          std::vector<store::DataSubject>& out) {
  store::DataSubject d;
  d.name = subject.value("name", std::string());
  if (d.name == parent) {
    return InvalidArgumentError("data subject '" + d.name + "' can't be a member of itself");
  }
  d.description = subject.value("description", std::string());
  d.aliases = subject.contains("aliases") ? subject["aliases"].dump() : "[]";
  d.parent = parent;
  d.created_by = *caller.user_id;
  d.created_at = now;
  out.push_back(d);
  if (!subject.contains("members")) return Status::Ok();
  for (const auto& member : subject["members"]) {
    RETURN_IF_ERROR(FlattenDataSubject(member, d.name, caller, now, out));
  }
  return Status::Ok();
}

}  // namespace

Result<int> Datasets::AddDataSubject(const Principal& caller, const nlohmann::json& subject) {
  if (!CanReadPrivate(caller) || !caller.user_id) {
    return PermissionDeniedError("only data owners and admins add data subjects");
  }
  std::vector<store::DataSubject> flat;
  RETURN_IF_ERROR(FlattenDataSubject(subject, "", caller, clock_.NowSeconds(), flat));
  const bool lone = flat.size() == 1;
  int added = 0;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    ASSIGN_OR_RETURN(added, tx.InsertDataSubjects(flat, lone));
    return Audit(tx, caller, "data_subject.add", "data_subject:" + flat[0].name,
                 std::to_string(added) + " new");
  }));
  return added;
}

Result<std::vector<store::DataSubject>> Datasets::ListDataSubjects(const Principal& caller) {
  if (!caller.user_id) return PermissionDeniedError("log in to list data subjects");
  return store_.ListDataSubjects();
}

Result<store::Dataset> Datasets::Create(const Principal& caller, const NewDataset& in) {
  if (!CanReadPrivate(caller) || !caller.user_id) {
    return PermissionDeniedError("only data owners and admins can create datasets");
  }
  store::Dataset d;
  d.name = in.name;
  d.summary = in.summary;
  d.description = in.description;
  d.citation = in.citation;
  d.url = in.url;
  d.contributors = in.contributors;
  RETURN_IF_ERROR(CheckDatasetName(d.name));
  RETURN_IF_ERROR(CheckField("summary", d.summary, 1000, false));
  RETURN_IF_ERROR(CheckField("description", d.description, 100'000, false));
  RETURN_IF_ERROR(CheckField("citation", d.citation, 10'000, false));
  RETURN_IF_ERROR(CheckField("url", d.url, 2048, false));
  RETURN_IF_ERROR(CheckContributors(d.contributors));
  if (in.assets.empty()) return InvalidArgumentError("a dataset needs at least one asset");
  if (in.assets.size() > kMaxAssets)
    return InvalidArgumentError("a dataset has at most 100 assets");
  const bool low_side = settings_.Get().server_side_type == "low";
  std::set<std::string> names, blob_ids;
  for (const NewAsset& a : in.assets) {
    RETURN_IF_ERROR(CheckName("asset name", a.name));
    RETURN_IF_ERROR(CheckField("asset description", a.description, 100'000, false));
    if (!names.insert(a.name).second)
      return InvalidArgumentError("two assets are named '" + a.name + "'");
    if (low_side && a.data_blob_id) {
      return FailedPreconditionError(
          "asset '" + a.name +
          "': this is a low-side server; it holds mock data only, so private "
          "data can't be uploaded to it");
    }
    if (!low_side && !a.data_blob_id) {
      return InvalidArgumentError("asset '" + a.name + "' has no private data ('data')");
    }
    if (low_side && !a.mock_blob_id) {
      return InvalidArgumentError("asset '" + a.name +
                                  "' has no mock; a low-side server holds only mocks");
    }
    store::Asset asset;
    asset.id = NewUuid();
    asset.name = a.name;
    asset.description = a.description;
    asset.mock_is_real = a.mock_is_real && a.mock_blob_id.has_value();
    ASSIGN_OR_RETURN(asset.metadata, AssetMetadata(a));
    std::string format;
    for (const auto& [which, id, meta, kept] :
         {std::tuple{"data", a.data_blob_id, &a.data_meta, &asset.data_meta},
          {"mock", a.mock_blob_id, &a.mock_meta, &asset.mock_meta}}) {
      if (!id) {
        if (meta->has_value())
          return InvalidArgumentError("asset '" + a.name + "': " + which +
                                      "_meta is given without its " + which);
        continue;
      }
      if (!blob_ids.insert(*id).second) {
        return InvalidArgumentError("blob " + *id +
                                    " is named twice; each asset file needs its own blob");
      }
      auto blob = OwnBlob(caller, *id);
      if (!blob.ok()) {
        return Status(blob.status().code(),
                      "asset '" + a.name + "' " + which + ": " + blob.status().message());
      }
      if (!format.empty() && format != blob->format) {
        return InvalidArgumentError("asset '" + a.name + "': data is " + format +
                                    " but the mock is " + blob->format +
                                    "; they must have the same format");
      }
      format = blob->format;
      if (meta->has_value()) {
        ASSIGN_OR_RETURN(*kept, CheckedSidecar(a.name, which, *blob, **meta));
      }
    }
    asset.format = format;
    asset.data_blob_id = a.data_blob_id;
    asset.mock_blob_id = a.mock_blob_id;
    d.assets.push_back(std::move(asset));
  }
  d.id = NewUuid();
  d.uploader_id = *caller.user_id;
  d.created_at = d.updated_at = clock_.NowSeconds();
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertDataset(d));
    return Audit(tx, caller, "dataset.create", "dataset:" + d.id, d.name);
  }));
  // Read back: the answer must say what the catalogue holds (the blobs each asset names, the
  // uploader's name and email), not the half-filled dataset that was inserted.
  return store_.GetDataset(d.id);
}

Result<store::DatasetPage> Datasets::List(
    const Principal& caller, const std::string& search, int64_t page, int64_t page_size,
    const std::function<bool(const store::Dataset&)>& needs_assets) {
  if (!caller.authenticated()) return UnauthenticatedError("log in first");
  if (page < 1) return InvalidArgumentError("page must be 1 or more");
  if (page_size < 1 || page_size > kMaxPageSize) {
    return InvalidArgumentError("page_size must be between 1 and " + std::to_string(kMaxPageSize));
  }
  if (search.size() > 256) return InvalidArgumentError("search text is too long");
  return store_.ListDatasets(search, (page - 1) * page_size, page_size, needs_assets);
}

Result<store::Dataset> Datasets::Get(const Principal& caller, const std::string& id_or_name) {
  if (!caller.authenticated()) return UnauthenticatedError("log in first");
  return store_.GetDataset(id_or_name);
}

Result<store::Dataset> Datasets::Update(const Principal& caller, const std::string& id,
                                        const DatasetPatch& p) {
  if (!CanReadPrivate(caller))
    return PermissionDeniedError("only data owners and admins can change datasets");
  ASSIGN_OR_RETURN(store::Dataset d, store_.GetDataset(id));
  if (!p.name && !p.summary && !p.description && !p.citation && !p.url && !p.contributors) return d;
  if (p.name) {
    RETURN_IF_ERROR(CheckDatasetName(*p.name));
    d.name = *p.name;
  }
  if (p.summary) {
    RETURN_IF_ERROR(CheckField("summary", *p.summary, 1000, false));
    d.summary = *p.summary;
  }
  if (p.description) {
    RETURN_IF_ERROR(CheckField("description", *p.description, 100'000, false));
    d.description = *p.description;
  }
  if (p.citation) {
    RETURN_IF_ERROR(CheckField("citation", *p.citation, 10'000, false));
    d.citation = *p.citation;
  }
  if (p.url) {
    RETURN_IF_ERROR(CheckField("url", *p.url, 2048, false));
    d.url = *p.url;
  }
  if (p.contributors) {
    auto cs = *p.contributors;
    RETURN_IF_ERROR(CheckContributors(cs));
    d.contributors = std::move(cs);
  }
  d.updated_at = clock_.NowSeconds();
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.UpdateDataset(d));
    return Audit(tx, caller, "dataset.update", "dataset:" + d.id);
  });
  if (st.code() == StatusCode::kAlreadyExists) {
    return AlreadyExistsError("a dataset named '" + d.name + "' already exists");
  }
  RETURN_IF_ERROR(st);
  return d;
}

Status Datasets::Delete(const Principal& caller, const std::string& id) {
  if (!CanReadPrivate(caller))
    return PermissionDeniedError("only data owners and admins can delete datasets");
  ASSIGN_OR_RETURN(store::Dataset d, store_.GetDataset(id));
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.SoftDeleteDataset(d.id, clock_.NowSeconds()));
    return Audit(tx, caller, "dataset.delete", "dataset:" + d.id, d.name);
  }));
  // The metadata stays (deleted) for the record; the bytes go now.
  for (const auto& a : d.assets) {
    for (const auto& blob_id : {a.data_blob_id, a.mock_blob_id}) {
      if (blob_id) {
        Status st = DeleteBlobFully(*blob_id);
        if (!st.ok())
          spdlog::warn("deleting blob {} of dataset {}: {}", *blob_id, d.id, st.message());
      }
    }
  }
  return Status::Ok();
}

Result<BlobBytes> Datasets::AssetBytes(const Principal& caller, const std::string& dataset,
                                       const std::string& asset_name, bool private_data) {
  if (!caller.authenticated()) return UnauthenticatedError("log in first");
  if (private_data && !CanReadPrivate(caller)) {
    return PermissionDeniedError(
        "only data owners and admins can read private data; study the mock and submit code "
        "instead");
  }
  ASSIGN_OR_RETURN(store::Dataset d, store_.GetDataset(dataset));
  auto it = std::find_if(d.assets.begin(), d.assets.end(),
                         [&](const auto& a) { return a.name == asset_name; });
  if (it == d.assets.end())
    return NotFoundError("dataset '" + d.name + "' has no asset '" + asset_name + "'");
  const auto& blob_id = private_data ? it->data_blob_id : it->mock_blob_id;
  if (!blob_id) {
    return NotFoundError(private_data
                             ? "asset '" + asset_name + "' has no private data on this server"
                             : "asset '" + asset_name + "' has an empty mock");
  }
  ASSIGN_OR_RETURN(store::Blob b, store_.GetBlob(*blob_id));
  ASSIGN_OR_RETURN(BlobBytes bytes, OpenForDownload(caller, std::move(b)));
  // Recorded before a byte is handed out: no entry, no private data.
  if (private_data) {
    RETURN_IF_ERROR(Audit(store_, caller, "asset.read_private", "dataset:" + d.id, asset_name));
  }
  return bytes;
}

}  // namespace datasite::services
