#include "http/router.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/message.h"

namespace datasite::http {
namespace {

// A handler that answers with its own name, so tests can tell routes apart.
Route MakeRoute(const std::string& method, const std::string& pattern) {
  Route r;
  r.method = method;
  r.pattern = pattern;
  r.handler = [name = method + " " + pattern](Request&) {
    Response resp;
    resp.body = name;
    return resp;
  };
  return r;
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(MakeRoute("GET", "/healthz"));
    router_.Add(MakeRoute("GET", "/api/v1/users"));
    router_.Add(MakeRoute("POST", "/api/v1/users"));
    router_.Add(MakeRoute("GET", "/api/v1/users/{id}"));
    router_.Add(MakeRoute("PATCH", "/api/v1/users/{id}"));
    router_.Add(MakeRoute("GET", "/api/v1/projects/{project}/files/{file}"));
  }

  Router::Match Find(const std::string& method, const std::string& path) {
    request_ = Request{};
    request_.method = method;
    request_.path = path;
    route_ = nullptr;
    return router_.Find(request_, &route_);
  }

  // The name of the route found last.
  std::string FoundName() {
    if (route_ == nullptr) return "";
    return route_->handler(request_).body;
  }

  Router router_;
  Request request_;
  const Route* route_ = nullptr;
};

TEST_F(RouterTest, MatchesLiteralPath) {
  ASSERT_EQ(Find("GET", "/healthz"), Router::Match::kFound);
  EXPECT_EQ(FoundName(), "GET /healthz");
  EXPECT_TRUE(request_.path_params.empty());
}

TEST_F(RouterTest, PicksRouteByMethod) {
  ASSERT_EQ(Find("POST", "/api/v1/users"), Router::Match::kFound);
  EXPECT_EQ(FoundName(), "POST /api/v1/users");
  ASSERT_EQ(Find("GET", "/api/v1/users"), Router::Match::kFound);
  EXPECT_EQ(FoundName(), "GET /api/v1/users");
}

TEST_F(RouterTest, CapturesParam) {
  ASSERT_EQ(Find("GET", "/api/v1/users/abc-123"), Router::Match::kFound);
  EXPECT_EQ(FoundName(), "GET /api/v1/users/{id}");
  EXPECT_EQ(request_.path_params, (std::map<std::string, std::string>{{"id", "abc-123"}}));
}

TEST_F(RouterTest, CapturesSeveralParams) {
  ASSERT_EQ(Find("GET", "/api/v1/projects/p1/files/f2"), Router::Match::kFound);
  EXPECT_EQ(request_.path_params,
            (std::map<std::string, std::string>{{"project", "p1"}, {"file", "f2"}}));
}

TEST_F(RouterTest, ParamOfMatchingMethodIsCaptured) {
  ASSERT_EQ(Find("PATCH", "/api/v1/users/u1"), Router::Match::kFound);
  EXPECT_EQ(FoundName(), "PATCH /api/v1/users/{id}");
  EXPECT_EQ(request_.path_params.at("id"), "u1");
}

TEST_F(RouterTest, WrongMethodIsReported) {
  EXPECT_EQ(Find("DELETE", "/api/v1/users/u1"), Router::Match::kWrongMethod);
  EXPECT_EQ(route_, nullptr);
  EXPECT_EQ(Find("POST", "/healthz"), Router::Match::kWrongMethod);
}

TEST_F(RouterTest, MethodIsCaseSensitive) {
  EXPECT_EQ(Find("get", "/healthz"), Router::Match::kWrongMethod);
}

TEST_F(RouterTest, UnknownPathIsNoPath) {
  EXPECT_EQ(Find("GET", "/nope"), Router::Match::kNoPath);
  EXPECT_EQ(route_, nullptr);
  EXPECT_EQ(Find("GET", "/api/v1/user"), Router::Match::kNoPath);
  EXPECT_EQ(Find("GET", "/HEALTHZ"), Router::Match::kNoPath);
}

TEST_F(RouterTest, TrailingSlashDoesNotMatch) {
  EXPECT_EQ(Find("GET", "/healthz/"), Router::Match::kNoPath);
  EXPECT_EQ(Find("GET", "/api/v1/users/"), Router::Match::kNoPath);
  EXPECT_EQ(Find("GET", "/api/v1/users/u1/"), Router::Match::kNoPath);
}

TEST_F(RouterTest, SegmentCountMustMatch) {
  EXPECT_EQ(Find("GET", "/api/v1"), Router::Match::kNoPath);
  EXPECT_EQ(Find("GET", "/api/v1/users/u1/extra"), Router::Match::kNoPath);
  EXPECT_EQ(Find("GET", "/api/v1/projects/p1/files"), Router::Match::kNoPath);
  EXPECT_EQ(Find("GET", "/healthz/more"), Router::Match::kNoPath);
}

TEST_F(RouterTest, EmptyPathIsNoPath) { EXPECT_EQ(Find("GET", ""), Router::Match::kNoPath); }

TEST_F(RouterTest, RootPatternMatchesOnlyRoot) {
  Router router;
  router.Add(MakeRoute("GET", "/"));
  Request req;
  req.method = "GET";
  req.path = "/";
  const Route* route = nullptr;
  EXPECT_EQ(router.Find(req, &route), Router::Match::kFound);
  req.path = "/x";
  EXPECT_EQ(router.Find(req, &route), Router::Match::kNoPath);
}

TEST_F(RouterTest, FirstAddedRouteWins) {
  Router router;
  router.Add(MakeRoute("GET", "/users/me"));
  router.Add(MakeRoute("GET", "/users/{id}"));
  Request req;
  req.method = "GET";
  req.path = "/users/me";
  const Route* route = nullptr;
  ASSERT_EQ(router.Find(req, &route), Router::Match::kFound);
  EXPECT_EQ(route->pattern, "/users/me");
  EXPECT_TRUE(req.path_params.empty());
}

TEST_F(RouterTest, KeepsRoutesInOrder) {
  ASSERT_EQ(router_.routes().size(), 6u);
  EXPECT_EQ(router_.routes()[0].pattern, "/healthz");
  EXPECT_EQ(router_.routes()[5].pattern, "/api/v1/projects/{project}/files/{file}");
}

TEST_F(RouterTest, SetAnswerInlineAttachesToTheNamedRouteOnly) {
  router_.SetAnswerInline("GET", "/api/v1/users/{id}", [](Request&) -> std::optional<Response> {
    Response resp;
    resp.body = "inline";
    return resp;
  });
  ASSERT_EQ(Find("GET", "/api/v1/users/42"), Router::Match::kFound);
  ASSERT_TRUE(route_->answer_inline);
  EXPECT_EQ(route_->answer_inline(request_)->body, "inline");
  EXPECT_EQ(FoundName(), "GET /api/v1/users/{id}");  // the handler is unchanged
  ASSERT_EQ(Find("PATCH", "/api/v1/users/42"), Router::Match::kFound);
  EXPECT_FALSE(route_->answer_inline);
  ASSERT_EQ(Find("GET", "/api/v1/users"), Router::Match::kFound);
  EXPECT_FALSE(route_->answer_inline);
}

TEST_F(RouterTest, SetAnswerInlineOnAMissingRouteAborts) {
  EXPECT_DEATH(router_.SetAnswerInline("DELETE", "/api/v1/users/{id}",
                                       [](Request&) { return std::optional<Response>(); }),
               "no route DELETE /api/v1/users/\\{id\\}");
}

// --- ParseQuery and PercentDecode
// -----------------------------------------------------------------------

using Query = std::map<std::string, std::string>;

TEST(ParseQueryTest, SplitsPairs) {
  EXPECT_EQ(ParseQuery("a=1&b=two"), (Query{{"a", "1"}, {"b", "two"}}));
}

TEST(ParseQueryTest, EmptyQueryIsEmpty) { EXPECT_TRUE(ParseQuery("").empty()); }

TEST(ParseQueryTest, DecodesPercentEscapes) {
  EXPECT_EQ(ParseQuery("q=x%20y%2Fz"), (Query{{"q", "x y/z"}}));
}

TEST(ParseQueryTest, DecodesPlusAsSpace) { EXPECT_EQ(ParseQuery("q=a+b"), (Query{{"q", "a b"}})); }

TEST(ParseQueryTest, EncodedPlusStaysPlus) {
  EXPECT_EQ(ParseQuery("q=a%2Bb"), (Query{{"q", "a+b"}}));
}

TEST(ParseQueryTest, DecodesKeys) { EXPECT_EQ(ParseQuery("my%20key=v"), (Query{{"my key", "v"}})); }

TEST(ParseQueryTest, MissingValueIsEmpty) {
  EXPECT_EQ(ParseQuery("flag&b=1"), (Query{{"flag", ""}, {"b", "1"}}));
  EXPECT_EQ(ParseQuery("a="), (Query{{"a", ""}}));
}

TEST(ParseQueryTest, SkipsEmptyParts) {
  EXPECT_EQ(ParseQuery("&&a=1&&b=2&"), (Query{{"a", "1"}, {"b", "2"}}));
  EXPECT_TRUE(ParseQuery("&").empty());
}

TEST(ParseQueryTest, LastValueWins) { EXPECT_EQ(ParseQuery("a=1&a=2"), (Query{{"a", "2"}})); }

TEST(ParseQueryTest, ValueMayContainEquals) {
  EXPECT_EQ(ParseQuery("a=b=c"), (Query{{"a", "b=c"}}));
}

TEST(ParseQueryTest, KeepsBadEscapesLiterally) {
  EXPECT_EQ(ParseQuery("a=%zz&b=%4"), (Query{{"a", "%zz"}, {"b", "%4"}}));
}

TEST(PercentDecodeTest, DecodesEscapes) {
  EXPECT_EQ(PercentDecode("%41%62%2f%2F", false), "Ab//");
  EXPECT_EQ(PercentDecode("%e2%9c%93", false), "\xe2\x9c\x93");
}

TEST(PercentDecodeTest, DecodesEscapeAtTheEnd) { EXPECT_EQ(PercentDecode("ab%21", false), "ab!"); }

TEST(PercentDecodeTest, DecodesNulByte) {
  EXPECT_EQ(PercentDecode("a%00b", false), std::string("a\0b", 3));
}

TEST(PercentDecodeTest, PlusIsSpaceOnlyWhenAsked) {
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
}

TEST(PercentDecodeTest, KeepsBadEscapesLiterally) {
  EXPECT_EQ(PercentDecode("%zz", false), "%zz");
  EXPECT_EQ(PercentDecode("%4g", false), "%4g");
  EXPECT_EQ(PercentDecode("%g4", false), "%g4");
  EXPECT_EQ(PercentDecode("100%", false), "100%");
}

TEST(PercentDecodeTest, KeepsPercentAtTheEnd) {
  EXPECT_EQ(PercentDecode("%", false), "%");
  EXPECT_EQ(PercentDecode("a%", false), "a%");
  EXPECT_EQ(PercentDecode("a%4", false), "a%4");
  EXPECT_EQ(PercentDecode("%%41", false), "%A");
}

TEST(PercentDecodeTest, DecodesOnlyOnce) { EXPECT_EQ(PercentDecode("%2541", false), "%41"); }

// --- ErrorResponse
// --------------------------------------------------------------------------------------

TEST(ErrorResponseTest, MapsEveryCodeToHttpStatus) {
  const std::vector<std::pair<StatusCode, int>> expected = {
      {StatusCode::kOk, 200},
      {StatusCode::kInvalidArgument, 400},
      {StatusCode::kUnauthenticated, 401},
      {StatusCode::kPermissionDenied, 403},
      {StatusCode::kNotFound, 404},
      {StatusCode::kAlreadyExists, 409},
      {StatusCode::kFailedPrecondition, 409},
      {StatusCode::kResourceExhausted, 429},
      {StatusCode::kUnavailable, 503},
      {StatusCode::kDeadlineExceeded, 504},
      {StatusCode::kInternal, 500},
  };
  for (const auto& [code, http] : expected) {
    EXPECT_EQ(HttpStatusFor(code), http) << StatusCodeName(code);
    if (code == StatusCode::kOk) continue;
    Status st(code, "m");
    if (code == StatusCode::kResourceExhausted) st.WithRetryAfter(1);  // a rate: 429
    EXPECT_EQ(ErrorResponse(st).status, http) << StatusCodeName(code);
  }
}

TEST(ErrorResponseTest, ResourceExhaustedWithoutAWaitIsPayloadTooLarge) {
  Response r = ErrorResponse(ResourceExhaustedError("the upload is larger than the limit"));
  EXPECT_EQ(r.status, 413);
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "PAYLOAD_TOO_LARGE");
  EXPECT_EQ(body["error"]["message"], "the upload is larger than the limit");
}

TEST(ErrorResponseTest, UnknownCodeIsInternalServerError) {
  EXPECT_EQ(HttpStatusFor(static_cast<StatusCode>(999)), 500);
}

TEST(ErrorResponseTest, BodyHasCodeAndMessage) {
  Response r = ErrorResponse(NotFoundError("no user with id x"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  nlohmann::json body = nlohmann::json::parse(r.body);
  ASSERT_TRUE(body.is_object());
  EXPECT_EQ(body.size(), 1u);
  ASSERT_TRUE(body.contains("error"));
  EXPECT_EQ(body["error"].size(), 2u);
  EXPECT_EQ(body["error"]["code"], "NOT_FOUND");
  EXPECT_EQ(body["error"]["message"], "no user with id x");
}

TEST(ErrorResponseTest, BodyNamesEveryCode) {
  for (StatusCode code :
       {StatusCode::kInvalidArgument, StatusCode::kUnauthenticated, StatusCode::kPermissionDenied,
        StatusCode::kNotFound, StatusCode::kAlreadyExists, StatusCode::kFailedPrecondition,
        StatusCode::kResourceExhausted, StatusCode::kUnavailable, StatusCode::kDeadlineExceeded,
        StatusCode::kInternal}) {
    Status st(code, "m");
    if (code == StatusCode::kResourceExhausted) st.WithRetryAfter(1);
    nlohmann::json body = nlohmann::json::parse(ErrorResponse(st).body);
    EXPECT_EQ(body["error"]["code"], std::string(StatusCodeName(code)));
  }
}

TEST(ErrorResponseTest, InternalHidesItsMessage) {
  Response r = ErrorResponse(InternalError("database: disk I/O error at /secret/path"));
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body.find("secret"), std::string::npos) << r.body;
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "INTERNAL");
  EXPECT_EQ(body["error"]["message"], "internal error");
}

TEST(ErrorResponseTest, EscapesMessage) {
  Response r = ErrorResponse(InvalidArgumentError("bad \"quote\"\n and \\ backslash"));
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["message"], "bad \"quote\"\n and \\ backslash");
}

TEST(ErrorResponseTest, InvalidUtf8InMessageStillGivesJson) {
  Response r = ErrorResponse(InvalidArgumentError("bad byte \xff here"));
  nlohmann::json body = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(body.is_discarded()) << r.body;
  EXPECT_EQ(body["error"]["code"], "INVALID_ARGUMENT");
}

TEST(ErrorResponseTest, RetryAfterHeaderWhenSet) {
  Response r = ErrorResponse(ResourceExhaustedError("slow down").WithRetryAfter(42));
  EXPECT_EQ(r.status, 429);
  std::vector<std::pair<std::string, std::string>> expected = {{"Retry-After", "42"}};
  EXPECT_EQ(r.headers, expected);
}

TEST(ErrorResponseTest, NoRetryAfterHeaderWhenUnset) {
  Response r = ErrorResponse(ResourceExhaustedError("slow down"));
  EXPECT_TRUE(r.headers.empty());
}

TEST(ErrorResponseTest, UnauthenticatedAsksForBearer) {
  Response r = ErrorResponse(UnauthenticatedError("log in"));
  std::vector<std::pair<std::string, std::string>> expected = {{"WWW-Authenticate", "Bearer"}};
  EXPECT_EQ(r.headers, expected);
}

TEST(ErrorResponseTest, CustomCodeKeepsStatusAndCode) {
  Response r = ErrorResponse(413, "PAYLOAD_TOO_LARGE", "body over 1 MiB");
  EXPECT_EQ(r.status, 413);
  nlohmann::json body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["error"]["code"], "PAYLOAD_TOO_LARGE");
  EXPECT_EQ(body["error"]["message"], "body over 1 MiB");
}

}  // namespace
}  // namespace datasite::http

namespace datasite::http {
namespace {

// Regression: "//healthz" and "healthz" used to match "/healthz" (empty segments were skipped).
TEST(RouterPathTest, EmptySegmentsAndMissingLeadingSlashDoNotMatch) {
  Router router;
  Route healthz;
  healthz.method = "GET";
  healthz.pattern = "/healthz";
  healthz.handler = [](Request&) { return Response{}; };
  router.Add(healthz);
  for (const char* path : {"//healthz", "healthz", "/api//healthz"}) {
    Request req;
    req.method = "GET";
    req.path = path;
    const Route* route = nullptr;
    EXPECT_EQ(router.Find(req, &route), Router::Match::kNoPath) << path;
  }
}

}  // namespace
}  // namespace datasite::http
