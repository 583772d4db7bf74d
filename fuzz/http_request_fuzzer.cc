// Raw bytes from a client socket through the whole request path: the Boost.Beast request parser
// with the server's limits, the target split into a percent-decoded path and query
// (http::PercentDecode, http::ParseQuery), the Router's matching and path parameters, and the API
// route table's handlers (authentication, role checks, JSON bodies, the services) on a real store.
// Upload routes open their sink, are written the body and finished, as the server does.
//
// The input may hold several pipelined requests (at most 4 are handled). The request conversion
// mirrors Session::OnHeader in src/http/server.cc, which keeps it in an unnamed namespace.
//
// Handlers of routes that hash a password whatever the input (creating a user, changing a user's
// or one's own password) are matched but not run: argon2id takes ~100 ms. Logins and registrations
// run, limited to one attempt per client address (the clock does not move), so they hash at most
// once per world.
//
// Placeholders in the path and body are replaced before routing, so that corpus inputs can name
// the world's objects, whose ids are random: @admin@, @owner@, @scientist@ (user ids), @blob@
// (a blob no dataset uses), @data@ and @mock@ (an asset's blobs), @dataset@ (a dataset id).
//
// Checks: no handler throws; no response is a 500; every JSON response body parses.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

// Boost 1.74's asio needs <utility> first (see src/http/server.cc).
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "api/api.h"
#include "fuzz_util.h"
#include "http/message.h"
#include "http/router.h"
#include "http/server.h"
#include "jobs/job_queue.h"
#include "services/audit.h"
#include "services/code.h"
#include "world.h"

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using datasite::fuzz::Check;
using datasite::fuzz::World;
using datasite::http::Request;
using datasite::http::Response;
using datasite::http::Route;
using datasite::http::Router;

const datasite::http::ServerOptions kOptions;  // the server's default limits
// A world is rebuilt after this many inputs, so that what requests add does not pile up.
constexpr int kInputsPerWorld = 2000;

// The world, its objects, and the API on top of it.
struct Api {
  Api() : world(AccountsOptions()) {
    auto owner = world.As("fuzz-owner");
    placeholders["@admin@"] = world.UserId("info@example.org");
    placeholders["@owner@"] = world.UserId("owner@example.org");
    placeholders["@scientist@"] = world.UserId("scientist@example.org");
    placeholders["@data@"] = Upload(owner, "csv", "name,age,score\nada,36,1.5\nbob,41,2.25\n");
    placeholders["@blob@"] = Upload(owner, "json", R"({"a": [1, 2.5, "x", null, true]})");
    auto mock = world.datasets().MakeMock(owner, placeholders["@data@"], {}, 7);
    Check(mock.ok(), "make a mock");
    placeholders["@mock@"] = mock->id;
    datasite::services::NewDataset d;
    d.name = "people";
    d.summary = "a small table";
    d.contributors.push_back({"Ada", "ada@example.org", "author"});
    d.assets.push_back({"table", "the table", placeholders["@data@"], mock->id, false});
    auto created = world.datasets().Create(owner, d);
    Check(created.ok(), "make a dataset");
    placeholders["@dataset@"] = created->id;
    // The code routes with a queue that has no workers and a sandbox that failed to start: jobs
    // are recorded and refused, never run.
    queue = std::make_unique<datasite::jobs::JobQueue>(world.store(), world.clock(),
                                                       datasite::jobs::QueueOptions{.workers = 0});
    code = std::make_unique<datasite::services::CodeService>(
        world.store(), world.blobs(), world.settings(), *queue, world.datasets().storage(),
        world.clock(), world.code_options());
    code->SetSandboxFailure(datasite::FailedPreconditionError("no sandbox while fuzzing"));
    projects =
        std::make_unique<datasite::services::ProjectService>(world.store(), *code, world.clock());
    audit = std::make_unique<datasite::services::AuditService>(world.store());
    context = std::make_unique<datasite::api::ApiContext>(datasite::api::ApiContext{
        world.accounts(), world.settings(), world.datasets(), *code, *projects, *audit, ready});
    datasite::api::AddRoutes(router, *context);
  }

  static datasite::services::AccountsOptions AccountsOptions() {
    datasite::services::AccountsOptions o;
    o.login.attempts_per_source = 1;
    o.login.failures_per_source_account = 1;
    o.login.failures_per_account = 1;
    return o;
  }

  std::string Upload(const datasite::services::Principal& owner, const std::string& format,
                     std::string_view bytes) {
    auto upload = world.datasets().StartUpload(owner, format);
    Check(upload.ok() && (*upload)->Write(bytes).ok(), "upload a blob");
    auto blob = (*upload)->Finish();
    Check(blob.ok(), "finish an upload");
    return blob->id;
  }

  void Substitute(std::string& s) const {
    if (s.find('@') == std::string::npos) return;
    for (const auto& [name, value] : placeholders) {
      for (size_t i = s.find(name); i != std::string::npos; i = s.find(name, i + value.size())) {
        s.replace(i, name.size(), value);
      }
    }
  }

  World world;
  std::unique_ptr<datasite::jobs::JobQueue> queue;
  std::unique_ptr<datasite::services::CodeService> code;
  std::unique_ptr<datasite::services::ProjectService> projects;
  std::unique_ptr<datasite::services::AuditService> audit;
  std::atomic<bool> ready{true};
  std::map<std::string, std::string> placeholders;
  std::unique_ptr<datasite::api::ApiContext> context;
  Router router;
};

std::unique_ptr<Api>& TheApi() {
  static auto* api = new std::unique_ptr<Api>();
  return *api;
}

bool HasFields(const std::string& body, std::initializer_list<const char*> fields) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object()) return false;
  for (const char* f : fields) {
    if (!j.contains(f)) return false;
  }
  return true;
}

// Whether the handler would hash a password (see the top of this file).
bool HashesPassword(Api& api, const Route& route, const Request& req) {
  if (route.method == "POST" && route.pattern == "/api/v1/users") {
    return HasFields(req.body, {"password"});
  }
  if (route.method == "PATCH" && route.pattern == "/api/v1/users/{id}") {
    return HasFields(req.body, {"password"});
  }
  if (route.method == "POST" && route.pattern == "/api/v1/account/password") {
    return HasFields(req.body, {"old_password", "new_password"});
  }
  if (route.method == "POST" && route.pattern == "/api/v1/auth/register") {
    // Data owners and admins register users without the client address's attempt budget.
    auto caller = api.world.accounts().Authenticate(req.authorization);
    return caller.ok() && datasite::auth::AtLeast(caller->role, datasite::auth::Role::kDataOwner) &&
           HasFields(req.body, {"password"});
  }
  return false;
}

// Whether a request changed what the world's fixed objects are (a user, a dataset, the settings),
// so that the next input needs a new world.
bool Changed(const Request& req, const Response& res) {
  if (res.status >= 300) return false;
  return req.method == "DELETE" || req.method == "PATCH";
}

void CheckResponse(const Request& req, const Response& res) {
  std::string what = req.method + " " + req.path.substr(0, 200);
  Check(res.status != 500, "500 for " + what + ": " + res.body);
  Check(res.status >= 200 && res.status < 600, "a bad status for " + what);
  // A file or a streamed download (a blob, of JSON say) is the stored bytes, not an answer.
  if (res.file_path.empty() && !res.body_source && res.content_type == "application/json") {
    Check(nlohmann::json::accept(res.body), "an invalid JSON body for " + what + ": " + res.body);
  }
}

// Runs the route's handler (or its upload sink) on a complete request, as the server's Dispatch
// and upload pipeline do.
Response Handle(const Route& route, Request& req) {
  if (!route.open_sink) {
    try {
      return route.handler(req);
    } catch (const std::exception& e) {
      Check(false, "handler " + route.method + " " + route.pattern + " threw: " + e.what());
    }
  }
  // The server calls open_sink and Write outside any try block: an exception there ends the
  // process, so it is left to crash here too.
  auto sink = route.open_sink(req);
  if (!sink.ok()) return datasite::http::ErrorResponse(sink.status());
  // The server writes the body in chunks of up to 1 MiB; small ones here reach the seams.
  std::string_view body = req.body;
  for (size_t i = 0; i < body.size(); i += 4096) {
    auto st = (*sink)->Write(body.substr(i, 4096));
    if (!st.ok()) return datasite::http::ErrorResponse(st);
  }
  try {
    return (*sink)->Finish();
  } catch (const std::exception& e) {
    Check(false, std::string("upload Finish threw: ") + e.what());
  }
  return {};
}

// Handles one parsed request. Returns false when the connection would be closed after it; sets
// `*changed` when the world must be rebuilt.
bool Serve(Api& api, bhttp::request_parser<bhttp::string_body>& parser, bool* changed) {
  auto& msg = parser.get();
  Request req;
  req.method = std::string(msg.method_string());
  std::string_view target(msg.target().data(), msg.target().size());
  size_t q = target.find('?');
  req.path = datasite::http::PercentDecode(target.substr(0, q), false);
  if (q != std::string_view::npos) req.query = datasite::http::ParseQuery(target.substr(q + 1));
  req.authorization = std::string(msg[bhttp::field::authorization]);
  req.content_type = std::string(msg[bhttp::field::content_type]);
  req.remote_address = "192.0.2.1";
  req.body = std::move(msg.body());
  api.Substitute(req.path);
  api.Substitute(req.body);

  const Route* route = nullptr;
  switch (api.router.Find(req, &route)) {
    case Router::Match::kNoPath:
    case Router::Match::kWrongMethod:
      Check(route == nullptr, "Find set a route without a match");
      return msg.keep_alive();
    case Router::Match::kFound:
      break;
  }
  Check(route != nullptr && route->method == req.method, "Find matched another method");
  for (const auto& [name, value] : req.path_params) {
    Check(!value.empty() && value.find('/') == std::string::npos, "a bad path parameter");
    Check(route->pattern.find("{" + name + "}") != std::string::npos, "an unknown path parameter");
  }
  if (HashesPassword(api, *route, req)) return msg.keep_alive();
  Response res = Handle(*route, req);
  CheckResponse(req, res);
  *changed = Changed(req, res);
  return msg.keep_alive();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int inputs = 0;
  auto& api = TheApi();
  if (!api || ++inputs % kInputsPerWorld == 0) {
    api.reset();
    api = std::make_unique<Api>();
  }
  bool changed = false;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  for (int n = 0; n < 4 && !in.empty(); ++n) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(kOptions.header_limit));
    parser.body_limit(kOptions.body_limit);
    parser.eager(true);
    beast::error_code ec;
    while (!in.empty() && !parser.is_done()) {
      size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
      in.remove_prefix(used);
      if (ec || used == 0) break;
    }
    if (ec == bhttp::error::need_more || (!ec && !parser.is_done())) {
      // The client closed the connection here: a body without a length ends now.
      ec = {};
      parser.put_eof(ec);
    }
    if (ec || !parser.is_done()) break;
    bool keep_alive = Serve(*api, parser, &changed);
    if (changed) break;
    api->world.RestoreSessions();
    if (!keep_alive) break;
  }
  if (changed) api.reset();
  return 0;
}
