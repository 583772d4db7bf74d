#include "api/route_table.h"

#include <sodium.h>

#include <cstring>

#include "api/idempotency.h"
#include "api/json_body.h"
#include "core/random.h"

namespace datasite::api::internal {

using auth::Role;
using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string Base64(const std::string& bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

Result<int64_t> QueryInt(const http::Request& req, const char* name, int64_t fallback) {
  auto it = req.query.find(name);
  if (it == req.query.end() || it->second.empty()) return fallback;
  const std::string& v = it->second;
  if (v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgumentError(std::string("query parameter '") + name +
                                "' must be a whole number");
  }
  return std::stoll(v);
}

std::string Schema(std::initializer_list<std::pair<const char*, const char*>> fields,
                   std::initializer_list<const char*> required) {
  json props = json::object();
  for (auto [name, type] : fields) props[name] = {{"type", type}};
  json j = {{"type", "object"}, {"additionalProperties", false}, {"properties", props}};
  if (required.size() > 0)
    j["required"] = json(std::vector<std::string>(required.begin(), required.end()));
  return j.dump();
}

Result<services::Principal> Authorize(ApiContext& ctx, const http::Request& req, Role min_role) {
  auto authenticated = ctx.accounts.Authenticate(req.authorization);
  if (min_role == Role::kNone) {
    // Open routes ignore a stale or malformed token: the caller is simply anonymous.
    if (!authenticated.ok() && authenticated.status().code() == StatusCode::kUnauthenticated) {
      return services::Principal{};
    }
    return authenticated;
  }
  ASSIGN_OR_RETURN(services::Principal principal, std::move(authenticated));
  RETURN_IF_ERROR(RoleAllows(principal, req, min_role));
  return principal;
}

Status RoleAllows(const services::Principal& principal, const http::Request& req, Role min_role) {
  if (!principal.authenticated()) return UnauthenticatedError("log in first");
  if (!auth::AtLeast(principal.role, min_role)) {
    return PermissionDeniedError("as a " + std::string(auth::RoleName(principal.role)) +
                                 " you may not call " + req.method + " " + req.path);
  }
  return Status::Ok();
}

http::Response Render(Result<Reply> reply) {
  if (!reply.ok()) return http::ErrorResponse(reply.status());
  http::Response res;
  res.status = reply->status;
  res.headers = std::move(reply->headers);
  res.secret = reply->secret;
  if (reply->body_source) {
    res.body_source = std::move(reply->body_source);
    res.body_size = reply->body_size;
    res.content_type = std::move(reply->content_type);
    return res;
  }
  if (!reply->file_path.empty()) {
    res.file_path = std::move(reply->file_path);
    res.content_type = std::move(reply->content_type);
    return res;
  }
  if (reply->raw_body) {
    res.body = std::move(*reply->raw_body);
    res.content_type = std::move(reply->content_type);
    return res;
  }
  if (reply->shared_json) {
    res.shared_body = std::move(reply->shared_json);
  } else {
    res.body = reply->raw_json.empty() ? Dump(reply->body) : std::move(reply->raw_json);
  }
  return res;
}

namespace {

// Looks for a top-level "blocking": false while the parser reads a body, keeping nothing of it.
// Like json::parse, a repeated key counts as its last value.
class BlockingScan final : public json::json_sax_t {
 public:
  bool asks_not_to_block() const { return asks_not_to_block_; }

  bool null() override { return Value(false); }
  bool boolean(bool value) override { return Value(!value); }
  bool number_integer(json::number_integer_t) override { return Value(false); }
  bool number_unsigned(json::number_unsigned_t) override { return Value(false); }
  bool number_float(json::number_float_t, const json::string_t&) override { return Value(false); }
  bool string(json::string_t&) override { return Value(false); }
  bool binary(json::binary_t&) override { return Value(false); }
  bool start_object(std::size_t) override {
    ++depth_;
    return Value(false);
  }
  bool key(json::string_t& key) override {
    at_blocking_ = depth_ == 1 && key == "blocking";
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  // A body that is an array is no object: the scan stops there.
  bool start_array(std::size_t) override { return depth_++ > 0 && Value(false); }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  // A value was read: when it is that of the top-level "blocking", whether it is false.
  bool Value(bool is_false) {
    if (at_blocking_) asks_not_to_block_ = is_false;
    at_blocking_ = false;
    return true;
  }

  int depth_ = 0;
  bool at_blocking_ = false;  // the next value is that of the top-level "blocking"
  bool asks_not_to_block_ = false;
};

}  // namespace

bool AsksNotToBlock(const http::Request& req) {
  // Called before the handler authorizes the caller (to choose its lane): the body is scanned,
  // never built into a document (1 MiB of small values would be ~500k nodes), and a body too deep
  // for JsonBody::Parse is not scanned at all (the handler refuses it).
  if (NestsDeeperThan(req.body, kMaxBodyDepth)) return false;
  BlockingScan scan;
  return json::sax_parse(req.body, &scan) && scan.asks_not_to_block();
}

namespace {

constexpr size_t kAnonymousBodyLimit = 16 << 10;

// Whether a change can commit together with its answer (see RunWithIdempotencyKey), holding the
// store from its first write to its answer: not when its handler waits for other threads that use
// the store (the wait lane: a blocking job run waits for its job, a kill for the job to stop), nor
// when it hashes a password after a write (the heavy lane: a shared login limit writes first),
// which would hold every other request of the server. A run asked not to block
// ({"blocking": false}) is a plain change.
bool Deferrable(const http::Request& req, http::Lane lane) {
  if (lane == http::Lane::kDefault) return true;
  if (lane == http::Lane::kHeavy) return false;
  return AsksNotToBlock(req);
}

http::Route Describe(const char* method, const char* pattern, Role min_role, const char* tag,
                     const char* summary) {
  http::Route route;
  route.method = method;
  route.pattern = pattern;
  route.summary = summary;
  route.tag = tag;
  route.min_role = min_role == Role::kNone ? "" : std::string(auth::RoleName(min_role));
  // Anyone may call these (log in, sign up, reset a password; and, with a guest session anyone
  // may get, log out or read): their bodies are a few fields, and a small limit keeps what an
  // anonymous caller makes the server hold small.
  if (!auth::AtLeast(min_role, Role::kDataScientist)) route.body_limit = kAnonymousBodyLimit;
  return route;
}
}  // namespace

void Routes::Add(const char* method, const char* pattern, Role min_role, const char* tag,
                 const char* summary, Handler handler, std::string schema, http::Lane lane,
                 Keys keys) {
  http::Route route = Describe(method, pattern, min_role, tag, summary);
  route.lane = lane;
  route.request_schema = std::move(schema);
  route.handler = [&ctx = ctx_, min_role, lane, keys,
                   handler = std::move(handler)](http::Request& req) {
    auto principal = Authorize(ctx, req, min_role);
    if (!principal.ok()) return http::ErrorResponse(principal.status());
    if (ctx.idempotency_store != nullptr && principal->authenticated() && HasIdempotencyKey(req) &&
        keys == Keys::kCommitWithAnswer && Deferrable(req, lane)) {
      // Keys are kept per session: one caller never sees another's answers, nor one session the
      // answer of a change bound to another (a logout answered for a session it did not end).
      // (token_hash is raw bytes: hex, for a TEXT column.)
      const std::string scope = "session:" + HexEncode(principal->token_hash);
      // A user's answers are capped over all their sessions (a new login starts no new count).
      const std::string owner = principal->user_id ? "user:" + *principal->user_id : scope;
      return RunWithIdempotencyKey(*ctx.idempotency_store, req, scope, owner,
                                   [&] { return Render(handler(req, *principal)); });
    }
    return Render(handler(req, *principal));
  };
  router_.Add(std::move(route));
}

void Routes::AddUpload(const char* method, const char* pattern, Role min_role, const char* tag,
                       const char* summary, SinkOpener open) {
  http::Route route = Describe(method, pattern, min_role, tag, summary);
  route.request_schema = R"({"type": "string", "format": "binary"})";
  route.lane = http::Lane::kUpload;
  route.open_sink = [&ctx = ctx_, min_role, open = std::move(open)](
                        http::Request& req) -> Result<std::unique_ptr<http::BodySink>> {
    ASSIGN_OR_RETURN(services::Principal principal, Authorize(ctx, req, min_role));
    return open(req, principal);
  };
  router_.Add(std::move(route));
}

}  // namespace datasite::api::internal
