// How a run failed, as its requester may learn it: a kind from a fixed list and a fixed text for
// each. A run on private data can fail with text its code chose (an exception's message and type
// name, an exit code, a signal number), which may quote private values; its requester sees only
// the kind, and data owners see the sandbox's own words (see CodeService::MaySeeErrorDetail).
#ifndef DATASITE_SERVICES_JOB_FAILURE_H_
#define DATASITE_SERVICES_JOB_FAILURE_H_

#include <string>

#include "sandbox/sandbox.h"

namespace datasite::services {

enum class FailureKind {
  kCodeError,            // the code raised, crashed, exited, or returned what can't be sent back
  kTimeout,              // the job's wall-clock limit
  kMemory,               // the memory limit
  kCpuTime,              // the CPU time limit
  kResultTooLarge,       // the result size limit
  kKilled,               // killed by its user or a data owner
  kSandbox,              // the sandbox failed (not the code's fault)
  kNotKept,              // its result or logs would pass a storage limit and were dropped
  kInputPolicyRefused,   // the code's custom input policy refused the run
  kOutputPolicyRefused,  // the code's custom output policy refused the run or its result
  kPolicyError,          // a custom policy raised, or kept a state that is not small JSON
  // Nothing of the code ran: its pool's environment lacks a module it imports, or the sandbox
  // could not start it. Not counted against the code's output policy.
  kEnvironment,
};

// The kind's wire name: "code_error", "timeout", "memory", "cpu_time", "result_too_large",
// "killed", "sandbox", "not_kept", "input_policy_refused", "output_policy_refused", "policy_error",
// "environment".
const char* FailureName(FailureKind kind);

// The kind of a failed sandbox run. A resource limit is told apart by the sandbox's own texts
// (which the code can't choose, only which limit it reaches); a policy's by `policy_refusal`
// (sandbox::JobResult::policy_refusal). REQUIRES: outcome != kOk.
FailureKind ClassifyFailure(sandbox::Outcome outcome, const std::string& sandbox_error,
                            const std::string& policy_refusal = "");

// The fixed text a requester sees for a failed run on private data.
std::string PrivateFailureText(FailureKind kind);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_JOB_FAILURE_H_
