// Custom API endpoints (PySyft 0.9's TwinAPIEndpoint): a data owner's pair of Python functions
// under a path "service.method" — a mock function any user may call, and an optional private
// function that runs for data owners and inside approved code that took the endpoint as an input.
//
// Both functions run in the sandbox, each call in a fresh child like a job's, with the endpoint's
// timeout: never in the server. A function gets a `context` (PySyft's TwinAPIContextView):
// `settings` (the owner's, such as a password: a data scientist never reads the private function's,
// nor the mock's), `user` (who calls), `state` (a dict kept between calls, one per function; calls
// of one function are serialised in this process, and a write over a state another process changed
// meanwhile fails the call, so a hand-written rate limit holds), `code` (helper functions) and
// `assets` (dataset assets the function binds: the private data for the private function, the
// mock for the mock).
//
// A call is synchronous: it is not a job, keeps nothing but its audit entry, and answers with its
// result and what it printed. A call made from inside a job goes through the host (see
// sandbox::JobSpec::on_call): the endpoint's function runs in a sandbox of its own (the endpoint
// sandbox), so the job's code never shares a process with the endpoint's settings.
#ifndef DATASITE_SERVICES_ENDPOINTS_H_
#define DATASITE_SERVICES_ENDPOINTS_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "blob/blob_store.h"
#include "core/clock.h"
#include "core/status.h"
#include "net/egress.h"
#include "sandbox/sandbox.h"
#include "services/principal.h"
#include "store/store.h"

namespace datasite::services {

struct EndpointOptions {
  // The longest call a data owner may allow (the server's job timeout), and the default one.
  int64_t max_timeout_ms = 60'000;
  int64_t default_timeout_ms = 60'000;
  sandbox::Limits limits;  // wall_timeout is set per call
  // Where a call's result is written while it runs (a directory of the server's own).
  std::string scratch_dir;
  // The sandbox the functions run in, started at the first call (most servers have no endpoints,
  // and a warm process costs memory); or set one with SetSandbox.
  std::optional<sandbox::Options> sandbox;
  // The hosts private functions may connect to (--endpoint-egress); none by default. Mock
  // functions and data scientists' code never reach any.
  std::vector<net::EgressTarget> egress;
  // Checks a path ("service.method") may name an endpoint (api::CheckCustomEndpointPath).
  std::function<Status(std::string_view)> check_path;
};

// A call's outcome, for its caller.
struct EndpointResult {
  std::string path;
  std::string side;    // "mock" | "private"
  std::string format;  // "json" | "csv" | "npy" | "bytes"
  std::string bytes;
  std::string meta;  // a CSV result's sidecar, '' for none
  std::string stdout_text;
  std::string stderr_text;  // data owners only ('' otherwise)
};

// A failed call: the status, and what it printed (shown where its result would have been).
struct EndpointFailure {
  bool raised = false;  // the function raised (HTTP 422); else the call did not run as asked
  std::string stdout_text;
  std::string stderr_text;  // its traceback: data owners only
};

// Who a call inside a job is made for, and where it goes.
struct JobCallContext {
  Principal user;                        // the job's user
  bool private_run = false;              // a run on private data (else on mocks)
  std::vector<std::string> bound_paths;  // the endpoints the code took as inputs
  std::string job_id;
  // Set by a private call whose result an endpoint's output checks held: the job is held for
  // review (its requester is told the rule).
  std::string held_reason;
};

// Safe for concurrent use.
class EndpointService {
 public:
  EndpointService(store::Store& store, blob::BlobStore& blobs, const Clock& clock,
                  EndpointOptions options);

  // The sandbox the functions run in (a separate one from the jobs', so that a job waiting for
  // its endpoint call never waits for its own slot), or why there is none.
  void SetSandbox(std::unique_ptr<sandbox::Sandbox> sandbox);
  void SetSandboxFailure(Status why);

  // Data owners: add, change (any of the body's keys), delete. Everyone: list and read, each
  // endpoint shown as the caller may see it (see docs/API.md, "Custom API endpoints").
  Result<nlohmann::json> Add(const Principal& caller, const nlohmann::json& body);
  Result<nlohmann::json> Update(const Principal& caller, const std::string& path,
                                const nlohmann::json& body);
  Status Delete(const Principal& caller, const std::string& path);
  Result<nlohmann::json> List(const Principal& caller);
  Result<nlohmann::json> Get(const Principal& caller, const std::string& path);

  // Calls the endpoint's function: `side` "auto" (the private function for data owners when there
  // is one, else the mock), "mock" or "private" (data owners only). Audited.
  Result<EndpointResult> Call(const Principal& caller, const std::string& path,
                              const std::string& side, const nlohmann::json& kwargs,
                              EndpointFailure* failure = nullptr);

  // Answers a job's call (sandbox::JobSpec::on_call) made for `context`.
  sandbox::EndpointAnswer CallFromJob(JobCallContext& context, const sandbox::EndpointCall& call);
  // The parameters of the endpoint at `path` (for positional arguments in a job); empty when it
  // is gone.
  std::vector<std::string> ParamsOf(const std::string& path);
  // Whether the endpoint at `path` checks its private results (an owner's output_checks).
  bool HasOutputChecks(const std::string& path);

 private:
  struct Side;
  struct Definition;
  // The definition as stored (written from a parsed one).
  static Result<Definition> ReadDefinition(const store::ApiEndpoint& e);
  Result<Definition> ParseDefinition(const nlohmann::json& body, bool partial,
                                     const Definition* base);
  nlohmann::json View(const Principal& caller, const store::ApiEndpoint& e,
                      const Definition& d) const;
  // Runs one side of the endpoint for `user`, for at most its timeout (and `at_most` when
  // positive); on failure fills `failure`.
  Result<EndpointResult> RunSide(const Principal& user, const store::ApiEndpoint& e,
                                 const Definition& d, bool private_side,
                                 const nlohmann::json& kwargs, EndpointFailure* failure,
                                 std::chrono::milliseconds at_most = {});
  Result<sandbox::Sandbox*> WaitForSandbox();
  Status Audit(const Principal& actor, const std::string& action, const std::string& target,
               const std::string& detail);
  std::timed_mutex& SideLock(const std::string& path, bool private_side);
  // Whether a function's code (or a helper's) names `state`: its calls are then serialised.
  static bool UsesState(const Side& side);
  // A user's turn to run a call: one at a time per user, waited for until a deadline.
  class UserTurn {
   public:
    UserTurn(EndpointService& service, std::string user)
        : service_(service), user_(std::move(user)) {}
    ~UserTurn();
    UserTurn(const UserTurn&) = delete;
    UserTurn& operator=(const UserTurn&) = delete;
    bool Wait(std::chrono::steady_clock::time_point deadline);

   private:
    EndpointService& service_;
    std::string user_;
    bool held_ = false;
  };

  store::Store& store_;
  blob::BlobStore& blobs_;
  const Clock& clock_;
  EndpointOptions options_;

  net::EgressRelays relays_;  // private functions' connections (options_.egress)
  std::mutex sandbox_mu_;
  std::condition_variable sandbox_cv_;
  std::unique_ptr<sandbox::Sandbox> sandbox_;
  std::optional<Status> sandbox_failure_;

  std::mutex locks_mu_;
  std::map<std::string, std::unique_ptr<std::timed_mutex>> side_locks_;
  std::mutex turns_mu_;
  std::condition_variable turns_cv_;
  std::set<std::string> running_;  // Guarded by turns_mu_: users with a call running.
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_ENDPOINTS_H_
