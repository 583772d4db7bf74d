// Router: maps a method and a path pattern ("/api/v1/users/{id}") to a handler. Knows no routes
// itself.
#ifndef DATASITE_HTTP_ROUTER_H_
#define DATASITE_HTTP_ROUTER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace datasite::http {

// Where a handler runs. I/O threads never run handlers (only a route's `answer_inline`).
enum class Lane {
  kDefault,  // the request pool: database and light CPU work
  kHeavy,    // the CPU-heavy pool (password hashing), so that it never delays other requests
  kWait,     // handlers that mostly wait (a blocking job run), so they never hold the request pool
  // Upload routes: their bodies' writes (into a blob store that may wait on the network) and
  // their finish (a whole file read back and parsed), so that uploads, however large or slow,
  // never hold the request pool.
  kUpload,
};

struct Route {
  std::string method;
  std::string pattern;
  std::function<Response(Request&)> handler;
  // For upload routes, instead of `handler`: called once the headers are in (request.body is
  // empty); the body is then streamed into the sink. An error Status is sent as the response.
  std::function<Result<std::unique_ptr<BodySink>>(Request&)> open_sink;
  Lane lane = Lane::kDefault;
  // Largest body of a route without `open_sink`, in bytes; 0: the server's body_limit. Routes
  // anyone may call take small bodies, so that an anonymous caller holds little memory.
  size_t body_limit = 0;
  // Optional: picks the lane of each request instead of `lane`, from the whole request (its body
  // included), e.g. a job run that waits for its job on the wait lane and one that does not on
  // the request pool. Called on the request pool, before `handler`; must be quick.
  std::function<Lane(const Request&)> choose_lane;
  // Optional, for routes whose answer is usually in memory: called on the I/O thread before
  // `handler`, so it must not block (no database, file or network I/O; locks held only briefly).
  // It answers, or returns nullopt when it can't tell without blocking (then `handler` runs on its
  // lane as usual). It must never answer differently from `handler`.
  std::function<std::optional<Response>(Request&)> answer_inline;
  // Documentation for the OpenAPI document.
  std::string summary;
  std::string min_role;        // "" for routes open to anyone
  std::string request_schema;  // JSON Schema of the body, as JSON text; "" when there is none
  std::string tag;
};

// How the server tells, before it reads a body into memory for a route that needs a role, whether
// the caller's Authorization header names a live session with that role (see
// Router::SetTokenCheck), so that neither a made-up token nor a session of a lesser role (a
// guest's, which anyone may get) holds body memory. Both are given the request (its headers, method
// and path; no body) and the route's `min_role`.
struct TokenCheck {
  // Called on an I/O thread, so it must not block: Ok for a session known in memory to be live
  // with the role, the refusal the handler would give for one known to be bad or short of it,
  // nullopt when only `check` can tell.
  std::function<std::optional<Status>(const Request& request, const std::string& min_role)>
      in_memory;
  // Called on the request pool when `in_memory` can't tell; may read the database.
  std::function<Status(const Request& request, const std::string& min_role)> check;
};

// Matching is exact on literal segments; "{name}" matches one non-empty segment. Not thread-safe to
// modify; safe for concurrent lookups once built.
class Router {
 public:
  void Add(Route route);
  // Gives the route added as `method` `pattern` an `answer_inline` (see Route). The route must
  // exist.
  void SetAnswerInline(std::string_view method, std::string_view pattern,
                       std::function<std::optional<Response>(Request&)> answer);
  // Gives the route added as `method` `pattern` a `choose_lane` (see Route). The route must exist.
  void SetChooseLane(std::string_view method, std::string_view pattern,
                     std::function<Lane(const Request&)> choose);

  // Without one, a body for a route that needs a role is read for any caller that sends a token
  // (the handler then checks it).
  void SetTokenCheck(TokenCheck check) { token_check_ = std::move(check); }
  const TokenCheck& token_check() const { return token_check_; }

  enum class Match { kFound, kNoPath, kWrongMethod };
  // On kFound sets `*route` and fills request.path_params.
  Match Find(Request& request, const Route** route) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  // The route added as `method` `pattern`; aborts when there is none (a wiring mistake).
  Route& Added(std::string_view method, std::string_view pattern);

  std::vector<Route> routes_;
  TokenCheck token_check_;
};

}  // namespace datasite::http

#endif  // DATASITE_HTTP_ROUTER_H_
