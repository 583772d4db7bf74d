#include "http/request_policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace datasite::http {
namespace {

constexpr size_t kMaxHostLength = 255;

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The host of a Host header, lower-cased, without brackets, port or trailing dot; nullopt when the
// header is not "host[:port]".
std::optional<std::string> HostOf(std::string_view header) {
  if (header.empty() || header.size() > kMaxHostLength) return std::nullopt;
  std::string_view host, rest;
  if (header.front() == '[') {
    size_t close = header.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = header.substr(1, close - 1);
    rest = header.substr(close + 1);
    if (host.find(':') == std::string_view::npos || !IsAddressLiteral(host)) return std::nullopt;
  } else {
    size_t colon = header.find(':');
    host = header.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : header.substr(colon);
  }
  if (!rest.empty() && (rest.front() != ':' || rest.size() > 6 || !AllDigits(rest.substr(1)))) {
    return std::nullopt;
  }
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return std::nullopt;
  return Lower(host);
}

}  // namespace

bool IsAddressLiteral(std::string_view address) {
  if (address.empty() || address.size() >= INET6_ADDRSTRLEN) return false;
  std::string text(address);
  unsigned char buf[sizeof(struct in6_addr)];
  return ::inet_pton(AF_INET, text.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

bool IsLoopbackAddress(std::string_view address) {
  if (address.empty() || address.size() >= INET6_ADDRSTRLEN) return false;
  std::string text(address);
  struct in_addr v4;
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  struct in6_addr v6;
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return false;
  static const unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const unsigned char kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(v6.s6_addr, kLoopback, 16) == 0) return true;
  return std::memcmp(v6.s6_addr, kMappedPrefix, 12) == 0 && v6.s6_addr[12] == 127;
}

AllowedHosts::AllowedHosts(std::vector<std::string> names) {
  for (auto& name : names) {
    std::string_view n = name;
    if (!n.empty() && n.front() == '[' && n.back() == ']') n = n.substr(1, n.size() - 2);
    if (!n.empty() && n.back() == '.') n.remove_suffix(1);
    names_.push_back(Lower(n));
  }
}

bool AllowedHosts::Allows(std::string_view host_header) const {
  auto host = HostOf(host_header);
  if (!host) return false;
  if (*host == "localhost" || IsAddressLiteral(*host)) return true;
  return std::find(names_.begin(), names_.end(), *host) != names_.end();
}

Status ValidateAllowedHost(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError("--allowed-host '" + std::string(name.substr(0, 100)) + "' " +
                                std::string(why));
  };
  if (name.empty() || name.size() > kMaxHostLength) return bad("must be 1 to 255 characters");
  std::string_view bare = name;
  if (bare.front() == '[' && bare.back() == ']') bare = bare.substr(1, bare.size() - 2);
  if (IsAddressLiteral(bare)) return Status::Ok();
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_';
    if (!ok) return bad("must be a host name or an IP address, without scheme or port");
  }
  if (name.front() == '.' || name.find("..") != std::string_view::npos) {
    return bad("is not a host name");
  }
  return Status::Ok();
}

bool IsJsonContentType(std::string_view content_type) {
  std::string_view media = Trim(content_type.substr(0, content_type.find(';')));
  return Lower(media) == "application/json";
}

std::optional<Response> CheckHost(const AllowedHosts& hosts,
                                  const std::vector<std::string_view>& host_headers) {
  if (host_headers.size() != 1) {
    return ErrorResponse(400, "INVALID_ARGUMENT", "a request needs exactly one Host header");
  }
  if (hosts.Allows(host_headers.front())) return std::nullopt;
  std::string shown(host_headers.front().substr(0, 100));
  return ErrorResponse(421, "HOST_NOT_ALLOWED",
                       "this server does not answer requests for the host '" + shown +
                           "'; its operator can allow a name with datasite launch --allowed-host");
}

std::optional<Response> CheckBodyType(std::string_view content_type, bool has_body, bool upload) {
  if (!has_body || upload || IsJsonContentType(content_type)) return std::nullopt;
  std::string shown =
      content_type.empty() ? "none" : "'" + std::string(content_type.substr(0, 100)) + "'";
  return ErrorResponse(415, "UNSUPPORTED_MEDIA_TYPE",
                       "send the request body as JSON with the header Content-Type: "
                       "application/json (this request's Content-Type is " +
                           shown + ")");
}

}  // namespace datasite::http
