// Request ids: the id of the HTTP request a thread works for, so that every log line it writes
// carries it (see log_format.h), and the checks on an id a client sends.
#ifndef DATASITE_OBS_REQUEST_ID_H_
#define DATASITE_OBS_REQUEST_ID_H_

#include <string>
#include <string_view>

namespace datasite::obs {

// Whether a client's X-Request-Id may be kept: 1 to 64 of [A-Za-z0-9._-], so that it can go into
// log lines, JSON and headers as it is.
bool IsSafeRequestId(std::string_view id);
// A new id: 16 lowercase hex digits from a per-thread generator (unique enough to find a request's
// log lines; not a secret).
std::string NewRequestId();

// The id of the request this thread works for; "" when none.
std::string_view CurrentRequestId();

// Sets this thread's request id for its lifetime and restores the previous one after. `id` must
// outlive it. Not thread-safe (per thread by design).
class ScopedRequestId {
 public:
  explicit ScopedRequestId(std::string_view id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  std::string_view previous_;
};

}  // namespace datasite::obs

#endif  // DATASITE_OBS_REQUEST_ID_H_
