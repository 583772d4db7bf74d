#include "http/client_address.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <cstring>

namespace datasite::http {
namespace {

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// An address as bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6; 0 when not one.
struct Bytes {
  unsigned char b[16];
  int size = 0;
};

Bytes ParseBytes(const std::string& text) {
  Bytes out;
  if (inet_pton(AF_INET, text.c_str(), out.b) == 1) {
    out.size = 4;
    return out;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return out;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(out.b, &v6.s6_addr[12], 4);
    out.size = 4;
  } else {
    std::memcpy(out.b, v6.s6_addr, 16);
    out.size = 16;
  }
  return out;
}

// Whether the first `prefix` bits of `a` and `b` (each `size` bytes) are the same.
bool SamePrefix(const unsigned char* a, const unsigned char* b, int prefix) {
  const int whole = prefix / 8, rest = prefix % 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0) return false;
  if (rest == 0) return true;
  const unsigned char mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

std::string InetText(const Bytes& bytes) {
  char out[INET6_ADDRSTRLEN];
  return inet_ntop(bytes.size == 4 ? AF_INET : AF_INET6, bytes.b, out, sizeof(out));
}

}  // namespace

Result<std::string> CanonicalNetwork(std::string_view text) {
  const size_t slash = text.find('/');
  auto address = CanonicalAddress(text.substr(0, slash));
  if (!address) {
    return InvalidArgumentError("'" + std::string(text.substr(0, 64)) +
                                "' is not an IP address or a network ADDRESS/PREFIX");
  }
  if (slash == std::string_view::npos) return *address;
  const std::string_view digits = text.substr(slash + 1);
  Bytes bytes = ParseBytes(std::string(text.substr(0, slash)));
  const bool mapped = bytes.size == 4 && text.substr(0, slash).find(':') != std::string_view::npos;
  const int bits = mapped ? 128 : bytes.size * 8;
  int prefix = 0;
  if (digits.empty() || digits.size() > 3 ||
      digits.find_first_not_of("0123456789") != std::string_view::npos ||
      (prefix = std::stoi(std::string(digits))) > bits) {
    return InvalidArgumentError("'" + std::string(text.substr(0, 64)) +
                                "': the prefix must be 1 to " + std::to_string(bits));
  }
  if (mapped) {
    if (prefix < 96) {
      return InvalidArgumentError("'" + std::string(text) +
                                  "': an IPv4-mapped network needs a prefix of 96 or more");
    }
    prefix -= 96;
  }
  if (prefix == 0) {
    return InvalidArgumentError("'" + std::string(text) +
                                "' holds every address: any client could name itself");
  }
  Bytes network = bytes;
  const int whole = prefix / 8, rest = prefix % 8;
  if (rest != 0) network.b[whole] &= static_cast<unsigned char>(0xFF << (8 - rest));
  for (int i = whole + (rest != 0 ? 1 : 0); i < network.size; ++i) network.b[i] = 0;
  std::string canonical = *CanonicalAddress(InetText(network)) + "/" + std::to_string(prefix);
  if (std::memcmp(network.b, bytes.b, static_cast<size_t>(bytes.size)) != 0) {
    return InvalidArgumentError("'" + std::string(text) + "' has host bits set: the network is " +
                                canonical);
  }
  return canonical;
}

bool InNetworks(std::string_view address, const std::vector<std::string>& networks) {
  if (networks.empty()) return false;
  const Bytes a = ParseBytes(std::string(address));
  if (a.size == 0) return false;
  for (const std::string& n : networks) {
    const size_t slash = n.find('/');
    const Bytes net = ParseBytes(n.substr(0, slash));
    if (net.size != a.size) continue;
    const int prefix = slash == std::string::npos ? a.size * 8 : std::atoi(n.c_str() + slash + 1);
    if (SamePrefix(a.b, net.b, prefix)) return true;
  }
  return false;
}

std::optional<std::string> CanonicalAddress(std::string_view text) {
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  char out[INET6_ADDRSTRLEN];
  in_addr v4;
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    return std::string(inet_ntop(AF_INET, &v4, out, sizeof(out)));
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memcpy(&v4, &v6.s6_addr[12], sizeof(v4));
    return std::string(inet_ntop(AF_INET, &v4, out, sizeof(out)));
  }
  return std::string(inet_ntop(AF_INET6, &v6, out, sizeof(out)));
}

std::string ClientAddress(std::string_view peer, std::string_view forwarded_for,
                          const std::vector<std::string>& trusted_proxies) {
  std::string client = CanonicalAddress(peer).value_or(std::string(peer));
  if (trusted_proxies.empty() || !InNetworks(client, trusted_proxies)) return client;
  std::string_view rest = forwarded_for;
  while (!rest.empty()) {
    size_t comma = rest.rfind(',');
    std::string_view hop =
        TrimSpaces(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    if (hop.empty()) continue;
    auto address = CanonicalAddress(hop);
    if (!address) return client;  // not an address: trust ends at the last trusted hop
    client = *address;
    if (!InNetworks(client, trusted_proxies)) return client;
  }
  return client;
}

}  // namespace datasite::http
