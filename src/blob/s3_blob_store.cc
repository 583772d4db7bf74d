#include "blob/s3_blob_store.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <system_error>
#include <vector>

#include "core/random.h"
#include "core/sha256.h"
#include "net/sigv4.h"

namespace datasite::blob {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMinPartSize = int64_t{5} << 20;  // S3's least part but the last

// Unix seconds of an ISO 8601 UTC time as S3 lists them ("2026-01-02T03:04:05.000Z"); nullopt when
// it is not one.
std::optional<int64_t> ParseIso8601(const std::string& s) {
  struct tm tm {};
  char zone = 0;
  int n = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6) {
    return std::nullopt;
  }
  // Fractions of a second are dropped: bounds are whole seconds.
  size_t at = static_cast<size_t>(n);
  if (at < s.size() && s[at] == '.') {
    ++at;
    while (at < s.size() && s[at] >= '0' && s[at] <= '9') ++at;
  }
  if (at < s.size()) zone = s[at++];
  if (zone != 'Z' || at != s.size()) return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&tm));
}

bool Before(const std::string& iso, std::optional<int64_t> bound) {
  if (!bound) return true;
  std::optional<int64_t> t = ParseIso8601(iso);
  return t && *t < *bound;  // an unreadable time is left alone, as a file that can't be stat'ed
}

// S3 clients for the store's concurrent callers: each call takes one (made when none is free) and
// gives it back when done, so connections are kept alive between calls. Safe for concurrent use.
class ClientPool {
 public:
  explicit ClientPool(net::S3ClientOptions options) : options_(std::move(options)) {}

  // A client taken from the pool, given back when it goes.
  class Lease {
   public:
    Lease(ClientPool& pool, std::unique_ptr<net::S3Client> client)
        : pool_(pool), client_(std::move(client)) {}
    ~Lease() { pool_.GiveBack(std::move(client_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    net::S3Client* operator->() const { return client_.get(); }

   private:
    ClientPool& pool_;
    std::unique_ptr<net::S3Client> client_;
  };

  Result<std::unique_ptr<Lease>> Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        auto client = std::move(free_.back());
        free_.pop_back();
        return std::make_unique<Lease>(*this, std::move(client));
      }
    }
    ASSIGN_OR_RETURN(std::unique_ptr<net::S3Client> client, net::S3Client::Create(options_));
    return std::make_unique<Lease>(*this, std::move(client));
  }

 private:
  void GiveBack(std::unique_ptr<net::S3Client> client) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(client));
  }

  const net::S3ClientOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<net::S3Client>> free_;  // Guarded by mu_.
};

// Bytes held in memory at once by all readers' windows (S3BlobReader), or by all writers' parts
// (PartBuffer), of a store, against a limit: a reader lives as long as a download and a writer as
// long as an upload, either may be a slow client's, so what they hold must not be what a crowd of
// slow clients can multiply.
class ByteBudget {
 public:
  explicit ByteBudget(int64_t limit) : limit_(limit) {}
  bool TryTake(int64_t n) {
    if (held_.fetch_add(n) + n <= limit_) return true;
    held_.fetch_sub(n);
    return false;
  }
  void Give(int64_t n) { held_.fetch_sub(n); }

 private:
  const int64_t limit_;
  std::atomic<int64_t> held_{0};
};

// `n` bytes of memory of their own (mmap), for an upload's part or ring: freed (munmap), they go
// back to the system at once, whichever thread frees them.
Result<char*> MapBytes(size_t n) {
  void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return ResourceExhaustedError("no memory for an upload's buffer");
  return static_cast<char*>(p);
}

// An upload past the store's upload budget.
Status UploadBudgetFull() {
  return UnavailableError(
             "the server holds as many uploads' bytes in memory as it may (S3 parts being sent); "
             "try again shortly")
      .WithRetryAfter(5);
}

// The bytes of one part, in memory of their own (mmap): freed, they go back to the system at
// once. Parts are filled on whichever request thread the upload's chunks come on and freed on
// another; from malloc, each of those threads' arenas would keep a part's worth of memory after
// it (seen: 77 MiB more resident for one upload of one part in flight).
//
// Its bytes count against the store's upload budget as they are appended.
class PartBuffer {
 public:
  PartBuffer(size_t capacity, ByteBudget& budget) : capacity_(capacity), budget_(budget) {}
  ~PartBuffer() {
    if (data_ != nullptr) ::munmap(data_, capacity_);
    budget_.Give(static_cast<int64_t>(size_));
  }
  PartBuffer(const PartBuffer&) = delete;
  PartBuffer& operator=(const PartBuffer&) = delete;

  size_t size() const { return size_; }
  size_t room() const { return capacity_ - size_; }
  std::string_view view() const { return std::string_view(data_, size_); }

  // Appends at most room() bytes of `bytes`; returns how many.
  Result<size_t> Append(std::string_view bytes) {
    if (data_ == nullptr && capacity_ > 0) {
      ASSIGN_OR_RETURN(data_, MapBytes(capacity_));
    }
    const size_t take = std::min(bytes.size(), room());
    if (!budget_.TryTake(static_cast<int64_t>(take))) return UploadBudgetFull();
    std::memcpy(data_ + size_, bytes.data(), take);
    size_ += take;
    return take;
  }

 private:
  const size_t capacity_;
  ByteBudget& budget_;
  char* data_ = nullptr;  // mapped at the first append
  size_t size_ = 0;
};

// An upload: bytes hashed as they come and gathered into one part; a blob that fits in one part
// is one PutObject at Commit, a larger one a multipart upload whose parts go as they fill (the
// next byte after a full part sends it). A full part is sent by a thread of its own while the
// next one fills, so the bytes coming in and those going out overlap; up to kPartsInFlight parts
// go at once, and a writer holds at most kPartsInFlight + 1 parts in memory. One: against the
// test server (s3rver behind a Python proxy, on the same two cores) three parts at once were no
// faster and tripled the server's memory (bench/s3.py, docs/BENCHMARKS.md). Each part's SHA-256
// is signed, so S3 refuses bytes changed on the way.
class S3BlobWriter : public BlobWriter {
 public:
  static constexpr size_t kPartsInFlight = 1;

  S3BlobWriter(ClientPool& pool, ByteBudget& budget, std::string id, std::string key,
               int64_t max_size, int64_t part_size, std::optional<int64_t> exact_size)
      : pool_(pool),
        budget_(budget),
        id_(std::move(id)),
        key_(std::move(key)),
        max_size_(max_size),
        exact_size_(exact_size),
        part_size_(static_cast<size_t>(part_size)),
        buffer_(std::make_unique<PartBuffer>(part_size_, budget_)) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }

  // An uncommitted blob's upload is aborted. A failed abort is left to RemoveTemporaryFiles; an
  // object a failed PutObject may still have stored, to the clean-up of blobs without a row.
  ~S3BlobWriter() override {
    EVP_MD_CTX_free(ctx_);
    while (!in_flight_.empty())
      (void)LandOldest();  // the parts in flight, before their upload goes
    if (committed_ || upload_id_.empty()) return;
    auto client = pool_.Take();
    if (client.ok()) (void)(**client)->AbortMultipartUpload(key_, upload_id_);
  }

  Status Append(std::string_view bytes) override {
    if (closed_) return FailedPreconditionError("blob writer is closed");
    RETURN_IF_ERROR(CheckAppendWithin(exact_size_, size_, bytes.size()));
    if (size_ + static_cast<int64_t>(bytes.size()) > max_size_) {
      return ResourceExhaustedError("the upload is larger than the limit of " +
                                    std::to_string(max_size_) + " bytes");
    }
    EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
    size_ += static_cast<int64_t>(bytes.size());
    // Counted in the hash and the size already: bytes that fail to follow make the blob one
    // that never commits.
    while (!bytes.empty()) {
      Status sent = buffer_->room() == 0 ? SendPart() : Status::Ok();
      Result<size_t> took = sent.ok() ? buffer_->Append(bytes) : Result<size_t>(sent);
      if (!took.ok()) {
        failed_ = true;
        return took.status();
      }
      bytes.remove_prefix(*took);
    }
    return Status::Ok();
  }

  Result<BlobInfo> Commit() override {
    if (closed_) return FailedPreconditionError("blob writer is closed");
    closed_ = true;
    // Bytes counted in the hash may be missing from the buffer: such a blob is never stored.
    if (failed_) return FailedPreconditionError("a part of this upload failed");
    RETURN_IF_ERROR(CheckExactSize(exact_size_, size_));
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    if (upload_id_.empty()) {
      ASSIGN_OR_RETURN(auto client, pool_.Take());
      RETURN_IF_ERROR((*client)->PutObject(key_, buffer_->view()));
    } else {
      RETURN_IF_ERROR(SendPart());  // the last, never empty: a full part is sent only before more
      while (!in_flight_.empty()) RETURN_IF_ERROR(LandOldest());
      ASSIGN_OR_RETURN(auto client, pool_.Take());
      for (size_t i = 0; i < parts_.size(); ++i) parts_[i].etag = *etags_[i];
      RETURN_IF_ERROR((*client)->CompleteMultipartUpload(key_, upload_id_, parts_));
    }
    committed_ = true;
    buffer_.reset();
    return BlobInfo{id_, size_, HexEncode(std::string_view(reinterpret_cast<char*>(digest), len))};
  }

 private:
  // Waits for the oldest part in flight; its failure fails the upload.
  Status LandOldest() {
    Status sent = in_flight_.front().get();
    in_flight_.pop_front();
    if (!sent.ok()) failed_ = true;
    return sent;
  }

  // Hands the buffer over as the next part (beginning the upload with the first), once fewer than
  // kPartsInFlight are in flight, and sends it from a thread of its own.
  Status SendPart() {
    while (in_flight_.size() >= kPartsInFlight) RETURN_IF_ERROR(LandOldest());
    if (failed_) return FailedPreconditionError("an earlier part of this upload failed");
    if (upload_id_.empty()) {
      failed_ = true;  // until the upload exists
      ASSIGN_OR_RETURN(auto client, pool_.Take());
      ASSIGN_OR_RETURN(upload_id_, (*client)->CreateMultipartUpload(key_));
      failed_ = false;
    }
    std::shared_ptr<const PartBuffer> part = std::move(buffer_);
    buffer_ = std::make_unique<PartBuffer>(part_size_, budget_);
    const int number = static_cast<int>(parts_.size()) + 1;
    // Each thread writes its own part's ETag, read at Commit once every part landed.
    auto etag = std::make_shared<std::string>();
    parts_.push_back({number, ""});
    etags_.push_back(etag);
    std::future<Status> done;
    try {
      done = std::async(std::launch::async, [this, number, part, etag]() -> Status {
        ASSIGN_OR_RETURN(auto client, pool_.Take());
        size_t sent = 0;
        net::BodyReader reader = [&](char* out, size_t n) -> Result<size_t> {
          size_t k = std::min(n, part->size() - sent);
          std::memcpy(out, part->view().data() + sent, k);
          sent += k;
          return k;
        };
        ASSIGN_OR_RETURN(*etag, (*client)->UploadPart(key_, upload_id_, number, part->size(),
                                                      reader, Sha256Hex(part->view())));
        return Status::Ok();
      });
    } catch (const std::system_error& e) {
      // No thread to send the part with (the system's limit): the upload fails, here.
      failed_ = true;
      return UnavailableError(std::string("cannot start a thread to send a part: ") + e.what());
    }
    in_flight_.push_back(std::move(done));
    return Status::Ok();
  }

  ClientPool& pool_;
  ByteBudget& budget_;
  const std::string id_;
  const std::string key_;
  const int64_t max_size_;
  const std::optional<int64_t> exact_size_;
  const size_t part_size_;
  EVP_MD_CTX* ctx_;
  int64_t size_ = 0;
  std::unique_ptr<PartBuffer> buffer_;         // the bytes not handed over yet: at most one part
  std::deque<std::future<Status>> in_flight_;  // the parts sent and not landed, oldest first
  std::string upload_id_;
  std::vector<net::S3CompletedPart> parts_;
  std::vector<std::shared_ptr<std::string>> etags_;  // parts_'s ETags, as their threads set them
  bool closed_ = false;
  bool committed_ = false;
  bool failed_ = false;
};

// A blob whose size is known before its first byte (an upload with a Content-Length, a blob
// moved from another store) and larger than one part: one streamed PutObject instead of a
// multipart upload, which an S3 server stores twice (each part, then the object at completion;
// s3rver spent a whole core on it and an upload ran at 0.41x of a plain PUT). The bytes go from
// Append through a ring of one part's size (mmap'd, from the upload budget) to the request, sent
// by a thread of its own.
//
// S3 stores an object only once all the bytes its Content-Length announced have arrived, and the
// last byte is held back until Commit: a writer destroyed before Commit (a client that went away,
// a SHA-256 that didn't match) cuts the request short, and nothing is stored. The payload goes
// unsigned (its hash would be needed before the first byte): the bytes on the way are as safe as
// the connection to the bucket (use https), and the blob's SHA-256, computed here, is still
// checked by every client that downloads it. A client that pauses longer than the bucket waits
// for a request's next byte (AWS: about 20 s) fails the upload.
class S3StreamedWriter : public BlobWriter {
 public:
  S3StreamedWriter(ClientPool& pool, ByteBudget& budget, std::string id, std::string key,
                   int64_t size, int64_t ring_size)
      : pool_(pool),
        budget_(budget),
        id_(std::move(id)),
        key_(std::move(key)),
        expected_(size),
        capacity_(static_cast<size_t>(ring_size)) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }

  ~S3StreamedWriter() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      abandoned_ = true;
    }
    cancel_ = true;  // ends the request within a second, even if the bucket reads nothing
    cv_.notify_all();
    if (put_.valid()) put_.wait();  // the request ends short: no object
    ReleaseRing();
    EVP_MD_CTX_free(ctx_);
  }

  Status Append(std::string_view bytes) override {
    if (closed_) return FailedPreconditionError("blob writer is closed");
    if (failed_) return FailedPreconditionError("this upload failed already");
    if (Status within = CheckAppendWithin(expected_, size_, bytes.size()); !within.ok()) {
      failed_ = true;
      return within;
    }
    if (ring_ == nullptr) {
      Status started = Start();
      if (!started.ok()) {
        failed_ = true;
        return started;
      }
    }
    EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
    size_ += static_cast<int64_t>(bytes.size());
    while (!bytes.empty()) {
      size_t at = 0, n = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return filled_ < capacity_ || put_done_; });
        if (put_done_) {
          failed_ = true;
          return put_status_.ok() ? InternalError("the PUT of " + key_ + " ended early")
                                  : put_status_;
        }
        at = (head_ + filled_) % capacity_;
        n = std::min({bytes.size(), capacity_ - filled_, capacity_ - at});
      }
      // Only this thread writes the free part of the ring, only the sender reads the filled part.
      std::memcpy(ring_ + at, bytes.data(), n);
      {
        std::lock_guard<std::mutex> lock(mu_);
        filled_ += n;
      }
      cv_.notify_all();
      bytes.remove_prefix(n);
    }
    return Status::Ok();
  }

  Result<BlobInfo> Commit() override {
    if (closed_) return FailedPreconditionError("blob writer is closed");
    closed_ = true;
    if (failed_) return FailedPreconditionError("this upload failed");
    RETURN_IF_ERROR(CheckExactSize(expected_, size_));
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    {
      std::lock_guard<std::mutex> lock(mu_);
      committing_ = true;
    }
    cv_.notify_all();
    Status put = put_.get();
    ReleaseRing();  // the request is over: its buffer goes back now, not when the writer goes
    RETURN_IF_ERROR(put);
    return BlobInfo{id_, size_, HexEncode(std::string_view(reinterpret_cast<char*>(digest), len))};
  }

 private:
  // Maps the ring and starts the request.
  Status Start() {
    if (!budget_.TryTake(static_cast<int64_t>(capacity_))) return UploadBudgetFull();
    Result<char*> ring = MapBytes(capacity_);
    if (!ring.ok()) {
      budget_.Give(static_cast<int64_t>(capacity_));
      return ring.status();
    }
    ring_ = *ring;
    try {
      put_ = std::async(std::launch::async, [this] {
        Status st = InternalError("the PUT of " + key_ + " threw");
        try {
          st = Send();
        } catch (const std::exception& e) {
          st = InternalError("the PUT of " + key_ + " threw: " + e.what());
        }
        {
          std::lock_guard<std::mutex> lock(mu_);
          put_done_ = true;
          put_status_ = st;
        }
        cv_.notify_all();
        return st;
      });
    } catch (const std::system_error& e) {
      return UnavailableError(std::string("cannot start a thread to send an upload: ") + e.what());
    }
    return Status::Ok();
  }

  // Gives the ring back (unmapped, out of the budget), once no request reads it.
  void ReleaseRing() {
    if (ring_ == nullptr) return;
    ::munmap(ring_, capacity_);
    budget_.Give(static_cast<int64_t>(capacity_));
    ring_ = nullptr;
  }

  Status Send() {
    ASSIGN_OR_RETURN(auto client, pool_.Take());
    net::BodyReader reader = [this](char* out, size_t n) { return Pull(out, n); };
    return (*client)->PutObjectFrom(key_, static_cast<uint64_t>(expected_), reader, &cancel_);
  }

  // The request's next bytes: what Append put in the ring, all but the blob's last byte until
  // Commit. An error once the writer is abandoned, which ends the request short.
  Result<size_t> Pull(char* out, size_t n) {
    size_t at = 0, k = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        if (abandoned_) return FailedPreconditionError("the upload was abandoned");
        const int64_t held_back = committing_ ? 0 : 1;
        const int64_t may =
            std::min<int64_t>(static_cast<int64_t>(filled_), expected_ - held_back - sent_);
        if (may > 0) {
          at = head_;
          k = std::min({n, static_cast<size_t>(may), capacity_ - head_});
          break;
        }
        cv_.wait(lock);
      }
    }
    std::memcpy(out, ring_ + at, k);
    {
      std::lock_guard<std::mutex> lock(mu_);
      head_ = (head_ + k) % capacity_;
      filled_ -= k;
      sent_ += static_cast<int64_t>(k);
    }
    cv_.notify_all();
    return k;
  }

  ClientPool& pool_;
  ByteBudget& budget_;
  const std::string id_;
  const std::string key_;
  const int64_t expected_;
  const size_t capacity_;
  EVP_MD_CTX* ctx_;
  int64_t size_ = 0;  // bytes appended
  bool closed_ = false;
  bool failed_ = false;
  char* ring_ = nullptr;  // mapped at the first Append

  std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_: the filled part of the ring starts at head_ and holds filled_ bytes.
  size_t head_ = 0;
  size_t filled_ = 0;
  int64_t sent_ = 0;  // bytes handed to the request
  bool committing_ = false;
  bool abandoned_ = false;
  bool put_done_ = false;
  Status put_status_;
  std::atomic<bool> cancel_{false};  // set with abandoned_, for the request's progress calls
  std::future<Status> put_;          // last: destroyed first
};

// A committed object, its size taken by HeadObject at Open. Reads come from a window of the
// object fetched with one ranged GetObject: each GET costs a round trip (tens of milliseconds on a
// real S3), so a reader going front to back in small pieces (a download answered 64 KiB at a time)
// must not make one per piece. The window starts small, for readers that read a little here and
// there, and doubles while each read starts where the one before ended, up to kMaxWindow; a read
// at least as large as the next window goes straight into the caller's buffer (and still counts
// as sequential). Once the window is at its largest, the next one is fetched by a thread of its
// own while the caller reads this one (a download then waits on S3 only when the client reads
// faster than S3 answers). Window bytes come from the store's ByteBudget; past it a reader reads
// each piece with a GET of its own, slower but holding nothing.
class S3BlobReader : public BlobReader {
 public:
  static constexpr size_t kMinWindow = size_t{256} << 10;
  static constexpr size_t kMaxWindow = size_t{8} << 20;

  // `read_ahead`: whether it may hold windows (false: each read is a GET of its own).
  S3BlobReader(ClientPool& pool, ByteBudget& budget, std::string key, int64_t size, bool read_ahead)
      : pool_(pool), budget_(budget), key_(std::move(key)), size_(size), read_ahead_(read_ahead) {}
  ~S3BlobReader() override {
    if (ahead_done_.valid()) ahead_done_.wait();  // it writes into ahead_
    budget_.Give(static_cast<int64_t>(taken_ + ahead_taken_));
  }

  int64_t size() const override { return size_; }

  Result<size_t> ReadAt(int64_t offset, char* buf, size_t n) override {
    if (offset < 0) return InvalidArgumentError("a negative offset into blob " + key_);
    if (offset >= size_ || n == 0) return size_t{0};
    const size_t want =
        static_cast<size_t>(std::min<int64_t>(size_ - offset, static_cast<int64_t>(n)));
    const bool sequential = offset == next_offset_;
    next_offset_ = offset + static_cast<int64_t>(want);
    if (InWindow(offset, want)) {
      std::memcpy(buf, window_.data() + (offset - window_offset_), want);
      return want;
    }
    if (InWindow(offset, 1) && ahead_done_.valid()) {
      // Across the window's end: the head from this window, the rest from the one fetched ahead,
      // which starts where this one ends (were it thrown away, the next window would be fetched
      // again: one GET more per window for pieces that don't divide it).
      const size_t head =
          static_cast<size_t>(window_offset_ + static_cast<int64_t>(window_.size()) - offset);
      std::memcpy(buf, window_.data() + (offset - window_offset_), head);
      const int64_t rest = offset + static_cast<int64_t>(head);
      if (TakeAhead(rest) && InWindow(rest, want - head)) {
        std::memcpy(buf + head, window_.data(), want - head);
        StartAhead();
        return want;
      }
    } else if (TakeAhead(offset) && InWindow(offset, want)) {
      std::memcpy(buf, window_.data() + (offset - window_offset_), want);
      StartAhead();
      return want;
    }
    next_window_ = sequential ? std::min(kMaxWindow, next_window_ * 2) : kMinWindow;
    const size_t span =
        static_cast<size_t>(std::min<int64_t>(size_ - offset, static_cast<int64_t>(next_window_)));
    if (want >= span || !Hold(span)) {
      RETURN_IF_ERROR(Fetch(offset, want, buf));
      return want;
    }
    window_.resize(span);
    window_offset_ = offset;
    Status fetched = Fetch(offset, span, window_.data());
    if (!fetched.ok()) {
      window_.clear();
      return fetched;
    }
    std::memcpy(buf, window_.data(), want);
    if (next_window_ == kMaxWindow) StartAhead();
    return want;
  }

 private:
  // Fetches the window after this one in the background, if there is one and the budget has room.
  void StartAhead() {
    const int64_t at = window_offset_ + static_cast<int64_t>(window_.size());
    if (at >= size_ || ahead_done_.valid()) return;
    const size_t span =
        static_cast<size_t>(std::min<int64_t>(size_ - at, static_cast<int64_t>(kMaxWindow)));
    if (span > ahead_taken_) {
      if (!budget_.TryTake(static_cast<int64_t>(span - ahead_taken_))) return;
      ahead_taken_ = span;
    }
    ahead_.resize(span);
    ahead_offset_ = at;
    try {
      ahead_done_ = std::async(std::launch::async,
                               [this, at, span] { return Fetch(at, span, ahead_.data()); });
    } catch (const std::system_error&) {
      ahead_offset_ = -1;  // no thread: the next window is fetched when it is read
    }
  }

  // Waits for the window fetched ahead, if any; when it starts at `offset` and came whole, it
  // becomes the window. True when it did.
  bool TakeAhead(int64_t offset) {
    if (!ahead_done_.valid()) return false;
    Status fetched = ahead_done_.get();
    if (!fetched.ok() || ahead_offset_ != offset) return false;
    std::swap(window_, ahead_);
    std::swap(taken_, ahead_taken_);
    window_offset_ = ahead_offset_;
    ahead_offset_ = -1;
    return true;
  }

  bool InWindow(int64_t offset, size_t n) const {
    return !window_.empty() && offset >= window_offset_ &&
           offset + static_cast<int64_t>(n) <=
               window_offset_ + static_cast<int64_t>(window_.size());
  }

  // Makes the budget cover a window of `span` bytes; false when it can't.
  bool Hold(size_t span) {
    if (!read_ahead_) return false;
    if (span <= taken_) return true;
    if (!budget_.TryTake(static_cast<int64_t>(span - taken_))) return false;
    taken_ = span;
    return true;
  }

  // Reads exactly `n` bytes from `offset` into `out` with one ranged GetObject.
  Status Fetch(int64_t offset, size_t n, char* out) {
    ASSIGN_OR_RETURN(auto client, pool_.Take());
    size_t got = 0;
    auto res = (*client)->GetObject(
        key_,
        net::S3Client::ByteRange{static_cast<uint64_t>(offset),
                                 static_cast<uint64_t>(offset) + n - 1},
        [&](std::string_view bytes) -> Status {
          if (bytes.size() > n - got) {
            return InternalError("S3 sent more of " + key_ + " than the range asked");
          }
          std::memcpy(out + got, bytes.data(), bytes.size());
          got += bytes.size();
          return Status::Ok();
        });
    if (!res.ok()) {
      // Deleted since it was opened (or cut short): an error, never a short or different blob.
      if (res.status().code() == StatusCode::kNotFound ||
          res.status().code() == StatusCode::kInvalidArgument) {
        return InternalError("blob " + key_ + " is gone: " + res.status().message());
      }
      return res.status();
    }
    if (got != n) {
      return InternalError("S3 sent " + std::to_string(got) + " bytes of " + key_ + " where " +
                           std::to_string(n) + " were asked");
    }
    return Status::Ok();
  }

  ClientPool& pool_;
  ByteBudget& budget_;
  const std::string key_;
  const int64_t size_;
  const bool read_ahead_;
  std::string window_;  // bytes [window_offset_, window_offset_ + size) of the object
  int64_t window_offset_ = 0;
  size_t taken_ = 0;         // window bytes taken from the budget (the most the window held)
  int64_t next_offset_ = 0;  // where a sequential read would start: the end of the last one
  size_t next_window_ = kMinWindow / 2;  // doubled before the first fetch
  std::string ahead_;                    // the window after this one, being fetched or fetched
  int64_t ahead_offset_ = -1;
  size_t ahead_taken_ = 0;          // ahead_'s bytes taken from the budget
  std::future<Status> ahead_done_;  // last: destroyed first, waiting for the fetch into ahead_
};

class S3BlobStore : public BlobStore {
 public:
  S3BlobStore(S3BlobStoreOptions options, std::string key_prefix)
      : pool_(options.client),
        key_prefix_(std::move(key_prefix)),
        scratch_dir_(std::move(options.scratch_dir)),
        part_size_(options.part_size),
        window_budget_(options.read_window_budget),
        upload_budget_(options.upload_memory_budget),
        streamed_puts_(ConnectionGuardsPayloads(options.client.endpoint)) {}

  Result<std::unique_ptr<BlobWriter>> NewWriterFor(const std::string& id, int64_t max_size,
                                                   std::optional<int64_t> exact_size) override {
    if (!IsBlobId(id)) return InvalidArgumentError("a blob id must be a UUID, or one and .N");
    RETURN_IF_ERROR(CheckExactSizeFits(exact_size, max_size));
    if (exact_size && streamed_puts_ && *exact_size > part_size_ &&
        static_cast<uint64_t>(*exact_size) <= net::kMaxPutObjectBytes) {
      return std::unique_ptr<BlobWriter>(std::make_unique<S3StreamedWriter>(
          pool_, upload_budget_, id, key_prefix_ + id, *exact_size, part_size_));
    }
    return std::unique_ptr<BlobWriter>(std::make_unique<S3BlobWriter>(
        pool_, upload_budget_, id, key_prefix_ + id, max_size, part_size_, exact_size));
  }

  Result<std::unique_ptr<BlobReader>> Open(const std::string& id) override {
    return OpenReader(id, /*read_ahead=*/true);
  }

  Result<std::unique_ptr<BlobReader>> OpenWithoutReadAhead(const std::string& id) override {
    return OpenReader(id, /*read_ahead=*/false);
  }

  Status Delete(const std::string& id) override {
    if (!IsBlobId(id)) return Status::Ok();
    ASSIGN_OR_RETURN(auto client, pool_.Take());
    return (*client)->DeleteObject(key_prefix_ + id);
  }

  Result<std::vector<std::string>> List(std::optional<int64_t> modified_before) override {
    ASSIGN_OR_RETURN(auto client, pool_.Take());
    std::vector<std::string> out;
    std::string token;
    do {
      ASSIGN_OR_RETURN(net::S3ListPage page, (*client)->ListObjects(key_prefix_, token));
      for (const auto& o : page.objects) {
        std::string id = o.key.substr(key_prefix_.size());
        if (IsBlobId(id) && Before(o.last_modified, modified_before)) out.push_back(std::move(id));
      }
      token = std::move(page.next_continuation_token);
    } while (!token.empty());
    return out;
  }

  std::string ScratchPath() override { return scratch_dir_ + "/" + NewUuid() + ".scratch"; }

  Status RemoveTemporaryFiles(std::optional<int64_t> modified_before) override {
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(scratch_dir_, ec)) {
      struct stat st;
      if (::lstat(f.path().c_str(), &st) != 0) continue;
      if (!modified_before || st.st_mtim.tv_sec < *modified_before) fs::remove(f.path(), ec);
    }
    if (ec) return InternalError("cleaning " + scratch_dir_ + ": " + ec.message());
    return AbortUploads(modified_before);
  }

 private:
  Result<std::unique_ptr<BlobReader>> OpenReader(const std::string& id, bool read_ahead) {
    if (!IsBlobId(id)) return NotFoundError("no blob with id " + id.substr(0, 64));
    ASSIGN_OR_RETURN(auto client, pool_.Take());
    auto head = (*client)->HeadObject(key_prefix_ + id);
    if (!head.ok()) {
      if (head.status().code() == StatusCode::kNotFound) {
        return NotFoundError("the bytes of blob " + id + " are missing");
      }
      return head.status();
    }
    return std::unique_ptr<BlobReader>(new S3BlobReader(
        pool_, window_budget_, key_prefix_ + id, static_cast<int64_t>(head->size), read_ahead));
  }

  // Aborts the multipart uploads of blobs under the prefix begun before `bound` (all: none).
  Status AbortUploads(std::optional<int64_t> bound) {
    ASSIGN_OR_RETURN(auto client, pool_.Take());
    std::string key_marker, id_marker;
    do {
      ASSIGN_OR_RETURN(net::S3UploadsPage page,
                       (*client)->ListMultipartUploads(key_prefix_, key_marker, id_marker));
      for (const auto& u : page.uploads) {
        if (!IsBlobId(u.key.substr(std::min(key_prefix_.size(), u.key.size())))) continue;
        if (!Before(u.initiated, bound)) continue;
        Status st = (*client)->AbortMultipartUpload(u.key, u.upload_id);
        if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
      }
      key_marker = std::move(page.next_key_marker);
      id_marker = std::move(page.next_upload_id_marker);
    } while (!key_marker.empty());
    return Status::Ok();
  }

  ClientPool pool_;
  const std::string key_prefix_;  // "" or "prefix/"
  const std::string scratch_dir_;
  const int64_t part_size_;
  ByteBudget window_budget_;  // outlives the readers and writers: they borrow the store
  ByteBudget upload_budget_;
  // Whether blobs of known size may go as one PUT, whose payload is unsigned (S3StreamedWriter).
  const bool streamed_puts_;
};

}  // namespace

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX escapes decoded; nullopt for a broken one.
std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size() || HexDigit(s[i + 1]) < 0 || HexDigit(s[i + 2]) < 0) {
      return std::nullopt;
    }
    out += static_cast<char>(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
    i += 2;
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// The credentials in an AWS shared credentials file. Errors name the file, never what it holds.
Result<net::AwsCredentials> ReadCredentialsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return InvalidArgumentError("cannot read the S3 credentials file " + path);
  net::AwsCredentials c;
  bool in_default = true;  // lines before any section count as [default]
  for (std::string line; std::getline(in, line);) {
    std::string_view l = Trim(line);
    if (l.empty() || l.front() == '#' || l.front() == ';') continue;
    if (l.front() == '[') {
      in_default = l == "[default]";
      continue;
    }
    size_t eq = l.find('=');
    if (!in_default || eq == std::string_view::npos) continue;
    std::string_view key = Trim(l.substr(0, eq)), value = Trim(l.substr(eq + 1));
    if (key == "aws_access_key_id") c.access_key_id = value;
    if (key == "aws_secret_access_key") c.secret_access_key = value;
    if (key == "aws_session_token") c.session_token = value;
  }
  if (c.access_key_id.empty() || c.secret_access_key.empty()) {
    return InvalidArgumentError("the S3 credentials file " + path +
                                " has no aws_access_key_id and aws_secret_access_key in [default]");
  }
  return c;
}

}  // namespace

Result<S3BlobStoreOptions> ParseS3BlobUrl(std::string_view url, const GetEnv& env) {
  constexpr std::string_view kScheme = "s3://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgumentError("an S3 blob store is s3://BUCKET/PREFIX?endpoint=URL&region=R");
  }
  url.remove_prefix(kScheme.size());
  std::string_view query;
  if (size_t q = url.find('?'); q != std::string_view::npos) {
    query = url.substr(q + 1);
    url = url.substr(0, q);
  }
  S3BlobStoreOptions o;
  size_t slash = url.find('/');
  o.client.bucket = std::string(url.substr(0, slash));
  if (slash != std::string_view::npos) o.prefix = std::string(url.substr(slash + 1));
  if (o.client.bucket.empty()) return InvalidArgumentError("no bucket in the S3 blob store URL");
  std::string credentials_file;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? "" : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::optional<std::string> value =
        PercentDecode(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    if (!value || value->empty()) {
      return InvalidArgumentError("no value for " + std::string(key) + " in the S3 blob store URL");
    }
    if (key == "endpoint") {
      o.client.endpoint = std::move(*value);
    } else if (key == "region") {
      o.client.region = std::move(*value);
    } else if (key == "credentials") {
      credentials_file = std::move(*value);
    } else {
      return InvalidArgumentError("unknown parameter " + std::string(key).substr(0, 64) +
                                  " in the S3 blob store URL (endpoint, region, credentials)");
    }
  }
  if (o.client.endpoint.empty()) {
    o.client.endpoint = "https://s3." + o.client.region + ".amazonaws.com";
  }
  if (!credentials_file.empty()) {
    ASSIGN_OR_RETURN(o.client.credentials, ReadCredentialsFile(credentials_file));
  } else {
    std::optional<std::string> id = env("AWS_ACCESS_KEY_ID");
    std::optional<std::string> secret = env("AWS_SECRET_ACCESS_KEY");
    if (!id || id->empty() || !secret || secret->empty()) {
      return InvalidArgumentError(
          "the S3 blob store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
          "credentials=FILE in its URL");
    }
    o.client.credentials.access_key_id = std::move(*id);
    o.client.credentials.secret_access_key = std::move(*secret);
    if (auto token = env("AWS_SESSION_TOKEN")) o.client.credentials.session_token = *token;
  }
  RETURN_IF_ERROR(net::S3Client::Create(o.client).status());  // the endpoint and the bucket
  return o;
}

bool ConnectionGuardsPayloads(std::string_view endpoint) {
  if (endpoint.substr(0, 8) == "https://") return true;
  if (endpoint.substr(0, 7) != "http://") return false;
  std::string_view host = endpoint.substr(7);
  host = host.substr(0, host.find('/'));
  if (!host.empty() && host.front() == '[') return host.substr(0, 5) == "[::1]";
  const std::string name(host.substr(0, host.find(':')));
  in_addr v4;
  if (inet_pton(AF_INET, name.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return name == "localhost";
}

Result<std::unique_ptr<BlobStore>> NewS3BlobStore(S3BlobStoreOptions options) {
  if (options.part_size < kMinPartSize) {
    return InvalidArgumentError("S3 parts must be at least 5 MiB");
  }
  if (options.scratch_dir.empty()) return InvalidArgumentError("no scratch directory");
  RETURN_IF_ERROR(net::S3Client::Create(options.client).status());  // checks endpoint and bucket
  std::string_view p = options.prefix;
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  while (!p.empty() && p.back() == '/') p.remove_suffix(1);
  std::string key_prefix = p.empty() ? "" : std::string(p) + "/";
  std::error_code ec;
  fs::create_directories(options.scratch_dir, ec);
  if (ec) {
    return UnavailableError("cannot create scratch directory " + options.scratch_dir + ": " +
                            ec.message());
  }
  return std::unique_ptr<BlobStore>(new S3BlobStore(std::move(options), std::move(key_prefix)));
}

}  // namespace datasite::blob
