#include "core/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace datasite {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_FALSE(s.retry_after_seconds().has_value());
}

TEST(StatusTest, OkFactoryIsOk) {
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = NotFoundError("no such user");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "no such user");
}

TEST(StatusTest, HelpersMapToTheirCodes) {
  EXPECT_EQ(InvalidArgumentError("x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(UnauthenticatedError("x").code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(PermissionDeniedError("x").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(NotFoundError("x").code(), StatusCode::kNotFound);
  EXPECT_EQ(AlreadyExistsError("x").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(FailedPreconditionError("x").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ResourceExhaustedError("x").code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(UnavailableError("x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(InternalError("x").code(), StatusCode::kInternal);
}

TEST(StatusTest, ToStringNamesCodeAndMessage) {
  EXPECT_EQ(InvalidArgumentError("bad email").ToString(), "INVALID_ARGUMENT: bad email");
}

TEST(StatusTest, WithRetryAfterSetsHint) {
  Status s = ResourceExhaustedError("slow down").WithRetryAfter(42);
  ASSERT_TRUE(s.retry_after_seconds().has_value());
  EXPECT_EQ(*s.retry_after_seconds(), 42);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
}

TEST(StatusTest, CopyKeepsEverything) {
  Status s = ResourceExhaustedError("slow down").WithRetryAfter(7);
  Status copy = s;
  EXPECT_EQ(copy.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(copy.message(), "slow down");
  EXPECT_EQ(copy.retry_after_seconds(), std::optional<int>(7));
}

TEST(StatusCodeNameTest, NamesEveryCode) {
  const std::vector<std::pair<StatusCode, std::string>> expected = {
      {StatusCode::kOk, "OK"},
      {StatusCode::kInvalidArgument, "INVALID_ARGUMENT"},
      {StatusCode::kUnauthenticated, "UNAUTHENTICATED"},
      {StatusCode::kPermissionDenied, "PERMISSION_DENIED"},
      {StatusCode::kNotFound, "NOT_FOUND"},
      {StatusCode::kAlreadyExists, "ALREADY_EXISTS"},
      {StatusCode::kFailedPrecondition, "FAILED_PRECONDITION"},
      {StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED"},
      {StatusCode::kUnavailable, "UNAVAILABLE"},
      {StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED"},
      {StatusCode::kInternal, "INTERNAL"},
  };
  for (const auto& [code, name] : expected) {
    EXPECT_EQ(StatusCodeName(code), name) << static_cast<int>(code);
  }
}

TEST(StatusCodeNameTest, OutOfRangeCodeIsUnknown) {
  EXPECT_EQ(StatusCodeName(static_cast<StatusCode>(999)), "UNKNOWN");
}

TEST(ResultTest, HoldsValue) {
  Result<int> r = 5;
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5);
  EXPECT_EQ(r.value(), 5);
  EXPECT_TRUE(r.status().ok());
}

TEST(ResultTest, HoldsError) {
  Result<int> r = NotFoundError("gone");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "gone");
}

TEST(ResultTest, OkStatusBecomesInternalError) {
  Result<int> r = Status::Ok();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

TEST(ResultTest, ArrowReachesMembers) {
  Result<std::string> r = std::string("hello");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 5u);
}

TEST(ResultTest, MovesOutMoveOnlyValue) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(3);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 3);
}

TEST(ResultTest, KeepsRetryAfterOfItsStatus) {
  Result<int> r = ResourceExhaustedError("wait").WithRetryAfter(3);
  EXPECT_EQ(r.status().retry_after_seconds(), std::optional<int>(3));
}

// Helpers for the macro tests.
Status Fails() { return PermissionDeniedError("no"); }
Status Succeeds() { return Status::Ok(); }
Result<int> Number(bool ok) {
  if (!ok) return InvalidArgumentError("not a number");
  return 21;
}

Status ReturnIfErrorTwice(bool first_fails, int* reached) {
  RETURN_IF_ERROR(first_fails ? Fails() : Succeeds());
  *reached = 1;
  RETURN_IF_ERROR(Succeeds());
  *reached = 2;
  return Status::Ok();
}

TEST(StatusMacrosTest, ReturnIfErrorPropagatesError) {
  int reached = 0;
  Status s = ReturnIfErrorTwice(/*first_fails=*/true, &reached);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "no");
  EXPECT_EQ(reached, 0);
}

TEST(StatusMacrosTest, ReturnIfErrorContinuesOnOk) {
  int reached = 0;
  Status s = ReturnIfErrorTwice(/*first_fails=*/false, &reached);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(reached, 2);
}

Status ReturnIfErrorOnResult(bool ok) {
  RETURN_IF_ERROR(Number(ok));
  return AlreadyExistsError("reached the end");
}

TEST(StatusMacrosTest, ReturnIfErrorAcceptsResult) {
  EXPECT_EQ(ReturnIfErrorOnResult(false).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReturnIfErrorOnResult(true).code(), StatusCode::kAlreadyExists);
}

Result<int> Doubled(bool ok) {
  ASSIGN_OR_RETURN(int n, Number(ok));
  return n * 2;
}

TEST(StatusMacrosTest, AssignOrReturnAssignsValue) {
  Result<int> r = Doubled(true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 42);
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesError) {
  Result<int> r = Doubled(false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "not a number");
}

Status AssignToExisting(bool ok, int* out) {
  int n = 0;
  ASSIGN_OR_RETURN(n, Number(ok));
  *out = n;
  return Status::Ok();
}

TEST(StatusMacrosTest, AssignOrReturnAssignsExistingVariable) {
  int out = 0;
  EXPECT_TRUE(AssignToExisting(true, &out).ok());
  EXPECT_EQ(out, 21);
  out = 0;
  EXPECT_EQ(AssignToExisting(false, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out, 0);
}

Result<int> TwoAssignsInOneScope() {
  ASSIGN_OR_RETURN(int a, Number(true));
  ASSIGN_OR_RETURN(int b, Number(true));
  return a + b;
}

TEST(StatusMacrosTest, AssignOrReturnTwiceInOneScope) {
  Result<int> r = TwoAssignsInOneScope();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 42);
}

Result<std::unique_ptr<int>> MakeBox(bool ok) {
  if (!ok) return NotFoundError("no box");
  return std::make_unique<int>(9);
}

Result<int> Unbox(bool ok) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> box, MakeBox(ok));
  return *box;
}

TEST(StatusMacrosTest, AssignOrReturnMovesMoveOnlyValue) {
  EXPECT_EQ(*Unbox(true), 9);
  EXPECT_EQ(Unbox(false).status().code(), StatusCode::kNotFound);
}

Status PropagateRetryAfter() {
  RETURN_IF_ERROR(ResourceExhaustedError("wait").WithRetryAfter(5));
  return Status::Ok();
}

TEST(StatusMacrosTest, ReturnIfErrorKeepsRetryAfter) {
  Status s = PropagateRetryAfter();
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.retry_after_seconds(), std::optional<int>(5));
}

}  // namespace
}  // namespace datasite
