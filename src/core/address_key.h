// Which client a network address counts as, for limits kept per client.
#ifndef DATASITE_CORE_ADDRESS_KEY_H_
#define DATASITE_CORE_ADDRESS_KEY_H_

#include <string>
#include <string_view>

namespace datasite {

// The key limits per client count `address` under: an IPv4 address as it is, and an IPv6 address
// as its /64 ("2001:db8:1:2::/64"), since one host is commonly given a whole /64 and can pick any
// address in it; an IPv4-mapped IPv6 address counts as its IPv4 address. Text that is not an
// address is its own key. The connection limit, the body memory share and the login, sign-up
// and guest throttles all use it, so that rotating addresses within a /64 gains nothing.
// Thread-safe.
std::string AddressKey(std::string_view address);

// The network `address` belongs to, for limits that many clients of one network share: an IPv4
// address's /24 ("192.0.2.0/24") and an IPv6 address's /48 ("2001:db8:1::/48", what one site is
// commonly given: 65536 /64s); an IPv4-mapped IPv6 address counts as its IPv4 address. Text that
// is not an address is "net:" and the text, never equal to an AddressKey. Thread-safe.
std::string NetworkKey(std::string_view address);

}  // namespace datasite

#endif  // DATASITE_CORE_ADDRESS_KEY_H_
