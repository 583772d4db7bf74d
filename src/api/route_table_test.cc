#include "api/route_table.h"

#include <gtest/gtest.h>

#include <string>

#include "api/json_body.h"

namespace datasite::api::internal {
namespace {

bool Asks(const std::string& body) {
  http::Request req;
  req.body = body;
  return AsksNotToBlock(req);
}

TEST(AsksNotToBlockTest, ATopLevelBlockingFalseAsks) {
  EXPECT_TRUE(Asks(R"({"blocking": false})"));
  EXPECT_TRUE(Asks(R"({"inputs": {"a": [1, {"b": null}]}, "blocking": false, "mock": true})"));
  EXPECT_TRUE(Asks(R"({"blocking": true, "blocking": false})"));  // the last one counts
}

TEST(AsksNotToBlockTest, AnyOtherBodyDoesNot) {
  for (const char* body :
       {R"({})", R"({"blocking": true})", R"({"blocking": null})", R"({"blocking": 0})",
        R"({"blocking": "false"})", R"({"blocking": {}})", R"({"blocking": []})",
        R"({"blocking": false, "blocking": true})", R"({"x": {"blocking": false}})",
        R"({"x": [{"blocking": false}]})", R"([{"blocking": false}])", R"(false)", "", "not json",
        R"({"blocking": false)", R"({"blocking": false} x)"}) {
    EXPECT_FALSE(Asks(body)) << body;
  }
}

// anon_run_body_parse: the lane choice parsed any body of up to 1 MiB into a document, before its
// caller was authorized and without the depth check JsonBody::Parse has. A body too deep for
// JsonBody::Parse is not read for the lane at all (the handler refuses it).
TEST(AsksNotToBlockTest, ABodyNestedTooDeepIsNotRead) {
  const int depth = kMaxBodyDepth + 1;
  EXPECT_FALSE(Asks(R"({"blocking": false, "x": )" + std::string(depth, '[') +
                    std::string(depth, ']') + "}"));
  EXPECT_TRUE(Asks(R"({"blocking": false, "x": )" + std::string(depth - 2, '[') +
                   std::string(depth - 2, ']') + "}"));
}

}  // namespace
}  // namespace datasite::api::internal
