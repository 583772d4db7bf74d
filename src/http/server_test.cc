// The upload pipeline of HttpServer against a real socket: a body streamed into a sink arrives
// whole and in order however slow the sink is, and a sink that fails mid-body gets no more writes
// and the client one clear answer.
#include "http/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http/router.h"

namespace datasite::http {
namespace {

// What the sink of the test route saw, shared with the test.
struct SinkLog {
  std::mutex mu;
  std::string bytes;
  int writes = 0;
  int writes_after_failure = 0;
  bool failed = false;
};

// Records what it is given; sleeps `delay` in every write (a sink slower than the socket), and
// fails the `fail_at`-th write (0: never).
class RecordingSink : public BodySink {
 public:
  RecordingSink(std::shared_ptr<SinkLog> log, std::chrono::milliseconds delay, int fail_at)
      : log_(std::move(log)), delay_(delay), fail_at_(fail_at) {}

  Status Write(std::string_view chunk) override {
    std::this_thread::sleep_for(delay_);
    std::lock_guard<std::mutex> lock(log_->mu);
    if (log_->failed) ++log_->writes_after_failure;
    ++log_->writes;
    if (log_->writes == fail_at_) {
      log_->failed = true;
      return ResourceExhaustedError("test sink is full");
    }
    log_->bytes.append(chunk);
    return Status::Ok();
  }

  Response Finish() override {
    std::lock_guard<std::mutex> lock(log_->mu);
    Response r;
    r.body = std::to_string(log_->bytes.size());
    return r;
  }

 private:
  std::shared_ptr<SinkLog> log_;
  std::chrono::milliseconds delay_;
  int fail_at_;
};

// Body bytes that differ from one position to the next, so that a lost, repeated or reordered
// piece shows.
std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 4093) % 251);
  return s;
}

class UploadPipelineTest : public ::testing::Test {
 protected:
  void Start(std::chrono::milliseconds delay, int fail_at, uint64_t upload_limit = 64ull << 30) {
    log_ = std::make_shared<SinkLog>();
    Route route;
    route.method = "POST";
    route.pattern = "/upload";
    route.open_sink = [log = log_, delay, fail_at](Request&) -> Result<std::unique_ptr<BodySink>> {
      return std::unique_ptr<BodySink>(new RecordingSink(log, delay, fail_at));
    };
    router_.Add(std::move(route));
    ServerOptions options;
    options.host = "127.0.0.1";
    options.upload_limit = upload_limit;
    auto server = NewHttpServer(router_, options);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(*server);
    server_->Start();
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(1000));
  }

  // Sends `head` and `body` on a new connection (the body from a second thread, so that a large one
  // can't block the test) and returns the response's status line and body; "" after 20 s without
  // an answer.
  std::pair<std::string, std::string> Post(const std::string& head, const std::string& body) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) ADD_FAILURE() << "socket: " << std::strerror(errno);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ADD_FAILURE() << "connect: " << std::strerror(errno);
      ::close(fd);
      return {"", ""};
    }
    timeval timeout{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::thread sender([&] {
      std::string all = head + body;
      size_t sent = 0;
      while (sent < all.size()) {
        ssize_t n = ::send(fd, all.data() + sent, std::min<size_t>(all.size() - sent, 100000),
                           MSG_NOSIGNAL);
        if (n <= 0) return;  // the server answered early and stopped reading
        sent += static_cast<size_t>(n);
      }
    });
    std::string got;
    char buf[65536];
    size_t header_end = std::string::npos;
    size_t length = 0;
    while (true) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = got.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        size_t at = got.find("Content-Length: ");
        if (at != std::string::npos) length = std::stoul(got.substr(at + 16));
      }
      if (got.size() >= header_end + 4 + length) break;
    }
    ::shutdown(fd, SHUT_RDWR);
    sender.join();
    ::close(fd);
    if (header_end == std::string::npos) return {"", ""};
    return {got.substr(0, got.find("\r\n")), got.substr(header_end + 4, length)};
  }

  static std::string Head(size_t content_length) {
    return "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
           std::to_string(content_length) + "\r\n\r\n";
  }

  static std::string Chunked(const std::string& body, size_t piece) {
    std::string out;
    char size[32];
    for (size_t at = 0; at < body.size(); at += piece) {
      size_t n = std::min(piece, body.size() - at);
      std::snprintf(size, sizeof(size), "%zx\r\n", n);
      out += size;
      out.append(body, at, n);
      out += "\r\n";
    }
    return out + "0\r\n\r\n";
  }

  // The upload was answered 200 with its size, and the sink got exactly `body`.
  void ExpectStoredWhole(const std::pair<std::string, std::string>& response,
                         const std::string& body) {
    EXPECT_EQ(response.first, "HTTP/1.1 200 OK");
    EXPECT_EQ(response.second, std::to_string(body.size()));
    std::lock_guard<std::mutex> lock(log_->mu);
    EXPECT_TRUE(log_->bytes == body) << "the sink got " << log_->bytes.size() << " bytes";
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::shared_ptr<SinkLog> log_;
};

TEST_F(UploadPipelineTest, FastSinkGetsEveryByteInOrder) {
  ASSERT_NO_FATAL_FAILURE(Start(std::chrono::milliseconds(0), 0));
  std::string body = Pattern((5 << 20) + 12345);
  ExpectStoredWhole(Post(Head(body.size()), body), body);
}

// A sink slower than the socket: the next buffer is always full before the sink is done with one.
TEST_F(UploadPipelineTest, SlowSinkGetsEveryByteInOrder) {
  ASSERT_NO_FATAL_FAILURE(Start(std::chrono::milliseconds(15), 0));
  std::string body = Pattern((6 << 20) + 777);
  ExpectStoredWhole(Post(Head(body.size()), body), body);
}

TEST_F(UploadPipelineTest, SlowSinkGetsEveryByteOfAChunkedBodyInOrder) {
  ASSERT_NO_FATAL_FAILURE(Start(std::chrono::milliseconds(10), 0));
  std::string body = Pattern((3 << 20) + 99);
  ExpectStoredWhole(
      Post("POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
           Chunked(body, 300000)),
      body);
}

// The sink fails while the next buffer waits, full, for it: the client is answered with the sink's
// error, the sink gets no write after it failed, and the server serves the next upload.
TEST_F(UploadPipelineTest, SinkFailureWhileTheReaderWaitsIsAnsweredOnce) {
  ASSERT_NO_FATAL_FAILURE(Start(std::chrono::milliseconds(30), 3));
  std::string body = Pattern(8 << 20);
  auto [status, answer] = Post(Head(body.size()), body);
  EXPECT_EQ(status, "HTTP/1.1 413 Payload Too Large");
  EXPECT_NE(answer.find("test sink is full"), std::string::npos) << answer;
  {
    std::lock_guard<std::mutex> lock(log_->mu);
    EXPECT_EQ(log_->writes, 3);
    EXPECT_EQ(log_->writes_after_failure, 0);
    EXPECT_EQ(log_->bytes.size(), size_t{2} << 20);
  }
  {
    std::lock_guard<std::mutex> lock(log_->mu);
    log_->writes = -1000;  // no failure for the next upload
    log_->failed = false;
    log_->bytes.clear();
  }
  std::string small = Pattern(1000);
  auto [status2, answer2] = Post(Head(small.size()), small);
  EXPECT_EQ(status2, "HTTP/1.1 200 OK");
  EXPECT_EQ(answer2, "1000");
}

// A chunked body that grows past the upload limit while the sink is busy writing an earlier piece:
// the client gets the size refusal, not a connection closed without an answer.
TEST_F(UploadPipelineTest, ChunkedBodyOverTheLimitWhileTheSinkWritesIsRefused) {
  // Each write takes 300 ms, far longer than reading the few MiB past the limit on loopback, so
  // the limit is reached while the sink writes.
  ASSERT_NO_FATAL_FAILURE(Start(std::chrono::milliseconds(300), 0, 3 << 20));
  std::string body = Pattern(8 << 20);
  auto [status, answer] =
      Post("POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
           Chunked(body, 1 << 20));
  EXPECT_EQ(status, "HTTP/1.1 413 Payload Too Large");
  EXPECT_NE(answer.find("too large"), std::string::npos) << answer;
  std::lock_guard<std::mutex> lock(log_->mu);
  EXPECT_LE(log_->bytes.size(), size_t{3} << 20);
  EXPECT_TRUE(log_->bytes == body.substr(0, log_->bytes.size()));
}

// Response::body_source: a body pulled piece by piece, with its Content-Length known up front.
class StreamedResponseTest : public ::testing::Test {
 protected:
  // Serves GET /stream with a body of `size` Pattern bytes, whose source fails (or ends, when
  // `end_early`) once `fail_after` bytes are out (never when 0).
  void Start(size_t size, size_t fail_after, bool end_early = false) {
    Route route;
    route.method = "GET";
    route.pattern = "/stream";
    route.handler = [this, size, fail_after, end_early](Request&) {
      Response r;
      r.content_type = "application/octet-stream";
      r.body_size = static_cast<int64_t>(size);
      auto sent = std::make_shared<size_t>(0);
      r.body_source = [this, size, fail_after, end_early, sent](char* buf,
                                                                size_t cap) -> Result<size_t> {
        calls_++;
        if (cap > max_cap_) max_cap_ = cap;
        if (fail_after > 0 && *sent >= fail_after) {
          if (end_early) return size_t{0};
          return InternalError("the test source broke");
        }
        size_t n = std::min(cap, size - *sent);
        for (size_t i = 0; i < n; ++i) buf[i] = PatternAt(*sent + i);
        *sent += n;
        return n;
      };
      return r;
    };
    router_.Add(std::move(route));
    ServerOptions options;
    options.host = "127.0.0.1";
    auto server = NewHttpServer(router_, options);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(*server);
    server_->Start();
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(1000));
  }

  static char PatternAt(size_t i) { return static_cast<char>((i * 7 + i / 4093) % 251); }

  // `receive_buffer`: SO_RCVBUF before connecting (0: the system's autotuned default).
  int Connect(int receive_buffer = 0) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval timeout{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    return fd;
  }

  struct Answer {
    std::string head;
    std::string body;
    size_t content_length = 0;
    bool closed = false;     // the server closed the connection (recv gave 0)
    bool timed_out = false;  // nothing for 20 s
  };

  // Sends GET /stream on `fd` and reads the answer: its whole body, or until the server closes.
  static Answer Get(int fd) {
    std::string req = "GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
    EXPECT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    Answer a;
    std::string got;
    std::vector<char> buf(1 << 20);
    size_t header_end = std::string::npos;
    while (true) {
      ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n == 0) {
        a.closed = true;
        break;
      }
      if (n < 0) {
        a.timed_out = errno == EAGAIN || errno == EWOULDBLOCK;
        break;
      }
      got.append(buf.data(), static_cast<size_t>(n));
      if (header_end == std::string::npos) {
        header_end = got.find("\r\n\r\n");
        if (header_end == std::string::npos) continue;
        size_t at = got.find("Content-Length: ");
        if (at != std::string::npos) a.content_length = std::stoul(got.substr(at + 16));
      }
      if (got.size() >= header_end + 4 + a.content_length) break;
    }
    if (header_end == std::string::npos) return a;
    a.head = got.substr(0, header_end);
    a.body = got.substr(header_end + 4);
    return a;
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> calls_{0};
  std::atomic<size_t> max_cap_{0};
};

TEST_F(StreamedResponseTest, LargeBodyArrivesWholeInPiecesOfAtMostOneMiB) {
  const size_t size = 64 << 20;
  Start(size, 0);
  int fd = Connect();
  Answer a = Get(fd);
  EXPECT_EQ(a.head.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_NE(a.head.find("application/octet-stream"), std::string::npos);
  EXPECT_EQ(a.content_length, size);
  ASSERT_EQ(a.body.size(), size);
  for (size_t i = 0; i < size; ++i) {
    if (a.body[i] != PatternAt(i)) {
      ADD_FAILURE() << "byte " << i << " differs";
      break;
    }
  }
  EXPECT_LE(max_cap_.load(), size_t{1} << 20);
  EXPECT_GE(calls_.load(), 64);
  // The connection stays open for the next request.
  Answer again = Get(fd);
  EXPECT_EQ(again.body.size(), size);
  ::close(fd);
}

TEST_F(StreamedResponseTest, ClientThatStopsReadingHoldsTheSourceBack) {
  Start(64 << 20, 0);
  int fd = Connect(64 << 10);
  std::string req = "GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  char buf[4096];
  ASSERT_GT(::recv(fd, buf, sizeof(buf), 0), 0);
  // The client reads no more: once the socket buffers are full, the source is asked for nothing
  // (a 64 KiB receive buffer and at most 4 MiB
  // of send buffer; the body is 64 MiB).
  int last = -1;
  for (int i = 0; i < 50 && calls_.load() != last; ++i) {
    last = calls_.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Pieces of 64 KiB: fewer than 12 MiB asked for, of the 64 MiB body.
  EXPECT_LT(calls_.load(), 12 * 16) << "the server read ahead of a client that does not read";
  ::close(fd);
}

TEST_F(StreamedResponseTest, EmptyBodyIsAnsweredWithoutCallingTheSource) {
  Start(0, 0);
  int fd = Connect();
  Answer a = Get(fd);
  EXPECT_EQ(a.head.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_NE(a.head.find("Content-Length: 0"), std::string::npos);
  EXPECT_EQ(a.body, "");
  EXPECT_EQ(calls_.load(), 0);
  ::close(fd);
}

TEST_F(StreamedResponseTest, SourceErrorMidwayGivesAShortBodyAndAClosedConnection) {
  const size_t size = 16 << 20;
  Start(size, 3 << 20);
  int fd = Connect();
  Answer a = Get(fd);
  EXPECT_FALSE(a.timed_out) << "the server neither finished nor closed";
  EXPECT_TRUE(a.closed);
  EXPECT_EQ(a.content_length, size);
  EXPECT_EQ(a.body.size(), size_t{3} << 20);
  ::close(fd);
}

TEST_F(StreamedResponseTest, SourceEndingEarlyGivesAShortBodyAndAClosedConnection) {
  Start(8 << 20, 1 << 20, /*end_early=*/true);
  int fd = Connect();
  Answer a = Get(fd);
  EXPECT_FALSE(a.timed_out);
  EXPECT_TRUE(a.closed);
  EXPECT_EQ(a.body.size(), size_t{1} << 20);
  ::close(fd);
}

// The wait lane: handlers that wait long (for a job) on their own pool. Its one thread is held by
// POST /hold until the test releases it or its client is gone.
class WaitLaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Route hold;
    hold.method = "POST";
    hold.pattern = "/hold";
    hold.lane = Lane::kWait;
    hold.handler = [this](Request& req) {
      std::unique_lock lock(mu_);
      entered_ = true;
      gone_at_entry_ = req.client_gone();
      cv_.notify_all();
      // Asks as a waiting job run does, every few milliseconds; bounded so a failing test ends.
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (!released_ && std::chrono::steady_clock::now() < give_up) {
        if (req.client_gone()) {
          saw_gone_ = true;
          break;
        }
        cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
      left_ = true;
      cv_.notify_all();
      return Response{};
    };
    router_.Add(std::move(hold));
    // Waits on the wait lane, except when its body is "quick".
    Route start;
    start.method = "POST";
    start.pattern = "/start";
    start.lane = Lane::kWait;
    start.handler = [](Request&) { return Response{}; };
    router_.Add(std::move(start));
    router_.SetChooseLane("POST", "/start", [](const Request& req) {
      return req.body == "quick" ? Lane::kDefault : Lane::kWait;
    });
    ServerOptions options;
    options.host = "127.0.0.1";
    options.wait_threads = 1;
    auto server = NewHttpServer(router_, options);
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(*server);
    server_->Start();
  }

  void TearDown() override {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
    if (server_) server_->Shutdown(std::chrono::milliseconds(1000));
  }

  int Connect() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(server_->port());
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval timeout{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    return fd;
  }

  static void Send(int fd, const std::string& path, const std::string& body) {
    std::string req = "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: " +
                      "application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body;
    EXPECT_EQ(::send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  }

  // The status line of the next answer on `fd`; "" when none came within 20 s.
  static std::string StatusLine(int fd) {
    std::string got;
    char c;
    while (got.find("\r\n") == std::string::npos && ::recv(fd, &c, 1, 0) == 1) got += c;
    return got.substr(0, got.find("\r\n"));
  }

  // Blocks until POST /hold's handler runs (true), or 20 s passed.
  bool HoldEntered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return entered_; });
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;        // Guarded by mu_.
  bool gone_at_entry_ = false;  // Guarded by mu_.
  bool saw_gone_ = false;       // Guarded by mu_.
  bool left_ = false;           // Guarded by mu_.
  bool released_ = false;       // Guarded by mu_.
};

// Regression (a cold attack): run starts that answer at once ({"blocking": false}) ran on the
// wait lane, so waits filling it left them unanswered.
TEST_F(WaitLaneTest, RequestChosenForTheRequestPoolIsAnsweredWhileTheWaitLaneIsFull) {
  int holder = Connect();
  Send(holder, "/hold", "");
  ASSERT_TRUE(HoldEntered());
  int fd = Connect();
  Send(fd, "/start", "quick");
  EXPECT_EQ(StatusLine(fd), "HTTP/1.1 200 OK");
  ::close(fd);
  ::close(holder);
}

TEST_F(WaitLaneTest, RequestChosenForTheWaitLaneWaitsForItsThread) {
  int holder = Connect();
  Send(holder, "/hold", "");
  ASSERT_TRUE(HoldEntered());
  int fd = Connect();
  Send(fd, "/start", "slow");
  {
    std::lock_guard lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
  EXPECT_EQ(StatusLine(holder), "HTTP/1.1 200 OK");
  EXPECT_EQ(StatusLine(fd), "HTTP/1.1 200 OK");
  std::lock_guard lock(mu_);
  EXPECT_FALSE(saw_gone_);
  ::close(fd);
  ::close(holder);
}

// Regression (a cold attack): a wait whose client had closed its connection held its thread (and
// its user's place among the waits) until its timeout.
TEST_F(WaitLaneTest, HandlerSeesItsClientGoneOnceTheConnectionCloses) {
  int holder = Connect();
  Send(holder, "/hold", "");
  ASSERT_TRUE(HoldEntered());
  ::close(holder);
  std::unique_lock lock(mu_);
  ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(20), [&] { return left_; }));
  EXPECT_FALSE(gone_at_entry_);
  EXPECT_TRUE(saw_gone_);
}

TEST_F(WaitLaneTest, ClientThatSentItsNextRequestAheadIsNotGone) {
  int holder = Connect();
  Send(holder, "/hold", "");
  ASSERT_TRUE(HoldEntered());
  Send(holder, "/start", "quick");  // pipelined: unread bytes on the socket
  {
    std::unique_lock lock(mu_);
    // The handler asks every few milliseconds; a while of asking must not find it gone.
    cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return left_; });
    EXPECT_FALSE(saw_gone_);
    released_ = true;
  }
  cv_.notify_all();
  EXPECT_EQ(StatusLine(holder), "HTTP/1.1 200 OK");
  ::close(holder);
}

}  // namespace
}  // namespace datasite::http
