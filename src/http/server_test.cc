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
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

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

}  // namespace
}  // namespace datasite::http
