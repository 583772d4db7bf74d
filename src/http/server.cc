#include "http/server.h"

// Boost 1.74's asio needs <utility> first under g++ 12 in C++20 mode.
#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <poll.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/address_key.h"
#include "http/client_address.h"
#include "http/request_policy.h"
#include "http/tls.h"
#include "obs/request_id.h"

namespace datasite::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

class ServerImpl;

// A peer the connection came from, as the server knows it at accept.
// What limits kept per client count a client under: its AddressKey, and its NetworkKey for what
// the clients of one network hold together.
struct Client {
  std::string key;
  std::string network;
};

Client ClientOf(std::string_view address) { return {AddressKey(address), NetworkKey(address)}; }

struct Peer {
  std::string address;   // canonical (see CanonicalAddress); "" when unknown
  Client client;         // what max_connections_per_address counts under
  bool trusted = false;  // one of ServerOptions::trusted_proxies
};

// Whether the peer of socket `fd` closed the connection (or shut down its sending side), or it
// broke, without reading from it: bytes the client sent ahead (a pipelined request, TLS records)
// stay for the session, and this is safe beside the session's own reads on the I/O threads.
bool PeerGone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

// A connection's byte stream: plain TCP, or TLS over TCP when the server has a certificate. Beast's
// and Asio's reads and writes take it as they take either; the branch costs nothing measurable.
class Stream {
 public:
  using executor_type = beast::tcp_stream::executor_type;

  // `tls` null: plain TCP. Otherwise the connection keeps the context it started with, even when
  // a reload replaces the server's.
  Stream(tcp::socket socket, std::shared_ptr<net::ssl::context> tls)
      : tls_context_(std::move(tls)) {
    if (tls_context_) {
      tls_.emplace(std::move(socket), *tls_context_);
    } else {
      tcp_.emplace(std::move(socket));
    }
  }

  bool is_tls() const { return tls_.has_value(); }
  beast::ssl_stream<beast::tcp_stream>& tls() { return *tls_; }
  beast::tcp_stream& lowest() { return tls_ ? tls_->next_layer() : *tcp_; }
  executor_type get_executor() { return lowest().get_executor(); }
  tcp::socket& socket() { return lowest().socket(); }
  template <class Duration>
  void expires_after(Duration d) {
    lowest().expires_after(d);
  }
  void close() { lowest().close(); }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Handler>(handler));
    tcp_->async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Handler>(handler));
    tcp_->async_write_some(buffers, std::forward<Handler>(handler));
  }

 private:
  std::shared_ptr<net::ssl::context> tls_context_;  // before tls_, which refers to it
  std::optional<beast::tcp_stream> tcp_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
};

// The framing a request's Transfer-Encoding asks for: none (no such header), chunked (exactly one
// coding, chunked: Beast reads "chunked, chunked" as no chunked coding at all), or another coding
// (gzip, deflate...: the body would be taken for its coded bytes), which the server refuses.
enum class TransferCoding { kNone, kChunked, kMalformed, kOther };

template <class Message>
TransferCoding TransferCodingOf(const Message& msg) {
  bool seen = false;
  int codings = 0, chunked = 0;
  for (const auto& field : msg) {
    if (field.name() != bhttp::field::transfer_encoding) continue;
    seen = true;
    std::string_view rest(field.value().data(), field.value().size());
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view coding = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!coding.empty() && (coding.front() == ' ' || coding.front() == '\t')) {
        coding.remove_prefix(1);
      }
      while (!coding.empty() && (coding.back() == ' ' || coding.back() == '\t')) {
        coding.remove_suffix(1);
      }
      if (coding.empty()) continue;
      ++codings;
      if (beast::iequals(beast::string_view(coding.data(), coding.size()), "chunked")) ++chunked;
    }
  }
  if (!seen) return TransferCoding::kNone;
  if (codings > chunked) return TransferCoding::kOther;
  return chunked == 1 ? TransferCoding::kChunked : TransferCoding::kMalformed;
}

// The state of a streamed response (Response::body_source), shared by the strand and the pool: one
// buffer, filled by the source on the pool while no write is in flight, then written on the
// strand. The next piece is asked for only once the last one is on the socket, so a slow client
// slows the source down and at most 1 MiB of the body is held.
struct StreamedBody {
  std::function<Result<size_t>(char*, size_t)> source;
  int64_t left = 0;  // bytes still to send
  bool keep_alive = false;
  std::vector<char> buf;
  bhttp::response<bhttp::empty_body> head;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> serializer;
};

// One connection. Owned by shared_ptr for the lifetime of its async operations; all its members are
// used on its strand only, except `sink_`, which the upload pool uses while the strand waits.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerImpl& server, Peer peer);
  ~Session();
  void Run();

 private:
  // TLS only: the handshake, then DoRead.
  void Handshake();
  void DoRead();
  void OnHeader(beast::error_code ec);
  // Reads the next piece of the body into chunk_; OnChunk gets it.
  void ReadChunk();
  void OnChunk(beast::error_code ec);
  // An upload with a Content-Length skips the parser for its body: the bytes go straight from the
  // socket into the chunk (no copy through buffer_, one read for many of 64 KiB).
  void ReadRaw();
  void ContinueRaw(size_t have, size_t want);
  void OnRawChunk(beast::error_code ec, size_t got);
  // SO_RCVLOWAT: the socket reads as ready once `bytes` are waiting (1 outside upload bodies).
  void SetLowWater(size_t bytes);
  // Hands `got` bytes of chunks_[read_buf_] to the sink, or queues them behind the write in flight.
  void OnBodyPiece(size_t got);
  // Upload pipeline: one buffer is written by the sink on the pool while the other is read.
  void StartSinkWrite(int index, size_t size);
  void OnSinkWritten(const Status& st);
  void MaybeFinishUpload();
  void FailUpload();
  // Destroys the upload's sink on the upload pool: a sink may take a while to go (an upload to a
  // bucket ends its request), which must never hold an I/O thread.
  void DisposeSink();
  // Drops a streamed response's body on the request pool (see DisposeBody's comment).
  void DisposeBody(std::shared_ptr<StreamedBody> body);
  void Dispatch();
  // On the route's pool: runs the handler (or finishes the upload) and posts the response back.
  void Handle();
  void Respond(Response response);
  void Write(Response response, bool keep_alive);
  // Writes a response whose body comes from response.body_source; see Response.
  void WriteStreamed(Response response, bool keep_alive);
  // Sends the next piece of a streamed body once the previous write (`ec`) is done.
  void StreamNext(std::shared_ptr<StreamedBody> body, beast::error_code ec);
  void Close();
  // Gives back the connection's place (max_connections and the client's shares) once.
  void ReleasePlace();
  // After refusing a request whose body is still arriving: reads and discards what the client sends
  // (up to a cap, for a few seconds) so that it gets to read the refusal instead of a broken pipe.
  void Drain();
  bool BodyExpected() const;
  // For a route that needs a role, before its body is read into memory: asks the router's
  // TokenCheck (in memory, else on the request pool) whether the caller's session is live, and
  // refuses the request when it is not. Then ReadBody.
  void CheckToken();
  void OnTokenChecked(const Status& st);
  // Takes the body's share of the body memory budget (or refuses the request) and reads it.
  void ReadBody();
  // Gives back this request's share of the server's body memory budget.
  void ReleaseBody();
  // The client the current request's memory is counted under (see AddressKey): a trusted proxy
  // carries many clients, each counted under the address it forwards.
  Client RequestClient() const;
  // Counts a response held in memory under the client's share of the body memory budget while it
  // is written; false when it may not be sent now (see ServerOptions::body_memory_budget).
  bool ReserveResponse(uint64_t bytes);
  void ReleaseResponse();

  Stream stream_;
  beast::flat_buffer buffer_;  // bounded: headers, chunk-size lines and read-ahead only
  std::optional<bhttp::request_parser<bhttp::buffer_body>> parser_;
  std::array<std::vector<char>, 2> chunks_;
  int read_buf_ = 0;
  bool reading_ = false;
  bool writing_ = false;
  bool body_done_ = false;
  std::optional<size_t> queued_;
  std::optional<uint64_t> raw_left_;  // body bytes still to read when the parser is skipped
  size_t low_water_ = 1;
  size_t last_read_ = 0;  // bytes the last read of an upload body found
  Status upload_error_;
  std::shared_ptr<Request> req_;
  const Route* route_ = nullptr;
  std::unique_ptr<BodySink> sink_;
  bool keep_alive_ = false;
  bool drain_after_write_ = false;
  bool continue_sent_ = false;
  size_t drained_ = 0;
  std::shared_ptr<void> res_;  // the response being written
  const Peer peer_;
  std::atomic<bool> place_released_ = false;
  bool served_ = false;             // a request's headers were read on this connection
  size_t body_limit_ = 0;           // the current request's, for a body read into memory
  uint64_t body_reserved_ = 0;      // of the server's body memory budget, for the current request
  Client body_client_;              // the client body_reserved_ is counted under (see ReadBody)
  uint64_t response_reserved_ = 0;  // of the budget, for the response being written
  Client response_client_;          // the client response_reserved_ is counted under
  // The request's id and when its headers were in, for the response (set in OnHeader).
  std::string request_id_;
  std::chrono::steady_clock::time_point start_;
  bool observed_ = false;  // the response was counted (Write may be called twice for one)
  ServerImpl& server_;
};

class ServerImpl : public HttpServer {
 public:
  ServerImpl(const Router& router, const ServerOptions& options)
      : router_(router),
        options_(FitConnectionsToDescriptors(options)),
        allowed_hosts_(options.allowed_hosts),
        ioc_(options.io_threads),
        acceptor_(net::make_strand(ioc_)),
        request_pool_(options.request_threads),
        heavy_pool_(options.heavy_threads),
        wait_pool_(options.wait_threads),
        upload_pool_(options.upload_threads) {}

  ~ServerImpl() override { Shutdown(std::chrono::milliseconds(0)); }

  Status Bind() {
    beast::error_code ec;
    auto address = net::ip::make_address(options_.host, ec);
    if (ec)
      return InvalidArgumentError("bad host address '" + options_.host + "': " + ec.message());
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return UnavailableError("cannot listen on " + options_.host + ":" +
                              std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  void Start() override {
    DoAccept();
    for (int i = 0; i < options_.io_threads; ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
  }

  void Shutdown(std::chrono::milliseconds grace) override {
    if (stopped_.exchange(true)) return;
    net::post(acceptor_.get_executor(), [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // Let the last responses reach their sockets before the loop stops.
    if (grace.count() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    request_pool_.join();
    heavy_pool_.join();
    wait_pool_.join();
    upload_pool_.join();
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  int InFlight() const override { return in_flight_.load(); }

  Status LoadTls() {
    if (options_.tls_cert_file.empty() && options_.tls_key_file.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(auto context,
                     NewServerTlsContext(options_.tls_cert_file, options_.tls_key_file));
    std::lock_guard<std::mutex> lock(tls_mu_);
    tls_ = std::move(context);
    return Status::Ok();
  }

  Status ReloadTls() override {
    if (!tls_context()) return FailedPreconditionError("this server does not speak TLS");
    return LoadTls();
  }

  // The context new connections get; null without TLS.
  std::shared_ptr<net::ssl::context> tls_context() const {
    std::lock_guard<std::mutex> lock(tls_mu_);
    return tls_;
  }

  const Router& router() const { return router_; }
  const ServerOptions& options() const { return options_; }
  const AllowedHosts& allowed_hosts() const { return allowed_hosts_; }
  net::thread_pool& pool(Lane lane) {
    switch (lane) {
      case Lane::kHeavy:
        return heavy_pool_;
      case Lane::kWait:
        return wait_pool_;
      case Lane::kUpload:
        return upload_pool_;
      case Lane::kDefault:
        break;
    }
    return request_pool_;
  }
  std::atomic<int>& in_flight() { return in_flight_; }
  bool stopping() const { return stopped_.load(); }

  // Counts a connection from `peer`; false when the peer, or its network, holds its share already
  // (a trusted proxy counts alone, up to max_connections).
  bool AdmitConnection(const Peer& peer) {
    std::lock_guard<std::mutex> lock(connections_mu_);
    auto held = [this](const std::string& key) {
      auto it = connections_by_key_.find(key);
      return it == connections_by_key_.end() ? 0 : it->second;
    };
    if (peer.trusted) {
      if (held(peer.client.key) >= options_.max_connections) return false;
    } else if (held(peer.client.key) >= options_.max_connections_per_address ||
               held(peer.client.network) >= NetworkConnections()) {
      return false;
    }
    ++connections_by_key_[peer.client.key];
    if (!peer.trusted) ++connections_by_key_[peer.client.network];
    return true;
  }
  void ReleaseConnection(const Peer& peer) {
    std::lock_guard<std::mutex> lock(connections_mu_);
    auto release = [this](const std::string& key) {
      auto it = connections_by_key_.find(key);
      if (it != connections_by_key_.end() && --it->second <= 0) connections_by_key_.erase(it);
    };
    release(peer.client.key);
    if (!peer.trusted) release(peer.client.network);
  }
  // What the addresses of one network may hold together (see ServerOptions).
  int NetworkConnections() const {
    return std::max(options_.max_connections / 4, options_.max_connections_per_address);
  }

  enum class Reserved { kOk, kBudgetFull, kClientShareFull };
  // Takes `bytes` of the body memory budget for client `key` (see AddressKey); nothing is taken
  // when they would pass the budget, or the client's share of it (see ServerOptions).
  // With `force`, the bytes are taken even past the budget or shares (they are held already).
  // With `alone`, bytes past a share are taken when the client (or network) holds nothing else:
  // an answer larger than a share is sent to a client that reads.
  Reserved ReserveBody(const Client& client, uint64_t bytes, bool force = false,
                       bool alone = false) {
    const uint64_t budget = options_.body_memory_budget;
    std::lock_guard<std::mutex> lock(body_mu_);
    // A forced reservation may have passed any of them: compared by sums, which can't wrap.
    if (!force) {
      // Alone, an answer larger than the whole budget still goes to a server that holds nothing.
      if (body_bytes_ + bytes > budget && !(alone && body_bytes_ == 0)) {
        return Reserved::kBudgetFull;
      }
      const uint64_t mine = BodyHeld(client.key), ours = BodyHeld(client.network);
      if ((mine + bytes > ClientShare() && !(alone && mine == 0)) ||
          (ours + bytes > NetworkShare() && !(alone && ours == 0))) {
        return Reserved::kClientShareFull;
      }
    }
    body_bytes_by_key_[client.key] += bytes;
    body_bytes_by_key_[client.network] += bytes;
    body_bytes_ += bytes;
    return Reserved::kOk;
  }
  // What one client may hold of the body memory budget (see ServerOptions).
  uint64_t ClientShare() const {
    const uint64_t budget = options_.body_memory_budget;
    return std::max<uint64_t>(budget / 16, std::min<uint64_t>(options_.body_limit, budget));
  }
  // What the clients of one network (NetworkKey) may hold of it together.
  uint64_t NetworkShare() const {
    return std::max<uint64_t>(options_.body_memory_budget / 4, ClientShare());
  }
  // Whether the client, or its network, holds its whole share already, besides `own` bytes (the
  // asking request's body, counted under the same client).
  bool ShareFull(const Client& client, uint64_t own) {
    std::lock_guard<std::mutex> lock(body_mu_);
    // Saturating: `own` is counted under this client (see Session::ReadBody).
    auto besides = [&](const std::string& key) {
      const uint64_t h = BodyHeld(key);
      return h > own ? h - own : 0;
    };
    return besides(client.key) >= ClientShare() || besides(client.network) >= NetworkShare();
  }
  // What `key` (a client or a network) holds of the body memory budget. body_mu_ must be held.
  uint64_t BodyHeld(const std::string& key) const {
    auto it = body_bytes_by_key_.find(key);
    return it == body_bytes_by_key_.end() ? 0 : it->second;
  }
  void ReleaseBody(const Client& client, uint64_t bytes) {
    if (bytes == 0) return;
    std::lock_guard<std::mutex> lock(body_mu_);
    body_bytes_ -= bytes;
    for (const std::string* key : {&client.key, &client.network}) {
      auto it = body_bytes_by_key_.find(*key);
      if (it != body_bytes_by_key_.end() && (it->second -= bytes) == 0) {
        body_bytes_by_key_.erase(it);
      }
    }
  }

 private:
  Peer PeerOf(const tcp::socket& socket) const {
    beast::error_code ec;
    auto endpoint = socket.remote_endpoint(ec);
    if (ec) return {};
    Peer peer;
    peer.address = CanonicalAddress(endpoint.address().to_string()).value_or("");
    peer.client = ClientOf(peer.address);
    const auto& trusted = options_.trusted_proxies;
    peer.trusted = !peer.address.empty() && InNetworks(peer.address, trusted);
    return peer;
  }

  void DoAccept() {
    acceptor_.async_accept(
        net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
          if (ec) {
            if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
            // Out of descriptors or memory: back off instead of spinning on the same error.
            spdlog::warn("accept failed: {}; pausing accepts for 200 ms", ec.message());
            accept_backoff_.expires_after(std::chrono::milliseconds(200));
            accept_backoff_.async_wait([this](beast::error_code wait_ec) {
              if (!wait_ec && acceptor_.is_open()) DoAccept();
            });
            return;
          }
          Peer peer = PeerOf(socket);
          // Over the cap: refuse rather than exhaust descriptors; over the peer's share: refuse
          // rather than let one caller take every connection.
          if (sessions_.load() >= options_.max_connections || !AdmitConnection(peer)) {
            beast::error_code ignored;
            socket.close(ignored);
          } else {
            std::make_shared<Session>(std::move(socket), *this, std::move(peer))->Run();
          }
          if (acceptor_.is_open()) DoAccept();
        });
  }

 public:
  std::atomic<int>& sessions() { return sessions_; }

 private:
  const Router& router_;
  const ServerOptions options_;
  const AllowedHosts allowed_hosts_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::thread_pool request_pool_;
  net::thread_pool heavy_pool_;
  net::thread_pool wait_pool_;
  net::thread_pool upload_pool_;
  std::vector<std::thread> threads_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> sessions_{0};
  std::mutex body_mu_;
  uint64_t body_bytes_ =
      0;  // of options_.body_memory_budget, taken by sessions. Guarded by body_mu_.
  // What each client (AddressKey) holds of body_bytes_, for those that hold any. Guarded by
  // body_mu_.
  std::unordered_map<std::string, uint64_t> body_bytes_by_key_;
  std::mutex connections_mu_;
  std::unordered_map<std::string, int> connections_by_key_;  // Guarded by connections_mu_.
  net::steady_timer accept_backoff_{acceptor_.get_executor()};
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
  mutable std::mutex tls_mu_;
  std::shared_ptr<net::ssl::context> tls_;  // Guarded by tls_mu_.
};

Session::Session(tcp::socket socket, ServerImpl& server, Peer peer)
    : stream_(std::move(socket), server.tls_context()),
      buffer_(server.options().header_limit + (128 << 10)),
      peer_(std::move(peer)),
      server_(server) {
  server_.sessions()++;
}

Session::~Session() {
  DisposeSink();
  ReleaseBody();
  ReleaseResponse();
  ReleasePlace();
  server_.sessions()--;
}

void Session::ReleasePlace() {
  if (place_released_.exchange(true)) return;
  server_.ReleaseConnection(peer_);
}

Client Session::RequestClient() const {
  return peer_.trusted && req_ ? ClientOf(req_->remote_address) : peer_.client;
}

bool Session::ReserveResponse(uint64_t bytes) {
  // Small answers are not counted: 64 connections of a client hold 4 MiB of them at most, as
  // they hold of streamed pieces.
  constexpr uint64_t kUncounted = 64 << 10;
  if (bytes <= kUncounted) return true;
  // A connection writes one answer at a time: the one before is written (or this is its first).
  ReleaseResponse();
  Client key = RequestClient();
  // The answer to a change is sent whatever it holds: the change is made (Dispatch refused it
  // beforehand when the share was full). Any other answer larger than a share is sent only to a
  // client (and network) that holds nothing else, and within the server's budget.
  const bool safe = !req_ || req_->method == "GET" || req_->method == "HEAD";
  if (server_.ReserveBody(key, bytes, /*force=*/!safe, /*alone=*/true) !=
      ServerImpl::Reserved::kOk) {
    return false;
  }
  response_reserved_ = bytes;
  response_client_ = std::move(key);
  return true;
}

void Session::ReleaseResponse() {
  server_.ReleaseBody(response_client_, response_reserved_);
  response_reserved_ = 0;
}

void Session::ReleaseBody() {
  server_.ReleaseBody(body_client_, body_reserved_);
  body_reserved_ = 0;
}

void Session::Run() {
  beast::error_code ec;
  stream_.socket().set_option(tcp::no_delay(true), ec);
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->stream_.is_tls() ? self->Handshake() : self->DoRead();
  });
}

void Session::Handshake() {
  // A client that does not complete a handshake (plain HTTP, an old protocol or cipher, a
  // certificate it refuses) is closed: there is no channel to answer it on.
  stream_.expires_after(std::min(server_.options().header_timeout, server_.options().idle_timeout));
  stream_.tls().async_handshake(net::ssl::stream_base::server,
                                [self = shared_from_this()](beast::error_code ec) {
                                  if (ec) return self->Close();
                                  self->DoRead();
                                });
}

void Session::DoRead() {
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(server_.options().header_limit));
  // The real limit depends on the route, known once the headers are in; see OnHeader and OnChunk.
  parser_->body_limit(
      std::max<uint64_t>(server_.options().body_limit, server_.options().upload_limit));
  drain_after_write_ = false;
  continue_sent_ = false;
  read_buf_ = 0;
  reading_ = writing_ = body_done_ = false;
  queued_.reset();
  raw_left_.reset();
  if (low_water_ != 1) SetLowWater(1);
  last_read_ = 0;
  upload_error_ = Status::Ok();
  DisposeSink();
  // Give back the body buffers (an upload's 2 MiB): an idle connection holds none.
  if (chunks_[0].capacity() > 0 || chunks_[1].capacity() > 0) chunks_ = {};
  route_ = nullptr;
  observed_ = false;
  // The last request and its body are done with: an idle connection holds no body memory.
  req_.reset();
  ReleaseBody();
  // A new connection gets the short header deadline, so that a silent one goes soon; a connection
  // kept alive after a request may wait the idle timeout for the next.
  const auto& options = server_.options();
  stream_.expires_after(served_ ? options.idle_timeout
                                : std::min(options.header_timeout, options.idle_timeout));
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

bool Session::BodyExpected() const {
  const auto& msg = parser_->get();
  return !parser_->is_done() && (msg.chunked() || parser_->content_length().value_or(0) > 0);
}

void Session::OnHeader(beast::error_code ec) {
  if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
      ec == net::error::operation_aborted || ec == net::error::connection_reset ||
      ec == net::error::eof) {
    return Close();
  }
  start_ = std::chrono::steady_clock::now();
  served_ = true;
  {
    // A client's own id is kept only from a trusted proxy: anyone else could choose ids that
    // collide with other requests' in the logs.
    std::string_view sent;
    if (!ec && peer_.trusted) {
      auto field = parser_->get()["X-Request-Id"];
      sent = std::string_view(field.data(), field.size());
    }
    request_id_ = obs::IsSafeRequestId(sent) ? std::string(sent) : obs::NewRequestId();
  }
  if (ec == bhttp::error::body_limit) {
    drain_after_write_ = true;
    return Write(ErrorResponse(413, "PAYLOAD_TOO_LARGE", "request body is too large"), false);
  }
  if (ec == bhttp::error::header_limit) {
    drain_after_write_ = true;
    return Write(ErrorResponse(431, "HEADERS_TOO_LARGE", "request headers are too large"), false);
  }
  if (ec) {
    drain_after_write_ = true;
    return Write(ErrorResponse(400, "INVALID_ARGUMENT", "malformed HTTP request: " + ec.message()),
                 false);
  }
  const auto& msg = parser_->get();
  switch (TransferCodingOf(msg)) {
    case TransferCoding::kNone:
      break;
    case TransferCoding::kChunked:
      // HTTP/1.0 has no chunked coding: such a message's framing is faulty (RFC 9112, 6.1), and a
      // proxy in front may frame it otherwise.
      if (msg.version() < 11) {
        return Write(ErrorResponse(400, "INVALID_ARGUMENT",
                                   "malformed HTTP request: Transfer-Encoding in HTTP/1.0"),
                     false);
      }
      break;
    case TransferCoding::kMalformed:
      return Write(ErrorResponse(400, "INVALID_ARGUMENT",
                                 "malformed HTTP request: Transfer-Encoding must be chunked, once"),
                   false);
    case TransferCoding::kOther:
      return Write(
          ErrorResponse(501, "NOT_IMPLEMENTED", "the only Transfer-Encoding understood is chunked"),
          false);
  }
  req_ = std::make_shared<Request>();
  req_->method = std::string(msg.method_string());
  std::string_view target(msg.target().data(), msg.target().size());
  size_t q = target.find('?');
  req_->path = PercentDecode(target.substr(0, q), false);
  if (q != std::string_view::npos) req_->query = ParseQuery(target.substr(q + 1));
  req_->authorization = std::string(msg[bhttp::field::authorization]);
  req_->content_type = std::string(msg[bhttp::field::content_type]);
  if (!msg.chunked() && parser_->content_length()) {
    req_->content_length = *parser_->content_length();
  }
  req_->idempotency_key = std::string(msg["Idempotency-Key"]);
  req_->request_id = request_id_;
  // The session, which owns the socket, lives as long as the handler runs (see Request).
  req_->client_gone = [fd = stream_.socket().native_handle()] { return PeerGone(fd); };
  std::string forwarded_for;
  if (!server_.options().trusted_proxies.empty()) {
    for (const auto& field : msg) {
      if (!beast::iequals(field.name_string(), "X-Forwarded-For")) continue;
      if (!forwarded_for.empty()) forwarded_for += ',';
      forwarded_for.append(field.value().data(), field.value().size());
    }
  }
  req_->remote_address =
      ClientAddress(peer_.address, forwarded_for, server_.options().trusted_proxies);
  keep_alive_ = msg.keep_alive();

  // Before anything else: a request for a host name this server does not answer to may come from a
  // web page that had that name resolve to this machine.
  std::vector<std::string_view> hosts;
  for (auto range = msg.equal_range(bhttp::field::host); range.first != range.second;
       ++range.first) {
    hosts.emplace_back(range.first->value().data(), range.first->value().size());
  }
  if (auto refusal = CheckHost(server_.allowed_hosts(), hosts)) {
    drain_after_write_ = BodyExpected();
    return Write(std::move(*refusal), false);
  }

  switch (server_.router().Find(*req_, &route_)) {
    case Router::Match::kNoPath:
      drain_after_write_ = BodyExpected();
      return Write(
          ErrorResponse(404, "NOT_FOUND", "no route for " + req_->method + " " + req_->path),
          keep_alive_ && !drain_after_write_);
    case Router::Match::kWrongMethod:
      drain_after_write_ = BodyExpected();
      return Write(ErrorResponse(405, "METHOD_NOT_ALLOWED",
                                 "method " + req_->method + " is not allowed on " + req_->path),
                   keep_alive_ && !drain_after_write_);
    case Router::Match::kFound:
      break;
  }
  if (auto refusal =
          CheckBodyType(req_->content_type, BodyExpected(), static_cast<bool>(route_->open_sink))) {
    drain_after_write_ = true;
    return Write(std::move(*refusal), false);
  }
  if (!route_->open_sink) {
    const auto& options = server_.options();
    body_limit_ = route_->body_limit > 0 ? std::min(route_->body_limit, options.body_limit)
                                         : options.body_limit;
    if (parser_->content_length().value_or(0) > body_limit_) {
      drain_after_write_ = true;
      return Write(
          ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                        "request body is larger than " + std::to_string(body_limit_) + " bytes"),
          false);
    }
    if (BodyExpected()) {
      // A caller without a token is refused by a route that needs a role whatever it sends (as
      // the handler would answer): the body is not read into memory for nothing.
      if (!route_->min_role.empty() && req_->authorization.empty()) {
        drain_after_write_ = true;
        return Write(ErrorResponse(UnauthenticatedError("log in first")), false);
      }
      // Nor for a token that names no live session.
      if (!route_->min_role.empty()) return CheckToken();
      return ReadBody();
    }
    return ReadChunk();
  }
  // Reads of up to 64 KiB per call instead of the flat buffer's small default.
  buffer_.reserve(64 << 10);
  // An upload: open the sink on the pool (it authenticates and may touch the database), then
  // stream.

  server_.in_flight()++;
  net::post(server_.pool(route_->lane), [self = shared_from_this()] {
    obs::ScopedRequestId log_scope(self->request_id_);
    Response refusal;
    auto sink = self->route_->open_sink(*self->req_);
    if (!sink.ok()) refusal = ErrorResponse(sink.status());
    net::post(self->stream_.get_executor(), [self, ok = sink.ok(), sink = std::move(sink),
                                             refusal = std::move(refusal)]() mutable {
      self->server_.in_flight()--;
      if (!ok) {
        self->drain_after_write_ = self->BodyExpected();
        return self->Write(std::move(refusal), self->keep_alive_ && !self->drain_after_write_);
      }
      self->sink_ = std::move(*sink);
      // Upload buffers only for an authorized upload, freed when the next request starts.
      self->chunks_[0].resize(1 << 20);
      self->chunks_[1].resize(1 << 20);
      if (!self->parser_->get().chunked() && self->parser_->content_length()) {
        self->raw_left_ = *self->parser_->content_length();
      }
      self->ReadChunk();
    });
  });
}

void Session::CheckToken() {
  const TokenCheck& check = server_.router().token_check();
  if (check.in_memory) {
    if (auto known = check.in_memory(*req_, route_->min_role)) return OnTokenChecked(*known);
  }
  if (!check.check) return ReadBody();
  // The check may read the database: no work for an I/O thread.
  server_.in_flight()++;
  net::post(server_.pool(Lane::kDefault), [self = shared_from_this()] {
    obs::ScopedRequestId log_scope(self->request_id_);
    Status st;
    try {
      st = self->server_.router().token_check().check(*self->req_, self->route_->min_role);
    } catch (const std::exception& e) {
      spdlog::error("token check {} {} threw: {}", self->req_->method, self->route_->pattern,
                    e.what());
      st = InternalError(e.what());
    }
    net::post(self->stream_.get_executor(), [self, st = std::move(st)] {
      self->server_.in_flight()--;
      self->OnTokenChecked(st);
    });
  });
}

void Session::OnTokenChecked(const Status& st) {
  if (!st.ok()) {
    drain_after_write_ = true;
    return Write(ErrorResponse(st), false);
  }
  ReadBody();
}

void Session::ReadBody() {
  const auto& options = server_.options();
  // A chunked body may grow to the limit: it takes that much of the budget.
  const uint64_t want = parser_->content_length().value_or(body_limit_);
  Client key = RequestClient();
  const auto reserved = server_.ReserveBody(key, want);
  if (reserved != ServerImpl::Reserved::kOk) {
    drain_after_write_ = true;
    Response busy = ErrorResponse(
        503, "UNAVAILABLE",
        reserved == ServerImpl::Reserved::kClientShareFull
            ? "this client (or its network) holds too many request bodies at once; try "
              "again soon"
            : "the server holds too many request bodies; try again soon");
    busy.headers.emplace_back("Retry-After", "5");
    return Write(std::move(busy), false);
  }
  body_reserved_ = want;
  body_client_ = std::move(key);
  // The whole body at once, as much as the budget counts, instead of doubling its way there.
  if (parser_->content_length()) req_->body.reserve(static_cast<size_t>(want));
  // One deadline for the whole body, not renewed by each piece: a client that sends a byte now
  // and then can't hold the memory for long. It must send at least 64 KiB/s after a grace of
  // header_timeout.
  stream_.expires_after(options.header_timeout + std::chrono::seconds(want >> 16));
  chunks_[0].resize(static_cast<size_t>(std::min<uint64_t>(want, 64 << 10)));
  ReadChunk();
}

void Session::ReadChunk() {
  if (raw_left_ ? *raw_left_ == 0 : parser_->is_done()) {
    if (!sink_) return Dispatch();
    body_done_ = true;
    return MaybeFinishUpload();
  }
  const auto& msg = parser_->get();
  if (!continue_sent_ && beast::iequals(msg[bhttp::field::expect], "100-continue")) {
    // The client waits for our go-ahead before it sends the body.
    continue_sent_ = true;
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    return net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->ReadChunk();
                            });
  }
  if (raw_left_) return ReadRaw();
  auto& body = parser_->get().body();
  auto& buf = chunks_[read_buf_];
  body.data = buf.data();
  body.size = buf.size();
  reading_ = true;
  // A body read into memory keeps the deadline OnHeader set; an upload (authorized already) may
  // pause up to the idle timeout between pieces.
  if (sink_) stream_.expires_after(server_.options().idle_timeout);
  bhttp::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnChunk(ec); });
}

void Session::OnChunk(beast::error_code ec) {
  reading_ = false;
  if (ec == bhttp::error::need_buffer) ec = {};
  if (!upload_error_.ok()) return FailUpload();
  if (ec == bhttp::error::body_limit || ec == bhttp::error::buffer_overflow) {
    if (sink_) {
      // The sink may be writing the other buffer on the pool: answer once it is done.
      upload_error_ = ResourceExhaustedError("request body is too large");
      if (!writing_) FailUpload();
      return;
    }
    drain_after_write_ = true;
    return Write(ErrorResponse(413, "PAYLOAD_TOO_LARGE", "request body is too large"), false);
  }
  // The client went away or sent garbage mid-body. A sink write in flight keeps this session (and
  // its buffers) alive until it returns; the sink cleans up when the session goes.
  if (ec) return Close();
  auto& buf = chunks_[read_buf_];
  size_t got = buf.size() - parser_->get().body().size;
  if (!sink_) {
    if (req_->body.size() + got > body_limit_) {
      drain_after_write_ = true;
      return Write(
          ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                        "request body is larger than " + std::to_string(body_limit_) + " bytes"),
          false);
    }
    req_->body.append(buf.data(), got);
    return ReadChunk();
  }
  OnBodyPiece(got);
}

void Session::ReadRaw() {
  auto& buf = chunks_[read_buf_];
  size_t want = static_cast<size_t>(std::min<uint64_t>(*raw_left_, buf.size()));
  // Body bytes that arrived with the headers come first; buffer_ keeps what follows the body.
  size_t have = std::min(want, buffer_.size());
  if (have > 0) {
    net::buffer_copy(net::buffer(buf.data(), have), buffer_.data());
    buffer_.consume(have);
  }
  if (have == want) return OnRawChunk({}, have);
  reading_ = true;
  ContinueRaw(have, want);
}

void Session::ContinueRaw(size_t have, size_t want) {
  // While the client sends fast (the last read found 64 KiB or more), wake up only once 256 KiB
  // are waiting instead of for every segment: fewer wake-ups and larger reads (17% more upload
  // throughput, measured). Never wait for more than the body still has to send, and for a slow
  // client wait for any byte, so that it is not taken for idle.
  constexpr size_t kFast = 64 << 10, kLowWater = 256 << 10;
  SetLowWater(last_read_ >= kFast ? std::min(kLowWater, want - have) : 1);
  stream_.expires_after(server_.options().idle_timeout);
  auto& buf = chunks_[read_buf_];
  stream_.async_read_some(net::buffer(buf.data() + have, want - have),
                          [self = shared_from_this(), have, want](beast::error_code ec, size_t n) {
                            self->last_read_ = n;
                            if (ec || have + n == want) return self->OnRawChunk(ec, have + n);
                            self->ContinueRaw(have + n, want);
                          });
}

void Session::SetLowWater(size_t bytes) {
  // Over TLS the socket's bytes are records, some already read into the TLS layer: waiting for
  // more plaintext than is left on the socket would stall the upload.
  if (bytes == low_water_ || stream_.is_tls()) return;
  int value = static_cast<int>(bytes);
  if (::setsockopt(stream_.socket().native_handle(), SOL_SOCKET, SO_RCVLOWAT, &value,
                   sizeof(value)) == 0) {
    low_water_ = bytes;
  }
}

void Session::OnRawChunk(beast::error_code ec, size_t got) {
  reading_ = false;
  if (!upload_error_.ok()) return FailUpload();
  // The client went away or stalled mid-body; see OnChunk.
  if (ec) return Close();
  *raw_left_ -= got;
  OnBodyPiece(got);
}

void Session::OnBodyPiece(size_t got) {
  if (got == 0) return ReadChunk();
  // Double buffering: the sink writes one buffer on the pool while the socket fills the other.
  if (writing_) {
    queued_ = got;  // this buffer waits for the write in flight; no read until it is done
    return;
  }
  StartSinkWrite(read_buf_, got);
  read_buf_ ^= 1;
  ReadChunk();
}

void Session::StartSinkWrite(int index, size_t size) {
  if (auto* observer = server_.options().observer) observer->OnUploadBytes(route_->pattern, size);
  writing_ = true;
  server_.in_flight()++;
  net::post(server_.pool(route_->lane), [self = shared_from_this(), index, size] {
    obs::ScopedRequestId log_scope(self->request_id_);
    Status st = self->sink_->Write(std::string_view(self->chunks_[index].data(), size));
    net::post(self->stream_.get_executor(), [self, st = std::move(st)] {
      self->server_.in_flight()--;
      self->OnSinkWritten(st);
    });
  });
}

void Session::OnSinkWritten(const Status& st) {
  writing_ = false;
  // The sink failed, or the body turned out too large (OnChunk) while it wrote.
  if (!st.ok() && upload_error_.ok()) upload_error_ = st;
  if (!upload_error_.ok()) {
    // A read in flight ends in OnChunk, which answers; otherwise answer now.
    if (!reading_) FailUpload();
    return;
  }
  if (queued_) {
    size_t size = *queued_;
    queued_.reset();
    StartSinkWrite(read_buf_, size);
    read_buf_ ^= 1;
    return ReadChunk();
  }
  if (body_done_) MaybeFinishUpload();
}

void Session::MaybeFinishUpload() {
  if (!writing_ && !queued_ && !reading_) Dispatch();
}

void Session::DisposeSink() {
  if (!sink_) return;
  // Shutting down, the pools may be gone (sessions die with the I/O context, after them): the
  // sink goes here, however long that takes.
  if (server_.stopping()) return sink_.reset();
  std::shared_ptr<BodySink> sink(std::move(sink_));
  net::post(server_.pool(Lane::kUpload), [sink = std::move(sink)]() mutable { sink.reset(); });
}

void Session::FailUpload() {
  DisposeSink();
  drain_after_write_ = true;
  Write(ErrorResponse(upload_error_), false);
}

void Session::Dispatch() {
  // The answer to a change is written whatever its size (see ReserveResponse): a change from a
  // client whose share is full of unread answers waits instead of running.
  if (!sink_ && req_->method != "GET" && req_->method != "HEAD" &&
      server_.ShareFull(RequestClient(), body_reserved_)) {
    Response busy = ErrorResponse(503, "UNAVAILABLE",
                                  "this client holds too many unread answers (or its network "
                                  "does); read them, or try again soon");
    busy.headers.emplace_back("Retry-After", "5");
    return Respond(std::move(busy));
  }
  if (!sink_ && route_->answer_inline) {
    std::optional<Response> answer;
    obs::ScopedRequestId log_scope(request_id_);
    try {
      answer = route_->answer_inline(*req_);
    } catch (const std::exception& e) {
      spdlog::error("inline handler {} {} threw: {}", req_->method, route_->pattern, e.what());
      answer = ErrorResponse(InternalError(e.what()));
    }
    // Answered from memory: no hand-off to the pool and back.
    if (answer) return Respond(std::move(*answer));
  }
  server_.in_flight()++;
  if (!sink_ && route_->choose_lane) {
    // Reading the body to choose is no work for an I/O thread: the request pool chooses, and
    // hands the request on when it belongs elsewhere.
    net::post(server_.pool(Lane::kDefault), [self = shared_from_this()] {
      Lane lane = Lane::kDefault;
      try {
        lane = self->route_->choose_lane(*self->req_);
      } catch (const std::exception& e) {
        spdlog::error("lane choice {} {} threw: {}", self->req_->method, self->route_->pattern,
                      e.what());
      }
      if (lane == Lane::kDefault) return self->Handle();
      net::post(self->server_.pool(lane), [self] { self->Handle(); });
    });
    return;
  }
  net::post(server_.pool(route_->lane), [self = shared_from_this()] { self->Handle(); });
}

void Session::Handle() {
  obs::ScopedRequestId log_scope(request_id_);
  Response res;
  try {
    res = sink_ ? sink_->Finish() : route_->handler(*req_);
  } catch (const std::exception& e) {
    spdlog::error("handler {} {} threw: {}", req_->method, route_->pattern, e.what());
    res = ErrorResponse(InternalError(e.what()));
  }
  // Here, on the pool, and before the answer goes: what the upload held (its place among the
  // account's uploads) is free once the client hears it is done.
  sink_.reset();
  net::post(stream_.get_executor(), [self = shared_from_this(), res = std::move(res)]() mutable {
    self->server_.in_flight()--;
    self->DisposeSink();
    self->Respond(std::move(res));
  });
}

void Session::Respond(Response response) {
  // The handler is done with the body: its memory and its share of the budget go back before the
  // answer is written, not once it is (a client that reads slowly would hold them meanwhile).
  if (req_) std::string().swap(req_->body);
  ReleaseBody();
  Write(std::move(response), keep_alive_);
}

template <class Message>
void SetCommonHeaders(Message& m, const Response& response, bool keep_alive) {
  m.version(11);
  m.result(static_cast<unsigned>(response.status));
  m.set(bhttp::field::server, "datasite");
  m.set(bhttp::field::content_type, response.content_type);
  m.set(bhttp::field::cache_control, "no-store");
  m.set("X-Content-Type-Options", "nosniff");
  for (auto& [k, v] : response.headers) m.set(k, v);
  m.keep_alive(keep_alive);
}

void Session::Write(Response response, bool keep_alive) {
  if (drain_after_write_) {
    // A refused body is read no further: its memory and its share of the budget go back now, not
    // when the connection closes after draining (up to seconds later).
    if (body_reserved_ > 0) ReleaseBody();
    if (req_) std::string().swap(req_->body);
  }
  // An answer held in memory until the client reads it counts under the client's share of the
  // body memory budget; a shared one too (the cache may drop it while the client holds it).
  // Streamed and file bodies hold a piece at a time.
  const bool in_memory = !response.body_source && response.file_path.empty();
  if (in_memory && !ReserveResponse(response.shared_body ? response.shared_body->size()
                                                         : response.body.size())) {
    Response busy =
        ErrorResponse(503, "UNAVAILABLE",
                      "this client holds too many unread answers (or the server too many); read "
                      "them, or try again soon");
    busy.headers.emplace_back("Retry-After", "5");
    return Write(std::move(busy), keep_alive);
  }
  // Every response carries the request's id, errors too; each request is counted once.
  response.headers.emplace_back("X-Request-Id", request_id_);
  if (auto* observer = server_.options().observer; observer && !observed_) {
    observed_ = true;
    const bool matched = route_ != nullptr;
    observer->OnResponse(matched ? std::string_view(route_->method) : std::string_view(),
                         matched ? std::string_view(route_->pattern) : std::string_view(),
                         response.status, std::chrono::steady_clock::now() - start_);
  }
  auto on_written = [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
    self->res_.reset();
    self->ReleaseResponse();
    if (!ec && self->drain_after_write_) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->stream_.expires_after(std::chrono::seconds(5));
      return self->Drain();
    }
    if (ec || !keep_alive) return self->Close();
    self->DoRead();
  };
  stream_.expires_after(server_.options().idle_timeout);
  if (response.body_source) return WriteStreamed(std::move(response), keep_alive);
  if (!response.file_path.empty()) {
    auto res = std::make_shared<bhttp::response<bhttp::file_body>>();
    beast::error_code ec;
    res->body().open(response.file_path.c_str(), beast::file_mode::scan, ec);
    if (ec) {
      spdlog::error("cannot open {} for a response: {}", response.file_path, ec.message());
      return Write(ErrorResponse(InternalError("cannot open file")), keep_alive);
    }
    SetCommonHeaders(*res, response, keep_alive);
    res->prepare_payload();
    // The deadline covers the whole transfer: the idle timeout plus one second per MiB (a client
    // slower than 1 MiB/s is cut off).
    stream_.expires_after(server_.options().idle_timeout +
                          std::chrono::seconds(res->body().size() >> 20));
    res_ = res;
    return bhttp::async_write(stream_, *res, std::move(on_written));
  }
  if (response.shared_body) {
    // The response points into the shared string, which it keeps alive until written.
    struct Shared {
      std::shared_ptr<const std::string> body;
      bhttp::response<bhttp::span_body<const char>> res;
    };
    auto shared = std::make_shared<Shared>();
    shared->body = std::move(response.shared_body);
    SetCommonHeaders(shared->res, response, keep_alive);
    shared->res.body() = {shared->body->data(), shared->body->size()};
    shared->res.prepare_payload();
    res_ = shared;
    return bhttp::async_write(stream_, shared->res, std::move(on_written));
  }
  auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
  SetCommonHeaders(*res, response, keep_alive);
  res->body() = std::move(response.body);
  res->prepare_payload();
  res_ = res;
  bhttp::async_write(stream_, *res, std::move(on_written));
}

void Session::WriteStreamed(Response response, bool keep_alive) {
  auto body = std::make_shared<StreamedBody>();
  body->source = std::move(response.body_source);
  body->left = std::max<int64_t>(response.body_size, 0);
  body->keep_alive = keep_alive;
  SetCommonHeaders(body->head, response, keep_alive);
  body->head.content_length(static_cast<uint64_t>(body->left));
  body->serializer.emplace(body->head);
  // As for files: the idle timeout plus one second per MiB for the whole transfer.
  stream_.expires_after(server_.options().idle_timeout + std::chrono::seconds(body->left >> 20));
  res_ = body;
  bhttp::async_write_header(
      stream_, *body->serializer,
      [self = shared_from_this(), body](beast::error_code ec, size_t) mutable {
        self->StreamNext(std::move(body), ec);
      });
}

void Session::StreamNext(std::shared_ptr<StreamedBody> body, beast::error_code ec) {
  // Held until the client has read it, and counted under no budget: small, so that slow readers of
  // a download open to guests (a mock) can't pin much memory each (64 connections of one client:
  // 4 MiB; with 1 MiB pieces it was 64 MiB).
  constexpr size_t kPiece = 64 << 10;
  if (ec || body->left == 0) {
    res_.reset();
    const bool keep_alive = !ec && body->keep_alive;
    DisposeBody(std::move(body));
    if (!keep_alive) return Close();
    return DoRead();
  }
  server_.in_flight()++;
  auto& pool = server_.pool(route_ ? route_->lane : Lane::kDefault);
  net::post(pool, [self = shared_from_this(), body] {
    size_t want = static_cast<size_t>(std::min<int64_t>(body->left, kPiece));
    if (body->buf.size() < want) body->buf.resize(want);
    Result<size_t> got = InternalError("the body source threw");
    try {
      got = body->source(body->buf.data(), want);
    } catch (const std::exception& e) {
      got = InternalError(e.what());
    }
    net::post(self->stream_.get_executor(), [self, body, got = std::move(got), want]() mutable {
      self->server_.in_flight()--;
      if (!got.ok() || *got == 0 || *got > want) {
        // The headers promised more: the client must see a short body and a closed connection,
        // never a response that looks whole.
        spdlog::error("a streamed response stopped with {} bytes unsent: {}", body->left,
                      got.ok() ? "the source ended early" : got.status().ToString());
        self->res_.reset();
        self->DisposeBody(std::move(body));
        return self->Close();
      }
      body->left -= static_cast<int64_t>(*got);
      auto piece = net::buffer(body->buf.data(), *got);
      net::async_write(self->stream_, piece,
                       [self, body = std::move(body)](beast::error_code ec, size_t) mutable {
                         self->StreamNext(std::move(body), ec);
                       });
    });
  });
}

void Session::DisposeBody(std::shared_ptr<StreamedBody> body) {
  // Its source (a blob reader) may wait as it goes (for a window fetched ahead from a bucket):
  // never on an I/O thread, unless shutting down (the pools may be gone).
  if (server_.stopping()) return;
  net::post(server_.pool(Lane::kDefault), [body = std::move(body)]() mutable { body.reset(); });
}

void Session::Drain() {
  constexpr size_t kMaxDrain = 256u << 20, kBuffer = 8 << 10;
  // Small: every refused request drains for a few seconds, and many may (2000 refused bodies held
  // 128 MiB in buffers of 64 KiB). A refused upload's 2 MiB go back first (no read or sink write
  // uses them any more).
  if (chunks_[0].size() != kBuffer) {
    chunks_ = {};
    chunks_[0].resize(kBuffer);
  }
  stream_.async_read_some(net::buffer(chunks_[0].data(), chunks_[0].size()),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->drained_ += n;
                            if (ec || self->drained_ > kMaxDrain) return self->Close();
                            self->Drain();
                          });
}

void Session::Close() {
  // The place goes back before the client can see the close, not when the last handler lets go
  // of this session: a client that saw its connection closed and connects again finds it free.
  ReleasePlace();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.close();
}

}  // namespace

ServerOptions FitConnectionsToDescriptors(ServerOptions options) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return options;
  auto reserve = [](rlim_t soft) { return std::min<rlim_t>(512, soft / 2); };
  // A connection may hold two: its socket and a file it streams (a mock, a result).
  const rlim_t connections = static_cast<rlim_t>(std::max(options.max_connections, 1));
  const rlim_t want = 2 * connections + 512;
  if (limit.rlim_cur < want && limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = std::min<rlim_t>(want, limit.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  const rlim_t fit = (limit.rlim_cur - reserve(limit.rlim_cur)) / 2;
  if (connections > fit) {
    spdlog::warn(
        "the process may open {} descriptors (RLIMIT_NOFILE; raise it with ulimit -n or "
        "LimitNOFILE=): the server takes {} connections at once instead of {}",
        static_cast<uint64_t>(limit.rlim_cur), static_cast<uint64_t>(fit), options.max_connections);
    options.max_connections = static_cast<int>(std::max<rlim_t>(fit, 1));
    options.max_connections_per_address =
        std::min(options.max_connections_per_address, options.max_connections);
  }
  return options;
}

Result<std::unique_ptr<HttpServer>> NewHttpServer(const Router& router,
                                                  const ServerOptions& options) {
  auto server = std::make_unique<ServerImpl>(router, options);
  RETURN_IF_ERROR(server->LoadTls());
  RETURN_IF_ERROR(server->Bind());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace datasite::http
