// The command line's HTTP client for one server: JSON requests, file uploads streamed from disk and
// downloads streamed to disk, over http:// or https://. A thin layer over net::HttpClient
// (libcurl), which keeps the connection alive and verifies TLS peers.
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
#include "net/http_client.h"

namespace datasite::cli {

using HttpHeaders = net::HttpHeaders;
// status, headers and body (empty after a successful download); Header(name) is case-insensitive.
using HttpResponse = net::HttpResponse;

// Called after every chunk an upload sends: bytes sent so far, and the file's size.
using UploadProgress = std::function<void(uint64_t sent, uint64_t total)>;

struct HttpClientOptions {
  std::chrono::seconds connect_timeout{10};
  // Longest a JSON request may take; a transfer fails when no byte moves for this long.
  std::chrono::seconds io_timeout{60};
  // Longest wait for the answer to an upload once its last byte is sent (the server parses the
  // file).
  std::chrono::seconds upload_answer_timeout{1800};
  // Largest response body read into memory (JSON answers, error bodies).
  uint64_t max_body_bytes = uint64_t{64} << 20;
  // A PEM file of certificate authorities trusted instead of the system's (https only).
  std::string ca_file;
};

// Requests to one server. Errors are Status values: a refused or lost connection or a failed TLS
// handshake is kUnavailable, a timeout kDeadlineExceeded; an HTTP error status is not an error here
// (the caller reads the response). Not thread-safe.
class HttpClient {
 public:
  // `url` is http[s]://host[:port][/prefix]; the prefix is put before every target. Checks the URL
  // only (kInvalidArgument); the first request connects: kUnavailable "cannot reach URL: ..." when
  // nothing answers.
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

  // POSTs the file at `path` as the body, read in chunks (constant memory) after the server has
  // accepted the headers (Expect: 100-continue). A refusal sent before or during the body is
  // returned as the response.
  Result<HttpResponse> RequestStreamingUpload(std::string_view target, const std::string& path,
                                              std::string_view content_type,
                                              const UploadProgress& progress = nullptr);

  // GETs `target`. On a 2xx answer streams the body to `path` ("-" = stdout) and returns the
  // response without a body: a file is written to a temporary name next to `path`, fsynced and
  // renamed into place once complete; if the answer carries X-Content-SHA256 and the bytes do not
  // match it, the temporary file is removed and kInternal returned (on stdout the bytes are already
  // out). Any other answer is returned with its body (at most max_body_bytes), nothing written.
  // The file is created with `permissions` less the umask.
  Result<HttpResponse> DownloadToFile(std::string_view target, const std::string& path,
                                      int permissions = 0666);

 private:
  HttpClient(std::string url, const HttpClientOptions& options);
  // The request for `target` under the URL, with the token.
  net::HttpRequest Make(std::string_view method, std::string_view target) const;
  // `s` with the full URL of `target` in its message shortened to the server's URL.
  Status Adapt(Status s, std::string_view target) const;

  const std::string url_;
  std::string token_;
  std::unique_ptr<net::HttpClient> http_;
};

// Percent-encodes one path segment or query value (RFC 3986 unreserved characters stay).
using net::UrlEncode;

}  // namespace datasite::cli

#endif  // DATASITE_CLI_HTTP_CLIENT_H_
