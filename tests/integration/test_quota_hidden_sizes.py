"""Nothing a data scientist observes of the storage quota depends on the size of an output they may
not read.

Regression (security): the quota route no longer told hidden sizes, but the LIMIT still counted them at
their real size, so whether a run was refused for quota, whether an output was "not kept", and which of
the scientist's own mock outputs expired all moved with a held result's or a refused custom-policy run's
stdout size. Mock runs are free and their sizes the scientist's to choose: a binary search read the
hidden size, several bits per private run. Now an output hidden from its requester is charged to them
at 0 bytes until it becomes readable (a release), then at its size.
"""

import json

import pandas as pd
import pytest

import datasite as sy
from code_helpers import MOCK, asset_of, make_code_actors
from helpers import PASSWORD, DetachedServer, assert_error, client_for, needs_sandbox, unique
from test_code_hostile_floods import run, submit, wait_ended
from test_quota_privacy import RefusesEverything, approved, used

pytestmark = needs_sandbox

QUOTA = 2000
KEPT = 3
MOCK_RESULT = 700  # each mock run returns "y" * MOCK_RESULT: a JSON string of MOCK_RESULT + 2 bytes
# Private ages whose sums make outputs of 10 * sum bytes: far under, near, and past the quota.
SUMS = {"tiny": 5, "near": 150, "past": 500}


@pytest.fixture(scope="module")
def quota_server(binary, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("quota-hidden") / "data"
    server = DetachedServer(binary, data_dir, "--user-quota-bytes", QUOTA,
                            "--mock-results-kept", KEPT)
    try:
        api = server.start()
        actors = make_code_actors(server.port)
        owner = actors["owner"].client
        datasets = {}
        for name, total in SUMS.items():
            private = pd.DataFrame({"age": [total // 5] * 5, "name": list("abcde")})
            dataset = sy.Dataset(name=unique("ages-" + name), summary="ages")
            dataset.add_asset(sy.Asset(name="people", data=private, mock=MOCK))
            assert owner.upload_dataset(dataset)
            datasets[name] = dataset.name
        yield server, api, actors, datasets
    finally:
        server.stop()


def fresh(api, actors, port):
    user = api.create_user(actors["admin"].token)
    token = api.login(user["email"], PASSWORD)
    return token, client_for(port, token)


def seen(job):
    """What the requester reads of an ended job, less its ids and times of day."""
    result = job["result"]
    return {
        "status": job["status"],
        "failure": job["failure"],
        "error": job["error"],
        "finished_at": job["finished_at"] is None,
        "result": None if result is None else {k: result[k] for k in ("size", "held", "expired")},
    }


def mock_runs(api, token, code_id, count):
    """Runs ``count`` mock runs; what each answered, then what each reads at the end (expiries)."""
    answers, ids = [], []
    for _ in range(count):
        resp = run(api, token, code_id)
        answers.append((resp.status, seen(resp.json) if resp.status == 201 else resp.error))
        if resp.status == 201:
            ids.append(resp.json["id"])
    later = [seen(wait_ended(api, token, job_id)) for job_id in ids]
    return answers, later


def trace_refused_policy(server, api, actors, dataset):
    """A fresh scientist's private run that prints 10 * sum bytes under a refusing output policy, then
    mock runs: everything the scientist reads of the quota along the way."""
    token, scientist = fresh(api, actors, server.port)
    owner = actors["owner"].client
    asset = asset_of(scientist, dataset)

    @sy.syft_function(input_policy=sy.ExactMatch(data=asset), output_policy=RefusesEverything())
    def prints_ten_sums(data):
        print("x" * (10 * int(data["age"].sum())))
        return 1

    approved(scientist, owner, prints_ten_sums)
    with pytest.raises(sy.JobFailedError) as failed:
        scientist.code.prints_ten_sums(data=asset)
    job_id = failed.value.job.id
    private = seen(api.get("/api/v1/jobs/" + job_id, token=token).json)
    mocks = submit(api, token, unique("mocks"), 'return "y" * {}'.format(MOCK_RESULT))
    answers, later = mock_runs(api, token, mocks, KEPT + 2)
    trace = {"private": private, "used": used(scientist), "code": scientist.account.quota.code_bytes,
             "mocks": answers, "later": later}
    return trace, job_id, token


def test_hidden_stdout_sizes_leave_refusals_kept_outputs_and_expiries_identical(quota_server):
    server, api, actors, datasets = quota_server
    traces, stdout = {}, {}
    for name in SUMS:
        traces[name], job_id, _ = trace_refused_policy(server, api, actors, datasets[name])
        stdout[name] = len(actors["owner"].client.jobs.get(job_id).logs().stdout)
    assert traces["tiny"] == traces["near"] == traces["past"], traces
    # The hidden stdout was kept whole, for data owners.
    assert stdout == {name: 10 * total + 1 for name, total in SUMS.items()}
    tiny = traces["tiny"]
    assert tiny["private"]["failure"] == "output_policy_refused"
    assert "not kept" not in tiny["private"]["error"]
    # Every mock run was kept; the quota's room for the newest was made from the oldest (the
    # scientist's code counts against the quota too, and never expires).
    fits = min(KEPT, (QUOTA - tiny["code"]) // (MOCK_RESULT + 2))
    assert fits >= 1, tiny["code"]
    assert tiny["used"] == (fits * (MOCK_RESULT + 2), 0)
    assert [status for status, _ in tiny["mocks"]] == [201] * (KEPT + 2)
    assert all(answer["status"] == "completed" for _, answer in tiny["mocks"])
    expired = [True] * (KEPT + 2 - fits) + [False] * fits
    assert [j["result"]["expired"] for j in tiny["later"]] == expired


def test_a_refused_custom_policy_run_hides_when_it_ended(quota_server):
    server, api, actors, datasets = quota_server
    trace, job_id, token = trace_refused_policy(server, api, actors, datasets["tiny"])
    assert trace["private"]["finished_at"] is True  # null for the requester
    owner_view = api.get("/api/v1/jobs/" + job_id, token=actors["owner"].token).json
    assert owner_view["finished_at"] is not None
    # Released, its error and stdout are the requester's: so is when it ended.
    actors["owner"].client.jobs.get(job_id).release_error()
    assert api.get("/api/v1/jobs/" + job_id, token=token).json["finished_at"] is not None


def test_a_held_result_is_charged_when_released_even_at_the_limit(quota_server):
    server, api, actors, datasets = quota_server
    owner = actors["owner"].client
    assert actors["admin"].client.settings.set_output_review(True)
    try:
        traces = {}
        pointers = {}
        for name in ("tiny", "past"):
            token, scientist = fresh(api, actors, server.port)
            asset = asset_of(scientist, datasets[name])

            @sy.syft_function_single_use(data=asset)
            def held_ten_sums(data):
                return "x" * (10 * int(data["age"].sum()))

            approved(scientist, owner, held_ten_sums)
            pointer = scientist.code.held_ten_sums(data=asset)
            assert pointer.job.held
            pointers[name] = (token, scientist, pointer.job.id)
            mocks = submit(api, token, unique("mocks"), 'return "y" * {}'.format(MOCK_RESULT))
            answers, later = mock_runs(api, token, mocks, 2)
            traces[name] = {"used": used(scientist), "mocks": answers, "later": later}
            traces[name]["held"] = seen(api.get("/api/v1/jobs/" + pointer.job.id, token=token).json)
        assert traces["tiny"] == traces["past"], traces
        assert all(a["status"] == "completed" for _, a in traces["tiny"]["mocks"])
    finally:
        assert actors["admin"].client.settings.set_output_review(False)

    # Released under the quota: charged then, at its size.
    token, scientist, job_id = pointers["tiny"]
    owner.jobs.get(job_id).release()
    assert used(scientist) == (2 * (MOCK_RESULT + 2) + 10 * SUMS["tiny"] + 2, 0)

    # Released past the quota: the release goes through (the owner chose to show it), the requester
    # is past their quota, and their next run is refused with the byte count they may read.
    token, scientist, job_id = pointers["past"]
    after = submit(api, token, unique("after"), "return 1")  # new code too is refused past it
    owner.jobs.get(job_id).release()
    shown = 10 * SUMS["past"] + 2
    assert used(scientist) == (2 * (MOCK_RESULT + 2) + shown, 0)
    refused = run(api, token, after)
    assert_error(refused, 413, "PAYLOAD_TOO_LARGE")
    assert str(shown) in refused.error["message"], refused.error
    more = api.post("/api/v1/code", {"name": "more", "source": "def more():\n    return 1\n"},
                    token=token)
    assert_error(more, 413, "PAYLOAD_TOO_LARGE")
    assert "logs ({} bytes)".format(shown) in more.error["message"], more.error


def test_a_result_deposited_before_the_approval_is_charged_as_one_after(quota_server):
    """Regression: the approval released a result deposited before it without charging it, so its
    requester read it (and the quota route counted it) while the quota's limit did not."""
    server, api, actors, _ = quota_server
    owner = actors["owner"].token
    for order in ("before", "after"):
        token, _ = fresh(api, actors, server.port)
        code_id = submit(api, token, unique("deposited"), "return 1")
        # Submitted now: past the quota, code is refused as a run is.
        next_id = submit(api, token, unique("next"), "return 2")
        request = api.post("/api/v1/requests", {"code_id": code_id, "reason": "r"}, token=token)
        assert request.status == 201, request
        approve = "/api/v1/requests/{}/approve".format(request.json["id"])
        body = {"format": "json", "data": json.dumps("x" * QUOTA), "stdout": "out"}
        if order == "after":
            assert api.post(approve, {}, token=owner).status == 200
        deposit = api.post("/api/v1/requests/{}/deposit".format(request.json["id"]), body,
                           token=owner)
        assert deposit.status == 201, deposit
        if order == "before":
            assert api.post(approve, {}, token=owner).status == 200
        result = api.get("/api/v1/jobs/{}/result".format(deposit.json["id"]), token=token)
        assert result.status == 200, (order, result)
        # Past the quota either way: the next run is refused, with the bytes it may read.
        refused = run(api, token, next_id)
        assert_error(refused, 413, "PAYLOAD_TOO_LARGE")
        assert str(QUOTA + 2 + 3) in refused.error["message"], (order, refused.error)
