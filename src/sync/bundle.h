// The signed sync bundle (issue 14): the one file format that carries objects and blobs from one
// datasite server to another, online or across an air gap. See README.md for the layout.
//
// BundleSource writes a bundle (pulled, a piece at a time, so that an export is never whole in
// memory); BundleVerifier reads one (pushed, a chunk at a time, as an upload arrives), checks its
// signature before it reads past it, hashes every section while it streams, and stages the blobs in
// files. Every refusal is a Status whose message starts "bundle refused (<reason>): ".
#ifndef DATASITE_SYNC_BUNDLE_H_
#define DATASITE_SYNC_BUNDLE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blob/blob_store.h"
#include "blob/file_writer.h"
#include "core/status.h"

namespace datasite::sync {

inline constexpr std::string_view kBundleMagic = "DSSYNC01";
inline constexpr size_t kMaxHeaderSize = 1 << 20;
inline constexpr int64_t kDefaultMaxObjectsSize = int64_t{256} << 20;
// The largest blob a header may declare (4 TiB); the sum of all sizes must fit in an int64 too.
inline constexpr int64_t kMaxBlobSize = int64_t{1} << 42;
// What the signature covers before the header bytes (24 bytes, the NUL included).
inline constexpr std::string_view kSignatureContext{"datasite-sync-bundle-v1\0", 24};
inline constexpr size_t kSignatureSize = 64;

struct BundleBlob {
  std::string sha256;  // lowercase hex
  int64_t size = 0;
};

// The header: signed JSON, the contract's field for field.
struct BundleHeader {
  int format = 1;
  struct Source {
    std::string name;
    std::string verify_key;  // 64 lowercase hex digits (ed25519 public key)
    std::string server_id;
    std::string side;  // "low" | "high"
  } source;
  std::string destination_verify_key;  // 64 lowercase hex digits
  int64_t seq = 0;                     // >= 1
  int64_t peer_seq_seen = 0;           // >= 0
  int64_t created_at = 0;              // ms since the epoch
  int64_t objects_size = 0;
  std::string objects_sha256;
  std::vector<BundleBlob> blobs;

  // Compact JSON, the form the writer signs.
  std::string ToJson() const;
  // Strict: an unknown, missing or duplicated field, a wrong type or a value out of range is
  // InvalidArgument "bundle refused (tampered): ...".
  static Result<BundleHeader> Parse(std::string_view json);
  // Bytes of the whole bundle this header describes (prefix, objects and blobs).
  int64_t BundleSize(size_t header_json_size) const;
};

// The refusal reasons of the contract.
enum class Refusal {
  kTampered,
  kTruncated,
  kUnknownKey,
  kRevokedKey,
  kWrongDestination,
  kReplayed,
  kOutOfSequence,
  kKindNotAllowed,
  kTooLarge,  // not in the contract's list: a signed bundle whose objects pass the receiver's limit
};
// "tampered", "truncated", "unknown key", ...
std::string_view RefusalName(Refusal reason);
// The Status of a refusal, with its contract code and the message
// "bundle refused (<reason>): <detail>".
Status Refuse(Refusal reason, std::string_view detail);
// The reason in a refusal's message ("tampered", ...), or "" when `status` is not a bundle refusal.
std::string_view RefusalReason(const Status& status);

// A blob to send: its size and SHA-256, known from the records, and how to open its bytes (from
// the blob store, or a file: blob::OpenFileReader).
struct OutgoingBlob {
  std::function<Result<std::unique_ptr<blob::BlobReader>>()> open;
  int64_t size = 0;
  std::string sha256;
  std::string name;  // in error messages: "blob <id>", a file's path
};

// Writes one bundle: magic, header, signature, objects, blobs. Each blob is opened when the bundle
// reaches it and read 1 MiB at a time, when asked for. Not thread-safe (one reader at a time).
class BundleSource {
 public:
  // `header`: every field but objects_size/objects_sha256/blobs, which are computed here.
  // `secret_key`: the 64-byte libsodium ed25519 secret key whose public half is
  // header.source.verify_key. Fails (InvalidArgument) on a header that would not verify, and
  // (Internal) when a blob can't be opened or its size is not the one given.
  static Result<std::unique_ptr<BundleSource>> Create(BundleHeader header, std::string objects_json,
                                                      std::vector<OutgoingBlob> blobs,
                                                      std::string_view secret_key);
  ~BundleSource();
  BundleSource(const BundleSource&) = delete;
  BundleSource& operator=(const BundleSource&) = delete;

  // Copies the next bytes of the bundle into `buf` (at most `cap`); 0 only at the end. An error
  // (a blob that changed size or can no longer be read) ends the bundle: it is never sent
  // short without an error.
  Result<size_t> Read(char* buf, size_t cap);
  // The whole bundle's size, known before the first Read.
  int64_t size() const { return size_; }
  const BundleHeader& header() const { return header_; }

 private:
  BundleSource() = default;

  BundleHeader header_;
  std::string prefix_;  // magic, header length, header, signature
  std::string objects_;
  std::vector<OutgoingBlob> blobs_;
  int64_t size_ = 0;
  // Where the next byte comes from: 0 prefix, 1 objects, 2 + i blob i.
  size_t section_ = 0;
  int64_t offset_ = 0;                        // within the section
  std::unique_ptr<blob::BlobReader> reader_;  // the blob being sent, if any
};

// A blob of a verified bundle, in a staging file (fsynced) that now belongs to the caller.
struct StagedBlob {
  std::string sha256;
  int64_t size = 0;
  std::string path;
};

struct VerifiedBundle {
  BundleHeader header;
  std::string objects_json;  // its SHA-256 checked, not parsed
  std::vector<StagedBlob> blobs;
};

// Removes the staging files of a verified bundle (for a caller that gives up on it).
void RemoveStagedFiles(const VerifiedBundle& bundle);

// Verifies a bundle as it streams in. Not thread-safe (the HTTP server calls a body sink one call
// at a time). Once a Write fails, every later call returns the same error. Destroying it without a
// successful Finish removes every staging file it made.
class BundleVerifier {
 public:
  // Called once, after the signature is verified and before any byte past it is read; a non-OK
  // status is the refusal, passed through unchanged (the service checks key, destination and
  // sequence here).
  using HeaderCheck = std::function<Status(const BundleHeader&)>;
  // A fresh path for a staging file, on the file system the blobs will be adopted into.
  using StagingPath = std::function<std::string()>;

  // Staging files are written by a blob::FileWriter in `mode` (kDirect: past the page cache where
  // the file system allows, as the server's blob store writes uploads).
  BundleVerifier(HeaderCheck check, StagingPath staging_path,
                 int64_t max_objects_size = kDefaultMaxObjectsSize,
                 blob::BlobWriteMode mode = blob::BlobWriteMode::kDirect);
  ~BundleVerifier();
  BundleVerifier(const BundleVerifier&) = delete;
  BundleVerifier& operator=(const BundleVerifier&) = delete;

  // Chunks of any size, including one byte.
  Status Write(std::string_view chunk);
  // The verified bundle; "bundle refused (truncated)" when it ended early.
  Result<VerifiedBundle> Finish();

 private:
  enum class Stage { kMagic, kHeaderLength, kHeader, kSignature, kObjects, kBlobs, kDone };
  Status Consume(std::string_view& chunk);
  Status OnSignature();
  Status StartBlob();
  Status EndBlob();
  void Fail(const Status& st);
  void RemoveFiles();

  HeaderCheck check_;
  StagingPath staging_path_;
  const int64_t max_objects_size_;
  const blob::BlobWriteMode mode_;
  Stage stage_ = Stage::kMagic;
  Status error_;
  bool finished_ = false;
  std::string buf_;  // magic, length, header or signature bytes being gathered
  uint32_t header_length_ = 0;
  std::string header_json_;
  BundleHeader header_;
  std::string objects_;
  struct Hasher;
  std::unique_ptr<Hasher> hasher_;          // the section being read
  size_t blob_ = 0;                         // index of the blob being read
  int64_t blob_done_ = 0;                   // its bytes so far
  std::unique_ptr<blob::FileWriter> file_;  // its staging file
  std::vector<StagedBlob> staged_;          // every staging file made, in order
};

}  // namespace datasite::sync

#endif  // DATASITE_SYNC_BUNDLE_H_
