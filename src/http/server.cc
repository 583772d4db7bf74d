#include "http/server.h"

// Boost 1.74's asio needs <utility> first under g++ 12 in C++20 mode.
#include <utility>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

namespace datasite::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

class ServerImpl;

// One connection. Owned by shared_ptr for the lifetime of its async operations.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerImpl& server) : stream_(std::move(socket)), server_(server) {}
  void Run();

 private:
  void DoRead();
  void OnRead(beast::error_code ec);
  void Dispatch();
  void Write(Response response, bool keep_alive);
  void Close();
  // After refusing a request whose body is still arriving: reads and discards what the client sends
  // (up to a cap, for a few seconds) so that it gets to read the refusal instead of a broken pipe.
  void Drain();

  bool drain_after_write_ = false;
  size_t drained_ = 0;
  std::array<char, 64 << 10> scratch_;

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::shared_ptr<bhttp::response<bhttp::string_body>> res_;
  std::string remote_address_;
  ServerImpl& server_;
};

class ServerImpl : public HttpServer {
 public:
  ServerImpl(const Router& router, const ServerOptions& options)
      : router_(router),
        options_(options),
        ioc_(options.io_threads),
        acceptor_(net::make_strand(ioc_)),
        request_pool_(options.request_threads),
        heavy_pool_(options.heavy_threads) {}

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
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  int InFlight() const override { return in_flight_.load(); }

  const Router& router() const { return router_; }
  const ServerOptions& options() const { return options_; }
  net::thread_pool& pool(Lane lane) { return lane == Lane::kHeavy ? heavy_pool_ : request_pool_; }
  std::atomic<int>& in_flight() { return in_flight_; }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           [this](beast::error_code ec, tcp::socket socket) {
                             if (ec) {
                               if (ec == net::error::operation_aborted || !acceptor_.is_open())
                                 return;
                               spdlog::warn("accept failed: {}", ec.message());
                             } else {
                               std::make_shared<Session>(std::move(socket), *this)->Run();
                             }
                             if (acceptor_.is_open()) DoAccept();
                           });
  }

  const Router& router_;
  const ServerOptions options_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  net::thread_pool request_pool_;
  net::thread_pool heavy_pool_;
  std::vector<std::thread> threads_;
  std::atomic<int> in_flight_{0};
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
};

void Session::Run() {
  beast::error_code ec;
  auto endpoint = stream_.socket().remote_endpoint(ec);
  remote_address_ = ec ? "" : endpoint.address().to_string();
  stream_.socket().set_option(tcp::no_delay(true), ec);
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
}

void Session::DoRead() {
  parser_.emplace();
  parser_->header_limit(static_cast<uint32_t>(server_.options().header_limit));
  parser_->body_limit(server_.options().body_limit);
  stream_.expires_after(server_.options().idle_timeout);
  bhttp::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
}

void Session::OnRead(beast::error_code ec) {
  if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
      ec == net::error::operation_aborted || ec == net::error::connection_reset ||
      ec == net::error::eof) {
    return Close();
  }
  if (ec == bhttp::error::body_limit) {
    drain_after_write_ = true;
    return Write(ErrorResponse(413, "PAYLOAD_TOO_LARGE",
                               "request body is larger than " +
                                   std::to_string(server_.options().body_limit) + " bytes"),
                 false);
  }
  if (ec == bhttp::error::header_limit) {
    drain_after_write_ = true;
    return Write(ErrorResponse(431, "HEADERS_TOO_LARGE", "request headers are too large"), false);
  }
  if (ec) {
    return Write(ErrorResponse(400, "INVALID_ARGUMENT", "malformed HTTP request: " + ec.message()),
                 false);
  }
  Dispatch();
}

void Session::Dispatch() {
  auto& msg = parser_->get();
  auto req = std::make_shared<Request>();
  req->method = std::string(msg.method_string());
  std::string_view target(msg.target().data(), msg.target().size());
  size_t q = target.find('?');
  req->path = PercentDecode(target.substr(0, q), false);
  if (q != std::string_view::npos) req->query = ParseQuery(target.substr(q + 1));
  req->authorization = std::string(msg[bhttp::field::authorization]);
  req->content_type = std::string(msg[bhttp::field::content_type]);
  req->remote_address = remote_address_;
  req->body = std::move(msg.body());
  bool keep_alive = msg.keep_alive();

  const Route* route = nullptr;
  switch (server_.router().Find(*req, &route)) {
    case Router::Match::kNoPath:
      return Write(ErrorResponse(404, "NOT_FOUND", "no route for " + req->method + " " + req->path),
                   keep_alive);
    case Router::Match::kWrongMethod:
      return Write(ErrorResponse(405, "METHOD_NOT_ALLOWED",
                                 "method " + req->method + " is not allowed on " + req->path),
                   keep_alive);
    case Router::Match::kFound:
      break;
  }
  server_.in_flight()++;
  net::post(server_.pool(route->lane), [self = shared_from_this(), req, route, keep_alive] {
    Response res;
    try {
      res = route->handler(*req);
    } catch (const std::exception& e) {
      spdlog::error("handler {} {} threw: {}", req->method, route->pattern, e.what());
      res = ErrorResponse(InternalError(e.what()));
    }
    net::post(self->stream_.get_executor(), [self, res = std::move(res), keep_alive]() mutable {
      self->server_.in_flight()--;
      self->Write(std::move(res), keep_alive);
    });
  });
}

void Session::Write(Response response, bool keep_alive) {
  res_ = std::make_shared<bhttp::response<bhttp::string_body>>();
  res_->version(11);
  res_->result(static_cast<unsigned>(response.status));
  res_->set(bhttp::field::server, "datasite");
  res_->set(bhttp::field::content_type, response.content_type);
  res_->set(bhttp::field::cache_control, "no-store");
  res_->set("X-Content-Type-Options", "nosniff");
  for (auto& [k, v] : response.headers) res_->set(k, v);
  res_->body() = std::move(response.body);
  res_->keep_alive(keep_alive);
  res_->prepare_payload();
  stream_.expires_after(server_.options().idle_timeout);
  bhttp::async_write(stream_, *res_,
                     [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                       if (!ec && self->drain_after_write_) {
                         beast::error_code ignored;
                         self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                         self->stream_.expires_after(std::chrono::seconds(5));
                         return self->Drain();
                       }
                       if (ec || !keep_alive) return self->Close();
                       self->DoRead();
                     });
}

void Session::Drain() {
  constexpr size_t kMaxDrain = 256u << 20;
  stream_.async_read_some(net::buffer(scratch_),
                          [self = shared_from_this()](beast::error_code ec, size_t n) {
                            self->drained_ += n;
                            if (ec || self->drained_ > kMaxDrain) return self->Close();
                            self->Drain();
                          });
}

void Session::Close() {
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.close();
}

}  // namespace

Result<std::unique_ptr<HttpServer>> NewHttpServer(const Router& router,
                                                  const ServerOptions& options) {
  auto server = std::make_unique<ServerImpl>(router, options);
  RETURN_IF_ERROR(server->Bind());
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace datasite::http
