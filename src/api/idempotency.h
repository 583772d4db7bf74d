// Idempotency keys: a change sent with an `Idempotency-Key` header is applied at most once. Its
// store changes commit together with its answer (store::Store::RunIdempotent), so a client that
// lost the answer (its server died, a proxy timed out) sends the request again with the same key
// and gets the first answer back, marked `Idempotent-Replayed: true`, instead of a second change.
#ifndef DATASITE_API_IDEMPOTENCY_H_
#define DATASITE_API_IDEMPOTENCY_H_

#include <functional>
#include <string>

#include "http/message.h"
#include "store/store.h"

namespace datasite::api {

// Answers larger than this are not kept: a retry learns that the change was applied, not its
// answer (409 ANSWER_NOT_KEPT).
inline constexpr size_t kMaxKeptAnswerBytes = 64 * 1024;

// Whether the request is a change that carries a key (POST, PUT, PATCH, DELETE).
bool HasIdempotencyKey(const http::Request& req);

// Runs `handle` for `req` at most once per (scope, key): scope is the caller's user id, so that
// keys of different users never meet. A malformed key is a 400; a key used before for another
// request (another method, path, query or body) is a 422 IDEMPOTENCY_KEY_REUSED. `owner` (the
// user; a guest's session) keeps store::kMaxIdempotentAnswersPerUser answers over all scopes.
http::Response RunWithIdempotencyKey(store::Store& store, const http::Request& req,
                                     const std::string& scope, const std::string& owner,
                                     const std::function<http::Response()>& handle);

}  // namespace datasite::api

#endif  // DATASITE_API_IDEMPOTENCY_H_
