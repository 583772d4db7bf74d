// HttpServer: HTTP/1.1 over Boost.Beast, or over TLS (OpenSSL) with a certificate.
//
// Threading: N Asio I/O threads read and write sockets and never block; every handler runs on a
// thread pool chosen by its route's Lane (the request pool, or the heavy pool for password
// hashing), and its response is posted back to the connection's strand. A route may also offer a
// non-blocking `answer_inline`, tried on the I/O thread first (see Route).
#ifndef DATASITE_HTTP_SERVER_H_
#define DATASITE_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "http/router.h"

namespace datasite::http {

// Told of every response a server sends and of the upload bytes it receives, for metrics. Called
// on I/O threads: must be quick and never block. Safe for concurrent use.
class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  // `route` is the pattern of the matched route and `method` its method; both "" when no route
  // matched (the path and method a client sent are never labels: they are unbounded). `elapsed`
  // runs from the request's headers to the response's first byte.
  virtual void OnResponse(std::string_view method, std::string_view route, int status,
                          std::chrono::steady_clock::duration elapsed) = 0;
  virtual void OnUploadBytes(std::string_view route, uint64_t bytes) = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port
  int io_threads = 2;
  int request_threads = 4;
  int heavy_threads = 2;
  int wait_threads = 32;
  int upload_threads = 4;               // Lane::kUpload
  size_t body_limit = 1 << 20;          // ordinary requests
  uint64_t upload_limit = 64ull << 30;  // bodies of upload routes
  size_t header_limit = 16 << 10;
  std::chrono::seconds idle_timeout{30};
  // A new connection's first request headers (and its TLS handshake) must be in within this,
  // however long the idle timeout: a silent connection is not kept for the idle timeout.
  std::chrono::seconds header_timeout{10};
  int max_connections = 10'000;  // open connections; more are closed at accept
  // Open connections from one client address (IPv6: one /64); more are closed at accept, so that
  // one caller can't take all of `max_connections`. The addresses of one network (IPv4 /24, IPv6
  // /48: see NetworkKey) may hold a quarter of `max_connections` together (at least this many),
  // so that a caller with many addresses can't either. A `trusted_proxies` peer may hold up to
  // `max_connections`: it carries everyone's traffic.
  int max_connections_per_address = 64;
  // Bytes of ordinary (not upload) request bodies held in memory at once, server-wide. One client
  // (an address, IPv6 /64, or a trusted proxy's forwarded client) may hold a sixteenth of it, or
  // one body of `body_limit` when that is more: a quarter would bind nothing at the defaults (64
  // connections of 1 MiB), and 4 addresses would hold it all; the clients of one network (IPv4
  // /24, IPv6 /48) a quarter together. A body that would pass any of them is refused with 503 and
  // Retry-After before it is read. A response of more than 64 KiB held in
  // memory until the client reads it counts under the same budget and share while it is written
  // (a client that never reads would hold it for the idle timeout): past them, a GET or HEAD is
  // answered 503 and Retry-After instead; the answer to any other request, whose change is made,
  // is written and counted all the same.
  uint64_t body_memory_budget = 256ull << 20;
  // Host names answered besides "localhost" and IP addresses (see AllowedHosts).
  std::vector<std::string> allowed_hosts;
  // Canonical networks (or single addresses) of proxies whose X-Forwarded-For names the client
  // (see CanonicalNetwork, ClientAddress); from any other peer the header is ignored.
  std::vector<std::string> trusted_proxies;
  // HTTPS when both are set: the PEM certificate chain and its private key (see NewServerTlsContext
  // in http/tls.h, which also says which protocols and ciphers are offered).
  std::string tls_cert_file;
  std::string tls_key_file;
  // Null: no metrics. Must outlive the server.
  RequestObserver* observer = nullptr;
};

// Safe for concurrent use.
class HttpServer {
 public:
  virtual ~HttpServer() = default;
  // The bound port (useful with port 0).
  virtual uint16_t port() const = 0;
  // Starts the I/O threads and accepts connections.
  virtual void Start() = 0;
  // Stops accepting, lets in-flight requests finish (up to `grace`), then stops all threads.
  // Idempotent.
  virtual void Shutdown(std::chrono::milliseconds grace) = 0;
  // Requests being handled right now.
  virtual int InFlight() const = 0;
  // Reads the TLS certificate and key files again: connections accepted from now on use them,
  // open ones keep theirs. On any error the current certificate stays, and the error is returned.
  // kFailedPrecondition when the server does not speak TLS.
  virtual Status ReloadTls() = 0;
};

// `options` fitted to the descriptors the process may open: when two per connection (its socket
// and a file it may stream) and a reserve (for the database, blobs, logs and sandboxes: 512, or
// half the limit when that is less) need more than the soft RLIMIT_NOFILE, the soft limit is
// raised towards the hard one; when that is not enough, max_connections (and
// max_connections_per_address) are lowered to what fits, with a warning. NewHttpServer applies it;
// a server must not run out of descriptors for its own work because callers hold them.
ServerOptions FitConnectionsToDescriptors(ServerOptions options);

// Binds the listening socket; `router` must outlive the server.
Result<std::unique_ptr<HttpServer>> NewHttpServer(const Router& router,
                                                  const ServerOptions& options);

}  // namespace datasite::http

#endif  // DATASITE_HTTP_SERVER_H_
