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

// A count of open relays under a limit, and a stop flag: the server's, and each group's.
struct EgressRelays::State {
  explicit State(int max) : max_open(max) {}
  const int max_open;
  mutable std::mutex mu;
  std::condition_variable ended;
  int open = 0;       // REQUIRES: mu held
  bool stop = false;  // REQUIRES: mu held
  bool Stopping() {
    std::lock_guard lock(mu);
    return stop;
  }
  bool Take() {
    std::lock_guard lock(mu);
    if (stop || open >= max_open) return false;
    ++open;
    return true;
  }
  void Give() {
    std::lock_guard lock(mu);
    --open;
    ended.notify_all();
  }
  void StopAndWait() {
    std::unique_lock lock(mu);
    stop = true;
    ended.wait(lock, [this] { return open == 0; });
  }
};
struct EgressRelays::Group::Shared : EgressRelays::State {
  using State::State;
};

namespace {

// One direction of a relay: bytes read from one side not yet written to the other.
struct Pipe {
  char buffer[64 << 10];
  size_t begin = 0, end = 0;
  bool eof = false;        // nothing more will be read from the sending side
  bool shut_down = false;  // the receiving side was told so (shutdown SHUT_WR)
  size_t Pending() const { return end - begin; }
  bool Room() const { return !eof && end < sizeof buffer; }
};

// Moves what `from` gives into `pipe` (when `readable`), and what `pipe` holds into `to` (when
// `writable`); passes on the end of the stream once the pipe is empty. False on an error.
bool Pump(int from, bool readable, Pipe& pipe, int to, bool writable) {
  if (readable && pipe.Room()) {
    ssize_t n = recv(from, pipe.buffer + pipe.end, sizeof pipe.buffer - pipe.end, MSG_DONTWAIT);
    if (n > 0) pipe.end += static_cast<size_t>(n);
    if (n == 0) pipe.eof = true;
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
  }
  if (writable && pipe.Pending() > 0) {
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

// Carries bytes between the function's end (`inside`) and the connection (`outside`). A side is
// polled only for what the relay wants from it (a socket shut down both ways reports POLLHUP
// whatever is asked, which would spin), except that the function's end is always watched for its
// hang-up while it is there.
void Relay(int inside, int outside, std::chrono::steady_clock::time_point until,
           EgressRelays::State& server, EgressRelays::State& group) {
  auto in_to_out = std::make_unique<Pipe>();
  auto out_to_in = std::make_unique<Pipe>();
  bool inside_hung_up = false;  // nothing can reach the function any more; what it sent is read on
  while (std::chrono::steady_clock::now() < until && !server.Stopping() && !group.Stopping()) {
    if (in_to_out->shut_down && out_to_in->shut_down) break;  // everything was passed on
    short in_events = 0, out_events = 0;
    if (in_to_out->Room()) in_events |= POLLIN;
    if (out_to_in->Pending() > 0) in_events |= POLLOUT;
    if (out_to_in->Room()) out_events |= POLLIN;
    if (in_to_out->Pending() > 0) out_events |= POLLOUT;
    const bool watch_inside = in_events != 0 || !inside_hung_up;
    pollfd p[2] = {{watch_inside ? inside : -1, in_events, 0},
                   {out_events != 0 ? outside : -1, out_events, 0}};
    if (poll(p, 2, 200) < 0 && errno != EINTR) break;
    if (p[1].revents & POLLERR) break;
    if ((p[0].revents & (POLLHUP | POLLERR)) && !inside_hung_up) {
      // The function's end is gone: drop what would have gone to it, read nothing more from the
      // connection, but still deliver what it sent.
      inside_hung_up = true;
      out_to_in->begin = out_to_in->end = 0;
      out_to_in->eof = out_to_in->shut_down = true;
    }
    if (!Pump(inside, p[0].revents & (POLLIN | POLLHUP), *in_to_out, outside,
              p[1].revents & POLLOUT))
      break;
    if (!Pump(outside, p[1].revents & (POLLIN | POLLHUP), *out_to_in, inside,
              p[0].revents & POLLOUT))
      break;
  }
  close(inside);
  close(outside);
}

}  // namespace

EgressRelays::EgressRelays(int max_open) : state_(std::make_shared<State>(max_open)) {}

EgressRelays::~EgressRelays() { state_->StopAndWait(); }

int EgressRelays::open_count() const {
  std::lock_guard lock(state_->mu);
  return state_->open;
}

std::unique_ptr<EgressRelays::Group> EgressRelays::NewGroup(int max_open) {
  return std::unique_ptr<Group>(new Group(state_, max_open));
}

EgressRelays::Group::Group(std::shared_ptr<State> server, int max_open)
    : server_(std::move(server)), shared_(std::make_shared<Shared>(max_open)) {}

EgressRelays::Group::~Group() { shared_->StopAndWait(); }

int EgressRelays::Group::open_count() const {
  std::lock_guard lock(shared_->mu);
  return shared_->open;
}

Status EgressRelays::Group::Open(const EgressTarget& target, int inside,
                                 std::chrono::milliseconds timeout,
                                 std::chrono::steady_clock::time_point until) {
  if (!shared_->Take()) {
    close(inside);
    return ResourceExhaustedError("a call may have " + std::to_string(shared_->max_open) +
                                  " connections open at once");
  }
  if (!server_->Take()) {
    shared_->Give();
    close(inside);
    return ResourceExhaustedError("the server has " + std::to_string(server_->max_open) +
                                  " connections open for functions already; try again later");
  }
  Result<int> outside = ConnectEgress(target, timeout);
  if (!outside.ok()) {
    server_->Give();
    shared_->Give();
    close(inside);
    return outside.status();
  }
  fcntl(inside, F_SETFL, fcntl(inside, F_GETFL) | O_NONBLOCK);
  fcntl(*outside, F_SETFL, fcntl(*outside, F_GETFL) | O_NONBLOCK);
  std::thread([inside, outside = *outside, until, server = server_, group = shared_] {
    Relay(inside, outside, until, *server, *group);
    server->Give();  // first: once its group's count drops, the relay is gone from both
    group->Give();
  }).detach();
  return Status::Ok();
}

}  // namespace datasite::net
