#include "sync/bundle.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/random.h"

namespace datasite::sync {
namespace {

using json = nlohmann::json;

constexpr size_t kStep = 1 << 20;  // blob bytes read per call
constexpr std::string_view kPrefix = "bundle refused (";

bool IsHex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string Unhex(std::string_view hex) {
  std::string out(hex.size() / 2, '\0');
  size_t len = 0;
  sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(), hex.size(),
                 nullptr, &len, nullptr);
  out.resize(len);
  return out;
}

void PutU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string SignedMessage(std::string_view header_json) {
  std::string msg(kSignatureContext);
  msg.append(header_json);
  return msg;
}

Status Tampered(std::string_view detail) { return Refuse(Refusal::kTampered, detail); }

// Checks that `j` is an object with exactly the keys `keys`.
Status ExactKeys(const json& j, std::string_view where,
                 std::initializer_list<std::string_view> keys) {
  if (!j.is_object()) return Tampered(std::string(where) + " is not an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) {
      return Tampered(std::string(where) + " has an unknown field");
    }
  }
  for (auto key : keys) {
    if (!j.contains(key)) {
      return Tampered(std::string(where) + " lacks the field \"" + std::string(key) + "\"");
    }
  }
  return Status::Ok();
}

Result<std::string> GetString(const json& j, const char* key, size_t max_len) {
  const json& v = j.at(key);
  if (!v.is_string()) return Tampered(std::string("\"") + key + "\" is not a string");
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() > max_len) return Tampered(std::string("\"") + key + "\" is too long");
  return s;
}

Result<int64_t> GetInt(const json& j, const char* key, int64_t min, int64_t max) {
  const json& v = j.at(key);
  if (!v.is_number_integer()) return Tampered(std::string("\"") + key + "\" is not an integer");
  // An unsigned beyond int64 is out of range too.
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max)) {
    return Tampered(std::string("\"") + key + "\" is out of range");
  }
  int64_t n = v.get<int64_t>();
  if (n < min || n > max) return Tampered(std::string("\"") + key + "\" is out of range");
  return n;
}

Result<std::string> GetKey(const json& j, const char* key) {
  ASSIGN_OR_RETURN(std::string s, GetString(j, key, 64));
  if (!IsHex(s, 64)) return Tampered(std::string("\"") + key + "\" is not 64 lowercase hex digits");
  return s;
}

}  // namespace

struct BundleVerifier::Hasher {
  Hasher() : ctx(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Hasher() { EVP_MD_CTX_free(ctx); }
  void Update(std::string_view bytes) { EVP_DigestUpdate(ctx, bytes.data(), bytes.size()); }
  std::string HexDigest() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, d, &n);
    return HexEncode(std::string_view(reinterpret_cast<char*>(d), n));
  }
  EVP_MD_CTX* ctx;
};

std::string_view RefusalName(Refusal reason) {
  switch (reason) {
    case Refusal::kTampered:
      return "tampered";
    case Refusal::kTruncated:
      return "truncated";
    case Refusal::kUnknownKey:
      return "unknown key";
    case Refusal::kRevokedKey:
      return "revoked key";
    case Refusal::kWrongDestination:
      return "wrong destination";
    case Refusal::kReplayed:
      return "replayed";
    case Refusal::kOutOfSequence:
      return "out of sequence";
    case Refusal::kKindNotAllowed:
      return "kind not allowed";
    case Refusal::kTooLarge:
      return "too large";
  }
  return "tampered";
}

Status Refuse(Refusal reason, std::string_view detail) {
  StatusCode code = StatusCode::kInvalidArgument;
  switch (reason) {
    case Refusal::kTampered:
    case Refusal::kTruncated:
      code = StatusCode::kInvalidArgument;
      break;
    case Refusal::kUnknownKey:
    case Refusal::kRevokedKey:
    case Refusal::kWrongDestination:
    case Refusal::kKindNotAllowed:
      code = StatusCode::kPermissionDenied;
      break;
    case Refusal::kReplayed:
    case Refusal::kOutOfSequence:
      code = StatusCode::kFailedPrecondition;
      break;
    case Refusal::kTooLarge:
      code = StatusCode::kResourceExhausted;
      break;
  }
  return Status(
      code, std::string(kPrefix) + std::string(RefusalName(reason)) + "): " + std::string(detail));
}

std::string_view RefusalReason(const Status& status) {
  std::string_view m = status.message();
  if (status.ok() || m.substr(0, kPrefix.size()) != kPrefix) return {};
  m.remove_prefix(kPrefix.size());
  size_t end = m.find("): ");
  return end == std::string_view::npos ? std::string_view() : m.substr(0, end);
}

std::string BundleHeader::ToJson() const {
  json blobs_json = json::array();
  for (const auto& b : blobs) blobs_json.push_back({{"sha256", b.sha256}, {"size", b.size}});
  json j = {
      {"format", format},
      {"source",
       {{"name", source.name},
        {"verify_key", source.verify_key},
        {"server_id", source.server_id},
        {"side", source.side}}},
      {"destination", {{"verify_key", destination_verify_key}}},
      {"seq", seq},
      {"peer_seq_seen", peer_seq_seen},
      {"created_at", created_at},
      {"objects", {{"size", objects_size}, {"sha256", objects_sha256}}},
      {"blobs", std::move(blobs_json)},
  };
  return j.dump();
}

int64_t BundleHeader::BundleSize(size_t header_json_size) const {
  int64_t n = static_cast<int64_t>(kBundleMagic.size() + 4 + header_json_size + kSignatureSize);
  n += objects_size;
  for (const auto& b : blobs) n += b.size;
  return n;
}

Result<BundleHeader> BundleHeader::Parse(std::string_view text) {
  if (text.size() > kMaxHeaderSize) return Tampered("the header is over 1 MiB");
  // Duplicated keys would let two readers see two headers in the same signed bytes: refused.
  bool duplicate = false;
  std::vector<std::set<std::string>> seen;
  json::parser_callback_t cb = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      seen.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!seen.empty()) seen.pop_back();
    } else if (event == json::parse_event_t::key && !seen.empty()) {
      if (!seen.back().insert(parsed.get<std::string>()).second) duplicate = true;
    }
    return true;
  };
  json j = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Tampered("the header is not JSON");
  if (duplicate) return Tampered("the header has a duplicated field");
  RETURN_IF_ERROR(ExactKeys(j, "the header",
                            {"format", "source", "destination", "seq", "peer_seq_seen",
                             "created_at", "objects", "blobs"}));
  BundleHeader h;
  ASSIGN_OR_RETURN(int64_t format, GetInt(j, "format", 1, 1));
  h.format = static_cast<int>(format);
  const json& source = j["source"];
  RETURN_IF_ERROR(ExactKeys(source, "\"source\"", {"name", "verify_key", "server_id", "side"}));
  ASSIGN_OR_RETURN(h.source.name, GetString(source, "name", 256));
  ASSIGN_OR_RETURN(h.source.verify_key, GetKey(source, "verify_key"));
  ASSIGN_OR_RETURN(h.source.server_id, GetString(source, "server_id", 64));
  ASSIGN_OR_RETURN(h.source.side, GetString(source, "side", 4));
  if (h.source.side != "low" && h.source.side != "high") {
    return Tampered("\"side\" is neither low nor high");
  }
  const json& destination = j["destination"];
  RETURN_IF_ERROR(ExactKeys(destination, "\"destination\"", {"verify_key"}));
  ASSIGN_OR_RETURN(h.destination_verify_key, GetKey(destination, "verify_key"));
  constexpr int64_t kMax = INT64_MAX;
  ASSIGN_OR_RETURN(h.seq, GetInt(j, "seq", 1, kMax));
  ASSIGN_OR_RETURN(h.peer_seq_seen, GetInt(j, "peer_seq_seen", 0, kMax));
  ASSIGN_OR_RETURN(h.created_at, GetInt(j, "created_at", 0, kMax));
  const json& objects = j["objects"];
  RETURN_IF_ERROR(ExactKeys(objects, "\"objects\"", {"size", "sha256"}));
  ASSIGN_OR_RETURN(h.objects_size, GetInt(objects, "size", 0, kMaxBlobSize));
  ASSIGN_OR_RETURN(h.objects_sha256, GetKey(objects, "sha256"));
  const json& blobs = j["blobs"];
  if (!blobs.is_array()) return Tampered("\"blobs\" is not an array");
  int64_t total = h.objects_size;
  for (const json& b : blobs) {
    RETURN_IF_ERROR(ExactKeys(b, "a blob", {"sha256", "size"}));
    BundleBlob blob;
    ASSIGN_OR_RETURN(blob.sha256, GetKey(b, "sha256"));
    ASSIGN_OR_RETURN(blob.size, GetInt(b, "size", 0, kMaxBlobSize));
    total += blob.size;
    if (total > kMaxBlobSize * 64) return Tampered("the blobs add up to more than 256 TiB");
    h.blobs.push_back(std::move(blob));
  }
  return h;
}

// ---- BundleSource ----

Result<std::unique_ptr<BundleSource>> BundleSource::Create(BundleHeader header,
                                                           std::string objects_json,
                                                           std::vector<OutgoingBlob> blobs,
                                                           std::string_view secret_key) {
  if (secret_key.size() != crypto_sign_SECRETKEYBYTES) {
    return InvalidArgumentError("the signing key is not a 64-byte ed25519 secret key");
  }
  // libsodium's secret key ends with its public key.
  if (HexEncode(secret_key.substr(32)) != header.source.verify_key) {
    return InvalidArgumentError("the signing key does not match the header's source verify key");
  }
  header.format = 1;
  header.objects_size = static_cast<int64_t>(objects_json.size());
  {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(objects_json.data(), objects_json.size(), d, &n, EVP_sha256(), nullptr);
    header.objects_sha256 = HexEncode(std::string_view(reinterpret_cast<char*>(d), n));
  }
  header.blobs.clear();
  for (const auto& b : blobs) {
    auto reader = b.open();  // closed again: opened for good when the bundle reaches it
    if (!reader.ok()) {
      return InternalError("cannot open " + b.name + " to send: " + reader.status().message());
    }
    if ((*reader)->size() != b.size) {
      return InternalError(b.name + " holds " + std::to_string((*reader)->size()) +
                           " bytes, not the " + std::to_string(b.size) + " recorded");
    }
    header.blobs.push_back({b.sha256, b.size});
  }
  std::string header_json = header.ToJson();
  // What we sign must be what a receiver accepts.
  auto reparsed = BundleHeader::Parse(header_json);
  if (!reparsed.ok()) {
    return InvalidArgumentError("the bundle header would be refused: " +
                                reparsed.status().message());
  }
  std::string signature(kSignatureSize, '\0');
  std::string msg = SignedMessage(header_json);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr,
                       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                       reinterpret_cast<const unsigned char*>(secret_key.data()));

  std::unique_ptr<BundleSource> s(new BundleSource());
  s->prefix_.append(kBundleMagic);
  PutU32(s->prefix_, static_cast<uint32_t>(header_json.size()));
  s->prefix_.append(header_json);
  s->prefix_.append(signature);
  s->size_ = header.BundleSize(header_json.size());
  s->header_ = std::move(header);
  s->objects_ = std::move(objects_json);
  s->blobs_ = std::move(blobs);
  return s;
}

BundleSource::~BundleSource() = default;

Result<size_t> BundleSource::Read(char* buf, size_t cap) {
  while (true) {
    if (cap == 0) return size_t{0};
    if (section_ < 2) {
      const std::string& s = section_ == 0 ? prefix_ : objects_;
      size_t left = s.size() - static_cast<size_t>(offset_);
      if (left == 0) {
        ++section_;
        offset_ = 0;
        continue;
      }
      size_t n = std::min(left, cap);
      std::memcpy(buf, s.data() + offset_, n);
      offset_ += static_cast<int64_t>(n);
      return n;
    }
    size_t i = section_ - 2;
    if (i >= blobs_.size()) return size_t{0};
    const OutgoingBlob& b = blobs_[i];
    if (!reader_) {
      ASSIGN_OR_RETURN(std::unique_ptr<blob::BlobReader> reader, b.open());
      if (reader->size() != b.size) {
        return InternalError(b.name + " changed size during the export");
      }
      reader_ = std::move(reader);
    }
    if (reader_->position() == b.size) {
      reader_.reset();
      ++section_;
      offset_ = 0;
      continue;
    }
    ASSIGN_OR_RETURN(size_t got, reader_->Read(buf, std::min(cap, kStep)));
    if (got == 0) return InternalError(b.name + " ended early during the export");
    return got;
  }
}

// ---- BundleVerifier ----

void RemoveStagedFiles(const VerifiedBundle& bundle) {
  for (const auto& b : bundle.blobs) ::unlink(b.path.c_str());
}

BundleVerifier::BundleVerifier(HeaderCheck check, StagingPath staging_path,
                               int64_t max_objects_size, blob::BlobWriteMode mode)
    : check_(std::move(check)),
      staging_path_(std::move(staging_path)),
      max_objects_size_(max_objects_size),
      mode_(mode) {}

BundleVerifier::~BundleVerifier() {
  if (!finished_) RemoveFiles();
}

void BundleVerifier::RemoveFiles() {
  file_.reset();  // closed before it is removed
  for (const auto& b : staged_) ::unlink(b.path.c_str());
  staged_.clear();
}

void BundleVerifier::Fail(const Status& st) {
  error_ = st;
  RemoveFiles();
  objects_.clear();
  objects_.shrink_to_fit();
}

Status BundleVerifier::Write(std::string_view chunk) {
  if (!error_.ok()) return error_;
  if (finished_) return FailedPreconditionError("the bundle was already finished");
  while (!chunk.empty()) {
    Status st = Consume(chunk);
    if (!st.ok()) {
      Fail(st);
      return error_;
    }
  }
  return Status::Ok();
}

// Takes what the current stage needs from the front of `chunk`.
Status BundleVerifier::Consume(std::string_view& chunk) {
  auto gather = [&](size_t need) {
    size_t n = std::min(need - buf_.size(), chunk.size());
    buf_.append(chunk.substr(0, n));
    chunk.remove_prefix(n);
    return buf_.size() == need;
  };
  switch (stage_) {
    case Stage::kMagic: {
      size_t at = buf_.size();
      bool full = gather(kBundleMagic.size());
      // A wrong byte is refused at once, before the rest arrives.
      if (buf_ != kBundleMagic.substr(0, buf_.size())) {
        return Tampered("this is not a datasite sync bundle (bad magic at byte " +
                        std::to_string(at) + ")");
      }
      if (!full) return Status::Ok();
      buf_.clear();
      stage_ = Stage::kHeaderLength;
      return Status::Ok();
    }
    case Stage::kHeaderLength: {
      if (!gather(4)) return Status::Ok();
      header_length_ = 0;
      for (unsigned char c : buf_) header_length_ = (header_length_ << 8) | c;
      buf_.clear();
      if (header_length_ == 0 || header_length_ > kMaxHeaderSize) {
        return Tampered("the header length " + std::to_string(header_length_) + " is out of range");
      }
      stage_ = Stage::kHeader;
      return Status::Ok();
    }
    case Stage::kHeader: {
      if (!gather(header_length_)) return Status::Ok();
      header_json_ = std::move(buf_);
      buf_.clear();
      stage_ = Stage::kSignature;
      return Status::Ok();
    }
    case Stage::kSignature: {
      if (!gather(kSignatureSize)) return Status::Ok();
      return OnSignature();
    }
    case Stage::kObjects: {
      size_t n = static_cast<size_t>(
          std::min<int64_t>(header_.objects_size - static_cast<int64_t>(objects_.size()),
                            static_cast<int64_t>(chunk.size())));
      objects_.append(chunk.substr(0, n));
      hasher_->Update(chunk.substr(0, n));
      chunk.remove_prefix(n);
      if (static_cast<int64_t>(objects_.size()) < header_.objects_size) return Status::Ok();
      if (hasher_->HexDigest() != header_.objects_sha256) {
        return Tampered("the objects do not match their SHA-256");
      }
      hasher_.reset();
      blob_ = 0;
      return StartBlob();
    }
    case Stage::kBlobs: {
      const BundleBlob& b = header_.blobs[blob_];
      size_t n = static_cast<size_t>(
          std::min<int64_t>(b.size - blob_done_, static_cast<int64_t>(chunk.size())));
      std::string_view piece = chunk.substr(0, n);
      chunk.remove_prefix(n);
      hasher_->Update(piece);
      blob_done_ += static_cast<int64_t>(n);
      RETURN_IF_ERROR(file_->Append(piece));
      if (blob_done_ < b.size) return Status::Ok();
      RETURN_IF_ERROR(EndBlob());
      return StartBlob();
    }
    case Stage::kDone:
      return Tampered("there are bytes after the end of the bundle");
  }
  return InternalError("bad verifier stage");
}

Status BundleVerifier::OnSignature() {
  std::string signature = std::move(buf_);
  buf_.clear();
  ASSIGN_OR_RETURN(header_, BundleHeader::Parse(header_json_));
  std::string key = Unhex(header_.source.verify_key);
  std::string msg = SignedMessage(header_json_);
  if (crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(signature.data()),
                                  reinterpret_cast<const unsigned char*>(msg.data()), msg.size(),
                                  reinterpret_cast<const unsigned char*>(key.data())) != 0) {
    return Tampered("the signature does not verify with the source's key");
  }
  if (check_) RETURN_IF_ERROR(check_(header_));
  if (header_.objects_size > max_objects_size_) {
    return Refuse(Refusal::kTooLarge,
                  "the objects section of " + std::to_string(header_.objects_size) +
                      " bytes is over the limit of " + std::to_string(max_objects_size_));
  }
  // Grown as the bytes come (a signed header's size alone claims no memory past 1 MiB).
  objects_.reserve(static_cast<size_t>(std::min<int64_t>(header_.objects_size, 1 << 20)));
  hasher_ = std::make_unique<Hasher>();
  stage_ = Stage::kObjects;
  // An empty objects section is complete already.
  if (header_.objects_size == 0) {
    if (hasher_->HexDigest() != header_.objects_sha256) {
      return Tampered("the objects do not match their SHA-256");
    }
    hasher_.reset();
    blob_ = 0;
    return StartBlob();
  }
  return Status::Ok();
}

// Opens the staging file of blob_, or ends the bundle when there is none. 0-byte blobs are
// complete at once (a loop, not a recursion: a header may list thousands of them).
Status BundleVerifier::StartBlob() {
  while (blob_ < header_.blobs.size()) {
    stage_ = Stage::kBlobs;
    std::string path = staging_path_();
    ASSIGN_OR_RETURN(file_, blob::FileWriter::Create(path, mode_));
    staged_.push_back({header_.blobs[blob_].sha256, header_.blobs[blob_].size, path});
    hasher_ = std::make_unique<Hasher>();
    blob_done_ = 0;
    if (header_.blobs[blob_].size > 0) return Status::Ok();
    RETURN_IF_ERROR(EndBlob());
  }
  stage_ = Stage::kDone;
  return Status::Ok();
}

Status BundleVerifier::EndBlob() {
  if (hasher_->HexDigest() != header_.blobs[blob_].sha256) {
    return Tampered("blob " + std::to_string(blob_) + " does not match its SHA-256");
  }
  hasher_.reset();
  RETURN_IF_ERROR(file_->Close());
  file_.reset();
  ++blob_;
  return Status::Ok();
}

Result<VerifiedBundle> BundleVerifier::Finish() {
  if (!error_.ok()) return error_;
  if (finished_) return FailedPreconditionError("the bundle was already finished");
  if (stage_ != Stage::kDone) {
    std::string where;
    switch (stage_) {
      case Stage::kMagic:
      case Stage::kHeaderLength:
      case Stage::kHeader:
        where = "its header";
        break;
      case Stage::kSignature:
        where = "its signature";
        break;
      case Stage::kObjects:
        where = "its objects";
        break;
      default:
        where = "blob " + std::to_string(blob_);
        break;
    }
    Fail(Refuse(Refusal::kTruncated, "the bundle ends early, in " + where));
    return error_;
  }
  finished_ = true;
  VerifiedBundle out;
  out.header = std::move(header_);
  out.objects_json = std::move(objects_);
  out.blobs = std::move(staged_);
  staged_.clear();
  return out;
}

}  // namespace datasite::sync
