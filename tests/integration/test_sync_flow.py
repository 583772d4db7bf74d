"""The functional pieces sync needs on each side (issue 14, round two), on one server.

- A data owner runs approved code for its requester (``for_requester=True``): a private run that is
  the requester's own, counted by the output policy, held by output review, audited as its own
  action; refused for anyone but a data owner, for unapproved code, with other inputs, on mocks.
- ``request.get_results()``: the result of the request's code's latest run the caller may read.
"""

import pytest

import datasite as sy
from code_helpers import PRIVATE, asset_of, make_code_actors, upload_people, wait_for_status
from helpers import assert_error, needs_sandbox

pytestmark = needs_sandbox


@pytest.fixture(scope="module")
def actors(module_server):
    return make_code_actors(module_server.port)


@pytest.fixture(scope="module")
def people(actors):
    return upload_people(actors["owner"].client)


# Three functions (code is submitted once): one per test.
def rows_a(data):
    return len(data)


def rows_b(data):
    return len(data) + 0


def rows_c(data):
    return len(data) * 1


def rows_d(data):
    return len(data) - 0


def submitted(actors, people, func, limit=1, approve=True):
    scientist, owner = actors["scientist"].client, actors["owner"].client
    asset = asset_of(scientist, people)
    code = sy.syft_function(input_policy=sy.ExactMatch(data=asset),
                            output_policy=sy.OutputPolicyExecuteCount(limit=limit))(func)
    request = scientist.code.request_code_execution(code, reason="for_requester tests")
    if approve:
        assert owner.requests.get(request.id).approve()
    return request.refresh(), asset


def run_body(asset_id, **extra):
    return dict({"inputs": {"data": {"asset_id": asset_id}}, "for_requester": True}, **extra)


def test_an_owner_runs_approved_code_as_its_requesters_own_private_run(api, actors, people):
    request, asset = submitted(actors, people, rows_a)
    owner = actors["owner"].client
    pointer = owner.code.get(request.code.id)(data=asset_of(owner, people), for_requester=True)
    job = pointer.job
    assert pointer.get() == len(PRIVATE)
    assert job.kind == "private"
    assert job.user["id"] == actors["scientist"].user["id"]
    # It is the requester's: they read it, and it used the one run their output policy allows.
    mine = actors["scientist"].client.jobs.get(job.id)
    assert mine.id == job.id
    with pytest.warns(sy.DatasiteWarning, match="used up"):
        again = actors["scientist"].client.code.get(request.code.id)(data=asset)
    assert again.reused and again.job.id == job.id
    entries = [e for e in actors["admin"].client.audit.all()
               if e["action"] == "job.run_for_requester"]
    assert [e["actor"] for e in entries if e["target"] == "job:" + job.id] == [
        "user:" + actors["owner"].user["id"]]


def test_a_run_for_the_requester_is_held_under_output_review(launcher):
    server = launcher.launch()
    actors = make_code_actors(server.port)
    people = upload_people(actors["owner"].client)
    assert actors["admin"].client.settings.set_output_review(True)
    request, asset = submitted(actors, people, rows_b)
    owner = actors["owner"].client
    job = owner.code.get(request.code.id)(data=asset_of(owner, people), blocking=False,
                                          for_requester=True)
    wait_for_status(job, ("completed",))
    seen = actors["scientist"].client.jobs.get(job.id)
    assert seen.held
    assert owner.jobs.get(job.id).release()
    assert actors["scientist"].client.jobs.get(job.id).get() == len(PRIVATE)


def test_running_for_the_requester_is_refused_unless_owner_approved_and_as_bound(
        api, actors, people):
    request, asset = submitted(actors, people, rows_c, approve=False)
    path = "/api/v1/code/{}/run".format(request.code.id)
    owner, scientist = actors["owner"].token, actors["scientist"].token
    # Not approved yet.
    assert_error(api.post(path, run_body(asset.id), token=owner), 409, "FAILED_PRECONDITION")
    assert actors["owner"].client.requests.get(request.id).approve()
    # Not a data owner: the author itself, a guest, nobody.
    assert_error(api.post(path, run_body(asset.id), token=scientist), 403, "PERMISSION_DENIED")
    assert_error(api.post(path, run_body(asset.id), token=actors["guest"].token), 403,
                 "PERMISSION_DENIED")
    assert_error(api.post(path, run_body(asset.id)), 401, "UNAUTHENTICATED")
    # On the mocks, or on other data than the policy binds.
    assert_error(api.post(path, run_body(asset.id, mock=True), token=owner), 400,
                 "INVALID_ARGUMENT")
    other = upload_people(actors["owner"].client)
    other_id = asset_of(actors["owner"].client, other).id
    assert_error(api.post(path, run_body(other_id), token=owner), 400, "INVALID_ARGUMENT")
    assert_error(api.post(path, {"inputs": {"data": {"value": 3}}, "for_requester": True},
                          token=owner), 400, "INVALID_ARGUMENT")
    assert_error(api.post(path, run_body(asset.id, for_requester="yes"), token=owner), 400,
                 "INVALID_ARGUMENT")
    # None of these ran: the one run the policy allows is still there.
    assert actors["scientist"].client.jobs.get_by_user_code_id(request.code.id) == []


def test_get_results_is_the_latest_readable_run_of_the_requests_code(actors, people):
    request, asset = submitted(actors, people, rows_d, limit=2)
    scientist = actors["scientist"].client
    with pytest.raises(sy.FailedPreconditionError, match="no result you may read"):
        request.get_results()
    # A data owner's review run is not the requester's result.
    owner_request = actors["owner"].client.requests.get(request.id)
    assert owner_request.code(data=asset_of(actors["owner"].client, people)).get() == len(PRIVATE)
    with pytest.raises(sy.FailedPreconditionError):
        request.get_results()
    first = scientist.code.get(request.code.id)(data=asset)
    assert request.get_results() == len(PRIVATE)
    assert owner_request.get_results() == len(PRIVATE)
    second = scientist.code.get(request.code.id)(data=asset)
    assert second.job.id != first.job.id
    assert request.get_results() == len(PRIVATE)
    # Someone else's request is not theirs to read.
    other = actors["scientist2"].client.requests
    assert all(r.id != request.id for r in other)
