#include "api/operations.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "api/api.h"

namespace datasite::api {
namespace {

TEST(OperationsTest, BuiltInRoutesHavePySyftNames) {
  EXPECT_EQ(NameOperation("GET", "/api/v1/users", "users").Id(), "user.get_all");
  EXPECT_EQ(NameOperation("POST", "/api/v1/users", "users").Id(), "user.create");
  EXPECT_EQ(NameOperation("PATCH", "/api/v1/users/{id}", "users").Id(), "user.update");
  EXPECT_EQ(NameOperation("GET", "/api/v1/datasets", "datasets").Id(), "dataset.get_all");
  EXPECT_EQ(NameOperation("GET", "/api/v1/requests/{id}", "requests").Id(), "request.get_by_uid");
  EXPECT_EQ(NameOperation("GET", "/api/v1/settings", "settings").Id(), "settings.get");
  EXPECT_EQ(NameOperation("GET", "/api/v1/jobs/{id}", "jobs").Id(), "job.get");
}

TEST(OperationsTest, BuiltInRoutesDeclareTheirQueryParameters) {
  auto users = NameOperation("GET", "/api/v1/users", "users");
  EXPECT_EQ(std::set<std::string>(users.query.begin(), users.query.end()),
            (std::set<std::string>{"page", "page_size", "page_index", "search"}));
  EXPECT_TRUE(NameOperation("GET", "/api/v1/users/{id}", "users").query.empty());
}

// A route added without a row in the table still gets a usable name.
TEST(OperationsTest, UnlistedRoutesGetDerivedNames) {
  EXPECT_EQ(NameOperation("POST", "/api/v1/requests/{id}/deposit", "requests").Id(),
            "request.deposit");
  EXPECT_EQ(NameOperation("GET", "/api/v1/widgets", "widgets").Id(), "widgets.get_all");
  EXPECT_EQ(NameOperation("POST", "/api/v1/widgets", "widgets").Id(), "widgets.create");
  EXPECT_EQ(NameOperation("GET", "/api/v1/jobs/{id}/stream-logs", "jobs").Id(),
            "job.get_stream_logs");
  EXPECT_EQ(NameOperation("PATCH", "/api/v1/jobs/{id}", "jobs").Id(), "job.update");
  EXPECT_EQ(NameOperation("DELETE", "/api/v1/things/{id}", "").Id(), "things.delete");
}

TEST(OperationsTest, CustomEndpointPathOfAnotherServiceIsAccepted) {
  EXPECT_TRUE(CheckCustomEndpointPath("bigquery.test_query").ok());
  EXPECT_TRUE(CheckCustomEndpointPath("first.query").ok());
}

TEST(OperationsTest, CustomEndpointPathOfABuiltInServiceIsRefused) {
  for (const char* path : {"user.get_all", "user.anything", "dataset.x", "settings.get",
                           "request.get_all_pending", "code_history.get_history"}) {
    Status st = CheckCustomEndpointPath(path);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << path;
    EXPECT_NE(st.message().find("built-in"), std::string::npos) << st.message();
  }
}

TEST(OperationsTest, MalformedCustomEndpointPathIsRefused) {
  for (const char* path :
       {"", "query", "a.b.c", ".query", "big.", "1a.b", "big query.x", "big.que-ry"}) {
    EXPECT_EQ(CheckCustomEndpointPath(path).code(), StatusCode::kInvalidArgument) << path;
  }
}

TEST(OperationsTest, OpenApiDocumentCarriesUniqueOperationIds) {
  http::Router router;
  for (const char* pattern : {"/api/v1/users", "/api/v1/users/{id}", "/api/v1/widgets"}) {
    http::Route route;
    route.method = "GET";
    route.pattern = pattern;
    route.tag = std::string(pattern).find("users") != std::string::npos ? "users" : "widgets";
    router.Add(std::move(route));
  }
  http::Route twin;  // derives the same name as GET /api/v1/widgets
  twin.method = "GET";
  twin.pattern = "/api/v1/widgets/";
  twin.tag = "widgets";
  router.Add(std::move(twin));
  auto doc = nlohmann::json::parse(OpenApiDocument(router));
  EXPECT_EQ(doc["info"]["x-api-version"], kApiVersion);
  EXPECT_EQ(doc["paths"]["/api/v1/users"]["get"]["operationId"], "user.get_all");
  EXPECT_EQ(doc["paths"]["/api/v1/users/{id}"]["get"]["operationId"], "user.view");
  EXPECT_EQ(doc["paths"]["/api/v1/widgets"]["get"]["operationId"], "widgets.get_all");
  EXPECT_EQ(doc["paths"]["/api/v1/widgets/"]["get"]["operationId"], "widgets.get_all_get");
  bool has_page_index = false;
  for (const auto& p : doc["paths"]["/api/v1/users"]["get"]["parameters"]) {
    if (p["name"] == "page_index" && p["in"] == "query") has_page_index = true;
  }
  EXPECT_TRUE(has_page_index);
}

}  // namespace
}  // namespace datasite::api
