// A small synchronous HTTP/1.1 client for the command line: one keep-alive connection to one
// server, JSON requests, file uploads streamed from disk and downloads streamed to disk. Only plain
// http://.
#ifndef DATASITE_CLI_HTTP_CLIENT_H_
#define DATASITE_CLI_HTTP_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace datasite::cli {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  // The body; empty after a successful download (the bytes went to the file).
  std::string body;

  // The first header named `name` (case-insensitive), or "" when there is none.
  std::string Header(std::string_view name) const;
};

// Called after every chunk an upload sends: bytes sent so far, and the file's size.
using UploadProgress = std::function<void(uint64_t sent, uint64_t total)>;

struct HttpClientOptions {
  std::chrono::seconds connect_timeout{10};
  // Longest wait for any one read or write to make progress.
  std::chrono::seconds io_timeout{60};
  // Longest wait for the answer to an upload once its last byte is sent (the server parses the
  // file).
  std::chrono::seconds upload_answer_timeout{1800};
  // Largest response body read into memory (JSON answers, error bodies).
  uint64_t max_body_bytes = uint64_t{64} << 20;
  uint32_t max_header_bytes = 64 << 10;
};

// One connection to one server, reopened when the server closes it. Errors are Status values: a
// refused or lost connection is kUnavailable, a timeout kDeadlineExceeded; an HTTP error status is
// not an error here (the caller reads the response). Not thread-safe.
class HttpClient {
 public:
  // `url` is http://host[:port][/prefix]; the prefix is put before every target. Connects at once:
  // kUnavailable "cannot reach URL: ..." when nothing answers.
  static Result<std::unique_ptr<HttpClient>> Connect(const std::string& url,
                                                     const HttpClientOptions& options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // The URL given to Connect.
  const std::string& url() const;
  // Sent as `Authorization: Bearer TOKEN` with every later request; "" sends none.
  void SetBearerToken(std::string token);

  // `body` is sent as is, with a Content-Length (and the Content-Type given in `headers`, if any).
  Result<HttpResponse> Request(std::string_view method, std::string_view target,
                               const HttpHeaders& headers = {}, std::string body = "");

  // POSTs the file at `path` as the body, read in 1 MiB chunks (constant memory) after the server
  // has accepted the headers (Expect: 100-continue). A refusal sent before or during the body is
  // returned as the response.
  Result<HttpResponse> RequestStreamingUpload(std::string_view target, const std::string& path,
                                              std::string_view content_type,
                                              const UploadProgress& progress = nullptr);

  // GETs `target`. On a 2xx answer streams the body to `path` ("-" = stdout) and returns the
  // response without a body: a file is written to a temporary name next to `path` and renamed
  // into place once complete; if the answer carries X-Content-SHA256 and the bytes do not match
  // it, the temporary file is removed and kInternal returned (on stdout the bytes are already
  // out). Any other answer is returned with its body (at most max_body_bytes), nothing written.
  Result<HttpResponse> DownloadToFile(std::string_view target, const std::string& path);

 private:
  class Impl;
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes one path segment or query value (RFC 3986 unreserved characters stay).
std::string UrlEncode(std::string_view text);

}  // namespace datasite::cli

#endif  // DATASITE_CLI_HTTP_CLIENT_H_
