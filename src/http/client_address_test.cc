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

TEST(CanonicalNetworkTest, ReadsNetworksAndSingleAddresses) {
  EXPECT_EQ(*CanonicalNetwork("10.0.0.0/8"), "10.0.0.0/8");
  EXPECT_EQ(*CanonicalNetwork("10.0.0.7"), "10.0.0.7");
  EXPECT_EQ(*CanonicalNetwork("10.0.0.7/32"), "10.0.0.7/32");
  EXPECT_EQ(*CanonicalNetwork("2001:DB8::/32"), "2001:db8::/32");
  EXPECT_EQ(*CanonicalNetwork("::ffff:10.1.0.0/112"), "10.1.0.0/16");
  EXPECT_EQ(*CanonicalNetwork("172.16.0.0/12"), "172.16.0.0/12");
}

TEST(CanonicalNetworkTest, RefusesWhatIsNoNetworkOrTrustsEveryone) {
  for (const char* bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/8x", "10.0.0.0/0008",
        "example.org/8", "2001:db8::/129", "::ffff:10.0.0.0/95"}) {
    auto n = CanonicalNetwork(bad);
    EXPECT_FALSE(n.ok()) << bad;
    if (!n.ok()) {
      EXPECT_EQ(n.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
  // Every address: anyone could name any client.
  EXPECT_NE(CanonicalNetwork("0.0.0.0/0").status().message().find("every address"),
            std::string::npos);
  EXPECT_FALSE(CanonicalNetwork("::/0").ok());
  // Host bits set: the intended network is named.
  EXPECT_NE(CanonicalNetwork("10.1.2.3/8").status().message().find("10.0.0.0/8"),
            std::string::npos);
  EXPECT_FALSE(CanonicalNetwork("2001:db8::1/64").ok());
}

TEST(InNetworksTest, MatchesByPrefixAndFamily) {
  const std::vector<std::string> nets = {"10.0.0.0/8", "192.0.2.128/25", "2001:db8:1::/48",
                                         "198.51.100.7"};
  EXPECT_TRUE(InNetworks("10.255.3.4", nets));
  EXPECT_FALSE(InNetworks("11.0.0.1", nets));
  EXPECT_TRUE(InNetworks("192.0.2.200", nets));
  EXPECT_FALSE(InNetworks("192.0.2.127", nets));
  EXPECT_TRUE(InNetworks("2001:db8:1:ffff::9", nets));
  EXPECT_FALSE(InNetworks("2001:db8:2::9", nets));
  EXPECT_TRUE(InNetworks("198.51.100.7", nets));
  EXPECT_FALSE(InNetworks("198.51.100.8", nets));
  EXPECT_FALSE(InNetworks("not an address", nets));
  EXPECT_FALSE(InNetworks("10.0.0.1", {}));
}

TEST(ClientAddressTest, APeerInATrustedNetworkNamesTheClient) {
  const std::vector<std::string> pods = {"10.244.0.0/16"};
  EXPECT_EQ(ClientAddress("10.244.3.17", "203.0.113.9", pods), "203.0.113.9");
  // Hops inside the network are proxies too; the first one outside it is the client.
  EXPECT_EQ(ClientAddress("10.244.3.17", "1.1.1.1, 203.0.113.9, 10.244.9.9", pods), "203.0.113.9");
  EXPECT_EQ(ClientAddress("10.245.0.1", "203.0.113.9", pods), "10.245.0.1");
}

}  // namespace
}  // namespace datasite::http
