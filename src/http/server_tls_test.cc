// HttpServer over TLS against a real socket: keep-alive, a large upload through the raw body path,
// plain HTTP refused, and certificate reloads (new connections get the new certificate; a bad one
// leaves the old in place).
#include "http/server.h"

// Boost 1.74's asio needs <utility> first under g++ 12 in C++20 mode.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

#include "http/router.h"
#include "http/tls_test_util.h"

namespace datasite::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

// Counts the bytes of an upload and checks they are the test's pattern.
class CountingSink : public BodySink {
 public:
  explicit CountingSink(std::shared_ptr<std::string> got) : got_(std::move(got)) {}
  Status Write(std::string_view chunk) override {
    got_->append(chunk);
    return Status::Ok();
  }
  Response Finish() override {
    Response r;
    r.body = std::to_string(got_->size());
    return r;
  }

 private:
  std::shared_ptr<std::string> got_;
};

// The DER bytes of `x509`, which it frees; "" for none.
std::string TakeDer(X509* x509) {
  if (x509 == nullptr) return "";
  unsigned char* der = nullptr;
  int n = i2d_X509(x509, &der);
  std::string out = n > 0 ? std::string(reinterpret_cast<char*>(der), n) : "";
  OPENSSL_free(der);
  X509_free(x509);
  return out;
}

// The DER bytes of the first certificate in a PEM file.
std::string DerOfFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return "";
  X509* x509 = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  return TakeDer(x509);
}

// One TLS client connection that trusts anything (the tests compare certificates instead).
class TlsClient {
 public:
  explicit TlsClient(uint16_t port) : ctx_(ssl::context::tls_client), stream_(ioc_, ctx_) {
    stream_.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    stream_.handshake(ssl::stream_base::client);
  }

  // The DER bytes of the certificate the server presented.
  std::string PeerDer() { return TakeDer(SSL_get1_peer_certificate(stream_.native_handle())); }

  // Sends `request` and returns the answer's status line and body (by its Content-Length).
  std::pair<std::string, std::string> Exchange(const std::string& request) {
    net::write(stream_, net::buffer(request));
    boost::system::error_code ec;
    size_t head = net::read_until(stream_, net::dynamic_buffer(in_), "\r\n\r\n", ec);
    if (ec) return {"", ""};
    size_t at = in_.find("Content-Length: ");
    size_t length = at < head ? std::stoul(in_.substr(at + 16)) : 0;
    if (in_.size() < head + length) {
      net::read(stream_, net::dynamic_buffer(in_),
                net::transfer_exactly(head + length - in_.size()), ec);
    }
    std::string status = in_.substr(0, in_.find("\r\n"));
    std::string body = in_.substr(head, length);
    in_.erase(0, head + length);
    return {status, body};
  }

 private:
  net::io_context ioc_;
  ssl::context ctx_;
  ssl::stream<tcp::socket> stream_;
  std::string in_;
};

// A server with TLS from a fresh certificate and key (TlsFilesTest), routes /hello and /upload.
class TlsServerTest : public TlsFilesTest {
 protected:
  void SetUp() override {
    TlsFilesTest::SetUp();
    if (HasFatalFailure()) return;
    Route hello;
    hello.method = "GET";
    hello.pattern = "/hello";
    hello.handler = [](Request&) {
      Response r;
      r.body = "hi";
      return r;
    };
    router_.Add(std::move(hello));
    Route upload;
    upload.method = "POST";
    upload.pattern = "/upload";
    upload.open_sink = [got = got_](Request&) -> Result<std::unique_ptr<BodySink>> {
      return std::unique_ptr<BodySink>(new CountingSink(got));
    };
    router_.Add(std::move(upload));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::milliseconds(1000));
    TlsFilesTest::TearDown();
  }

  Result<std::unique_ptr<HttpServer>> NewServer() {
    ServerOptions options;
    options.tls_cert_file = cert_;
    options.tls_key_file = key_;
    return NewHttpServer(router_, options);
  }

  void Start() {
    auto server = NewServer();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    server_->Start();
  }

  static constexpr const char* kHello = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";

  std::shared_ptr<std::string> got_ = std::make_shared<std::string>();
  Router router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(TlsServerTest, TwoRequestsOnOneConnection) {
  Start();
  TlsClient client(server_->port());
  EXPECT_EQ(client.Exchange(kHello),
            std::make_pair(std::string("HTTP/1.1 200 OK"), std::string("hi")));
  EXPECT_EQ(client.Exchange(kHello),
            std::make_pair(std::string("HTTP/1.1 200 OK"), std::string("hi")));
}

TEST_F(TlsServerTest, LargeUploadArrivesWhole) {
  Start();
  std::string body(5 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 7 + i / 4093) % 251);
  TlsClient client(server_->port());
  auto answer = client.Exchange("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(answer.first, "HTTP/1.1 200 OK");
  EXPECT_EQ(answer.second, std::to_string(body.size()));
  EXPECT_TRUE(*got_ == body) << "the sink got " << got_->size() << " bytes";
}

TEST_F(TlsServerTest, PlainHttpGetsNoAnswer) {
  Start();
  net::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
  net::write(socket, net::buffer(std::string(kHello)));
  std::string got;
  boost::system::error_code ec;
  net::read(socket, net::dynamic_buffer(got), ec);  // until the server closes
  EXPECT_EQ(got.find("HTTP/1.1"), std::string::npos) << got;
}

TEST_F(TlsServerTest, ReloadGivesNewConnectionsTheNewCertificate) {
  Start();
  TlsClient before(server_->port());
  const std::string old_der = DerOfFile(cert_);
  ASSERT_EQ(before.PeerDer(), old_der);
  ASSERT_TRUE(WriteSelfSignedForTest(cert_, key_));
  const std::string new_der = DerOfFile(cert_);
  ASSERT_NE(new_der, old_der);
  ASSERT_TRUE(server_->ReloadTls().ok());
  TlsClient after(server_->port());
  EXPECT_EQ(after.PeerDer(), new_der);
  EXPECT_EQ(after.Exchange(kHello).second, "hi");
  // A connection from before keeps working.
  EXPECT_EQ(before.Exchange(kHello).second, "hi");
}

TEST_F(TlsServerTest, ReloadOfABadCertificateKeepsTheOldOne) {
  Start();
  const std::string old_der = DerOfFile(cert_);
  std::ofstream(cert_) << "not a certificate\n";
  Status st = server_->ReloadTls();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find(cert_), std::string::npos) << st.message();
  TlsClient after(server_->port());
  EXPECT_EQ(after.PeerDer(), old_der);
}

TEST_F(TlsServerTest, KeyReadableByOthersIsRefusedAtStart) {
  ::chmod(key_.c_str(), 0644);
  auto server = NewServer();
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), StatusCode::kPermissionDenied);
}

TEST_F(TlsServerTest, ReloadWithoutTlsIsAFailedPrecondition) {
  auto server = NewHttpServer(router_, ServerOptions());
  ASSERT_TRUE(server.ok());
  EXPECT_EQ((*server)->ReloadTls().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace datasite::http
