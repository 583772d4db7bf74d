#include "net/egress.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

namespace datasite::net {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string NormalHost(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return Lower(host);
}

bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    const char c = host[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
    if (c == '-' && (label == 1 || i + 1 == host.size() || host[i + 1] == '.')) return false;
  }
  return label > 0;
}

// Waits for a non-blocking connect on `fd` until `deadline`; 0 once connected, else an errno.
int FinishConnect(int fd, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return ETIMEDOUT;
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1'000'000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) continue;
    int error = 0;
    socklen_t size = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) return errno;
    return error;
  }
}

}  // namespace

std::string EgressTarget::ToString() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<EgressTarget> ParseEgressTarget(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgumentError("'" + std::string(text.substr(0, 300)) + "': " + why +
                                " (give HOST:PORT, e.g. warehouse.example:5432)");
  };
  std::string_view host, port;
  if (text.find('/') != std::string_view::npos) return bad("a host, not a URL");
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return bad("an IPv6 address is written [ADDRESS]:PORT");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr a6;
    if (inet_pton(AF_INET6, std::string(host).c_str(), &a6) != 1)
      return bad("'" + std::string(host) + "' is not an IPv6 address");
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return bad("an IPv6 address is written in brackets, [ADDRESS]:PORT");
    if (host.find('*') != std::string_view::npos) return bad("wildcards are not allowed");
    if (!IsHostName(NormalHost(host))) return bad("'" + std::string(host) + "' is not a host name");
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 1 ||
      value > 65535)
    return bad("the port must be a number from 1 to 65535");
  return EgressTarget{NormalHost(host), static_cast<uint16_t>(value)};
}

const EgressTarget* FindEgressTarget(const std::vector<EgressTarget>& allowed,
                                     std::string_view host, int64_t port) {
  if (port < 1 || port > 65535) return nullptr;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string wanted = NormalHost(host);
  for (const EgressTarget& t : allowed)
    if (t.port == port && t.host == wanted) return &t;
  return nullptr;
}

Result<int> ConnectEgress(const EgressTarget& target, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(target.port);
  int rc = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) return UnavailableError("resolving " + target.host + " failed: " + gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, freeaddrinfo);
  std::string last = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (std::chrono::steady_clock::now() >= deadline) break;
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    int error = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      error = errno == EINPROGRESS ? FinishConnect(fd, deadline) : errno;
    }
    if (error == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0) return fd;
    last = std::strerror(error != 0 ? error : errno);
    close(fd);
  }
  if (std::chrono::steady_clock::now() >= deadline)
    return Status(StatusCode::kDeadlineExceeded,
                  "connecting to " + target.ToString() + " took longer than the call had left");
  return UnavailableError("connecting to " + target.ToString() + " failed: " + last);
}

struct EgressRelays::State {
  explicit State(int max) : max_open(max) {}
  const int max_open;
  mutable std::mutex mu;
  std::condition_variable ended;
  int open = 0;       // REQUIRES: mu held
  bool stop = false;  // REQUIRES: mu held; read by relays through Stopping()
  bool Stopping() {
    std::lock_guard lock(mu);
    return stop;
  }
};

namespace {

// One direction of a relay: bytes read from one side not yet written to the other.
struct Pipe {
  char buffer[64 << 10];
  size_t begin = 0, end = 0;
  bool eof = false;        // the reading side has finished sending
  bool shut_down = false;  // the writing side was told so (shutdown SHUT_WR)
  size_t Pending() const { return end - begin; }
};

// Moves what `from` can give into `pipe`, and what `pipe` holds into `to`. False on an error
// (the connection is over).
bool Pump(int from, short from_events, Pipe& pipe, int to, short to_events) {
  if ((from_events & (POLLIN | POLLHUP)) && !pipe.eof && pipe.end < sizeof pipe.buffer) {
    ssize_t n = recv(from, pipe.buffer + pipe.end, sizeof pipe.buffer - pipe.end, MSG_DONTWAIT);
    if (n > 0) pipe.end += static_cast<size_t>(n);
    if (n == 0) pipe.eof = true;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
  }
  if (pipe.Pending() > 0 && (to_events & POLLOUT)) {
    ssize_t n = send(to, pipe.buffer + pipe.begin, pipe.Pending(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) pipe.begin += static_cast<size_t>(n);
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    if (pipe.begin == pipe.end) pipe.begin = pipe.end = 0;
  }
  if (pipe.eof && pipe.Pending() == 0 && !pipe.shut_down) {
    shutdown(to, SHUT_WR);
    pipe.shut_down = true;
  }
  return true;
}

void Relay(int inside, int outside, std::chrono::steady_clock::time_point until,
           EgressRelays::State& state) {
  auto in_to_out = std::make_unique<Pipe>();
  auto out_to_in = std::make_unique<Pipe>();
  while (std::chrono::steady_clock::now() < until && !state.Stopping()) {
    pollfd p[2] = {{inside, 0, 0}, {outside, 0, 0}};
    if (!in_to_out->eof && in_to_out->end < sizeof in_to_out->buffer) p[0].events |= POLLIN;
    if (!out_to_in->eof && out_to_in->end < sizeof out_to_in->buffer) p[1].events |= POLLIN;
    if (out_to_in->Pending() > 0) p[0].events |= POLLOUT;
    if (in_to_out->Pending() > 0) p[1].events |= POLLOUT;
    if (poll(p, 2, 200) < 0 && errno != EINTR) break;
    // The function's end closed (its process ended): nothing more can reach it.
    if ((p[0].revents & (POLLHUP | POLLERR)) && !(p[0].revents & POLLIN)) break;
    if (p[1].revents & POLLERR) break;
    if (!Pump(inside, p[0].revents, *in_to_out, outside, p[1].revents)) break;
    if (!Pump(outside, p[1].revents, *out_to_in, inside, p[0].revents)) break;
    if (in_to_out->shut_down && out_to_in->shut_down) break;
  }
  close(inside);
  close(outside);
}

}  // namespace

EgressRelays::EgressRelays(int max_open) : state_(std::make_shared<State>(max_open)) {}

EgressRelays::~EgressRelays() {
  std::unique_lock lock(state_->mu);
  state_->stop = true;
  state_->ended.wait(lock, [this] { return state_->open == 0; });
}

int EgressRelays::open_count() const {
  std::lock_guard lock(state_->mu);
  return state_->open;
}

Result<int> EgressRelays::Open(const EgressTarget& target, std::chrono::milliseconds timeout,
                               std::chrono::steady_clock::time_point until) {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stop) return UnavailableError("the server is stopping");
    if (state_->open >= state_->max_open)
      return ResourceExhaustedError("the server has " + std::to_string(state_->max_open) +
                                    " connections open for functions already; try again later");
    ++state_->open;  // held from here, so that concurrent Opens can't overshoot
  }
  auto release = [this] {
    std::lock_guard lock(state_->mu);
    --state_->open;
    state_->ended.notify_all();
  };
  Result<int> outside = ConnectEgress(target, timeout);
  if (!outside.ok()) {
    release();
    return outside.status();
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    const std::string why = std::strerror(errno);
    close(*outside);
    release();
    return UnavailableError("socketpair: " + why);
  }
  fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK);
  fcntl(*outside, F_SETFL, fcntl(*outside, F_GETFL) | O_NONBLOCK);
  std::shared_ptr<State> state = state_;
  std::thread([inside = pair[0], outside = *outside, until, state] {
    Relay(inside, outside, until, *state);
    std::lock_guard lock(state->mu);
    --state->open;
    state->ended.notify_all();
  }).detach();
  return pair[1];
}

}  // namespace datasite::net
