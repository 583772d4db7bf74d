#include "net/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "blob/file_writer.h"
#include "net/curl_init.h"

namespace datasite::net {
namespace {

using SteadyClock = std::chrono::steady_clock;

// The chunk a transfer reads or writes at a time (libcurl allows up to 2 MiB for uploads).
constexpr long kTransferBufferBytes = 1L << 20;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string ErrnoText() { return std::strerror(errno); }

bool WriteFull(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Owns a file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1;
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const char* data, size_t n) {
    if (ok_) ok_ = EVP_DigestUpdate(ctx_, data, n) == 1;
  }
  // Lowercase hex; "" when OpenSSL failed.
  std::string HexDigest() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_, md, &len) != 1) return "";
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out.push_back(kHex[md[i] >> 4]);
      out.push_back(kHex[md[i] & 15]);
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
  bool ok_ = false;
};

// The state of one transfer, shared with libcurl's callbacks.
struct Transfer {
  CURL* curl = nullptr;
  const HttpClientOptions* options = nullptr;
  std::string url;
  HttpResponse response;
  // The first failure a callback met; it aborts the transfer and is what the caller gets.
  Status error;

  // Upload(): the file read into the body; Stream(): the reader.
  int in_fd = -1;
  const BodyReader* reader = nullptr;
  uint64_t read_so_far = 0;
  uint64_t upload_size = 0;
  bool uploading = false;

  // Download() and Stream(): where a 2xx body goes: a file, a descriptor or a writer (none of
  // them: response.body).
  blob::FileWriter* out_file = nullptr;
  int out_fd = -1;
  const BodyWriter* writer = nullptr;
  bool body_to_file = false;  // decided at the first body byte
  bool body_decided = false;
  Sha256 sha;
  uint64_t written = 0;

  const TransferProgress* progress = nullptr;
  const std::atomic<bool>* cancel = nullptr;  // HttpRequest::cancel
  bool watch_stalls = false;
  SteadyClock::time_point last_move = SteadyClock::now();
  curl_off_t last_up = 0, last_down = 0;
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.substr(0, 5) == "HTTP/") {
    // A new status line (after a 100 Continue, say): only the final answer's headers count.
    t->response.headers.clear();
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * count;
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  t->response.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  return size * count;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  if (!t->body_decided) {
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    t->body_to_file =
        (t->out_file != nullptr || t->out_fd >= 0 || t->writer != nullptr) && status / 100 == 2;
    t->body_decided = true;
  }
  if (t->body_to_file && t->writer != nullptr) {
    Status st = (*t->writer)(std::string_view(data, n));
    if (!st.ok()) {
      t->error = st;
      return 0;
    }
    t->written += n;
    return n;
  }
  if (t->body_to_file && t->out_file != nullptr) {
    Status st = t->out_file->Append(std::string_view(data, n));
    if (!st.ok()) {
      t->error = st.code() == StatusCode::kResourceExhausted
                     ? ResourceExhaustedError("download: the disk is full")
                     : InternalError("download: cannot write: " + st.message());
      return 0;
    }
    t->sha.Update(data, n);
    t->written += n;
    return n;
  }
  if (t->body_to_file) {
    if (!WriteFull(t->out_fd, data, n)) {
      int saved = errno;
      t->error = saved == ENOSPC ? ResourceExhaustedError("download: the disk is full")
                                 : InternalError("download: cannot write: " + ErrnoText());
      return 0;
    }
    t->sha.Update(data, n);
    t->written += n;
    return n;
  }
  if (t->response.body.size() + n > t->options->max_body_bytes) {
    t->error = ResourceExhaustedError("the answer of " + t->url + " is larger than " +
                                      std::to_string(t->options->max_body_bytes) + " bytes");
    return 0;
  }
  t->response.body.append(data, n);
  return n;
}

size_t OnRead(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  if (t->reader != nullptr) {
    size_t want =
        static_cast<size_t>(std::min<uint64_t>(size * count, t->upload_size - t->read_so_far));
    if (want == 0) return 0;
    Result<size_t> got = (*t->reader)(buffer, want);
    if (!got.ok()) {
      t->error = got.status();
      return CURL_READFUNC_ABORT;
    }
    if (*got == 0 || *got > want) {
      // The reader promised body_size bytes: fewer would leave the peer waiting for the rest.
      t->error = InternalError("upload: the body ended after " + std::to_string(t->read_so_far) +
                               " of " + std::to_string(t->upload_size) + " bytes");
      return CURL_READFUNC_ABORT;
    }
    t->read_so_far += *got;
    return *got;
  }
  for (;;) {
    ssize_t r = ::read(t->in_fd, buffer, size * count);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) continue;
    t->error = InternalError("upload: cannot read the file: " + ErrnoText());
    return CURL_READFUNC_ABORT;
  }
}

int OnProgress(void* user, curl_off_t down_total, curl_off_t down_now, curl_off_t up_total,
               curl_off_t up_now) {
  auto* t = static_cast<Transfer*>(user);
  auto now = SteadyClock::now();
  bool moved = up_now != t->last_up || down_now != t->last_down;
  if (moved) {
    t->last_move = now;
    t->last_up = up_now;
    t->last_down = down_now;
    if (t->progress && *t->progress) {
      if (t->uploading) {
        (*t->progress)(static_cast<uint64_t>(up_now), t->upload_size);
      } else {
        (*t->progress)(static_cast<uint64_t>(down_now), static_cast<uint64_t>(down_total));
      }
    }
  }
  (void)up_total;
  if (t->cancel != nullptr && t->cancel->load()) {
    t->error = UnavailableError("the request to " + t->url + " was cancelled");
    return 1;
  }
  if (!t->watch_stalls) return 0;
  // Once the whole file is sent, the peer may take its time to answer; otherwise bytes must move.
  bool awaiting_answer =
      t->uploading && static_cast<uint64_t>(up_now) >= t->upload_size && down_now == 0;
  auto limit = awaiting_answer ? t->options->upload_answer_timeout : t->options->stall_timeout;
  if (limit.count() > 0 && now - t->last_move > limit) {
    t->error = Status(
        StatusCode::kDeadlineExceeded,
        (awaiting_answer ? "no answer from " : "no progress with ") + t->url + " for " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(limit).count()) + " s");
    return 1;
  }
  return 0;
}

// The Status for a failed curl_easy_perform.
Status TransportError(CURLcode rc, const char* detail, const std::string& url) {
  std::string what = detail[0] ? detail : curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return InvalidArgumentError("bad URL '" + url + "': " + what);
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
      return InvalidArgumentError("cannot use the CA file: " + what);
    case CURLE_OPERATION_TIMEDOUT:
      return Status(StatusCode::kDeadlineExceeded, "timed out talking to " + url + ": " + what);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return UnavailableError("TLS with " + url + " failed: " + what);
    case CURLE_PARTIAL_FILE:
      return UnavailableError("the connection to " + url + " was lost mid-answer: " + what);
    default:
      return UnavailableError("cannot reach " + url + ": " + what);
  }
}

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// Frees a curl_slist.
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// Removes a file on destruction unless Keep() was called.
class FileRemover {
 public:
  explicit FileRemover(std::string path) : path_(std::move(path)) {}
  ~FileRemover() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  FileRemover(const FileRemover&) = delete;
  FileRemover& operator=(const FileRemover&) = delete;
  void Keep() { path_.clear(); }

 private:
  std::string path_;
};

Status FsyncDirectoryOf(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) {
    return InternalError("download: cannot sync " + dir + ": " + ErrnoText());
  }
  return Status::Ok();
}

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return "";
}

class HttpClient::Impl {
 public:
  explicit Impl(HttpClientOptions options) : options_(std::move(options)) {
    InitCurlOnce();
    curl_ = curl_easy_init();
  }
  ~Impl() {
    if (curl_) curl_easy_cleanup(curl_);
  }

  const HttpClientOptions& options() const { return options_; }

  // Runs one transfer whose body options (read or post fields) the caller has set on `t`.
  // kMemory: a total timeout; kStreamed: none, but bytes must keep moving. An upload (a file or a
  // reader) is whichever `t.uploading` says.
  enum class Mode { kMemory, kStreamed };
  Status Perform(const HttpRequest& request, Mode mode, Transfer& t);

 private:
  const HttpClientOptions options_;
  CURL* curl_ = nullptr;
};

Status HttpClient::Impl::Perform(const HttpRequest& request, Mode mode, Transfer& t) {
  if (!curl_) return InternalError("cannot start libcurl");
  t.cancel = request.cancel;
  if (HasLineBreak(request.method) || request.method.empty() ||
      HasLineBreak(request.bearer_token)) {
    return InvalidArgumentError("a request method or token may not contain a line break");
  }
  Slist headers;
  auto add = [&](const std::string& line) {
    curl_slist* l = curl_slist_append(headers.get(), line.c_str());
    if (l) {
      (void)headers.release();
      headers.reset(l);
    }
  };
  for (const auto& [k, v] : request.headers) {
    if (HasLineBreak(k) || HasLineBreak(v) || k.find(':') != std::string::npos || k.empty()) {
      return InvalidArgumentError("bad request header '" + k + "'");
    }
    add(k + ": " + v);
  }
  if (!request.bearer_token.empty()) add("Authorization: Bearer " + request.bearer_token);
  add(t.uploading ? "Expect: 100-continue" : "Expect:");

  curl_easy_reset(curl_);  // keeps the connection cache
  t.curl = curl_;
  t.options = &options_;
  t.url = request.url;
  char detail[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl_, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl_, CURLOPT_FOLLOWLOCATION, 0L);  // a token never follows a redirect
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_USERAGENT, "datasite");
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(curl_, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl_, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl_, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(curl_, CURLOPT_XFERINFODATA, &t);

  // Larger than libcurl's 16 KiB defaults: fewer system calls per GiB streamed.
  curl_easy_setopt(curl_, CURLOPT_BUFFERSIZE, kTransferBufferBytes);
  curl_easy_setopt(curl_, CURLOPT_UPLOAD_BUFFERSIZE, kTransferBufferBytes);
  if (mode == Mode::kMemory) {
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(options_.request_timeout.count()));
  } else {
    t.watch_stalls = true;
  }
  if (t.uploading) {
    curl_easy_setopt(curl_, CURLOPT_POST, 1L);
    curl_easy_setopt(curl_, CURLOPT_READFUNCTION, OnRead);
    curl_easy_setopt(curl_, CURLOPT_READDATA, &t);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.upload_size));
    if (request.method != "POST") {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  } else if (request.method == "GET" && request.body.empty()) {
    curl_easy_setopt(curl_, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.body.size()));
    if (request.method != "POST") {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  }

  CURLcode rc = curl_easy_perform(curl_);
  long status = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
  t.response.status = static_cast<int>(status);
  // The options point into this frame (headers, error buffer); none may outlive it.
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, nullptr);
  if (!t.error.ok()) return t.error;
  if (rc != CURLE_OK) return TransportError(rc, detail, request.url);
  return Status::Ok();
}

HttpClient::HttpClient(HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpClient::~HttpClient() = default;

const HttpClientOptions& HttpClient::options() const { return impl_->options(); }

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  Transfer t;
  RETURN_IF_ERROR(impl_->Perform(request, Impl::Mode::kMemory, t));
  return std::move(t.response);
}

Result<HttpResponse> HttpClient::Upload(const HttpRequest& request, const std::string& path,
                                        const TransferProgress& progress) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return InvalidArgumentError("cannot read " + path + ": " + ErrnoText());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return InvalidArgumentError("cannot read " + path + ": " + ErrnoText());
  }
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path + " is not a regular file");
  Transfer t;
  t.in_fd = fd.get();
  t.upload_size = static_cast<uint64_t>(st.st_size);
  t.uploading = true;
  t.progress = &progress;
  RETURN_IF_ERROR(impl_->Perform(request, Impl::Mode::kStreamed, t));
  return std::move(t.response);
}

Result<HttpResponse> HttpClient::Download(const HttpRequest& request, const std::string& path,
                                          int permissions) {
  Transfer t;
  if (path == "-") {
    t.out_fd = STDOUT_FILENO;
    RETURN_IF_ERROR(impl_->Perform(request, Impl::Mode::kStreamed, t));
    if (!t.body_to_file) return std::move(t.response);
    std::string expected = t.response.Header("X-Content-SHA256");
    if (!expected.empty() && t.sha.HexDigest() != expected) {
      return InternalError("the download does not match its X-Content-SHA256");
    }
    return std::move(t.response);
  }
  // Created with the umask's usual permissions; a name of this process, so runs don't collide.
  // Written as the server writes blobs (blob/file_writer.h): past the page cache where the file
  // system allows, so that the fsync below has next to nothing left.
  std::string temp = path + ".part-" + std::to_string(::getpid());
  auto file = blob::FileWriter::Create(temp, blob::BlobWriteMode::kDirect, permissions);
  if (!file.ok()) return InvalidArgumentError("download: cannot " + file.status().message());
  FileRemover remover(temp);
  t.out_file = file->get();
  RETURN_IF_ERROR(impl_->Perform(request, Impl::Mode::kStreamed, t));
  if (t.response.status / 100 != 2) return std::move(t.response);
  std::string expected = t.response.Header("X-Content-SHA256");
  if (!expected.empty() && t.sha.HexDigest() != expected) {
    return InternalError("the download from " + request.url +
                         " does not match its X-Content-SHA256; nothing was written");
  }
  Status closed = (*file)->Close();
  if (!closed.ok()) {
    // A write of the writer's own thread may fail only here (the disk full at the last blocks).
    if (closed.code() == StatusCode::kResourceExhausted) {
      return ResourceExhaustedError("download: the disk is full");
    }
    return InternalError("download: cannot write " + temp + ": " + closed.message());
  }
  file->reset();
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    return InternalError("download: cannot move it to " + path + ": " + ErrnoText());
  }
  remover.Keep();
  RETURN_IF_ERROR(FsyncDirectoryOf(path));
  return std::move(t.response);
}

Result<HttpResponse> HttpClient::Stream(const HttpRequest& request, uint64_t body_size,
                                        const BodyReader& reader, const BodyWriter& writer) {
  Transfer t;
  if (reader) {
    t.reader = &reader;
    t.upload_size = body_size;
    t.uploading = true;
  }
  if (writer) t.writer = &writer;
  RETURN_IF_ERROR(impl_->Perform(request, Impl::Mode::kStreamed, t));
  return std::move(t.response);
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace datasite::net
