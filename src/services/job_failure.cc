#include "services/job_failure.h"

namespace datasite::services {

const char* FailureName(FailureKind kind) {
  switch (kind) {
    case FailureKind::kCodeError:
      return "code_error";
    case FailureKind::kTimeout:
      return "timeout";
    case FailureKind::kMemory:
      return "memory";
    case FailureKind::kCpuTime:
      return "cpu_time";
    case FailureKind::kResultTooLarge:
      return "result_too_large";
    case FailureKind::kKilled:
      return "killed";
    case FailureKind::kSandbox:
      return "sandbox";
    case FailureKind::kNotKept:
      return "not_kept";
    case FailureKind::kInputPolicyRefused:
      return "input_policy_refused";
    case FailureKind::kOutputPolicyRefused:
      return "output_policy_refused";
    case FailureKind::kPolicyError:
      return "policy_error";
    case FailureKind::kEnvironment:
      return "environment";
  }
  return "code_error";
}

FailureKind ClassifyFailure(sandbox::Outcome outcome, const std::string& sandbox_error,
                            const std::string& policy_refusal) {
  switch (outcome) {
    case sandbox::Outcome::kPolicy:
      if (policy_refusal == "input") return FailureKind::kInputPolicyRefused;
      if (policy_refusal == "output") return FailureKind::kOutputPolicyRefused;
      return FailureKind::kPolicyError;
    case sandbox::Outcome::kTimeout:
      return FailureKind::kTimeout;
    case sandbox::Outcome::kKilled:
      return FailureKind::kKilled;
    case sandbox::Outcome::kSandboxFailure:
      return FailureKind::kSandbox;
    case sandbox::Outcome::kEnvironment:
      return FailureKind::kEnvironment;
    case sandbox::Outcome::kResourceLimit:
      if (sandbox_error.rfind("CPU time limit", 0) == 0) return FailureKind::kCpuTime;
      if (sandbox_error.rfind("the result is larger", 0) == 0) {
        return FailureKind::kResultTooLarge;
      }
      return FailureKind::kMemory;
    case sandbox::Outcome::kOk:
    case sandbox::Outcome::kError:
      break;
  }
  return FailureKind::kCodeError;
}

std::string PrivateFailureText(FailureKind kind) {
  const std::string hidden =
      " (what it said is shown to data owners only; one can release it to you)";
  switch (kind) {
    case FailureKind::kCodeError:
      return "the code failed on the private data: an error in the code" + hidden;
    case FailureKind::kTimeout:
      return "the run on the private data passed its time limit";
    case FailureKind::kMemory:
      return "the run on the private data reached the memory limit";
    case FailureKind::kCpuTime:
      return "the run on the private data reached the CPU time limit";
    case FailureKind::kResultTooLarge:
      return "the result of the run on the private data is larger than the result limit";
    case FailureKind::kKilled:
      return "the run on the private data was killed";
    case FailureKind::kSandbox:
      return "the sandbox failed while running the job (details in the server log)";
    case FailureKind::kNotKept:
      return "the run's output was not kept: it would pass a storage limit";
    case FailureKind::kInputPolicyRefused:
      return "the input policy refused the run" + hidden;
    case FailureKind::kOutputPolicyRefused:
      return "the output policy refused the result" + hidden;
    case FailureKind::kPolicyError:
      return "a custom policy failed, so no result was released" + hidden;
    case FailureKind::kEnvironment:
      return "the run could not start (nothing of the code ran; it was not counted)";
  }
  return "the run on the private data failed" + hidden;
}

}  // namespace datasite::services
