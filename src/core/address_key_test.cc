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

// attack: 256 addresses of one /56 (or 157 /64s) held the whole body budget (or every
// connection): each /64 had its own share and nothing counted them together.
TEST(NetworkKeyTest, Ipv6AddressesOfOneSlash48ShareANetwork) {
  EXPECT_EQ(NetworkKey("2001:db8:1:2:a:b:c:d"), "2001:db8:1::/48");
  EXPECT_EQ(NetworkKey("2001:db8:1:ff00::1"), NetworkKey("2001:db8:1:2::1"));
  EXPECT_NE(NetworkKey("2001:db8:1::1"), NetworkKey("2001:db8:2::1"));
}

TEST(NetworkKeyTest, Ipv4AddressesOfOneSlash24ShareANetwork) {
  EXPECT_EQ(NetworkKey("192.0.2.7"), "192.0.2.0/24");
  EXPECT_EQ(NetworkKey("192.0.2.255"), NetworkKey("192.0.2.1"));
  EXPECT_NE(NetworkKey("192.0.2.7"), NetworkKey("192.0.3.7"));
  EXPECT_EQ(NetworkKey("::ffff:192.0.2.7"), "192.0.2.0/24");
}

TEST(NetworkKeyTest, NeverEqualsAnAddressKey) {
  for (const char* text : {"", "unknown", "192.0.2.7", "2001:db8::1"}) {
    EXPECT_NE(NetworkKey(text), AddressKey(text)) << text;
  }
  EXPECT_EQ(NetworkKey("unknown"), "net:unknown");
}

}  // namespace
}  // namespace datasite
