"""``from syft.service.policy.policy import CustomInputPolicy, ...``."""

from ...policies import (
    CustomInputPolicy,
    CustomOutputPolicy,
    EmpyInputPolicy,
    ExactMatch,
    InputPolicy,
    OutputPolicy,
    OutputPolicyExecuteCount,
    OutputPolicyExecuteOnce,
    SingleExecutionExactOutput,
)

__all__ = [
    "CustomInputPolicy",
    "CustomOutputPolicy",
    "EmpyInputPolicy",
    "ExactMatch",
    "InputPolicy",
    "OutputPolicy",
    "OutputPolicyExecuteCount",
    "OutputPolicyExecuteOnce",
    "SingleExecutionExactOutput",
]
