// Routes for custom API endpoints (docs/API.md, "Custom API endpoints"; services/endpoints.h).
#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"

#include "core/json_depth.h"
#include "services/endpoints.h"

namespace datasite::api {
namespace {

using auth::Role;
using internal::Reply;
using nlohmann::json;
using services::Principal;

// Nesting deeper than this is sent as bytes: the JSON a function returns is user code's, and
// each level is a recursion when it is copied or printed here.
constexpr int kMaxInlineDepth = 256;

// A call's answer: its result (a JSON value inline, other formats as base64) and what it printed.
json CallJson(const services::EndpointResult& r) {
  json out = {{"path", r.path}, {"side", r.side}, {"format", r.format}, {"stdout", r.stdout_text}};
  if (!r.stderr_text.empty()) out["stderr"] = r.stderr_text;
  json value(json::value_t::discarded);
  if (r.format == "json" && !NestsDeeperThan(r.bytes, kMaxInlineDepth))
    value = json::parse(r.bytes, nullptr, false);
  if (!value.is_discarded()) {
    out["result"] = std::move(value);
  } else {
    out["data_base64"] = internal::Base64(r.bytes);
  }
  out["meta"] = r.meta.empty() ? json(nullptr) : json::parse(r.meta, nullptr, false);
  return out;
}

}  // namespace

void AddEndpointRoutes(http::Router& router, ApiContext& ctx) {
  auto routes = std::make_shared<internal::Routes>(router, ctx);
  services::EndpointService* endpoints = ctx.endpoints;
  services::CodeService& code = ctx.code;
  auto available = [endpoints]() -> Status {
    if (endpoints == nullptr) return UnavailableError("this server has no API endpoints");
    return Status::Ok();
  };
  routes->Add(
      "POST", "/api/v1/api_endpoints", Role::kDataOwner, "api_endpoints",
      "Add a custom API endpoint (data owners and admins): {path: 'service.method', mock: "
      "{name, source, settings?, helpers?, signature?, params?, assets?}, private?: likewise, "
      "description?, timeout_seconds?, hide_mock_definition?, output_checks?}.",
      [endpoints, available](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        RETURN_IF_ERROR(
            JsonBody::Parse(req.body, {"path", "description", "mock", "private", "timeout_seconds",
                                       "worker_pool_name", "hide_mock_definition", "output_checks"})
                .status());
        ASSIGN_OR_RETURN(json view, endpoints->Add(caller, json::parse(req.body)));
        return Reply{201, std::move(view), {}};
      });
  routes->Add("GET", "/api/v1/api_endpoints", Role::kDataScientist, "api_endpoints",
              "The custom API endpoints, oldest first: what a data scientist may call (path, "
              "signature, description, the mock's code unless hidden); data owners also read "
              "both functions with their settings and state.",
              [endpoints, available](http::Request&, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json list, endpoints->List(caller));
                return Reply{200, std::move(list), {}};
              });
  routes->Add("GET", "/api/v1/api_endpoints/{path}", Role::kDataScientist, "api_endpoints",
              "One custom API endpoint, as the listing shows it to the caller.",
              [endpoints, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json view, endpoints->Get(caller, req.path_params["path"]));
                return Reply{200, std::move(view), {}};
              });
  routes->Add(
      "PATCH", "/api/v1/api_endpoints/{path}", Role::kDataOwner, "api_endpoints",
      "Change a custom API endpoint (data owners and admins): any of mock, private, "
      "description, timeout_seconds, hide_mock_definition, output_checks; a changed signature "
      "must be the same on both functions.",
      [endpoints, available](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        RETURN_IF_ERROR(
            JsonBody::Parse(req.body, {"description", "mock", "private", "timeout_seconds",
                                       "worker_pool_name", "hide_mock_definition", "output_checks"})
                .status());
        ASSIGN_OR_RETURN(json view,
                         endpoints->Update(caller, req.path_params["path"], json::parse(req.body)));
        return Reply{200, std::move(view), {}};
      });
  routes->Add("DELETE", "/api/v1/api_endpoints/{path}", Role::kDataOwner, "api_endpoints",
              "Delete a custom API endpoint (data owners and admins).",
              [endpoints, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                RETURN_IF_ERROR(endpoints->Delete(caller, req.path_params["path"]));
                return Reply{200, {{"deleted", req.path_params["path"]}}, {}};
              });
  routes->Add(
      "POST", "/api/v1/api_endpoints/{path}/call", Role::kDataScientist, "api_endpoints",
      "Call a custom API endpoint: {side: auto|mock|private, kwargs: {...}}. Data scientists "
      "call the mock function; data owners the private one (auto: private when there is one). "
      "The function runs in the sandbox; the answer is its result and what it printed.",
      [endpoints, available, &code](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        RETURN_IF_ERROR(JsonBody::Parse(req.body, {"side", "kwargs"}).status());
        const json doc = json::parse(req.body);
        std::string side = "auto";
        if (doc.contains("side")) {
          if (!doc["side"].is_string())
            return InvalidArgumentError("'side' must be 'auto', 'mock' or 'private'");
          side = doc["side"];
        }
        const json kwargs = doc.contains("kwargs") ? doc["kwargs"] : json::object();
        // A call holds a thread of the wait lane, as a blocking run does: within the same caps.
        ASSIGN_OR_RETURN(auto place, code.TakeWaitPlace(caller.user_id.value_or("")));
        services::EndpointFailure failure;
        auto result = endpoints->Call(caller, req.path_params["path"], side, kwargs, &failure);
        if (!result.ok() && failure.raised) {
          // The function raised: its error line, and what it printed before, for the caller.
          json error = {
              {"error", {{"code", "FUNCTION_FAILED"}, {"message", result.status().message()}}},
              {"stdout", failure.stdout_text}};
          if (caller.IsDataOwner() && !failure.stderr_text.empty())
            error["stderr"] = failure.stderr_text;  // the traceback, for data owners
          return Reply{422, std::move(error), {}};
        }
        RETURN_IF_ERROR(result.status());
        return Reply{200, CallJson(*result), {}};
      },
      "", http::Lane::kWait, internal::Keys::kIgnore);
}

}  // namespace datasite::api
