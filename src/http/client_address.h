// Which address a request is counted under (rate limits, audit): the TCP peer, or what a proxy the
// operator trusts says in X-Forwarded-For.
#ifndef DATASITE_HTTP_CLIENT_ADDRESS_H_
#define DATASITE_HTTP_CLIENT_ADDRESS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace datasite::http {

// The canonical text of an IPv4 or IPv6 address ("::ffff:1.2.3.4" becomes "1.2.3.4"); nullopt
// when `text` is not an address.
std::optional<std::string> CanonicalAddress(std::string_view text);

// The canonical text of a network given as "ADDRESS/PREFIX" ("10.0.0.0/8", "2001:db8::/32"), or
// of one address given alone (as CanonicalAddress). An IPv4-mapped IPv6 network of prefix 96 or
// more becomes the IPv4 network. kInvalidArgument, saying why, for anything else: not an address, a
// prefix out of range, a prefix of 0 (every address), host bits set ("10.1.2.3/8").
Result<std::string> CanonicalNetwork(std::string_view text);

// Whether the canonical address `address` lies in one of `networks` (canonical, see
// CanonicalNetwork; a network without a prefix is its one address). Thread-safe.
bool InNetworks(std::string_view address, const std::vector<std::string>& networks);

// The client's address. `peer` is the TCP peer; `forwarded_for` every X-Forwarded-For value joined
// with commas ("" when none); `trusted_proxies` canonical networks (see CanonicalNetwork).
//
// X-Forwarded-For is read only when the peer is a trusted proxy, from the right: each hop that is
// itself a trusted proxy is skipped, and the first hop that is not is the client. A hop that is
// not an address ends the walk at the last trusted hop, which is then the client (whatever lies
// further left was written by someone no trusted proxy vouches for). Thread-safe.
std::string ClientAddress(std::string_view peer, std::string_view forwarded_for,
                          const std::vector<std::string>& trusted_proxies);

}  // namespace datasite::http

#endif  // DATASITE_HTTP_CLIENT_ADDRESS_H_
