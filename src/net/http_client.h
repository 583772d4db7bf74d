// Outgoing HTTP over libcurl: JSON-sized requests held in memory, uploads streamed from a file and
// downloads streamed to a file, over http:// or https:// (TLS peers verified by default). Used by
// the command line (src/cli) and online sync; S3 and the gateway will share it.
#ifndef DATASITE_NET_HTTP_CLIENT_H_
#define DATASITE_NET_HTTP_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace datasite::net {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";
  // http://host[:port]/path?query or https://...; no other scheme is spoken.
  std::string url;
  // Sent as `Authorization: Bearer TOKEN` when not empty.
  std::string bearer_token;
  HttpHeaders headers;
  // The body of Send() (sent with a Content-Length when the method is not GET or it is not empty).
  // Upload() sends its file instead.
  std::string body;
  // When set, the request ends (kUnavailable) soon after it turns true, at libcurl's next
  // progress call (about once a second even when no byte moves, connecting included).
  // Borrowed: outlives the call.
  const std::atomic<bool>* cancel = nullptr;
};

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  // The body; empty after a successful download (the bytes went to the file).
  std::string body;

  // The first header named `name` (case-insensitive), or "" when there is none.
  std::string Header(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  // Longest a Send() may take, from connecting to the last byte of the answer.
  std::chrono::milliseconds request_timeout{60'000};
  // Upload() and Download() have no total limit (their size has none); they fail when no byte
  // moves for this long.
  std::chrono::milliseconds stall_timeout{60'000};
  // Longest wait for the answer to an upload once its last byte is sent (the server may parse the
  // whole file first).
  std::chrono::milliseconds upload_answer_timeout{1'800'000};
  // A PEM file of certificate authorities trusted instead of the system's; "" uses the system's.
  // Peers are always verified (certificate chain and host name).
  std::string ca_file;
  // Largest response body read into memory (JSON answers, error bodies): kResourceExhausted past
  // it.
  uint64_t max_body_bytes = uint64_t{64} << 20;
};

// Fills `buffer` with the next bytes of a request body, at most `size` and at least one while any
// are left: the count, or an error that aborts the request (and is what the caller gets).
using BodyReader = std::function<Result<size_t>(char* buffer, size_t size)>;
// Takes the next bytes of a response body as they arrive; an error aborts the transfer (and is what
// the caller gets).
using BodyWriter = std::function<Status(std::string_view bytes)>;

// Called as a transfer moves: bytes done so far, and the total (0 when unknown).
using TransferProgress = std::function<void(uint64_t done, uint64_t total)>;

// Makes requests, one at a time, keeping connections alive between them. An HTTP error status is
// not an error here (the caller reads the response); transport failures are: kUnavailable for a
// peer that can't be reached or drops the connection ("cannot reach URL: ...") and for a TLS
// failure ("TLS with URL failed: ..."), kDeadlineExceeded for a timeout, kInvalidArgument for a bad
// URL or CA file. Blocks: never call it on a request thread of the server. Not thread-safe.
class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const HttpClientOptions& options() const;

  // Sends `request` with its in-memory body and reads the whole answer into memory.
  Result<HttpResponse> Send(const HttpRequest& request);

  // Sends the file at `path` as the body of `request` (its `body` is ignored), read in chunks with
  // its size as the Content-Length, after the peer has accepted the headers (Expect:
  // 100-continue). A refusal the peer sends before or during the body is returned as the response.
  Result<HttpResponse> Upload(const HttpRequest& request, const std::string& path,
                              const TransferProgress& progress = nullptr);

  // Sends `request`. On a 2xx answer streams its body to `path` ("-" = stdout) in chunks and
  // returns the response without a body: a file is written to a temporary name beside `path`,
  // fsynced, and renamed into place once whole; on any failure (connection lost, short body, disk
  // full, an X-Content-SHA256 the bytes do not match: kInternal) the temporary file is removed
  // and `path` left as it was. Any other answer is returned with its body, nothing written. The
  // file is created with `permissions` less the umask.
  Result<HttpResponse> Download(const HttpRequest& request, const std::string& path,
                                int permissions = 0666);

  // Sends `request` with, when `reader` is set, a body of exactly `body_size` bytes pulled from it
  // in chunks (after Expect: 100-continue; `request.body` is ignored), else `request.body`. When
  // `writer` is set, a 2xx answer's body goes to it as it arrives and the response has none; any
  // other answer's body is read into the response. Neither side is held in memory whole. No total
  // timeout: fails when no byte moves for `stall_timeout`.
  Result<HttpResponse> Stream(const HttpRequest& request, uint64_t body_size,
                              const BodyReader& reader, const BodyWriter& writer);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-encodes one path segment or query value (RFC 3986 unreserved characters stay).
std::string UrlEncode(std::string_view text);

}  // namespace datasite::net

#endif  // DATASITE_NET_HTTP_CLIENT_H_
