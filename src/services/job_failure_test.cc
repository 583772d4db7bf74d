#include "services/job_failure.h"

#include <gtest/gtest.h>

namespace datasite::services {
namespace {

using sandbox::Outcome;

TEST(JobFailureTest, ResourceLimitsAreToldApartByTheSandboxsOwnTexts) {
  EXPECT_EQ(ClassifyFailure(Outcome::kResourceLimit, "memory limit of 2 GiB reached"),
            FailureKind::kMemory);
  EXPECT_EQ(ClassifyFailure(Outcome::kResourceLimit, "CPU time limit of 60 s reached"),
            FailureKind::kCpuTime);
  EXPECT_EQ(
      ClassifyFailure(Outcome::kResourceLimit, "the result is larger than the limit of 256 MiB"),
      FailureKind::kResultTooLarge);
}

TEST(JobFailureTest, EveryOtherOutcomeHasItsKind) {
  EXPECT_EQ(ClassifyFailure(Outcome::kError, "ValueError: oops 42"), FailureKind::kCodeError);
  EXPECT_EQ(ClassifyFailure(Outcome::kTimeout, "wall-clock timeout of 1 s"), FailureKind::kTimeout);
  EXPECT_EQ(ClassifyFailure(Outcome::kKilled, "cancelled"), FailureKind::kKilled);
  EXPECT_EQ(ClassifyFailure(Outcome::kSandboxFailure, "/srv/x: gone"), FailureKind::kSandbox);
}

// Regression: a private run's exception text (and its type name) reached its requester.
TEST(JobFailureTest, TheTextAKindShowsNamesNothingTheCodeChose) {
  for (auto kind : {FailureKind::kCodeError, FailureKind::kTimeout, FailureKind::kMemory,
                    FailureKind::kCpuTime, FailureKind::kResultTooLarge, FailureKind::kKilled,
                    FailureKind::kSandbox, FailureKind::kNotKept, FailureKind::kInputPolicyRefused,
                    FailureKind::kOutputPolicyRefused, FailureKind::kPolicyError}) {
    const std::string text = PrivateFailureText(kind);
    EXPECT_FALSE(text.empty());
    EXPECT_EQ(text.find("Error:"), std::string::npos) << text;
    EXPECT_NE(std::string(FailureName(kind)), "");
  }
  // The code's own choice of failure can't be told from the text beyond its kind.
  EXPECT_EQ(PrivateFailureText(ClassifyFailure(Outcome::kError, "ValueError: 1")),
            PrivateFailureText(ClassifyFailure(Outcome::kError, "KeyError: 'secret'")));
}

TEST(JobFailureTest, APolicysRefusalIsToldByWhichPolicyNotByItsText) {
  EXPECT_EQ(ClassifyFailure(Outcome::kPolicy, "P refused: secret 42", "input"),
            FailureKind::kInputPolicyRefused);
  EXPECT_EQ(ClassifyFailure(Outcome::kPolicy, "P refused: secret 42", "output"),
            FailureKind::kOutputPolicyRefused);
  EXPECT_EQ(ClassifyFailure(Outcome::kPolicy, "P.apply_to_output raised", "error"),
            FailureKind::kPolicyError);
  EXPECT_EQ(ClassifyFailure(Outcome::kPolicy, "anything", "unknown"), FailureKind::kPolicyError);
}

}  // namespace
}  // namespace datasite::services
