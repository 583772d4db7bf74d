#include "server/blobs_migrate.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <vector>

#include "blob/blob_store.h"
#include "core/local_servers.h"
#include "core/random.h"
#include "server/app.h"
#include "store/store.h"

namespace datasite::server {
namespace {

constexpr size_t kPiece = size_t{8} << 20;  // bytes read and sent at a time

std::string Mib(int64_t bytes) {
  if (bytes < (1 << 20)) return std::to_string(bytes) + " bytes";
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

// Progress on stderr: rewritten in place on a terminal, a line every five seconds otherwise.
class Progress {
 public:
  Progress(size_t blobs, int64_t bytes)
      : blobs_(blobs), bytes_(bytes), tty_(::isatty(STDERR_FILENO) == 1) {}

  void Show(size_t blob, int64_t done, bool force = false) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < (tty_ ? std::chrono::milliseconds(200) : std::chrono::seconds(5))) {
      return;
    }
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / (1 << 20) / seconds : 0;
    std::fprintf(
        stderr, "%s  blob %zu of %zu, %s of %s (%.0f%%), %.1f MiB/s%s", tty_ ? "\r" : "", blob,
        blobs_, Mib(done).c_str(), Mib(bytes_).c_str(),
        bytes_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(bytes_) : 100.0, rate,
        tty_ ? "   " : "\n");
  }
  // Ends the line a terminal's progress was rewriting, before other output.
  void Break() {
    if (tty_) std::fputc('\n', stderr);
  }

 private:
  const size_t blobs_;
  const int64_t bytes_;
  const bool tty_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_{};
};

// Reads `reader` front to back in pieces, giving each to `each`; returns the SHA-256 (lowercase
// hex) of every byte read.
Result<std::string> HashStream(blob::BlobReader& reader,
                               const std::function<Status(std::string_view)>& each) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return InternalError("cannot start a SHA-256");
  }
  std::vector<char> buf(kPiece);
  for (;;) {
    ASSIGN_OR_RETURN(size_t got, reader.Read(buf.data(), buf.size()));
    if (got == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), got);
    RETURN_IF_ERROR(each(std::string_view(buf.data(), got)));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return HexEncode(std::string_view(reinterpret_cast<char*>(digest), len));
}

// Whether the bucket holds blob `b` whole: an object of its size whose bytes hash to the SHA-256
// recorded at upload (read back: an object's size alone could be a damaged copy's).
Result<bool> InBucket(const store::Blob& b, blob::BlobStore& to) {
  auto there = to.Open(b.id);
  if (!there.ok()) {
    if (there.status().code() == StatusCode::kNotFound) return false;
    return there.status();
  }
  if ((*there)->size() != b.size) return false;
  ASSIGN_OR_RETURN(std::string sha,
                   HashStream(**there, [](std::string_view) { return Status::Ok(); }));
  return sha == b.sha256;
}

// Copies blob `b` from `from` into `to` under its id. The bytes' SHA-256 must be the one recorded
// at upload before the copy is committed: a writer dropped uncommitted leaves no object, so a run
// stopped anywhere never leaves bytes the database does not vouch for under the blob's id.
// `copied` counts the bytes sent so far over all blobs.
Status CopyBlob(const store::Blob& b, blob::BlobStore& from, blob::BlobStore& to,
                const std::function<void(int64_t)>& copied) {
  ASSIGN_OR_RETURN(auto reader, from.Open(b.id));
  if (reader->size() != b.size) {
    return InternalError("its file holds " + std::to_string(reader->size()) + " bytes, not the " +
                         std::to_string(b.size) + " recorded");
  }
  ASSIGN_OR_RETURN(auto writer, to.NewWriterFor(b.id, b.size, b.size));
  ASSIGN_OR_RETURN(std::string sha, HashStream(*reader, [&](std::string_view piece) {
                     RETURN_IF_ERROR(writer->Append(piece));
                     copied(static_cast<int64_t>(piece.size()));
                     return Status::Ok();
                   }));
  if (sha != b.sha256) {
    // The local file changed since its upload: dropped uncommitted, the writer stores nothing.
    return InternalError("its bytes' SHA-256 is " + sha + ", not the " + b.sha256 +
                         " recorded at upload: the local file is damaged; not copied");
  }
  ASSIGN_OR_RETURN(blob::BlobInfo info, writer->Commit());
  if (info.sha256 != b.sha256) {
    return InternalError("the bucket's copy hashed to " + info.sha256 + " as it was sent");
  }
  return Status::Ok();
}

}  // namespace

int RunBlobsMigrate(const BlobsMigrateOptions& o) {
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    return 1;
  };
  if (o.to.rfind("s3://", 0) != 0) {
    return fail("--to must be an s3://BUCKET/PREFIX?endpoint=URL&region=R URL, as --blob takes it");
  }
  if (!std::filesystem::is_directory(BlobPath(o.from))) {
    return fail("no blob directory in " + o.from + " (" + BlobPath(o.from) + ")");
  }
  if (o.database.empty()) {
    if (!std::filesystem::exists(DatabasePath(o.from))) {
      return fail("no datasite database in " + o.from +
                  " (give --database for a server on PostgreSQL)");
    }
    // Blobs uploaded meanwhile would be missed; a server on PostgreSQL can't be seen from here
    // (its replicas may run anywhere), which the docs say.
    if (auto running = FindRunningServer(o.from)) {
      return fail("a server runs on " + o.from + " (pid " + std::to_string(running->pid) +
                  "): stop it first (datasite land " + running->name + ")");
    }
  }
  auto db = OpenDatabase(o.database, o.from);
  if (!db.ok()) return fail("cannot open the database: " + db.status().ToString());
  auto local = OpenBlobStore("", o.from);
  if (!local.ok())
    return fail("cannot open " + BlobPath(o.from) + ": " + local.status().ToString());
  auto bucket = OpenBlobStore(o.to, o.from);
  if (!bucket.ok()) return fail(bucket.status().ToString());

  auto ids = (*db)->AllBlobIds();
  if (!ids.ok()) return fail("cannot list the blobs: " + ids.status().ToString());
  std::vector<store::Blob> blobs;
  int64_t total = 0;
  for (const auto& id : *ids) {
    auto b = (*db)->GetBlob(id);
    if (!b.ok()) return fail("cannot read blob " + id + ": " + b.status().ToString());
    total += b->size;
    blobs.push_back(std::move(*b));
  }
  std::fprintf(stderr,
               "Copying %zu blobs (%s) from %s to the bucket (those already there are read back "
               "and checked)\n",
               blobs.size(), Mib(total).c_str(), BlobPath(o.from).c_str());
  Progress progress(blobs.size(), total);
  int64_t done = 0;
  size_t copied = 0, present = 0, failed = 0;
  for (size_t i = 0; i < blobs.size(); ++i) {
    const store::Blob& b = blobs[i];
    // What an earlier run copied is read back and checked, so a second run goes on where the
    // first stopped and replaces whatever else is under the id.
    auto there = InBucket(b, **bucket);
    if (!there.ok()) {
      progress.Break();
      return fail("the bucket refused reading " + b.id + ": " + there.status().ToString());
    }
    if (*there) {
      ++present;
      done += b.size;
      progress.Show(i + 1, done);
      continue;
    }
    const int64_t before = done;
    Status st = CopyBlob(b, **local, **bucket, [&](int64_t n) {
      done += n;
      progress.Show(i + 1, done);
    });
    if (!st.ok()) {
      progress.Break();
      std::fprintf(stderr, "  blob %s: %s\n", b.id.c_str(), st.ToString().c_str());
      ++failed;
      done = before + b.size;
      continue;
    }
    ++copied;
  }
  progress.Show(blobs.size(), done, /*force=*/true);
  progress.Break();
  std::fprintf(stderr, "Copied %zu, already in the bucket %zu, failed %zu.\n", copied, present,
               failed);
  if (failed > 0) {
    std::fprintf(stderr,
                 "Not every blob is in the bucket: don't start the server with --blob before a "
                 "run ends with none failed.\n");
    return 1;
  }
  std::fprintf(stderr,
               "Every blob is in the bucket. Start the server with --blob and the same URL; the "
               "files in %s may be removed once it serves them (this command removes nothing).\n",
               BlobPath(o.from).c_str());
  return 0;
}

}  // namespace datasite::server
