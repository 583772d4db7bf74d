// Outgoing TCP connections made for API endpoints' private functions: the hosts a data owner names
// with --endpoint-egress HOST:PORT, and the connect that hands a sandboxed function a socket to
// exactly one of them (the sandbox has no network of its own; see sandbox::JobSpec::on_connect).
#ifndef DATASITE_NET_EGRESS_H_
#define DATASITE_NET_EGRESS_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace datasite::net {

// One HOST:PORT a private endpoint function may reach. `host` is a DNS name (lower case, no
// trailing dot), an IPv4 address, or an IPv6 address (without its brackets).
struct EgressTarget {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const;  // "host:port", "[v6]:port"
  bool operator==(const EgressTarget&) const = default;
};

// "HOST:PORT" or "[IPv6]:PORT". kInvalidArgument, saying what is wrong, for anything else: no
// port, a port outside 1..65535, wildcards, a scheme or a path, characters no host name has.
Result<EgressTarget> ParseEgressTarget(std::string_view text);

// The target of `allowed` that `host`:`port`, as a function names it, is; nullptr for none. Host
// names compare without case and without a trailing dot; nothing is resolved to compare.
const EgressTarget* FindEgressTarget(const std::vector<EgressTarget>& allowed,
                                     std::string_view host, int64_t port);

// Resolves `target` and connects to its first address that answers, all within `timeout`;
// returns the connected socket (blocking, close-on-exec), which the caller owns and closes.
// kUnavailable when no address can be reached in time, saying why; kDeadlineExceeded when the
// time was up first. Blocks the calling thread (name resolution may take the resolver's own time
// beyond `timeout`).
Result<int> ConnectEgress(const EgressTarget& target, std::chrono::milliseconds timeout);

// The connections made for sandboxed functions. A function never holds the TCP socket: it could
// disconnect it (connect to AF_UNSPEC) and connect it anywhere this process can reach. It makes a
// Unix socket pair in its own namespaces and sends one end; a relay thread here carries the bytes
// between that end and the connection. Relays belong to a Group (one call's); a relay ends when
// both sides have finished sending, when the function's end hangs up (what it sent first is still
// delivered), on an error, at its deadline, or when its Group or this object is destroyed.
// Safe for concurrent use.
class EgressRelays {
 public:
  struct State;  // shared with the relay threads, which may outlive a Group by a moment
  class Group;

  explicit EgressRelays(int max_open = 64);
  ~EgressRelays();  // ends every relay, and waits for their threads
  EgressRelays(const EgressRelays&) = delete;
  EgressRelays& operator=(const EgressRelays&) = delete;

  // A group of at most `max_open` relays at once (within this object's own limit).
  std::unique_ptr<Group> NewGroup(int max_open = 8);
  int open_count() const;

 private:
  std::shared_ptr<State> state_;
};

class EgressRelays::Group {
 public:
  ~Group();  // ends the group's relays, and waits for their threads
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  // Connects to `target` within `timeout` (ConnectEgress) and relays between it and `inside` (a
  // Unix stream socket; taken, and closed when the relay ends) until `until` at the latest.
  // kResourceExhausted while the group's or the server's relays are all open; ConnectEgress's
  // errors. `inside` is closed on every error.
  Status Open(const EgressTarget& target, int inside, std::chrono::milliseconds timeout,
              std::chrono::steady_clock::time_point until);
  int open_count() const;

 private:
  friend class EgressRelays;
  Group(std::shared_ptr<State> server, int max_open);
  struct Shared;
  std::shared_ptr<State> server_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace datasite::net

#endif  // DATASITE_NET_EGRESS_H_
