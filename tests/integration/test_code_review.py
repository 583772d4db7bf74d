"""A data owner's review as PySyft has it, without its hole, and what a failed private run shows.

- A private run's failure shows its data scientist a kind of failure from a fixed list, nothing the
  code chose (its exception's text and type name, an exit code), in no answer: the job (run,
  get, listing), its logs, its result, the request. Data owners read everything and may release
  the text (``job.release_error()``). Runs on the mocks show their own text.
- The owner's test runs (``request.code.run(...)``, ``unsafe_function(...)``) run in the server's
  sandbox, on the private data or on data the owner passes, and use no run of the policy.
- Decisions change: approve after deny, deny after approve while no result was released; a data
  owner may deposit a result.
"""

import json
import os
import re

import pandas as pd
import pytest

import datasite as sy
from code_helpers import PRIVATE, wait_for_status
from dataset_helpers import blob_files
from helpers import assert_error, needs_sandbox

# The module's server, its actors and their table (fixtures shared with test_code_flow).
from test_code_flow import actors, asset, owner, people, scientist  # noqa: F401

pytestmark = needs_sandbox

# What the failing code below derives from the private data: it must never reach the scientist
# unless an owner releases it. The mock gives another value.
SECRET = "Z{}Q".format(int(PRIVATE["age"].sum()) * 7919)
LEAK_TYPE = "Leak{}".format(int(PRIVATE["age"].sum()) * 7919)


def approved(scientist, owner, func):
    request = scientist.code.request_code_execution(func, reason="review tests")
    assert owner.requests.get(request.id).approve()
    return request.refresh()


def scientist_answers(api, token, job_id, code_id, request_id):
    """Every answer the scientist can get about the job, as raw text."""
    paths = [
        "/api/v1/jobs/" + job_id,
        "/api/v1/jobs",
        "/api/v1/jobs?code_id=" + code_id,
        "/api/v1/jobs/{}/logs".format(job_id),
        "/api/v1/jobs/{}/result".format(job_id),
        "/api/v1/requests/" + request_id,
        "/api/v1/requests",
        "/api/v1/code/" + code_id,
    ]
    return {path: api.get(path, token=token).text for path in paths}


def assert_hidden(texts, *secrets):
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, "{} shows {!r}: {}".format(where, secret, text[:400])


# A. Private exceptions hidden ---------------------------------------------------------------------


def test_a_private_exception_shows_the_scientist_only_its_kind(api, actors, scientist, owner, asset):
    """Regression: ``raise ValueError(f"oops {x}")`` on private data showed the scientist x (and
    the exception's type name) in the job's error, and the traceback to owners only."""

    @sy.syft_function_single_use(data=asset)
    def leaky_failure(data):
        total = int(data["age"].sum()) * 7919
        raise type("Leak{}".format(total), (Exception,), {})("oops Z{}Q".format(total))

    request = approved(scientist, owner, leaky_failure)
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.leaky_failure(data=asset)
    job = failed.value.job
    for text in (str(failed.value), job.error, repr(job), job._repr_html_()):
        assert SECRET not in text and LEAK_TYPE not in text, text
    assert "ValueError" not in str(failed.value) and "Exception" not in job.error
    assert job.failure == "code_error"
    assert "error in the code" in job.error
    assert job.error_released is False
    logs = job.logs()
    assert logs.stderr is None
    answers = scientist_answers(
        api, actors["scientist"].token, job.id, request.code.id, request.id
    )
    assert_hidden(answers, SECRET, LEAK_TYPE, "Traceback")
    assert json.loads(answers["/api/v1/jobs/" + job.id])["failure"] == "code_error"

    # The owner reads everything: the text, the type name, the traceback.
    seen = owner.jobs.get(job.id)
    assert SECRET in seen.error and LEAK_TYPE in seen.error
    assert LEAK_TYPE in seen.logs().stderr and "Traceback" in seen.logs().stderr

    # Only an owner releases it, once.
    with pytest.raises(sy.PermissionDeniedError):
        job.release_error()
    resp = api.post(
        "/api/v1/jobs/{}/release_error".format(job.id), {}, token=actors["scientist"].token
    )
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert isinstance(seen.release_error(), sy.SyftSuccess)
    with pytest.raises(sy.FailedPreconditionError, match="already released"):
        seen.release_error()
    job.refresh()
    assert job.error_released is True
    assert SECRET in job.error and LEAK_TYPE in job.error
    assert LEAK_TYPE in job.logs().stderr


def test_an_exit_code_or_a_timeout_says_only_its_kind(api, actors, scientist, owner, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=sy.OutputPolicyExecuteCount(limit=3)
    )
    def chosen_exit(data):
        import os
        import time

        if len(data) == 5:
            if int(data["age"].iloc[0]) == 31:
                os._exit(77)
        time.sleep(30)

    approved(scientist, owner, chosen_exit)
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.chosen_exit(data=asset)
    job = failed.value.job
    # Ids, times and the test users' emails are random or the clock's: "77" may appear in them by
    # chance (an email's hex suffix held it once).
    told = re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|\d{4}-\d\d-\d\dT[\d:.]+Z|"
                  r"[\w.+-]+@[\w.-]+", "", json.dumps(job.to_dict()))
    assert "77" not in told and job.failure == "code_error"
    assert "77" in owner.jobs.get(job.id).error

    # On the mock (3 rows) it sleeps past its timeout: a mock run says so in its own words.
    with pytest.raises(sy.JobFailedError) as mock_failed:
        scientist.code.chosen_exit.mock(data=asset, timeout_seconds=1)
    assert mock_failed.value.job.failure == "timeout"
    assert "timeout" in mock_failed.value.job.error


def test_a_mock_run_shows_its_own_error_and_traceback(scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def mock_failure(data):
        raise KeyError("mock total {}".format(int(data["age"].sum())))

    scientist.code.submit(mock_failure)
    with pytest.raises(sy.JobFailedError, match="KeyError") as failed:
        scientist.code.mock_failure.mock(data=asset)
    job = failed.value.job
    assert "mock total 60" in job.error and job.failure == "code_error"
    assert "KeyError" in job.logs().stderr


def test_release_error_is_refused_where_there_is_nothing_to_release(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def fine_run(data):
        return len(data)

    approved(scientist, owner, fine_run)
    pointer = scientist.code.fine_run(data=asset)
    assert pointer.get() == len(PRIVATE)
    with pytest.raises(sy.FailedPreconditionError, match="no error"):
        owner.jobs.get(pointer.job.id).release_error()
    mock = scientist.code.fine_run.mock(data=asset)
    with pytest.raises(sy.FailedPreconditionError, match="mocks"):
        owner.jobs.get(mock.job.id).release_error()


# B. The owner's test runs --------------------------------------------------------------------------


def test_request_code_run_runs_in_the_sandbox_on_data_the_owner_passes(
    api, actors, module_server, people, scientist, owner, asset, capsys
):
    @sy.syft_function_single_use(data=asset)
    def reviewed_mean(data):
        import os

        return {"mean": float(data["age"].mean()), "uid": os.getuid()}

    request = scientist.code.request_code_execution(reviewed_mean, reason="review me")
    review = owner.requests.get(request.id)
    # On the private data, as bound.
    value = review.code.run()
    assert value["mean"] == pytest.approx(float(PRIVATE["age"].mean()))
    assert value["uid"] != os.getuid()  # the sandbox's, not this kernel's
    assert "server's sandbox" in capsys.readouterr().out
    # On data the owner passes (what they downloaded, changed): the server runs on exactly that.
    downloaded = owner.datasets[people].assets["people"].data
    part = downloaded[downloaded["age"] > 40]
    blobs_before = blob_files(module_server.data_dir)
    value = review.code.run(data=part)
    assert value["mean"] == pytest.approx(float(part["age"].mean()))
    assert "the data you passed" in capsys.readouterr().out
    # The data uploaded for the run is deleted once the run ended.
    assert blob_files(module_server.data_dir) == blobs_before
    assert review.code.unsafe_function(data=part)["mean"] == pytest.approx(part["age"].mean())
    # None of it is the scientist's: no run of the policy used, no job they can see.
    code = scientist.code.get(request.code.id)
    assert code.output_policy.used == 0
    assert scientist.jobs.get_all(code_id=code.id) == []
    kinds = {j.kind for j in owner.jobs.get_all(code_id=code.id)}
    assert kinds == {"review"}

    # A scientist can't pass data of their own for a private run, nor name a blob.
    with pytest.raises(TypeError, match="pass that asset"):
        scientist.code.reviewed_mean(data=PRIVATE)
    resp = api.post(
        "/api/v1/code/{}/run".format(code.id),
        {"inputs": {"data": {"blob_id": "x"}}, "mock": True},
        token=actors["scientist"].token,
    )
    assert_error(resp, 400, "INVALID_ARGUMENT")


# C. Changing a decision, depositing a result -------------------------------------------------------


def test_approve_after_deny_and_deny_after_approve_keep_the_history(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def changing_mind(data):
        return len(data)

    request = scientist.code.request_code_execution(changing_mind, reason="count")
    review = owner.requests.get(request.id)
    review.deny(reason="not yet")
    review.approve()
    review.deny(reason="on second thought")
    assert request.refresh().status is sy.RequestStatus.DENIED
    assert [d["status"] for d in request.history] == ["denied", "approved", "denied"]
    assert request.history[2]["reason"] == "on second thought"
    with pytest.raises(sy.PermissionDeniedError, match="denied"):
        scientist.code.changing_mind(data=asset)
    with pytest.raises(sy.FailedPreconditionError, match="already denied"):
        review.deny(reason="again")
    review.approve()
    assert scientist.code.changing_mind(data=asset).get() == len(PRIVATE)
    # A result was released: the approval stands.
    with pytest.raises(sy.FailedPreconditionError, match="released"):
        review.deny(reason="too late")
    assert request.refresh().status is sy.RequestStatus.APPROVED
    assert len(request.history) == 4


def test_a_scientist_can_neither_decide_nor_deposit(api, actors, scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def self_approved(data):
        return len(data)

    request = scientist.code.request_code_execution(self_approved, reason="mine")
    token = actors["scientist"].token
    for path, body in (
        ("approve", {}),
        ("deny", {"reason": "x"}),
        ("deposit", {"format": "json", "data": "1"}),
    ):
        resp = api.post("/api/v1/requests/{}/{}".format(request.id, path), body, token=token)
        assert_error(resp, 403, "PERMISSION_DENIED")
    with pytest.raises(sy.PermissionDeniedError):
        request.deposit_result(1)
    assert request.refresh().status is sy.RequestStatus.PENDING
    assert request.history == []


def test_a_deposited_result_reaches_the_scientist_once_approved(api, actors, scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def deposited_stats(data):
        return data.describe()

    request = scientist.code.request_code_execution(deposited_stats, reason="stats")
    review = owner.requests.get(request.id)
    mine = pd.DataFrame({"age": [1.5, 2.5], "n": [3, 4]})
    job = review.deposit_result(mine, log_stdout="computed by hand")
    assert job.deposited and job.status is sy.JobStatus.COMPLETED
    # Held from the scientist while the request is pending.
    held = scientist.jobs.get(job.id)
    assert held.held
    with pytest.raises(sy.FailedPreconditionError, match="held"):
        held.get()
    review.approve()
    pointer = scientist.code.deposited_stats(data=asset)
    assert pointer.job.id == job.id and pointer.reused
    pd.testing.assert_frame_equal(pointer.get(), mine)
    assert "computed by hand" in pointer.logs().stdout
    with pytest.raises(sy.FailedPreconditionError, match="released"):
        review.deny(reason="too late")

    # Bad deposits are refused clearly.
    owner_token = actors["owner"].token
    for body in (
        {"format": "pickle", "data": "x"},
        {"format": "json", "data": "{not json"},
        {"format": "npy", "data": "***"},
        {"format": "json"},
    ):
        resp = api.post("/api/v1/requests/{}/deposit".format(request.id), body, token=owner_token)
        assert_error(resp, 400, "INVALID_ARGUMENT")
    with pytest.raises(TypeError):
        review.deposit_result(object())


def test_a_denial_after_approval_stops_and_holds_the_runs_still_going(scientist, owner, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=sy.OutputPolicyExecuteCount(limit=5)
    )
    def slow_count(data):
        import time

        time.sleep(20)
        return len(data)

    request = approved(scientist, owner, slow_count)
    job = scientist.code.slow_count(data=asset, blocking=False)
    wait_for_status(job, (sy.JobStatus.RUNNING,))
    owner.requests.get(request.id).deny(reason="stop that")
    wait_for_status(job, (sy.JobStatus.KILLED,))
    assert "held until a data owner releases it" in job.error
    with pytest.raises(sy.JobFailedError, match="held"):
        job.get()
    with pytest.raises(sy.PermissionDeniedError, match="denied"):
        scientist.code.slow_count(data=asset)


def test_deposits_of_every_result_format_come_back_as_deposited(scientist, owner, asset):
    import numpy as np

    @sy.syft_function_single_use(data=asset)
    def deposit_formats(data):
        return len(data)

    request = scientist.code.request_code_execution(deposit_formats, reason="formats")
    review = owner.requests.get(request.id)
    values = [np.arange(6, dtype=np.int32).reshape(2, 3), b"\x00raw", {"n": [1, 2.5, None]}, 7]
    for value in values:
        job = review.deposit_result(value)
        back = owner.jobs.get(job.id).get()
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(back, value)
            assert back.dtype == value.dtype
        else:
            assert back == value
    assert not review.refresh().history  # depositing decides nothing


def test_deposited_frames_series_and_arrays_round_trip_exactly(api, actors, scientist, owner,
                                                               asset):
    """A deposited value reads back exactly as a run's result does: CSV with its typed sidecar."""
    import random

    import roundtrip_values as rv

    @sy.syft_function_single_use(data=asset)
    def deposit_exact(data):
        return data

    request = scientist.code.request_code_execution(deposit_exact, reason="exact deposits")
    review = owner.requests.get(request.id)
    rng = random.Random(1207)
    values = [rv.value_from(rng) for _ in range(30)]
    values += [
        pd.Series(["011", "02"], name="zip"),
        pd.DataFrame({"when": pd.to_datetime(["2024-01-02", None]).tz_localize("UTC"),
                      "kind": pd.Categorical(["b", "a"], categories=["b", "a"], ordered=True)},
                     index=pd.Index([10, 20], name="row")),
        pd.DataFrame({"x": [0.002004008016032064, 1.1312625250501003]}),
    ]
    jobs = [review.deposit_result(value) for value in values]
    for value, job in zip(values, jobs):
        rv.assert_same(value, owner.jobs.get(job.id).get())
    review.approve()
    for value, job in zip(values, jobs):
        rv.assert_same(value, scientist.jobs.get(job.id).get())

    # A sidecar that is not one, or on a format without one, is refused.
    path = "/api/v1/requests/{}/deposit".format(request.id)
    token = actors["owner"].token
    for body in (
        {"format": "json", "data": "1", "meta": {"datasite": "pandas/1", "kind": "frame"}},
        {"format": "csv", "data": "a\r\n1\r\n", "meta": "not an object"},
        {"format": "csv", "data": "a\r\n1\r\n", "meta": {"datasite": "other/9"}},
        {"format": "csv", "data": "a\r\n1\r\n",
         "meta": {"datasite": "pandas/1", "kind": "frame", "columns": [{"dtype": "pickle"}]}},
    ):
        assert_error(api.post(path, body, token=token), 400, "INVALID_ARGUMENT")
