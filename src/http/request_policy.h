// What the server checks in a request's headers before it routes it: the Host it was sent to (so
// that a web page cannot reach a local server through a name it controls, "DNS rebinding") and the
// type of a body (so that a page cannot send one without the browser asking the server first).
#ifndef DATASITE_HTTP_REQUEST_POLICY_H_
#define DATASITE_HTTP_REQUEST_POLICY_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "http/message.h"

namespace datasite::http {

// Whether `address` is an IPv4 or IPv6 address literal of this machine's loopback interface
// (127.0.0.0/8, ::1, ::ffff:127.x.y.z). Host names, "localhost" included, are not addresses.
bool IsLoopbackAddress(std::string_view address);

// Whether `address` is an IPv4 or IPv6 address literal (without brackets or port).
bool IsAddressLiteral(std::string_view address);

// The host names a server answers to. Always: "localhost" and every IP address literal (an address
// can't be rebound to another machine by DNS; a browser's origin for it is the server itself).
// Other names only when configured. Names compare without case, ignore a trailing dot, and match on
// any port. Immutable; safe for concurrent use.
class AllowedHosts {
 public:
  // `names` are host names without port, already checked by ValidateAllowedHost.
  explicit AllowedHosts(std::vector<std::string> names = {});
  // Whether a request whose Host header is `host_header` ("name", "name:port", "[v6]:port") is
  // answered.
  bool Allows(std::string_view host_header) const;

 private:
  std::vector<std::string> names_;  // lower-case, no trailing dot
};

// kInvalidArgument unless `name` is a DNS name (letters, digits, '-', '.') or an IP address,
// without a port or scheme.
Status ValidateAllowedHost(std::string_view name);

// Whether a Content-Type header names application/json (any case, parameters such as
// "; charset=utf-8" allowed).
bool IsJsonContentType(std::string_view content_type);

// The refusal of a request sent to a host this server does not answer to, or nullopt.
// `host_headers` are the values of its Host headers: exactly one is required (HTTP/1.0 requests
// without one are refused too; every client sends it).
std::optional<Response> CheckHost(const AllowedHosts& hosts,
                                  const std::vector<std::string_view>& host_headers);

// The refusal of a body that is not JSON, or nullopt. `has_body`: a body follows the headers;
// `upload`: the route streams the body as bytes of their own type (then any type passes).
std::optional<Response> CheckBodyType(std::string_view content_type, bool has_body, bool upload);

}  // namespace datasite::http

#endif  // DATASITE_HTTP_REQUEST_POLICY_H_
