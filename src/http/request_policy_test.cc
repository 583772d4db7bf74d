#include "http/request_policy.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace datasite::http {
namespace {

TEST(IsLoopbackAddressTest, LoopbackAddresses) {
  for (const char* a : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
}

TEST(IsLoopbackAddressTest, OtherAddressesAndNamesAreNot) {
  for (const char* a : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "::ffff:10.0.0.1", "::2",
                        "localhost", "", "127.0.0.1:80", "[::1]", "127.1"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

TEST(AllowedHostsTest, LoopbackNamesOnAnyPortAlways) {
  AllowedHosts hosts;
  for (const char* h : {"localhost", "localhost:8080", "LocalHost:1", "localhost.", "127.0.0.1",
                        "127.0.0.1:65535", "[::1]", "[::1]:8080"}) {
    EXPECT_TRUE(hosts.Allows(h)) << h;
  }
}

TEST(AllowedHostsTest, AddressLiteralsAreAllowed) {
  AllowedHosts hosts;
  EXPECT_TRUE(hosts.Allows("192.168.1.5:8080"));
  EXPECT_TRUE(hosts.Allows("[2001:db8::1]:80"));
}

TEST(AllowedHostsTest, RebindingNamesAreRefused) {
  AllowedHosts hosts;
  for (const char* h : {"evil.example", "evil.example:8080", "localhost.evil.example",
                        "127.0.0.1.nip.io", "sub.localhost", "", "x"}) {
    EXPECT_FALSE(hosts.Allows(h)) << h;
  }
}

TEST(AllowedHostsTest, MalformedHostHeadersAreRefused) {
  AllowedHosts hosts({"datasite.example"});
  for (const char* h : {"localhost:abc", "localhost:1234567", "[::1", "::1", "[localhost]:80",
                        "localhost:80:80", ":80", "[::1]x"}) {
    EXPECT_FALSE(hosts.Allows(h)) << h;
  }
  EXPECT_FALSE(hosts.Allows(std::string(300, 'a')));
}

TEST(AllowedHostsTest, ConfiguredNamesMatchWithoutCaseOnAnyPort) {
  AllowedHosts hosts({"Datasite.Example", "[2001:db8::2]"});
  EXPECT_TRUE(hosts.Allows("datasite.example"));
  EXPECT_TRUE(hosts.Allows("DATASITE.example:443"));
  EXPECT_TRUE(hosts.Allows("datasite.example.:80"));
  EXPECT_FALSE(hosts.Allows("other.example"));
  EXPECT_FALSE(hosts.Allows("xdatasite.example"));
}

TEST(ValidateAllowedHostTest, NamesAndAddressesPass) {
  for (const char* n : {"datasite.example", "my-host", "10.0.0.1", "::1", "[2001:db8::1]"}) {
    EXPECT_TRUE(ValidateAllowedHost(n).ok()) << n;
  }
}

TEST(ValidateAllowedHostTest, UrlsPortsAndJunkAreRefused) {
  for (const char* n : {"", "http://x", "x:80", "a b", ".x", "a..b", "x/y", "*"}) {
    auto st = ValidateAllowedHost(n);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << n;
  }
}

TEST(IsJsonContentTypeTest, JsonWithParameters) {
  for (const char* t : {"application/json", "Application/JSON", "application/json; charset=utf-8",
                        " application/json ;charset=UTF-8"}) {
    EXPECT_TRUE(IsJsonContentType(t)) << t;
  }
  for (const char* t : {"", "text/plain", "text/plain; charset=application/json",
                        "application/x-www-form-urlencoded", "multipart/form-data",
                        "application/jsonx", "application/json-patch+json"}) {
    EXPECT_FALSE(IsJsonContentType(t)) << t;
  }
}

std::string ErrorCode(const Response& r) {
  return nlohmann::json::parse(r.body)["error"]["code"].get<std::string>();
}

TEST(CheckHostTest, OneAllowedHostPasses) {
  EXPECT_FALSE(CheckHost(AllowedHosts(), {"localhost:8080"}));
}

TEST(CheckHostTest, MissingOrRepeatedHostIs400) {
  auto none = CheckHost(AllowedHosts(), {});
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 400);
  auto two = CheckHost(AllowedHosts(), {"localhost", "localhost"});
  ASSERT_TRUE(two);
  EXPECT_EQ(two->status, 400);
}

TEST(CheckHostTest, OtherHostIs421WithJsonError) {
  auto r = CheckHost(AllowedHosts(), {"evil.example"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 421);
  EXPECT_EQ(ErrorCode(*r), "HOST_NOT_ALLOWED");
  EXPECT_NE(r->body.find("--allowed-host"), std::string::npos);
}

TEST(CheckBodyTypeTest, JsonBodiesAndBodilessRequestsPass) {
  EXPECT_FALSE(CheckBodyType("application/json", true, false));
  EXPECT_FALSE(CheckBodyType("text/plain", false, false));
  EXPECT_FALSE(CheckBodyType("", false, false));
}

TEST(CheckBodyTypeTest, UploadsKeepTheirOwnType) {
  EXPECT_FALSE(CheckBodyType("application/octet-stream", true, true));
  EXPECT_FALSE(CheckBodyType("", true, true));
}

TEST(CheckBodyTypeTest, OtherBodiesAre415) {
  for (const char* t : {"text/plain", "", "application/x-www-form-urlencoded"}) {
    auto r = CheckBodyType(t, true, false);
    ASSERT_TRUE(r) << t;
    EXPECT_EQ(r->status, 415);
    EXPECT_EQ(ErrorCode(*r), "UNSUPPORTED_MEDIA_TYPE");
  }
}

}  // namespace
}  // namespace datasite::http
