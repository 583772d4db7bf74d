#include "core/address_key.h"

#include <gtest/gtest.h>

namespace datasite {
namespace {

TEST(AddressKeyTest, Ipv4IsItsOwnKey) {
  EXPECT_EQ(AddressKey("192.0.2.7"), "192.0.2.7");
  EXPECT_NE(AddressKey("192.0.2.7"), AddressKey("192.0.2.8"));
}

// ipv6_login_bruteforce: each address of one /64 got its own login attempts.
TEST(AddressKeyTest, Ipv6AddressesOfOneSlash64ShareAKey) {
  EXPECT_EQ(AddressKey("fd00:1::1000:0"), "fd00:1::/64");
  EXPECT_EQ(AddressKey("fd00:1::abcd"), AddressKey("fd00:1::ffff:1"));
  EXPECT_EQ(AddressKey("2001:db8:1:2:a:b:c:d"), "2001:db8:1:2::/64");
}

TEST(AddressKeyTest, DifferentSlash64sDiffer) {
  EXPECT_NE(AddressKey("2001:db8:1:2::1"), AddressKey("2001:db8:1:3::1"));
}

TEST(AddressKeyTest, Ipv4MappedIpv6CountsAsIpv4) {
  EXPECT_EQ(AddressKey("::ffff:192.0.2.7"), "192.0.2.7");
}

TEST(AddressKeyTest, TextThatIsNotAnAddressIsKeptAsItIs) {
  EXPECT_EQ(AddressKey(""), "");
  EXPECT_EQ(AddressKey("unknown"), "unknown");
  EXPECT_EQ(AddressKey(std::string(100, 'a')), std::string(100, 'a'));
}

}  // namespace
}  // namespace datasite
