"""Code on private data, end to end through the Python client against a launched server.

A data owner uploads a table with a private and a mock part; a data scientist prototypes on the
mock, submits code and asks for its approval; the owner reviews it (source, inputs, policies, who,
why), runs it on the private data, approves or denies it; the scientist then runs it and gets
results computed from the private data, within the output policy. One server for the module:
every test submits functions of its own names, so tests do not disturb each other (output review,
a server setting, gets a server of its own).
"""

import io
import threading

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from code_helpers import (
    MOCK,
    PRIVATE,
    WAIT_SECONDS,
    asset_of,
    make_code_actors,
    upload_people,
    wait_for_status,
)
from helpers import needs_sandbox, PASSWORD, Api, assert_error, client_for

pytestmark = needs_sandbox

PRIVATE_MEAN = float(PRIVATE["age"].mean())
MOCK_MEAN = float(MOCK["age"].mean())
assert PRIVATE_MEAN != MOCK_MEAN


@pytest.fixture(scope="module")
def actors(module_server):
    return make_code_actors(module_server.port)


@pytest.fixture(scope="module")
def people(actors):
    return upload_people(actors["owner"].client)


@pytest.fixture
def scientist(actors):
    return actors["scientist"].client


@pytest.fixture
def owner(actors):
    return actors["owner"].client


@pytest.fixture
def asset(actors, people):
    """The private table's asset as the data scientist reads it."""
    return asset_of(actors["scientist"].client, people)


def request_and_approve(scientist, owner, func, reason="for a test"):
    """Submits ``func``, has the owner approve it; returns the scientist's request (refreshed)."""
    request = scientist.code.request_code_execution(func, reason=reason)
    assert owner.requests.get(request.id).approve()
    return request.refresh()


# Capturing functions (no server) -----------------------------------------------------------------


def test_the_decorator_refuses_what_the_server_could_not_run():
    with pytest.raises(TypeError, match="lambda"):
        sy.syft_function_single_use(x=1)(lambda x: x)

    def outer():
        offset = 3

        @sy.syft_function_single_use(x=1)
        def closure(x):
            return x + offset

    with pytest.raises(TypeError, match="'offset' from the function it is defined in"):
        outer()

    namespace = {"sy": sy}
    with pytest.raises(ValueError, match="cannot find the source of made_by_exec"):
        exec("@sy.syft_function_single_use(x=1)\ndef made_by_exec(x):\n    return x\n", namespace)

    with pytest.raises(TypeError, match="needs 'y'"):

        @sy.syft_function_single_use(x=1)
        def unbound(x, y):
            return x + y

    with pytest.raises(TypeError, match="binds 'z'"):

        @sy.syft_function_single_use(x=1, z=2)
        def unknown_arg(x):
            return x

    with pytest.raises(TypeError, match="with parentheses"):

        @sy.syft_function_single_use
        def no_parentheses(x):
            return x

    with pytest.raises(TypeError, match="generator"):

        @sy.syft_function_single_use(x=1)
        def generator(x):
            yield x


@pytest.mark.parametrize(
    "value,error,match",
    [
        ((1, 2), TypeError, "use a list instead of a tuple"),
        (PRIVATE, TypeError, "pass its asset"),
        (np.int64(3), TypeError, "item()"),
        ({1: "a"}, TypeError, "keys of a JSON object are strings"),
        (float("nan"), ValueError, "JSON cannot carry"),
        (object(), TypeError, "constant JSON value"),
        (sy.Asset(name="local", data=[1], mock=[2]), TypeError, "upload its dataset"),
    ],
)
def test_exact_match_takes_assets_and_json_constants_only(value, error, match):
    with pytest.raises(error, match=match):
        sy.ExactMatch(x=value)


def test_policies_mirror_pysyft():
    assert sy.SingleExecutionExactOutput is sy.OutputPolicyExecuteOnce
    assert sy.OutputPolicyExecuteOnce().to_wire() == {"kind": "single_execution", "limit": 1}
    assert sy.OutputPolicyExecuteCount(limit=3).to_wire() == {"kind": "execute_count", "limit": 3}
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises((TypeError, ValueError)):
            sy.OutputPolicyExecuteCount(limit=bad)
    with pytest.raises(TypeError, match="output_policy"):
        sy.syft_function(output_policy="once")
    assert sy.ExactMatch(bins=10, labels=["a", None], opts={"k": 1.5}).to_wire() == {
        "bins": {"value": 10},
        "labels": {"value": ["a", None]},
        "opts": {"value": {"k": 1.5}},
    }
    assert sy.RequestStatus("denied") is sy.RequestStatus.REJECTED is sy.RequestStatus.DENIED
    assert sy.JobStatus.CREATED is sy.JobStatus.QUEUED and sy.JobStatus.KILLED.finished


def test_submitted_under_another_name_and_source_without_decorators():
    @sy.syft_function(input_policy=sy.ExactMatch(n=3), name="renamed_count")
    def count_to(n):
        return list(range(n))

    assert count_to.name == "renamed_count"
    assert count_to.code == "def renamed_count(n):\n    return list(range(n))\n"
    assert count_to() == [0, 1, 2]
    assert isinstance(count_to.output_policy, sy.SingleExecutionExactOutput)
    assert "renamed_count" in count_to._repr_html_() and "renamed_count" in repr(count_to)


# Prototyping here --------------------------------------------------------------------------------


def test_calling_the_decorated_function_runs_it_here_on_the_mock(asset):
    @sy.syft_function_single_use(data=asset, offset=0)
    def local_mean(data, offset):
        return float(data["age"].mean()) + offset

    assert local_mean() == MOCK_MEAN
    assert local_mean(offset=1) == MOCK_MEAN + 1
    assert local_mean(data=PRIVATE) == PRIVATE_MEAN  # explicit arguments override
    assert local_mean.code.startswith("def local_mean(data, offset):\n")
    assert "syft_function" not in local_mean.code
    assert local_mean.input_kwargs == ["data", "offset"]
    assert local_mean.to_wire()["inputs"] == {
        "data": {"asset_id": asset.id},
        "offset": {"value": 0},
    }


# The whole flow ----------------------------------------------------------------------------------


def test_request_review_approve_then_the_scientist_gets_the_private_result(
    actors, people, scientist, owner, asset
):
    @sy.syft_function_single_use(data=asset, scale=2)
    def scaled_mean_age(data, scale):
        return float(data["age"].mean()) * scale

    request = scientist.code.request_code_execution(
        scaled_mean_age, reason="mean age for the annual report"
    )
    assert isinstance(request, sy.Request)
    assert request.status is sy.RequestStatus.PENDING
    assert (request.code.name, request.code.version) == ("scaled_mean_age", 1)
    assert request.id in [r.id for r in scientist.requests]

    # The owner reads the request: the code, its inputs and policies, who asks and why.
    assert request.id in [r.id for r in owner.requests.pending]
    review = owner.requests.get(request.id)
    assert review.reason == "mean age for the annual report"
    assert review.requested_by["email"] == actors["scientist"].user["email"]
    code = review.code
    assert code.source == scaled_mean_age.code
    assert "syft_function" not in code.source
    assert code.inputs["data"]["asset_id"] == asset.id
    assert code.inputs["data"]["dataset"] == people
    assert code.inputs["data"]["asset"] == "people"
    assert code.inputs["scale"] == {"value": 2}
    assert isinstance(code.output_policy, sy.OutputPolicyExecuteOnce)
    assert (code.output_policy.limit, code.output_policy.used) == (1, 0)
    assert code.status is sy.UserCodeStatus.PENDING
    assert code.assets["data"].name == "people"
    assert code.assets["data"].id == asset.id
    pd.testing.assert_frame_equal(code.assets["data"].data, PRIVATE)
    for shown in (review._repr_html_(), review._repr_markdown_(), repr(review)):
        assert "scaled_mean_age" in shown
        assert "annual report" in shown
        assert actors["scientist"].user["email"] in shown
        assert "single_execution" in shown or "OutputPolicyExecuteOnce" in shown
    assert "float(data[" in code.show_code() and code.show_code == code.source

    # A review run on the private data, before deciding.
    assert code.run() == pytest.approx(PRIVATE_MEAN * 2)

    # Not approved yet: the scientist can't run it on private data.
    with pytest.raises(sy.PermissionDeniedError, match="pending"):
        scientist.code.scaled_mean_age(data=asset)

    approved = review.approve()
    assert isinstance(approved, sy.SyftSuccess)
    assert review.status is sy.RequestStatus.APPROVED
    assert review.reviewed_by["email"] == actors["owner"].user["email"]
    assert request.refresh().status is sy.RequestStatus.APPROVED
    assert scientist.code.scaled_mean_age.status is sy.UserCodeStatus.APPROVED

    pointer = scientist.code.scaled_mean_age(data=asset)
    value = pointer.get()
    assert value == pytest.approx(PRIVATE_MEAN * 2)
    assert value != pytest.approx(MOCK_MEAN * 2)
    assert not pointer.reused
    assert pointer.job.kind == "private"
    assert scientist.code.scaled_mean_age.output_policy.used == 1

    # The policy is used up: the last result again, not a new run.
    with pytest.warns(sy.DatasiteWarning, match="used up"):
        again = scientist.code.scaled_mean_age(data=asset)
    assert again.reused
    assert again.job.id == pointer.job.id
    assert again.get() == value

    # The owner's review run is not among the scientist's jobs.
    kinds = {j.kind for j in scientist.jobs.get_by_user_code_id(code.id)}
    assert kinds == {"private"}
    assert "review" in {j.kind for j in owner.jobs.get_all(code_id=code.id)}


def test_the_same_code_twice_is_refused_naming_the_earlier_one(api, actors, scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def row_count(data):
        return len(data)

    first = scientist.code.request_code_execution(row_count, reason="count")
    with pytest.raises(sy.AlreadyExistsError, match="UserCode with this code already exists") as e:
        scientist.code.request_code_execution(row_count, reason="again")
    assert first.code.id in str(e.value)
    with pytest.raises(sy.AlreadyExistsError, match="already exists"):
        scientist.code.submit(row_count)
    assert [c.id for c in scientist.code.history("row_count")] == [first.code.id]

    resp = api.post("/api/v1/code", row_count.to_wire(), token=actors["scientist"].token)
    assert_error(resp, 409, "ALREADY_EXISTS")
    assert first.code.id in resp.error["message"] or "row_count" in resp.error["message"]
    resp = api.post(
        "/api/v1/requests", {"code_id": first.code.id}, token=actors["scientist"].token
    )
    assert_error(resp, 409, "ALREADY_EXISTS")


def test_submit_then_request_the_submitted_code(scientist, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=sy.OutputPolicyExecuteOnce()
    )
    def oldest(data):
        return int(data["age"].max())

    submitted = scientist.code.submit(oldest)
    assert isinstance(submitted, sy.SyftSuccess)
    code = submitted.value
    assert isinstance(code, sy.UserCode)
    assert code.status is None and code.request is None
    request = scientist.code.request_code_execution(oldest, reason="the oldest")
    assert request.code.id == code.id
    assert code.refresh().request.id == request.id


def test_a_second_version_of_a_function_shows_in_its_history(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def youngest(data):
        return int(data["age"].min())

    v1 = scientist.code.submit(youngest).value

    @sy.syft_function_single_use(data=asset)
    def youngest(data):  # noqa: F811 -- the second version
        return int(data["age"].min()) + 0

    v2 = scientist.code.submit(youngest).value
    assert (v1.version, v2.version) == (1, 2)
    assert [c.id for c in scientist.code.history("youngest")] == [v1.id, v2.id]
    assert [c.version for c in scientist.code_history["youngest"]] == [1, 2]
    assert scientist.code.youngest.id == v2.id
    assert scientist.code["youngest"].id == v2.id
    assert {v1.id, v2.id} <= {c.id for c in owner.code.history("youngest")}
    assert "youngest" in repr(scientist.code_history)


# Jobs --------------------------------------------------------------------------------------------


def test_non_blocking_run_waits_gets_and_logs(scientist, owner, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=sy.OutputPolicyExecuteCount(limit=5)
    )
    def noisy_total(data):
        import sys

        print("rows:", len(data))
        print("a note for the owner", file=sys.stderr)
        return int(data["age"].sum())

    request = request_and_approve(scientist, owner, noisy_total)
    job = scientist.code.noisy_total(data=asset, blocking=False)
    assert isinstance(job, sy.Job)
    assert job.status in (sy.JobStatus.QUEUED, sy.JobStatus.RUNNING, sy.JobStatus.COMPLETED)
    assert job.wait(timeout=WAIT_SECONDS) is job
    assert job.status is sy.JobStatus.COMPLETED
    assert job.get() == int(PRIVATE["age"].sum())
    assert job.result == int(PRIVATE["age"].sum())
    assert (job.kind, job.code_id, job.code_name) == ("private", request.code.id, "noisy_total")
    assert job.result_format == "json"

    logs = job.logs()
    assert "rows: 5" in logs.stdout and "rows: 5" in logs
    assert logs.stderr is None  # stderr is for data owners and admins
    owner_logs = owner.jobs.get(job.id).logs()
    assert "a note for the owner" in owner_logs.stderr
    assert job.id in [j.id for j in scientist.jobs]
    assert job.id in [j.id for j in scientist.jobs.get_all(status="completed")]

    assert "noisy_total" in job._repr_html_() and "noisy_total" in repr(scientist.jobs)


def test_megabyte_logs_are_read_whole_and_alike_on_every_poll(scientist, owner, asset):
    # The logs of an ended job are rendered once and kept; each caller still gets only what it may
    # read, and a status poll carries none of them.
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=sy.OutputPolicyExecuteCount(limit=5)
    )
    def chatty(data):
        import sys

        print("o" * 1_000_000)
        print("e" * 1000, file=sys.stderr)
        return len(data)

    request_and_approve(scientist, owner, chatty)
    job = scientist.code.chatty(data=asset, blocking=False).wait(timeout=WAIT_SECONDS)
    assert job.status is sy.JobStatus.COMPLETED
    assert "stdout" not in job.to_dict() and "logs" not in job.to_dict()
    first, second = job.logs(), job.logs()
    assert first.stdout == second.stdout == "o" * 1_000_000 + "\n"
    assert first.stderr is None and second.stderr is None
    owner_logs = owner.jobs.get(job.id).logs()
    assert owner_logs.stdout == first.stdout
    assert owner_logs.stderr == "e" * 1000 + "\n"
    assert scientist.jobs.get(job.id).logs().stderr is None


def test_execute_count_allows_exactly_limit_runs(scientist, owner, asset):
    @sy.syft_function(
        input_policy=sy.ExactMatch(data=asset), output_policy=sy.OutputPolicyExecuteCount(limit=2)
    )
    def twice(data):
        return len(data)

    request = request_and_approve(scientist, owner, twice)
    assert request.code.output_policy == sy.OutputPolicyExecuteCount(limit=2)
    first = scientist.code.twice(data=asset)
    second = scientist.code.twice()
    assert (first.get(), second.get()) == (len(PRIVATE), len(PRIVATE))
    assert not first.reused and not second.reused
    assert first.job.id != second.job.id
    with pytest.warns(sy.DatasiteWarning, match="used up"):
        third = scientist.code.twice(data=asset)
    assert third.reused and third.job.id == second.job.id
    assert scientist.code.twice.output_policy.used == 2
    assert scientist.code.twice.output_policy.is_valid is False


def test_a_denied_request_shows_its_reason_and_cannot_run(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def all_names(data):
        return list(data["name"])

    request = scientist.code.request_code_execution(all_names, reason="I want the names")
    review = owner.requests.get(request.id)
    with pytest.raises(ValueError, match="reason"):
        review.deny(reason="  ")
    denied = review.deny(reason="names identify people")
    assert isinstance(denied, sy.SyftSuccess)

    request.refresh()
    assert request.status is sy.RequestStatus.DENIED
    assert request.status is sy.RequestStatus.REJECTED  # PySyft's name
    assert request.deny_reason == "names identify people"
    assert request.id in [r.id for r in scientist.requests.denied]
    assert request.id not in [r.id for r in scientist.requests.pending]
    assert scientist.code.all_names.status is sy.UserCodeStatus.DENIED
    with pytest.raises(sy.PermissionDeniedError, match="denied"):
        scientist.code.all_names(data=asset)
    with pytest.raises(sy.FailedPreconditionError, match="already denied"):
        owner.requests.get(request.id).deny(reason="still no")


def test_mock_run_needs_no_approval_and_uses_no_run(scientist, owner, asset):
    @sy.syft_function_single_use(data=asset)
    def mock_mean(data):
        return float(data["age"].mean())

    request = scientist.code.request_code_execution(mock_mean, reason="mock first")
    pointer = scientist.code.mock_mean.mock(data=asset)
    assert pointer.get() == pytest.approx(MOCK_MEAN)
    assert pointer.job.kind == "mock"
    assert scientist.code.mock_mean.output_policy.used == 0
    assert request.refresh().status is sy.RequestStatus.PENDING
    assert owner.code.get(request.code.id).mock().get() == pytest.approx(MOCK_MEAN)


def test_a_scientist_sees_their_own_quota_use(api, actors, people):
    """``client.account.quota``: the bytes a user's results and logs keep, their queued or running
    jobs, and the limits (none for data owners)."""
    user = api.create_user(actors["admin"].token)
    client = client_for(api.port, api.login(user["email"], PASSWORD))
    fresh = client.account.quota
    assert (fresh.results_bytes, fresh.logs_bytes, fresh.used_bytes, fresh.queued_jobs) == (0, 0, 0, 0)
    assert fresh.quota_bytes > 0 and fresh.max_queued_jobs > 0 and fresh.mock_results_kept > 0
    data = asset_of(client, people)

    @sy.syft_function_single_use(data=data)
    def quota_probe(data):
        print("probe")
        return "x" * 1000

    client.code.submit(quota_probe)
    assert client.code.quota_probe.mock(data=data).get() == "x" * 1000
    used = client.account.quota
    assert used.results_bytes == len('"' + "x" * 1000 + '"')
    assert used.logs_bytes == len("probe\n")
    assert used.code_bytes > len("def quota_probe")
    assert used.used_bytes == used.results_bytes + used.logs_bytes + used.code_bytes
    assert used.queued_jobs == 0
    assert "Used bytes" in repr(used) and "Used bytes" in used._repr_html_()
    owners = actors["owner"].client.account.quota
    assert owners.quota_bytes is None and owners.max_queued_jobs is None


def test_every_result_format(scientist, owner, asset):
    policy = dict(
        input_policy=sy.ExactMatch(data=asset),
        output_policy=sy.OutputPolicyExecuteCount(limit=10),
    )

    @sy.syft_function(**policy)
    def as_json(data):
        return {"n": int(len(data)), "names": list(data["name"]), "mixed": [1.5, None, True]}

    @sy.syft_function(**policy)
    def as_frame(data):
        return data.assign(double=data["age"] * 2)

    @sy.syft_function(**policy)
    def as_array(data):
        import numpy

        return numpy.arange(6, dtype=numpy.int32).reshape(2, 3) * len(data)

    @sy.syft_function(**policy)
    def as_bytes(data):
        return ("rows=%d" % len(data)).encode()

    @sy.syft_function(**policy)
    def as_big_bytes(data):
        return bytes(range(256)) * (8 * 1024 + len(data))  # over the 1 MiB of inline results

    for func in (as_json, as_frame, as_array, as_bytes, as_big_bytes):
        scientist.code.submit(func)

    n = len(MOCK)
    json_job = scientist.code.as_json.mock(data=asset).job
    assert json_job.result_format == "json"
    assert json_job.get() == {"n": n, "names": list(MOCK["name"]), "mixed": [1.5, None, True]}

    frame_job = scientist.code.as_frame.mock(data=asset).job
    assert frame_job.result_format == "csv"
    pd.testing.assert_frame_equal(frame_job.get(), MOCK.assign(double=MOCK["age"] * 2))

    array_job = scientist.code.as_array.mock(data=asset).job
    assert array_job.result_format == "npy"
    array = array_job.get()
    assert array.dtype == np.int32
    np.testing.assert_array_equal(array, np.arange(6, dtype=np.int32).reshape(2, 3) * n)

    bytes_job = scientist.code.as_bytes.mock(data=asset).job
    assert bytes_job.result_format == "bytes"
    assert bytes_job.get() == ("rows=%d" % n).encode()

    big_job = scientist.code.as_big_bytes.mock(data=asset).job
    assert big_job.result_info["inline"] is None
    assert big_job.get() == bytes(range(256)) * (8 * 1024 + n)

    # And a DataFrame computed from the private data, once approved.
    assert scientist.code.as_frame.request is None
    request = scientist.code.request_code_execution(as_frame, reason="the table")
    owner.requests.get(request.id).approve()
    pd.testing.assert_frame_equal(
        scientist.code.as_frame(data=asset).get(), PRIVATE.assign(double=PRIVATE["age"] * 2)
    )


def test_an_exception_in_user_code_is_a_clear_error(scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def divide_by_zero(data):
        return len(data) / 0

    scientist.code.submit(divide_by_zero)
    with pytest.raises(sy.JobFailedError, match="ZeroDivisionError") as e:
        scientist.code.divide_by_zero.mock(data=asset)
    job = e.value.job
    assert job.status is sy.JobStatus.ERRORED
    assert "ZeroDivisionError" in job.error

    job = scientist.code.divide_by_zero.mock(data=asset, blocking=False)
    with pytest.raises(sy.JobFailedError, match="division by zero"):
        job.get(timeout=WAIT_SECONDS)


def test_kill_a_sleeping_job(actors, scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def sleepy(data):
        import time

        time.sleep(120)
        return len(data)

    scientist.code.submit(sleepy)
    job = scientist.code.sleepy.mock(data=asset, blocking=False)
    with pytest.raises(sy.JobTimeoutError):
        job.wait(timeout=0.2)
    wait_for_status(job, (sy.JobStatus.RUNNING,))
    with pytest.raises(sy.NotFoundError):
        actors["scientist2"].client.jobs.get(job.id).kill()
    assert isinstance(job.kill(), sy.SyftSuccess)
    wait_for_status(job, (sy.JobStatus.KILLED,))
    with pytest.raises(sy.JobFailedError, match="killed"):
        job.get()
    with pytest.raises(sy.FailedPreconditionError):
        job.kill()


def test_a_job_past_its_timeout_ends_timed_out(scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def too_slow(data):
        import time

        time.sleep(30)
        return len(data)

    scientist.code.submit(too_slow)
    with pytest.raises(sy.JobFailedError) as e:
        scientist.code.too_slow.mock(data=asset, timeout_seconds=1)
    assert e.value.job.status is sy.JobStatus.TIMED_OUT
    assert "timed out" in str(e.value)
    with pytest.raises(sy.InvalidArgumentError, match="timeout_seconds"):
        scientist.code.too_slow.mock(data=asset, timeout_seconds=0)


def test_a_queued_job_can_be_killed(launcher):
    server = launcher.launch(n_consumers=1)
    actors = make_code_actors(server.port)
    scientist = actors["scientist"].client
    asset = asset_of(scientist, upload_people(actors["owner"].client))

    @sy.syft_function_single_use(data=asset)
    def occupy(data):
        import time

        time.sleep(120)
        return len(data)

    scientist.code.submit(occupy)
    running = scientist.code.occupy.mock(data=asset, blocking=False)
    wait_for_status(running, (sy.JobStatus.RUNNING,))
    queued = scientist.code.occupy.mock(data=asset, blocking=False)
    assert queued.refresh().status is sy.JobStatus.QUEUED
    assert queued.kill()
    assert queued.status is sy.JobStatus.KILLED
    assert running.kill()
    wait_for_status(running, (sy.JobStatus.KILLED,))


def test_result_bytes_come_with_their_format(api, actors, scientist, asset):
    @sy.syft_function_single_use(data=asset)
    def frame_result(data):
        return data.head(2)

    scientist.code.submit(frame_result)
    job = scientist.code.frame_result.mock(data=asset).job
    resp = api.get("/api/v1/jobs/{}/result".format(job.id), token=actors["scientist"].token)
    assert resp.status == 200, resp
    assert resp.headers["x-datasite-result-format"] == "csv"
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.text == job.result_info["inline"]
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(resp.text)), MOCK.head(2))


def test_a_low_side_server_runs_mocks_only(launcher):
    server = launcher.launch(server_side_type="low")
    actors = make_code_actors(server.port)
    scientist, owner = actors["scientist"].client, actors["owner"].client
    dataset = sy.Dataset(name="low_people")
    dataset.add_asset(sy.Asset(name="people", mock=MOCK))
    assert owner.upload_dataset(dataset)
    asset = asset_of(scientist, "low_people")

    @sy.syft_function_single_use(data=asset)
    def low_mean(data):
        return float(data["age"].mean())

    request = scientist.code.request_code_execution(low_mean, reason="low side")
    assert scientist.code.low_mean.mock(data=asset).get() == pytest.approx(MOCK_MEAN)
    with pytest.raises(sy.FailedPreconditionError, match="low"):
        owner.requests.get(request.id).approve()
    with pytest.raises(sy.FailedPreconditionError, match="low"):
        owner.code.low_mean(data=asset)


# Who sees what -----------------------------------------------------------------------------------


def test_a_scientist_sees_only_their_own_code_requests_and_jobs(
    api, actors, scientist, owner, asset
):
    @sy.syft_function_single_use(data=asset)
    def private_to_me(data):
        return len(data)

    request = request_and_approve(scientist, owner, private_to_me)
    job = scientist.code.private_to_me(data=asset).job

    other = actors["scientist2"].client
    assert request.code.id not in [c.id for c in other.code]
    assert request.id not in [r.id for r in other.requests]
    assert job.id not in [j.id for j in other.jobs]
    with pytest.raises(sy.NotFoundError):
        other.code.get(request.code.id)
    with pytest.raises(sy.NotFoundError):
        other.requests.get(request.id)
    with pytest.raises(sy.NotFoundError):
        other.jobs.get(job.id)
    with pytest.raises(AttributeError):
        other.code.private_to_me

    token = actors["scientist2"].token
    assert_error(
        api.post("/api/v1/code/{}/run".format(request.code.id), {}, token=token), 404, "NOT_FOUND"
    )
    assert_error(api.get("/api/v1/jobs/{}/logs".format(job.id), token=token), 404, "NOT_FOUND")
    assert_error(api.get("/api/v1/jobs/{}/result".format(job.id), token=token), 404, "NOT_FOUND")
    resp = api.post("/api/v1/requests", {"code_id": request.code.id}, token=token)
    assert resp.status in (403, 404), resp
    # A data scientist decides nothing.
    assert_error(
        api.post("/api/v1/requests/{}/approve".format(request.id), {}, token=token),
        403,
        "PERMISSION_DENIED",
    )
    assert_error(
        api.post("/api/v1/requests/{}/deny".format(request.id), {"reason": "no"}, token=token),
        403,
        "PERMISSION_DENIED",
    )
    # Guests see no code at all.
    guest = actors["guest"].client
    with pytest.raises((sy.PermissionDeniedError, sy.AuthenticationError)):
        guest.code.get_all()
    with pytest.raises((sy.PermissionDeniedError, sy.AuthenticationError)):
        guest.requests.get_all()


# Review displays ---------------------------------------------------------------------------------


def test_displays_reveal_hidden_characters_in_code_under_review(api, actors, owner, asset):
    """A bidi override in the source ("Trojan Source") is refused by the server (issue 11: what the
    reviewer reads must be what runs); an ANSI escape in the reason must not hide anything from the
    reviewer: it shows as a visible escape.
    """
    token = actors["scientist"].token
    trojan = (
        "def sneaky(data):\n"
        "    access = 'user' # \u202e } \u2066if admin\u2069 \u2066 begin admins only\n"
        "    return len(data)\n"
    )
    body = {
        "name": "sneaky",
        "source": trojan,
        "inputs": {"data": {"asset_id": asset.id}},
        "output_policy": {"kind": "single_execution"},
    }
    resp = api.post("/api/v1/code", body, token=token)
    assert resp.status == 400, resp
    assert "line 2, column 23: U+202E RIGHT-TO-LEFT OVERRIDE" in resp.error["message"], resp
    source = "def sneaky(data):\n    access = 'user'\n    return len(data)\n"
    resp = api.post("/api/v1/code", dict(body, source=source), token=token)
    assert resp.status == 201, resp
    resp = api.post(
        "/api/v1/requests", {"code_id": resp.json["id"], "reason": "ok\x1b[2J"}, token=token
    )
    assert resp.status == 201, resp

    review = owner.requests.get(resp.json["id"])
    assert review.code.source == source  # the exact text, for running
    for shown in (
        review._repr_html_(),
        review._repr_markdown_(),
        repr(review),
        repr(review.code),
        review.code._repr_html_(),
        repr(review.code.show_code()),
        review.code.show_code._repr_markdown_(),
        repr(owner.requests),
    ):
        assert "\x1b" not in shown
    assert "x1b" in repr(review)


# Bad input ---------------------------------------------------------------------------------------


def test_bad_inputs_are_refused_clearly(api, actors, scientist, asset):
    @sy.syft_function_single_use(data=asset, bins=10)
    def histogram(data, bins):
        return [int(bins), len(data)]

    scientist.code.submit(histogram)
    code = scientist.code.histogram
    with pytest.raises(TypeError, match="by name"):
        code(asset)
    with pytest.raises(TypeError, match="no input 'other'"):
        code.mock(other=1)
    with pytest.raises(TypeError, match="pass that asset"):
        code.mock(data=PRIVATE)
    with pytest.raises(TypeError, match="decorate it"):
        scientist.code.submit(lambda data: data)
    with pytest.raises(sy.InvalidArgumentError, match="bins"):
        code.mock(data=asset, bins=11)
    assert code.mock(bins=10).get() == [10, len(MOCK)]

    token = actors["scientist"].token
    resp = api.post(
        "/api/v1/code/{}/run".format(code.id),
        {"inputs": {"data": {"asset_id": asset.id}, "bins": {"value": 3}}, "mock": True},
        token=token,
    )
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert "bins" in resp.error["message"]
    body = histogram.to_wire()
    body["name"] = "histogram_elsewhere"
    body["source"] = body["source"].replace("def histogram", "def histogram_elsewhere")
    body["inputs"]["data"] = {"asset_id": "00000000-0000-4000-8000-000000000000"}
    assert_error(api.post("/api/v1/code", body, token=token), 404, "NOT_FOUND")


# Output review -----------------------------------------------------------------------------------


def test_output_review_holds_results_until_an_owner_releases_them(launcher):
    server = launcher.launch()
    actors = make_code_actors(server.port)
    scientist, owner = actors["scientist"].client, actors["owner"].client
    asset = asset_of(scientist, upload_people(owner))
    assert actors["admin"].client.settings.set_output_review(True)
    assert scientist.settings.output_review is True

    @sy.syft_function_single_use(data=asset)
    def held_mean(data):
        print("computed")
        return float(data["age"].mean())

    request_and_approve(scientist, owner, held_mean)
    pointer = scientist.code.held_mean(data=asset)
    assert pointer.job.held
    with pytest.raises(sy.FailedPreconditionError, match="held"):
        pointer.get()
    assert "computed" not in (pointer.logs().stdout or "")
    api = Api(server.port)
    resp = api.get(
        "/api/v1/jobs/{}/result".format(pointer.job.id), token=actors["scientist"].token
    )
    assert_error(resp, 409, "FAILED_PRECONDITION")
    with pytest.raises(sy.PermissionDeniedError):
        pointer.job.release()

    released = owner.jobs.get(pointer.job.id).release()
    assert isinstance(released, sy.SyftSuccess)
    assert pointer.get() == pytest.approx(PRIVATE_MEAN)
    assert "computed" in pointer.logs().stdout


def test_output_review_turned_on_while_a_job_runs_holds_its_result(launcher):
    """Security: whether a result is held is decided when the job ends, from the settings then."""
    server = launcher.launch()
    actors = make_code_actors(server.port)
    scientist, owner = actors["scientist"].client, actors["owner"].client
    admin = actors["admin"].client
    asset = asset_of(scientist, upload_people(owner))
    assert scientist.settings.output_review is False

    @sy.syft_function_single_use(data=asset)
    def slow_mean_run(data):
        import time

        print("computed")
        time.sleep(3)
        return float(data["age"].mean())

    request_and_approve(scientist, owner, slow_mean_run)
    job = scientist.code.slow_mean_run(data=asset, blocking=False)
    wait_for_status(job, {"running"})
    assert admin.settings.set_output_review(True)
    wait_for_status(job, {"completed", "errored"})
    assert job.status == "completed"
    assert job.held
    with pytest.raises(sy.FailedPreconditionError, match="held"):
        job.get()
    assert "computed" not in (job.logs().stdout or "")
    resp = Api(server.port).get(
        "/api/v1/jobs/{}/result".format(job.id), token=actors["scientist"].token
    )
    assert_error(resp, 409, "FAILED_PRECONDITION")

    assert owner.jobs.get(job.id).release()
    assert job.refresh().held is False
    assert "computed" in job.logs().stdout


def test_blocking_runs_from_more_threads_than_a_user_may_wait_in_all_end(scientist, asset):
    """A user waits for at most 4 jobs at once on the server; a client that runs more in threads
    waits for the rest itself (the server's 429 with Retry-After) instead of failing."""

    @sy.syft_function_single_use(data=asset)
    def slow_mock(data):
        import time

        time.sleep(1.0)
        return len(data)

    scientist.code.request_code_execution(slow_mock, reason="threads")
    results, errors = [], []

    def run():
        try:
            results.append(scientist.code.slow_mock.mock(data=asset).get())
        except Exception as err:  # reported below, with the others
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(results) == 7 and len(set(results)) == 1, results
