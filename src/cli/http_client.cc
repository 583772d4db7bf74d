#include "cli/http_client.h"

// Boost 1.74's asio needs <utility> first under g++ 12 in C++20 mode.
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <vector>

namespace datasite::cli {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr size_t kChunkBytes = 1 << 20;
// A connection idle for longer than this may have been closed by the server (its idle timeout is
// 30 s); a new one is opened instead.
constexpr auto kMaxIdle = std::chrono::seconds(20);
constexpr const char* kUserAgent = "datasite-cli";

// Owns a file descriptor.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  // Gives up ownership without closing.
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string ErrnoText() { return std::strerror(errno); }

// Reads exactly `n` bytes unless the file ends first; -1 on error.
ssize_t ReadFull(int fd, char* data, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, data + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

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

// SHA-256 through OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1;
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  bool ok() const { return ok_; }
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

struct ParsedUrl {
  std::string host;
  std::string port;
  std::string prefix;  // "" or "/something", without a trailing slash
};

Result<ParsedUrl> ParseUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  std::string_view u(url);
  if (u.substr(0, 8) == "https://") {
    return InvalidArgumentError("bad server URL '" + url +
                                "': https is not supported; use http:// (local servers)");
  }
  if (u.substr(0, kScheme.size()) != kScheme) {
    return InvalidArgumentError("bad server URL '" + url + "': it must start with http://");
  }
  u.remove_prefix(kScheme.size());
  size_t slash = u.find_first_of("/?#");
  std::string_view authority = u.substr(0, slash);
  ParsedUrl out;
  if (slash != std::string_view::npos) {
    if (u[slash] != '/') {
      return InvalidArgumentError("bad server URL '" + url + "': no query or fragment allowed");
    }
    out.prefix = std::string(u.substr(slash));
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgumentError("bad server URL '" + url +
                                "': credentials in URLs are not supported");
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgumentError("bad server URL '" + url + "': unclosed '['");
    }
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return InvalidArgumentError("bad server URL '" + url + "'");
      port = rest.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) return InvalidArgumentError("bad server URL '" + url + "': no host");
  if (port.empty()) {
    out.port = "80";
  } else {
    bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535) {
      return InvalidArgumentError("bad server URL '" + url + "': bad port '" + std::string(port) +
                                  "'");
    }
    out.port = std::string(port);
  }
  return out;
}

bool IsStaleConnection(const beast::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe;
}

template <class Fields>
HttpHeaders CopyHeaders(const Fields& fields) {
  HttpHeaders out;
  for (const auto& f : fields) {
    out.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  return out;
}

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

}  // namespace

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, beast::string_view(name.data(), name.size()))) return v;
  }
  return "";
}

std::string UrlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// Every operation is asynchronous on a private io_context that the calling thread runs until the
// operation completes, so that each one has a timeout (Beast's synchronous calls have none).
class HttpClient::Impl {
 public:
  Impl(std::string url, ParsedUrl parts, const HttpClientOptions& options)
      : url_(std::move(url)), parts_(std::move(parts)), options_(options), stream_(ioc_) {}

  const std::string& url() const { return url_; }
  void SetBearerToken(std::string token) { token_ = std::move(token); }

  Status Connect();
  Result<HttpResponse> Request(std::string_view method, std::string_view target,
                               const HttpHeaders& headers, const std::string& body);
  Result<HttpResponse> Upload(std::string_view target, const std::string& path,
                              std::string_view content_type, const UploadProgress& progress);
  Result<HttpResponse> Download(std::string_view target, const std::string& path);

 private:
  // Runs the io_context until no operation is pending.
  void Run() {
    ioc_.restart();
    ioc_.run();
  }
  void Disconnect();
  Status EnsureConnected();
  void MarkUsed(bool keep_alive);
  Status TransportError(const beast::error_code& ec) const;
  template <class Message>
  void SetCommonFields(Message& m, std::string_view target) const;
  template <class Parser>
  void SetLimits(Parser& p) const {
    p.header_limit(options_.max_header_bytes);
    p.body_limit(options_.max_body_bytes);
  }
  // Sends a body-less request and reads the answer's header into `parser`. Retries once on a
  // fresh connection when a kept-alive one turns out to be closed.
  Status SendAndReadHeader(bhttp::verb verb, std::string_view target,
                           std::optional<bhttp::response_parser<bhttp::buffer_body>>& parser);

  const std::string url_;
  const ParsedUrl parts_;
  const HttpClientOptions options_;
  std::string token_;
  net::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  bool connected_ = false;
  int requests_on_connection_ = 0;
  Clock::time_point last_used_;
};

Status HttpClient::Impl::Connect() {
  Disconnect();
  tcp::resolver resolver(ioc_);
  net::steady_timer timer(ioc_);
  beast::error_code ec;
  bool resolve_timed_out = false;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(parts_.host, parts_.port,
                         [&](beast::error_code e, tcp::resolver::results_type results) {
                           ec = e;
                           endpoints = std::move(results);
                           timer.cancel();
                         });
  timer.expires_after(options_.connect_timeout);
  timer.async_wait([&](beast::error_code e) {
    if (e) return;
    resolve_timed_out = true;
    resolver.cancel();
  });
  Run();
  if (ec) {
    return UnavailableError("cannot reach " + url_ + ": " +
                            (resolve_timed_out ? "name lookup timed out" : ec.message()));
  }
  stream_.expires_after(options_.connect_timeout);
  stream_.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  Run();
  if (ec) {
    Disconnect();
    return UnavailableError("cannot reach " + url_ + ": " +
                            (ec == beast::error::timeout ? "connection timed out" : ec.message()));
  }
  beast::error_code ignored;
  stream_.socket().set_option(tcp::no_delay(true), ignored);
  connected_ = true;
  requests_on_connection_ = 0;
  last_used_ = Clock::now();
  return Status::Ok();
}

void HttpClient::Impl::Disconnect() {
  beast::error_code ignored;
  if (stream_.socket().is_open()) {
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
  stream_.close();
  buffer_.consume(buffer_.size());
  connected_ = false;
}

Status HttpClient::Impl::EnsureConnected() {
  if (connected_ && Clock::now() - last_used_ < kMaxIdle) return Status::Ok();
  return Connect();
}

void HttpClient::Impl::MarkUsed(bool keep_alive) {
  ++requests_on_connection_;
  last_used_ = Clock::now();
  if (!keep_alive) Disconnect();
}

Status HttpClient::Impl::TransportError(const beast::error_code& ec) const {
  if (ec == beast::error::timeout) {
    return Status(
        StatusCode::kDeadlineExceeded,
        "no answer from " + url_ + " within " + std::to_string(options_.io_timeout.count()) + " s");
  }
  if (ec == bhttp::error::body_limit) {
    return ResourceExhaustedError("the answer from " + url_ + " is larger than " +
                                  std::to_string(options_.max_body_bytes >> 20) + " MiB");
  }
  if (ec == bhttp::error::header_limit) {
    return ResourceExhaustedError("the answer from " + url_ + " has too large headers");
  }
  if (IsStaleConnection(ec) || ec.category() == boost::system::system_category()) {
    return UnavailableError("lost the connection to " + url_ + ": " + ec.message());
  }
  return UnavailableError("bad answer from " + url_ + ": " + ec.message());
}

template <class Message>
void HttpClient::Impl::SetCommonFields(Message& m, std::string_view target) const {
  m.version(11);
  m.target(parts_.prefix + std::string(target));
  const bool ipv6 = parts_.host.find(':') != std::string::npos;
  m.set(bhttp::field::host, (ipv6 ? "[" + parts_.host + "]" : parts_.host) + ":" + parts_.port);
  m.set(bhttp::field::user_agent, kUserAgent);
  if (!token_.empty()) m.set(bhttp::field::authorization, "Bearer " + token_);
  m.keep_alive(true);
}

Result<HttpResponse> HttpClient::Impl::Request(std::string_view method, std::string_view target,
                                               const HttpHeaders& headers,
                                               const std::string& body) {
  for (int attempt = 0;; ++attempt) {
    RETURN_IF_ERROR(EnsureConnected());
    const bool reused = requests_on_connection_ > 0;
    bhttp::request<bhttp::string_body> req;
    req.method_string(beast::string_view(method.data(), method.size()));
    SetCommonFields(req, target);
    req.set(bhttp::field::accept, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();

    beast::error_code ec;
    stream_.expires_after(options_.io_timeout);
    bhttp::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
    Run();
    bhttp::response_parser<bhttp::string_body> parser;
    SetLimits(parser);
    if (!ec) {
      stream_.expires_after(options_.io_timeout);
      bhttp::async_read(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
      Run();
    }
    if (ec) {
      Disconnect();
      if (reused && attempt == 0 && !parser.got_some() && IsStaleConnection(ec)) continue;
      return TransportError(ec);
    }
    auto msg = parser.release();
    HttpResponse res;
    res.status = static_cast<int>(msg.result_int());
    res.headers = CopyHeaders(msg);
    res.body = std::move(msg.body());
    MarkUsed(msg.keep_alive());
    return res;
  }
}

Result<HttpResponse> HttpClient::Impl::Upload(std::string_view target, const std::string& path,
                                              std::string_view content_type,
                                              const UploadProgress& progress) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return InvalidArgumentError("cannot open " + path + ": " + ErrnoText());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return InternalError("cannot stat " + path + ": " + ErrnoText());
  if (!S_ISREG(st.st_mode)) return InvalidArgumentError(path + " is not a regular file");
  const uint64_t total = static_cast<uint64_t>(st.st_size);

  // The headers, then the server's go-ahead (100 Continue) or its refusal.
  beast::error_code ec;
  std::optional<bhttp::response_parser<bhttp::string_body>> first;
  for (int attempt = 0;; ++attempt) {
    RETURN_IF_ERROR(EnsureConnected());
    const bool reused = requests_on_connection_ > 0;
    bhttp::request<bhttp::empty_body> req;
    req.method(bhttp::verb::post);
    SetCommonFields(req, target);
    req.set(bhttp::field::accept, "application/json");
    req.set(bhttp::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
    req.set(bhttp::field::expect, "100-continue");
    req.content_length(total);
    bhttp::request_serializer<bhttp::empty_body> serializer(req);
    stream_.expires_after(options_.io_timeout);
    bhttp::async_write_header(stream_, serializer, [&](beast::error_code e, size_t) { ec = e; });
    Run();
    first.emplace();
    SetLimits(*first);
    if (!ec) {
      stream_.expires_after(options_.io_timeout);
      bhttp::async_read(stream_, buffer_, *first, [&](beast::error_code e, size_t) { ec = e; });
      Run();
    }
    if (!ec) break;
    Disconnect();
    if (reused && attempt == 0 && !first->got_some() && IsStaleConnection(ec)) continue;
    return TransportError(ec);
  }
  if (first->get().result() != bhttp::status::continue_) {
    // Refused before the body: the connection is left expecting bytes we will not send.
    auto msg = first->release();
    HttpResponse res{static_cast<int>(msg.result_int()), CopyHeaders(msg), std::move(msg.body())};
    ++requests_on_connection_;
    Disconnect();
    return res;
  }

  // The body, while the answer is read concurrently: the server may refuse part-way (a full disk)
  // and say so before it has read everything.
  bhttp::response_parser<bhttp::string_body> answer;
  SetLimits(answer);
  net::steady_timer answer_timer(ioc_);
  bool read_done = false, writing = true, answer_timed_out = false;
  beast::error_code read_ec, write_ec;
  Status file_error;
  uint64_t sent = 0;
  std::vector<char> chunk(kChunkBytes);

  auto wait_for_answer = [&](std::chrono::seconds limit) {
    writing = false;
    if (read_done) return;
    answer_timer.expires_after(limit);
    answer_timer.async_wait([&](beast::error_code e) {
      if (e || read_done) return;
      answer_timed_out = true;
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    });
  };
  std::function<void()> write_next = [&] {
    if (read_done || sent == total) return wait_for_answer(options_.upload_answer_timeout);
    size_t want = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, total - sent));
    ssize_t n = ReadFull(fd.get(), chunk.data(), want);
    if (n != static_cast<ssize_t>(want)) {
      file_error = n < 0 ? InternalError("cannot read " + path + ": " + ErrnoText())
                         : FailedPreconditionError(path + " shrank while it was being uploaded");
      writing = false;
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
      return;
    }
    stream_.expires_after(options_.io_timeout);
    net::async_write(stream_, net::buffer(chunk.data(), want),
                     [&, want](beast::error_code e, size_t) {
                       if (e) {
                         write_ec = e;
                         // Whatever the server said before it stopped reading may still be
                         // readable.
                         return wait_for_answer(options_.io_timeout);
                       }
                       sent += want;
                       if (progress) progress(sent, total);
                       write_next();
                     });
  };

  stream_.expires_never();  // the read's timeout is answer_timer; writes set their own
  bhttp::async_read(stream_, buffer_, answer, [&](beast::error_code e, size_t) {
    read_done = true;
    read_ec = e;
    answer_timer.cancel();
    if (writing) {
      // An early answer: stop sending.
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
    }
  });
  write_next();
  Run();

  if (!file_error.ok()) {
    Disconnect();
    return file_error;
  }
  if (read_ec) {
    Disconnect();
    if (answer_timed_out) {
      return Status(StatusCode::kDeadlineExceeded,
                    "no answer from " + url_ + " within " +
                        std::to_string(options_.upload_answer_timeout.count()) +
                        " s of the end of the upload");
    }
    return TransportError(write_ec ? write_ec : read_ec);
  }
  auto msg = answer.release();
  HttpResponse res{static_cast<int>(msg.result_int()), CopyHeaders(msg), std::move(msg.body())};
  MarkUsed(msg.keep_alive() && sent == total && !write_ec);
  return res;
}

Status HttpClient::Impl::SendAndReadHeader(
    bhttp::verb verb, std::string_view target,
    std::optional<bhttp::response_parser<bhttp::buffer_body>>& parser) {
  for (int attempt = 0;; ++attempt) {
    RETURN_IF_ERROR(EnsureConnected());
    const bool reused = requests_on_connection_ > 0;
    bhttp::request<bhttp::empty_body> req;
    req.method(verb);
    SetCommonFields(req, target);
    beast::error_code ec;
    stream_.expires_after(options_.io_timeout);
    bhttp::async_write(stream_, req, [&](beast::error_code e, size_t) { ec = e; });
    Run();
    parser.emplace();
    parser->header_limit(options_.max_header_bytes);
    // A download may be any size (error bodies are capped later). Not boost::none: Beast 1.74
    // compares a Content-Length against an empty limit and refuses every such body.
    parser->body_limit(std::numeric_limits<uint64_t>::max());
    if (!ec) {
      stream_.expires_after(options_.io_timeout);
      bhttp::async_read_header(stream_, buffer_, *parser,
                               [&](beast::error_code e, size_t) { ec = e; });
      Run();
    }
    if (!ec) return Status::Ok();
    Disconnect();
    if (reused && attempt == 0 && !parser->got_some() && IsStaleConnection(ec)) continue;
    return TransportError(ec);
  }
}

Result<HttpResponse> HttpClient::Impl::Download(std::string_view target, const std::string& path) {
  std::optional<bhttp::response_parser<bhttp::buffer_body>> header_parser;
  RETURN_IF_ERROR(SendAndReadHeader(bhttp::verb::get, target, header_parser));
  auto& parser = *header_parser;

  HttpResponse res;
  res.status = static_cast<int>(parser.get().result_int());
  res.headers = CopyHeaders(parser.get());
  const bool success = res.status / 100 == 2;
  const bool to_stdout = path == "-";

  // Where the bytes go: stdout, or a temporary file renamed into place at the end.
  UniqueFd out;
  std::string temp_path;
  std::optional<FileRemover> remover;
  if (success && !to_stdout) {
    temp_path = path + ".download-" + std::to_string(::getpid());
    out = UniqueFd(
        ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (!out.ok()) {
      Disconnect();
      return InvalidArgumentError("cannot create " + temp_path + ": " + ErrnoText());
    }
    remover.emplace(temp_path);
  }
  const int out_fd = to_stdout ? STDOUT_FILENO : out.get();

  Sha256 sha;
  std::vector<char> chunk(kChunkBytes);
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    beast::error_code ec;
    stream_.expires_after(options_.io_timeout);
    bhttp::async_read(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
    Run();
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      Disconnect();
      return TransportError(ec);
    }
    size_t n = chunk.size() - parser.get().body().size;
    if (!success) {
      if (res.body.size() + n > options_.max_body_bytes) {
        Disconnect();
        return TransportError(bhttp::error::body_limit);
      }
      res.body.append(chunk.data(), n);
      continue;
    }
    sha.Update(chunk.data(), n);
    if (!WriteFull(out_fd, chunk.data(), n)) {
      Disconnect();
      return InternalError("cannot write " + (to_stdout ? std::string("to stdout") : path) + ": " +
                           ErrnoText());
    }
  }
  MarkUsed(parser.get().keep_alive());
  if (!success) return res;

  std::string expected = res.Header("X-Content-SHA256");
  if (!expected.empty()) {
    std::string actual = sha.HexDigest();
    if (actual.empty()) return InternalError("cannot compute SHA-256 (OpenSSL failed)");
    if (!beast::iequals(expected, actual)) {
      return InternalError("the downloaded bytes do not match X-Content-SHA256 (expected " +
                           expected + ", got " + actual + ")" +
                           (to_stdout ? std::string("") : "; nothing was saved"));
    }
  }
  if (!to_stdout) {
    const int fd = out.Release();
    const bool synced = ::fsync(fd) == 0;
    if (::close(fd) != 0 || !synced) {
      return InternalError("cannot write " + path + ": " + ErrnoText());
    }
    if (::rename(temp_path.c_str(), path.c_str()) != 0) {
      return InternalError("cannot rename " + temp_path + " to " + path + ": " + ErrnoText());
    }
    remover->Keep();
  }
  return res;
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::Connect(const std::string& url,
                                                        const HttpClientOptions& options) {
  ASSIGN_OR_RETURN(ParsedUrl parts, ParseUrl(url));
  try {
    auto impl = std::make_unique<Impl>(url, std::move(parts), options);
    RETURN_IF_ERROR(impl->Connect());
    return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
  } catch (const std::exception& e) {
    return InternalError(std::string("HTTP client: ") + e.what());
  }
}

const std::string& HttpClient::url() const { return impl_->url(); }

void HttpClient::SetBearerToken(std::string token) { impl_->SetBearerToken(std::move(token)); }

Result<HttpResponse> HttpClient::Request(std::string_view method, std::string_view target,
                                         const HttpHeaders& headers, std::string body) {
  try {
    return impl_->Request(method, target, headers, body);
  } catch (const std::exception& e) {
    return InternalError(std::string("HTTP client: ") + e.what());
  }
}

Result<HttpResponse> HttpClient::RequestStreamingUpload(std::string_view target,
                                                        const std::string& path,
                                                        std::string_view content_type,
                                                        const UploadProgress& progress) {
  try {
    return impl_->Upload(target, path, content_type, progress);
  } catch (const std::exception& e) {
    return InternalError(std::string("HTTP client: ") + e.what());
  }
}

Result<HttpResponse> HttpClient::DownloadToFile(std::string_view target, const std::string& path) {
  try {
    return impl_->Download(target, path);
  } catch (const std::exception& e) {
    return InternalError(std::string("HTTP client: ") + e.what());
  }
}

}  // namespace datasite::cli
