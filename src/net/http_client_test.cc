// HttpClient against a real peer on loopback: a small Python http.server this test launches (plain,
// and over TLS with a certificate made for the run), so that every byte crosses a real socket.
#include "net/http_client.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace datasite::net {
namespace {

namespace fs = std::filesystem;

// The peer. Routes: /echo (method, Authorization, body), /bytes?n=N[&sha=bad] (N pattern bytes
// with their X-Content-SHA256), /short (a Content-Length it does not keep), /missing (404),
// /upload (the SHA-256 and length of the body), /refuse (413 instead of 100 Continue), /slow
// (answers after 3 s), /stall (10 bytes of 100, then silence), /redirect (302 to /echo).
constexpr const char* kPeer = R"PY(
import hashlib, http.server, json, socketserver, ssl, sys, time
def pattern(n):
    return bytes((i * 7 + i // 4093) % 251 for i in range(n))
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers: self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def handle_expect_100(self):
        if self.path == "/refuse":
            self.answer(413, b'{"error":"too big"}')
            self.close_connection = True
            return False
        return super().handle_expect_100()
    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        h, total = hashlib.sha256(), 0
        while total < n:
            chunk = self.rfile.read(min(65536, n - total))
            if not chunk: break
            h.update(chunk); total += len(chunk)
        return h, total
    def route(self):
        path, _, query = self.path.partition("?")
        q = dict(p.split("=") for p in query.split("&") if p)
        if path == "/echo":
            h, n = self.body() if self.command != "GET" else (None, 0)
            out = {"method": self.command, "auth": self.headers.get("Authorization", ""),
                   "length": n, "expect": self.headers.get("Expect", "")}
            return self.answer(200, json.dumps(out).encode())
        if path == "/bytes":
            data = pattern(int(q["n"]))
            sha = hashlib.sha256(data).hexdigest() if q.get("sha") != "bad" else "0" * 64
            return self.answer(200, data, [("X-Content-SHA256", sha)])
        if path == "/short":
            self.send_response(200); self.send_header("Content-Length", "1000"); self.end_headers()
            self.wfile.write(b"x" * 400); self.wfile.flush(); self.close_connection = True
            return
        if path == "/redirect":
            return self.answer(302, b"", [("Location", "/echo")])
        if path == "/upload":
            h, n = self.body()
            return self.answer(201, json.dumps({"sha256": h.hexdigest(), "size": n}).encode())
        if path == "/slow":
            time.sleep(3); return self.answer(200, b"late")
        if path == "/stall":
            self.send_response(200); self.send_header("Content-Length", "100"); self.end_headers()
            self.wfile.write(b"y" * 10); self.wfile.flush(); time.sleep(3)
            self.close_connection = True
            return
        self.answer(404, b'{"error":"nope"}')
    do_GET = do_POST = do_PUT = do_DELETE = route
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
if len(sys.argv) > 2:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
)PY";

std::string Python() {
  return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  char buf[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", md[i]);
    out += buf;
  }
  return out;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A launched peer, stopped (by its pid) at the end of the test.
class Peer {
 public:
  explicit Peer(const fs::path& dir, bool tls = false) {
    fs::path script = dir / "peer.py";
    std::ofstream(script) << kPeer;
    std::vector<std::string> args = {Python(), script.string()};
    if (tls) {
      cert_ = (dir / "cert.pem").string();
      std::string cmd =
          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
          "-nodes -days 1 -subj /CN=localhost -addext "
          "subjectAltName=DNS:localhost -keyout " +
          (dir / "key.pem").string() + " -out " + cert_ + " 2>/dev/null";
      if (std::system(cmd.c_str()) != 0) return;
      args.push_back(cert_);
      args.push_back((dir / "key.pem").string());
    }
    int out[2];
    if (::pipe(out) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], STDOUT_FILENO);
      ::close(out[0]);
      ::close(out[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
  }
  ~Peer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool ok() const { return port_ > 0; }
  std::string Url(const std::string& path, const char* scheme = "http",
                  const char* host = "127.0.0.1") const {
    return std::string(scheme) + "://" + host + ":" + std::to_string(port_) + path;
  }
  const std::string& cert() const { return cert_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string cert_;
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("http_client_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // The files in the test directory other than the peer's own.
  std::vector<std::string> Leftovers() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string name = e.path().filename().string();
      if (name != "peer.py" && name != "cert.pem" && name != "key.pem" && name != "in.bin") {
        out.push_back(name);
      }
    }
    return out;
  }

  fs::path dir_;
};

HttpRequest Req(std::string method, std::string url, std::string body = "") {
  HttpRequest r;
  r.method = std::move(method);
  r.url = std::move(url);
  r.body = std::move(body);
  return r;
}

TEST_F(HttpClientTest, JsonRequestCarriesMethodTokenAndBody) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  HttpRequest r = Req("PUT", peer.Url("/echo"), R"({"a":1})");
  r.bearer_token = "tok123";
  r.headers.emplace_back("Content-Type", "application/json");
  auto res = client.Send(r);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find(R"("method": "PUT")"), std::string::npos) << res->body;
  EXPECT_NE(res->body.find(R"("auth": "Bearer tok123")"), std::string::npos);
  EXPECT_NE(res->body.find(R"("length": 7)"), std::string::npos);
  EXPECT_EQ(res->Header("content-length"), std::to_string(res->body.size()));
  // The connection is kept for the next request.
  auto again = client.Send(Req("DELETE", peer.Url("/echo")));
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->body.find(R"("method": "DELETE")"), std::string::npos);
}

TEST_F(HttpClientTest, ErrorStatusIsAResponseNotAnError) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  auto res = client.Send(Req("GET", peer.Url("/missing")));
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->body, R"({"error":"nope"})");
}

TEST_F(HttpClientTest, RedirectIsNotFollowed) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  HttpRequest r = Req("GET", peer.Url("/redirect"));
  r.bearer_token = "secret";
  auto res = client.Send(r);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 302);
  EXPECT_EQ(res->Header("Location"), "/echo");
  EXPECT_TRUE(res->body.empty());
}

TEST_F(HttpClientTest, HeaderInjectionIsRefused) {
  HttpClient client;
  HttpRequest r = Req("GET", "http://127.0.0.1:1/echo");
  r.bearer_token = "t\r\nX-Evil: 1";
  EXPECT_EQ(client.Send(r).status().code(), StatusCode::kInvalidArgument);
  r.bearer_token = "";
  r.headers.emplace_back("X-A", "b\nX-Evil: 1");
  EXPECT_EQ(client.Send(r).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(HttpClientTest, ConnectionRefusedIsUnavailable) {
  HttpClient client;
  // Port 1 on loopback: nothing listens there.
  auto res = client.Send(Req("GET", "http://127.0.0.1:1/echo"));
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(res.status().message().find("cannot reach http://127.0.0.1:1/echo"), std::string::npos)
      << res.status().message();
}

TEST_F(HttpClientTest, OtherSchemesAreRefused) {
  HttpClient client;
  for (const char* url : {"file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"}) {
    EXPECT_EQ(client.Send(Req("GET", url)).status().code(), StatusCode::kInvalidArgument) << url;
  }
}

TEST_F(HttpClientTest, SlowAnswerTimesOut) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClientOptions o;
  o.request_timeout = std::chrono::milliseconds(500);
  HttpClient client(o);
  auto res = client.Send(Req("GET", peer.Url("/slow")));
  EXPECT_EQ(res.status().code(), StatusCode::kDeadlineExceeded) << res.status().message();
}

TEST_F(HttpClientTest, OversizedAnswerIsRefused) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClientOptions o;
  o.max_body_bytes = 1000;
  HttpClient client(o);
  auto res = client.Send(Req("GET", peer.Url("/bytes?n=5000")));
  EXPECT_EQ(res.status().code(), StatusCode::kResourceExhausted);
}

TEST_F(HttpClientTest, DownloadStreamsToTheFile) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  fs::path out = dir_ / "out.bin";
  constexpr int kSize = 3 << 20;
  auto res =
      client.Download(Req("GET", peer.Url("/bytes?n=" + std::to_string(kSize))), out.string());
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(res->body.empty());
  std::string got = ReadFile(out);
  ASSERT_EQ(got.size(), static_cast<size_t>(kSize));
  EXPECT_EQ(Sha256Hex(got), res->Header("X-Content-SHA256"));
  EXPECT_EQ(Leftovers(), std::vector<std::string>{"out.bin"});
}

TEST_F(HttpClientTest, DownloadWithWrongHashLeavesNothing) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  auto res =
      client.Download(Req("GET", peer.Url("/bytes?n=1000&sha=bad")), (dir_ / "out.bin").string());
  EXPECT_EQ(res.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(Leftovers().empty());
}

TEST_F(HttpClientTest, ShortDownloadLeavesNothingAndOldFileStays) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  fs::path out = dir_ / "out.bin";
  std::ofstream(out) << "old";
  HttpClient client;
  auto res = client.Download(Req("GET", peer.Url("/short")), out.string());
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable) << res.status().message();
  EXPECT_EQ(ReadFile(out), "old");
  EXPECT_EQ(Leftovers(), std::vector<std::string>{"out.bin"});
}

TEST_F(HttpClientTest, StalledDownloadTimesOutAndLeavesNothing) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClientOptions o;
  o.stall_timeout = std::chrono::milliseconds(700);
  HttpClient client(o);
  auto res = client.Download(Req("GET", peer.Url("/stall")), (dir_ / "out.bin").string());
  EXPECT_EQ(res.status().code(), StatusCode::kDeadlineExceeded) << res.status().message();
  EXPECT_TRUE(Leftovers().empty());
}

TEST_F(HttpClientTest, DownloadOfAnErrorReturnsItsBodyAndWritesNothing) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  auto res = client.Download(Req("GET", peer.Url("/missing")), (dir_ / "out.bin").string());
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->body, R"({"error":"nope"})");
  EXPECT_TRUE(Leftovers().empty());
}

TEST_F(HttpClientTest, UploadStreamsTheFileWithItsLength) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  std::string data(5 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 % 253);
  std::ofstream(dir_ / "in.bin", std::ios::binary) << data;
  HttpClient client;
  uint64_t last = 0, total = 0;
  auto res = client.Upload(Req("POST", peer.Url("/upload")), (dir_ / "in.bin").string(),
                           [&](uint64_t done, uint64_t all) {
                             last = done;
                             total = all;
                           });
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 201);
  EXPECT_NE(res->body.find(Sha256Hex(data)), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("\"size\": " + std::to_string(data.size())), std::string::npos);
  EXPECT_EQ(last, data.size());
  EXPECT_EQ(total, data.size());
}

TEST_F(HttpClientTest, UploadRefusedBeforeTheBodyReturnsTheRefusal) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  std::ofstream(dir_ / "in.bin", std::ios::binary) << std::string(4 << 20, 'z');
  HttpClient client;
  auto res = client.Upload(Req("POST", peer.Url("/refuse")), (dir_ / "in.bin").string());
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 413);
}

TEST_F(HttpClientTest, UploadOfAMissingFileIsInvalid) {
  HttpClient client;
  auto res = client.Upload(Req("POST", "http://127.0.0.1:1/upload"), (dir_ / "nope").string());
  EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument);
}

// A reader that hands out `data` in chunks of at most `chunk` bytes.
BodyReader ReaderOf(const std::string& data, size_t chunk, size_t* pos) {
  return [&data, chunk, pos](char* buffer, size_t size) -> Result<size_t> {
    size_t n = std::min({size, chunk, data.size() - *pos});
    std::memcpy(buffer, data.data() + *pos, n);
    *pos += n;
    return n;
  };
}

TEST_F(HttpClientTest, StreamPullsTheBodyFromTheReader) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 13 % 251);
  size_t pos = 0;
  HttpClient client;
  auto res = client.Stream(Req("PUT", peer.Url("/upload")), data.size(),
                           ReaderOf(data, 100'000, &pos), nullptr);
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 201);
  EXPECT_NE(res->body.find(Sha256Hex(data)), std::string::npos) << res->body;
  EXPECT_EQ(pos, data.size());
}

TEST_F(HttpClientTest, StreamedBodyShorterThanPromisedIsAnError) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  std::string data(1000, 'a');
  size_t pos = 0;
  HttpClient client;
  auto res =
      client.Stream(Req("PUT", peer.Url("/upload")), 5000, ReaderOf(data, 300, &pos), nullptr);
  EXPECT_EQ(res.status().code(), StatusCode::kInternal);
  EXPECT_NE(res.status().message().find("after 1000 of 5000"), std::string::npos)
      << res.status().message();
}

TEST_F(HttpClientTest, StreamReaderErrorIsReturned) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  auto res = client.Stream(
      Req("PUT", peer.Url("/upload")), 10,
      [](char*, size_t) -> Result<size_t> { return UnavailableError("source gone"); }, nullptr);
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(res.status().message(), "source gone");
}

TEST_F(HttpClientTest, StreamPassesA2xxBodyToTheWriter) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  std::string got;
  int calls = 0;
  auto res = client.Stream(Req("GET", peer.Url("/bytes?n=3000000")), 0, nullptr,
                           [&](std::string_view bytes) {
                             got.append(bytes);
                             ++calls;
                             return Status::Ok();
                           });
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
  EXPECT_TRUE(res->body.empty());
  EXPECT_EQ(got.size(), 3000000u);
  EXPECT_EQ(Sha256Hex(got), res->Header("X-Content-SHA256"));
  EXPECT_GT(calls, 1);  // in chunks, not at once
}

TEST_F(HttpClientTest, StreamKeepsAnErrorAnswerInTheResponse) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  bool called = false;
  auto res = client.Stream(Req("GET", peer.Url("/missing")), 0, nullptr, [&](std::string_view) {
    called = true;
    return Status::Ok();
  });
  ASSERT_TRUE(res.ok());
  EXPECT_EQ(res->status, 404);
  EXPECT_EQ(res->body, R"({"error":"nope"})");
  EXPECT_FALSE(called);
}

TEST_F(HttpClientTest, StreamWriterErrorAbortsTheTransfer) {
  Peer peer(dir_);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  auto res = client.Stream(Req("GET", peer.Url("/bytes?n=3000000")), 0, nullptr,
                           [](std::string_view) { return ResourceExhaustedError("sink full"); });
  EXPECT_EQ(res.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(res.status().message(), "sink full");
}

TEST_F(HttpClientTest, UntrustedTlsPeerIsRefused) {
  Peer peer(dir_, /*tls=*/true);
  ASSERT_TRUE(peer.ok());
  HttpClient client;
  auto res = client.Send(Req("GET", peer.Url("/echo", "https")));
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(res.status().message().find("TLS with"), std::string::npos) << res.status().message();
}

TEST_F(HttpClientTest, TlsPeerTrustedThroughCaFile) {
  Peer peer(dir_, /*tls=*/true);
  ASSERT_TRUE(peer.ok());
  HttpClientOptions o;
  o.ca_file = peer.cert();
  HttpClient client(o);
  auto res = client.Send(Req("GET", peer.Url("/echo", "https", "localhost")));
  ASSERT_TRUE(res.ok()) << res.status().message();
  EXPECT_EQ(res->status, 200);
}

TEST_F(HttpClientTest, TlsHostNameIsChecked) {
  Peer peer(dir_, /*tls=*/true);
  ASSERT_TRUE(peer.ok());
  HttpClientOptions o;
  o.ca_file = peer.cert();
  HttpClient client(o);
  // The certificate names localhost only.
  auto res = client.Send(Req("GET", peer.Url("/echo", "https", "127.0.0.1")));
  EXPECT_EQ(res.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(res.status().message().find("TLS with"), std::string::npos) << res.status().message();
}

TEST_F(HttpClientTest, MissingCaFileIsInvalid) {
  Peer peer(dir_, /*tls=*/true);
  ASSERT_TRUE(peer.ok());
  HttpClientOptions o;
  o.ca_file = (dir_ / "no-such-ca.pem").string();
  HttpClient client(o);
  auto res = client.Send(Req("GET", peer.Url("/echo", "https", "localhost")));
  EXPECT_EQ(res.status().code(), StatusCode::kInvalidArgument) << res.status().message();
}

TEST(UrlEncodeTest, KeepsUnreservedOnly) {
  EXPECT_EQ(UrlEncode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(UrlEncode("a b/c?d&e"), "a%20b%2Fc%3Fd%26e");
}

}  // namespace
}  // namespace datasite::net
