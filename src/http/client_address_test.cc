#include "http/client_address.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace datasite::http {
namespace {

const std::vector<std::string> kProxy = {"10.0.0.2"};

TEST(CanonicalAddressTest, AcceptsIpv4AndIpv6) {
  EXPECT_EQ(CanonicalAddress("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(CanonicalAddress("2001:DB8:0:0::1"), "2001:db8::1");
}

TEST(CanonicalAddressTest, UnwrapsIpv4MappedIpv6) {
  EXPECT_EQ(CanonicalAddress("::ffff:10.0.0.2"), "10.0.0.2");
}

TEST(CanonicalAddressTest, RefusesWhatIsNotAnAddress) {
  EXPECT_EQ(CanonicalAddress(""), std::nullopt);
  EXPECT_EQ(CanonicalAddress("example.org"), std::nullopt);
  EXPECT_EQ(CanonicalAddress("1.2.3.4:80"), std::nullopt);
  EXPECT_EQ(CanonicalAddress(std::string(100, '1')), std::nullopt);
}

TEST(ClientAddressTest, WithoutTrustedProxiesTheHeaderIsIgnored) {
  EXPECT_EQ(ClientAddress("127.0.0.1", "203.0.113.9", {}), "127.0.0.1");
}

TEST(ClientAddressTest, AnUntrustedPeersHeaderIsIgnored) {
  EXPECT_EQ(ClientAddress("192.0.2.7", "203.0.113.9", kProxy), "192.0.2.7");
}

TEST(ClientAddressTest, ATrustedPeerNamesTheClient) {
  EXPECT_EQ(ClientAddress("10.0.0.2", "203.0.113.9", kProxy), "203.0.113.9");
}

TEST(ClientAddressTest, TheRightmostUntrustedHopIsTheClient) {
  // The client made up the first entry; the trusted proxy appended the address it saw.
  EXPECT_EQ(ClientAddress("10.0.0.2", "1.1.1.1, 203.0.113.9", kProxy), "203.0.113.9");
}

TEST(ClientAddressTest, TrustedHopsInTheHeaderAreSkipped) {
  std::vector<std::string> two = {"10.0.0.2", "10.0.0.3"};
  EXPECT_EQ(ClientAddress("10.0.0.2", "203.0.113.9, 10.0.0.3", two), "203.0.113.9");
}

TEST(ClientAddressTest, AHopThatIsNotAnAddressEndsTrustAtTheLastTrustedHop) {
  EXPECT_EQ(ClientAddress("10.0.0.2", "203.0.113.9, garbage", kProxy), "10.0.0.2");
}

TEST(ClientAddressTest, ATrustedPeerWithoutHeaderIsItself) {
  EXPECT_EQ(ClientAddress("10.0.0.2", "", kProxy), "10.0.0.2");
  EXPECT_EQ(ClientAddress("10.0.0.2", " , ", kProxy), "10.0.0.2");
}

TEST(ClientAddressTest, TheHeaderIsCanonicalized) {
  EXPECT_EQ(ClientAddress("::ffff:10.0.0.2", " ::FFFF:203.0.113.9 ", kProxy), "203.0.113.9");
}

}  // namespace
}  // namespace datasite::http
