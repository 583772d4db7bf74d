// What the route files share: the reply type, the role-checking wrapper, and small helpers.
#ifndef DATASITE_API_ROUTE_TABLE_H_
#define DATASITE_API_ROUTE_TABLE_H_

#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "http/router.h"

namespace datasite::api::internal {

struct Reply {
  int status = 200;
  nlohmann::json body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, sent as the JSON body verbatim instead of `body` (for pre-rendered JSON).
  std::string raw_json;
  // When set, sent as the JSON body, shared rather than copied (for renderings kept in memory).
  std::shared_ptr<const std::string> shared_json;
  // For small downloads: the bytes to send, of type `content_type` (then `body` is ignored).
  std::optional<std::string> raw_body;
  // For downloads: the file to send and its type (then `body` is ignored).
  std::string file_path;
  std::string content_type;
  // For streamed downloads: the body pulled from this source, `body_size` bytes in all (see
  // http::Response::body_source; then `body` is ignored).
  std::function<Result<size_t>(char* buf, size_t cap)> body_source;
  int64_t body_size = 0;
  // The body carries a secret (a session or reset token): never kept (see http::Response).
  bool secret = false;
};

// A reply whose body carries a secret.
inline Reply SecretReply(nlohmann::json body, int status = 200) {
  Reply r{status, std::move(body), {}};
  r.secret = true;
  return r;
}

using Handler = std::function<Result<Reply>(http::Request&, const services::Principal&)>;

// What a route does with an Idempotency-Key (api/idempotency.h): commit its changes with its
// answer, or ignore it (a handler that waits for other threads after its first write).
enum class Keys { kCommitWithAnswer, kIgnore };
using SinkOpener = std::function<Result<std::unique_ptr<http::BodySink>>(
    http::Request&, const services::Principal&)>;

std::string Dump(const nlohmann::json& j);
// Standard base64 (with padding) of `bytes`: a result's bytes in a JSON answer.
std::string Base64(const std::string& bytes);
// Whether a job run's body asks it not to wait for its job ({"blocking": false}).
bool AsksNotToBlock(const http::Request& req);
Result<int64_t> QueryInt(const http::Request& req, const char* name, int64_t fallback);
// A JSON Schema for an object with fields of the given JSON types ("string", "boolean", "array",
// ...).
std::string Schema(std::initializer_list<std::pair<const char*, const char*>> fields,
                   std::initializer_list<const char*> required = {});

// Adds routes to a router, each behind authentication and its lowest role. Borrows both.
class Routes {
 public:
  Routes(http::Router& router, ApiContext& ctx) : router_(router), ctx_(ctx) {}

  // A route callable by `min_role` and above (Role::kNone: anyone, token optional).
  void Add(const char* method, const char* pattern, auth::Role min_role, const char* tag,
           const char* summary, Handler handler, std::string schema = "",
           http::Lane lane = http::Lane::kDefault, Keys keys = Keys::kCommitWithAnswer);
  // A route whose body is streamed into the sink `open` returns.
  void AddUpload(const char* method, const char* pattern, auth::Role min_role, const char* tag,
                 const char* summary, SinkOpener open);

 private:
  http::Router& router_;
  ApiContext& ctx_;
};

// The caller, or the refusal for a caller below `min_role`.
// Ok when `principal` may call `req` on a route that needs `min_role`: kUnauthenticated for an
// anonymous one, kPermissionDenied for a lesser role (what Authorize answers).
Status RoleAllows(const services::Principal& principal, const http::Request& req,
                  auth::Role min_role);
Result<services::Principal> Authorize(ApiContext& ctx, const http::Request& req,
                                      auth::Role min_role);
// The HTTP response for a handler's result.
http::Response Render(Result<Reply> reply);
// A request as the caller may see it, with its code and decisions (as GET /api/v1/requests/{id}).
Result<nlohmann::json> RenderRequestJson(services::CodeService& code,
                                         const services::Principal& caller,
                                         const store::CodeRequest& request);

}  // namespace datasite::api::internal

#endif  // DATASITE_API_ROUTE_TABLE_H_
