// The request and response the router hands to handlers: plain data, no Beast types.
#ifndef DATASITE_HTTP_MESSAGE_H_
#define DATASITE_HTTP_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace datasite::http {

struct Request {
  std::string method;                              // "GET", "POST", ...
  std::string path;                                // decoded path without the query string
  std::map<std::string, std::string> query;        // decoded query parameters (last one wins)
  std::map<std::string, std::string> path_params;  // filled by the router, e.g. {"id": "..."}
  std::string authorization;                       // the Authorization header, as sent
  std::string content_type;
  // The body's size as its Content-Length states it; unset for a chunked body (or none).
  std::optional<uint64_t> content_length;
  std::string remote_address;   // the client's IP address (see ClientAddress)
  std::string idempotency_key;  // the Idempotency-Key header (see api/idempotency.h)
  // The client's X-Request-Id when safe (obs::IsSafeRequestId), else one made up; echoed on the
  // response and in the log lines written while handling the request.
  std::string request_id;
  std::string body;
  // Whether the client has closed its connection (or it broke), for handlers that wait long: a
  // wait whose client has gone can end and free its thread. Set by the server; safe to call from
  // the handler's thread, and only while the handler runs (the connection outlives it). A client
  // that shuts down only its sending side counts as gone. Null when there is no connection.
  std::function<bool()> client_gone;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is this file's content, streamed from disk (`body` is ignored).
  std::string file_path;
  // When set, the body is this string, shared rather than copied (`body` is ignored): for answers
  // kept in memory, such as cached listing pages.
  std::shared_ptr<const std::string> shared_body;
  // When set, the body is pulled from this source, `body_size` bytes in all (the Content-Length),
  // at most 1 MiB per call, each call on the route's pool and only once the bytes before have been
  // sent (`body` is ignored). It copies up to `cap` bytes into the buffer and returns how many;
  // an error, or 0 before `body_size` bytes, cuts the response short and closes the connection.
  // Called one call at a time; destroyed once the response is written or abandoned.
  std::function<Result<size_t>(char* buf, size_t cap)> body_source;
  int64_t body_size = 0;
  // The body carries a secret (a session or reset token, whose hash alone is stored): it is never
  // kept as an idempotent answer.
  bool secret = false;
};

// Receives a streamed request body chunk by chunk, on the request pool, one call at a time.
// Destroying it before Finish means the upload broke off: it must leave nothing behind.
class BodySink {
 public:
  virtual ~BodySink() = default;
  // A non-OK status ends the upload and becomes the response.
  virtual Status Write(std::string_view chunk) = 0;
  virtual Response Finish() = 0;
};

// The one place where a Status becomes an HTTP status and a JSON error body
// `{"error": {"code": "...", "message": "..."}}`.
Response ErrorResponse(const Status& status);
// An error response with a code name outside the Status vocabulary (e.g. "PAYLOAD_TOO_LARGE").
Response ErrorResponse(int http_status, std::string_view code, std::string_view message);
int HttpStatusFor(StatusCode code);

// Splits "a=1&b=x%20y" into decoded pairs. Invalid escapes are kept literally.
std::map<std::string, std::string> ParseQuery(std::string_view query);
// Decodes %XX escapes (and '+' as space when `plus_is_space`).
std::string PercentDecode(std::string_view s, bool plus_is_space);

}  // namespace datasite::http

#endif  // DATASITE_HTTP_MESSAGE_H_
