// Routes for differential privacy (docs/PRIVACY.md; services/dp.h).
#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_body.h"
#include "api/route_table.h"
#include "services/dp.h"

namespace datasite::api {

using auth::Role;
using internal::Reply;
using nlohmann::json;
using services::Principal;

namespace {

// A query's body (the query and the cost routes take the same one), refused as malformed or too
// deep before it is parsed.
Result<json> QueryBody(const http::Request& req) {
  RETURN_IF_ERROR(JsonBody::Parse(req.body, {"query", "column", "where", "group_by", "epsilon",
                                             "delta", "quantiles", "mock"})
                      .status());
  return json::parse(req.body);
}

}  // namespace

void AddDpRoutes(http::Router& router, ApiContext& ctx) {
  auto routes = std::make_shared<internal::Routes>(router, ctx);
  services::DpService* dp = ctx.dp;
  auto available = [dp]() -> Status {
    if (dp == nullptr) return UnavailableError("this server answers no DP queries");
    return Status::Ok();
  };
  routes->Add(
      "PUT", "/api/v1/assets/{id}/dp_policy", Role::kDataOwner, "dp",
      "Set a tabular asset's differential-privacy policy (data owners): {privacy_unit, "
      "max_rows_per_unit, columns: {NAME: {type: int|float, lower, upper} | {type: category, "
      "categories}}, budget: {per_scientist: {epsilon, delta}, total: {epsilon, delta}}, "
      "queries}.",
      [dp, available](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        RETURN_IF_ERROR(JsonBody::Parse(req.body, {"privacy_unit", "max_rows_per_unit", "columns",
                                                   "budget", "queries"})
                            .status());
        json doc = json::parse(req.body);
        ASSIGN_OR_RETURN(json policy, dp->SetPolicy(caller, req.path_params["id"], doc));
        return Reply{200, std::move(policy), {}};
      });
  routes->Add("GET", "/api/v1/assets/{id}/dp_policy", Role::kDataScientist, "dp",
              "An asset's differential-privacy policy (its bounds and categories are public).",
              [dp, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json policy, dp->GetPolicy(caller, req.path_params["id"]));
                return Reply{200, std::move(policy), {}};
              });
  routes->Add("DELETE", "/api/v1/assets/{id}/dp_policy", Role::kDataOwner, "dp",
              "Remove an asset's DP policy (data owners): no more DP queries on it.",
              [dp, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                RETURN_IF_ERROR(dp->DeletePolicy(caller, req.path_params["id"]));
                return Reply{200, {{"deleted", req.path_params["id"]}}, {}};
              });
  routes->Add(
      "POST", "/api/v1/assets/{id}/dp/query", Role::kDataScientist, "dp",
      "Answer a DP query on the asset's private data, charged to the caller's budget before the "
      "answer is sent ({query: count|sum|mean|variance|quantile, column?, where?, group_by?, "
      "epsilon, delta?, quantiles?}; mock: true answers on the mock, free). 409 with what is "
      "left when the budget can't pay.",
      [dp, available](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        ASSIGN_OR_RETURN(json doc, QueryBody(req));
        ASSIGN_OR_RETURN(json answer, dp->Query(caller, req.path_params["id"], doc));
        return Reply{200, std::move(answer), {}};
      });
  routes->Add("POST", "/api/v1/assets/{id}/dp/cost", Role::kDataScientist, "dp",
              "What a DP query would cost, and what the caller's budget has left; runs nothing.",
              [dp, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json doc, QueryBody(req));
                ASSIGN_OR_RETURN(json cost, dp->Cost(caller, req.path_params["id"], doc));
                return Reply{200, std::move(cost), {}};
              });
  routes->Add(
      "POST", "/api/v1/assets/{id}/dp/budget", Role::kDataOwner, "dp",
      "Raise a DP budget ({user_id: ID or '*', epsilon: the new total}) or forget what "
      "was spent ({user_id, reset: true}); data owners; audited.",
      [dp, available](http::Request& req, const Principal& caller) -> Result<Reply> {
        RETURN_IF_ERROR(available());
        RETURN_IF_ERROR(JsonBody::Parse(req.body, {"user_id", "epsilon", "reset"}).status());
        json doc = json::parse(req.body);
        ASSIGN_OR_RETURN(json view, dp->AdjustBudget(caller, req.path_params["id"], doc));
        return Reply{200, std::move(view), {}};
      });
  routes->Add("GET", "/api/v1/dp/budget", Role::kDataScientist, "dp",
              "The caller's DP budgets, spent and left (data owners: every scientist's); "
              "?asset_id= for one asset.",
              [dp, available](http::Request& req, const Principal& caller) -> Result<Reply> {
                RETURN_IF_ERROR(available());
                ASSIGN_OR_RETURN(json list, dp->Budgets(caller, req.query.contains("asset_id")
                                                                    ? req.query.at("asset_id")
                                                                    : std::string()));
                return Reply{200, std::move(list), {}};
              });
}

}  // namespace datasite::api
