#include "api/idempotency.h"

#include <sodium.h>

#include <chrono>
#include <string_view>

#include <spdlog/spdlog.h>

namespace datasite::api {
namespace {

bool IsChange(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// Keys are what clients generate (UUIDs, random tokens): short and plain.
bool WellFormedKey(std::string_view key) {
  if (key.empty() || key.size() > 128) return false;
  for (char c : key) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == ':';
    if (!plain) return false;
  }
  return true;
}

// What the request was, so that a key sent again with another request is told apart.
std::string Fingerprint(const http::Request& req) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, 32);
  auto add = [&](std::string_view part) {
    const uint64_t size = part.size();  // length-prefixed: no two requests hash alike by shifting
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(&size), sizeof size);
    crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(part.data()),
                              part.size());
  };
  add(req.method);
  add(req.path);
  for (const auto& [k, v] : req.query) {
    add(k);
    add(v);
  }
  add(req.content_type);
  add(req.body);
  unsigned char out[32];
  crypto_generichash_final(&state, out, sizeof out);
  char hex[sizeof out * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, out, sizeof out);
  return hex;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::Response Replay(const store::IdempotentAnswer& answer, const std::string& fingerprint) {
  if (answer.fingerprint != fingerprint) {
    return http::ErrorResponse(422, "IDEMPOTENCY_KEY_REUSED",
                               "this Idempotency-Key was used before for another request: use a "
                               "new key for each change");
  }
  if (!answer.body) {
    return http::ErrorResponse(409, "ANSWER_NOT_KEPT",
                               "the request with this Idempotency-Key was applied, but its answer "
                               "was too large to keep: read what it changed");
  }
  http::Response res;
  res.status = answer.status;
  res.content_type = answer.content_type;
  res.body = *answer.body;
  res.headers.emplace_back("Idempotent-Replayed", "true");
  return res;
}

}  // namespace

bool HasIdempotencyKey(const http::Request& req) {
  return !req.idempotency_key.empty() && IsChange(req.method);
}

http::Response RunWithIdempotencyKey(store::Store& store, const http::Request& req,
                                     const std::string& scope, const std::string& owner,
                                     const std::function<http::Response()>& handle) {
  if (!WellFormedKey(req.idempotency_key)) {
    return http::ErrorResponse(400, "INVALID_ARGUMENT",
                               "Idempotency-Key must be 1 to 128 letters, digits or -_.:");
  }
  const std::string fingerprint = Fingerprint(req);
  auto kept = store.GetIdempotentAnswer(scope, req.idempotency_key);
  if (!kept.ok()) return http::ErrorResponse(kept.status());
  if (*kept) return Replay(**kept, fingerprint);

  http::Response res;
  auto run = store.RunIdempotent(scope, req.idempotency_key, owner, [&] {
    res = handle();
    store::IdempotentAnswer answer;
    answer.fingerprint = fingerprint;
    answer.status = res.status;
    answer.content_type = res.content_type;
    answer.created_at = NowSeconds();
    // Streams, files, secrets and large bodies are not kept (a retry learns the change was
    // applied).
    const bool plain = !res.body_source && res.file_path.empty() && !res.secret;
    const std::string* body = res.shared_body ? res.shared_body.get() : &res.body;
    if (plain && body->size() <= kMaxKeptAnswerBytes) answer.body = *body;
    return answer;
  });
  if (!run.ok()) {
    spdlog::warn("a change sent with an Idempotency-Key was not kept: {}", run.status().ToString());
    return http::ErrorResponse(503, "UNAVAILABLE",
                               "the change was not applied (the database failed): send it again");
  }
  using Run = store::Store::IdempotentRun;
  if (*run == Run::kCommitted) return res;
  if (*run == Run::kNoChange && res.status < 400) return res;
  // This run was undone (the same request committed first on another server), or it was refused,
  // perhaps because of what a first run of the same request did (its object exists now): the
  // first run's answer is the answer.
  const bool lost = *run == Run::kLostRace;
  kept = store.GetIdempotentAnswer(scope, req.idempotency_key);
  if (!kept.ok()) return lost ? http::ErrorResponse(kept.status()) : res;
  if (*kept) return Replay(**kept, fingerprint);
  if (lost) return http::ErrorResponse(503, "UNAVAILABLE", "send the request again");
  return res;
}

}  // namespace datasite::api
