#include "net/egress.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <thread>

namespace datasite::net {
namespace {

TEST(EgressTest, ParsesHostsAddressesAndPorts) {
  auto a = ParseEgressTarget("Warehouse.Example.:5432");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->host, "warehouse.example");
  EXPECT_EQ(a->port, 5432);
  EXPECT_EQ(a->ToString(), "warehouse.example:5432");
  auto b = ParseEgressTarget("10.0.0.7:443");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "10.0.0.7");
  auto c = ParseEgressTarget("[::1]:8080");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->ToString(), "[::1]:8080");
}

TEST(EgressTest, RefusesWhatIsNotOneHostAndPort) {
  for (const char* text :
       {"", "warehouse", "warehouse:", ":80", "warehouse:0", "warehouse:65536", "warehouse:80x",
        "warehouse:-1", "*.example:443", "https://warehouse:443", "ware house:80", "a..b:80",
        "-a.example:80", "::1:80", "[::1]", "[::1]80", "[nothost]:80", "warehouse:80/path"}) {
    auto t = ParseEgressTarget(text);
    EXPECT_FALSE(t.ok()) << text;
    if (!t.ok()) {
      EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument) << text;
    }
  }
}

TEST(EgressTest, AllowsOnlyTheNamedHostAndPort) {
  std::vector<EgressTarget> allowed = {*ParseEgressTarget("warehouse.example:5432"),
                                       *ParseEgressTarget("[::1]:80")};
  EXPECT_NE(FindEgressTarget(allowed, "warehouse.example", 5432), nullptr);
  EXPECT_NE(FindEgressTarget(allowed, "WAREHOUSE.example.", 5432), nullptr);
  EXPECT_NE(FindEgressTarget(allowed, "[::1]", 80), nullptr);
  EXPECT_NE(FindEgressTarget(allowed, "::1", 80), nullptr);
  EXPECT_EQ(FindEgressTarget(allowed, "WAREHOUSE.example.", 5432), &allowed[0]);
  EXPECT_EQ(FindEgressTarget(allowed, "warehouse.example", 5433), nullptr);
  EXPECT_EQ(FindEgressTarget(allowed, "warehouse.example", 5432 + 65536), nullptr);
  EXPECT_EQ(FindEgressTarget(allowed, "other.example", 5432), nullptr);
  EXPECT_EQ(FindEgressTarget(allowed, "evil.warehouse.example", 5432), nullptr);
  EXPECT_EQ(FindEgressTarget(allowed, "warehouse.example.evil", 5432), nullptr);
  EXPECT_EQ(FindEgressTarget(allowed, "", 5432), nullptr);
  EXPECT_EQ(FindEgressTarget({}, "warehouse.example", 5432), nullptr);
}

// A listening socket on a free loopback port; its number.
int Listen(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(fd, 4), 0);
  socklen_t size = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &size);
  *port = ntohs(a.sin_port);
  return fd;
}

TEST(EgressTest, ConnectsToTheTargetAndHandsOverABlockingSocket) {
  int port = 0;
  int listener = Listen(&port);
  auto fd = ConnectEgress({"127.0.0.1", static_cast<uint16_t>(port)}, std::chrono::seconds(5));
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  int peer = accept(listener, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  ASSERT_EQ(write(peer, "hi", 2), 2);
  char buf[2];
  EXPECT_EQ(read(*fd, buf, 2), 2);  // blocking: waits for the bytes
  EXPECT_EQ(std::string(buf, 2), "hi");
  close(peer);
  close(*fd);
  close(listener);
}

TEST(EgressTest, AClosedPortIsUnavailable) {
  int port = 0;
  close(Listen(&port));  // nothing listens there now
  auto refused = ConnectEgress({"127.0.0.1", static_cast<uint16_t>(port)}, std::chrono::seconds(5));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
}

TEST(EgressRelaysTest, RelaysBothWaysAndEndsWhenTheFunctionsEndCloses) {
  int port = 0;
  int listener = Listen(&port);
  EgressRelays relays(1);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto inside =
      relays.Open({"127.0.0.1", static_cast<uint16_t>(port)}, std::chrono::seconds(5), until);
  ASSERT_TRUE(inside.ok()) << inside.status().ToString();
  EXPECT_EQ(relays.open_count(), 1);
  // What the function is handed is a Unix socket: nothing it can reconnect elsewhere.
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  ASSERT_EQ(getsockname(*inside, reinterpret_cast<sockaddr*>(&address), &size), 0);
  EXPECT_EQ(address.ss_family, AF_UNIX);
  // The limit: a second relay waits for the first to end.
  auto second =
      relays.Open({"127.0.0.1", static_cast<uint16_t>(port)}, std::chrono::seconds(5), until);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kResourceExhausted);

  int peer = accept(listener, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  ASSERT_EQ(write(*inside, "ping", 4), 4);
  shutdown(*inside, SHUT_WR);  // a half-close reaches the far end as end of stream
  std::string got;
  char buf[16];
  for (ssize_t n; (n = read(peer, buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(got, "ping");
  ASSERT_EQ(write(peer, "pong", 4), 4);
  EXPECT_EQ(read(*inside, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  close(*inside);  // the function's process ended
  for (int i = 0; i < 100 && relays.open_count() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(relays.open_count(), 0);
  EXPECT_EQ(read(peer, buf, sizeof buf), 0);  // and the far end sees the connection closed
  close(peer);
  close(listener);
}

TEST(EgressRelaysTest, ARelayEndsAtItsDeadlineAndOnDestruction) {
  int port = 0;
  int listener = Listen(&port);
  auto relays = std::make_unique<EgressRelays>(4);
  auto soon = relays->Open({"127.0.0.1", static_cast<uint16_t>(port)}, std::chrono::seconds(5),
                           std::chrono::steady_clock::now() + std::chrono::milliseconds(300));
  auto later = relays->Open({"127.0.0.1", static_cast<uint16_t>(port)}, std::chrono::seconds(5),
                            std::chrono::steady_clock::now() + std::chrono::hours(1));
  ASSERT_TRUE(soon.ok() && later.ok());
  char buf[4];
  EXPECT_EQ(read(*soon, buf, sizeof buf), 0);  // blocks until the relay gives up at its deadline
  for (int i = 0; i < 100 && relays->open_count() > 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(relays->open_count(), 1);
  relays.reset();  // waits for the hour-long one to stop
  EXPECT_EQ(read(*later, buf, sizeof buf), 0);
  close(*soon);
  close(*later);
  close(listener);
}

}  // namespace
}  // namespace datasite::net
