"""Grants, tried as a hostile data scientist named on one would try them.

A grant matches code by its hash (of the source alone) and its input bindings. The code that runs is
more than its source: the function the source defines that is called (``name``), and any custom
policies (``policy_code``), which run with the function on the private data. A named scientist's own
code with the approved source must not reach private data through either. Both tests failed on the
first version of grants (the run was admitted under the grant and returned the rows).
"""


import time

from code_helpers import PRIVATE
from helpers import needs_sandbox

from test_code_flow import actors, asset, owner, people, scientist  # noqa: F401

# The approved source defines a helper beside the function the owner reviewed: calling the helper
# directly hands over every row. Each test has its own copy (a user submits a source once).
def source(tag):
    return (
        "def rows_%s(data):\n"
        "    return data.to_dict(orient='list')\n"
        "\n"
        "def total_%s(data):\n"
        "    return int(len(rows_%s(data)['age']) * 0 + data['age'].sum())\n" % (tag, tag, tag)
    )


LEAKING_POLICY = (
    "class Leak(sy.CustomOutputPolicy):\n"
    "    def apply_to_output(self, context, outputs, update_policy=True):\n"
    "        return 'leaked'\n"
)


def submit(api, actor, name, text, asset_id, **more):
    body = {"name": name, "source": text, "inputs": {"data": {"asset_id": asset_id}}}
    body.update(more)
    code = api.post("/api/v1/code", body, token=actor.token)
    assert code.status == 201, code
    return code.json


def grant_for(api, actors, tag, asset_id):
    """The scientist submits source(tag) calling total_<tag>, asks, and the owner approves it for
    repeated use naming scientist2. Returns the grant's JSON."""
    sci, owner = actors["scientist"], actors["owner"]
    code = submit(api, sci, "total_" + tag, source(tag), asset_id)
    req = api.post("/api/v1/requests", {"code_id": code["id"]}, token=sci.token)
    assert req.status == 201, req
    approved = api.post(
        "/api/v1/requests/%s/approve" % req.json["id"],
        {"repeat": {"per_hour": 50}, "users": [actors["scientist2"].user["email"]]},
        token=owner.token,
    )
    assert approved.status == 200, approved
    # The requester's own run of it is admitted under the grant.
    run = api.post("/api/v1/code/%s/run" % code["id"], {}, token=sci.token)
    assert run.status == 201, run
    assert run.json["grant_id"] == approved.json["grant"]["id"]
    assert run.json["result"]["inline"] == int(PRIVATE["age"].sum())
    return approved.json["grant"]


def jobs_of(api, actor):
    answer = api.get("/api/v1/jobs", token=actor.token)
    assert answer.status == 200, answer
    return answer.json["items"]


@needs_sandbox
def test_a_named_scientist_cannot_call_another_function_of_the_approved_source(api, actors, asset):
    grant = grant_for(api, actors, "fn", asset.id)
    second = actors["scientist2"]
    before = len(jobs_of(api, second))
    # The same source (so the same hash, the same bindings), naming the helper as the function.
    code = submit(api, second, "rows_fn", source("fn"), asset.id)
    assert code["code_hash"] == grant["code_hash"]
    run = api.post("/api/v1/code/%s/run" % code["id"], {}, token=second.token)
    assert run.status == 403, run
    assert run.json["error"]["code"] == "PERMISSION_DENIED"
    assert "rows_fn" in run.json["error"]["message"], run
    assert len(jobs_of(api, second)) == before
    for name in PRIVATE["name"]:
        assert name not in run.text


@needs_sandbox
def test_a_named_scientists_custom_policies_never_run_under_the_grant(api, actors, asset):
    grant = grant_for(api, actors, "pol", asset.id)
    second = actors["scientist2"]
    before = len(jobs_of(api, second))
    # The approved function and source (the hash covers the source only), with an output policy
    # of the scientist's own that would replace the result.
    code = submit(
        api,
        second,
        "total_pol",
        source("pol"),
        asset.id,
        output_policy={"kind": "custom"},
        policy_code={"source": LEAKING_POLICY, "output": {"class": "Leak"}},
    )
    assert code["code_hash"] == grant["code_hash"]
    run = api.post("/api/v1/code/%s/run" % code["id"], {}, token=second.token)
    assert run.status == 403, run
    assert "leaked" not in run.text
    assert len(jobs_of(api, second)) == before


@needs_sandbox
def test_a_denial_stops_a_named_scientists_run_under_the_requests_grant(api, actors, asset):
    """Found by a cold attack: the denial killed and held only the requester's runs, so a named
    scientist's run already going completed and its result was released to them."""
    sci, owner, second = actors["scientist"], actors["owner"], actors["scientist2"]
    text = (
        "def slow_ages(data):\n"
        "    import time\n"
        "    time.sleep(4)\n"
        "    return data['age'].tolist()\n"
    )
    code = submit(api, sci, "slow_ages", text, asset.id)
    req = api.post("/api/v1/requests", {"code_id": code["id"]}, token=sci.token)
    assert req.status == 201, req
    approved = api.post(
        "/api/v1/requests/%s/approve" % req.json["id"],
        {"repeat": {"per_hour": 5}, "users": [second.user["email"]]},
        token=owner.token,
    )
    assert approved.status == 200, approved
    theirs = submit(api, second, "slow_ages", text, asset.id)
    run = api.post(
        "/api/v1/code/%s/run" % theirs["id"], {"blocking": False}, token=second.token
    )
    assert run.status == 201, run
    job_id = run.json["id"]
    deadline = time.monotonic() + 30
    while api.get("/api/v1/jobs/" + job_id, token=second.token).json["status"] == "queued":
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)
    denied = api.post(
        "/api/v1/requests/%s/deny" % req.json["id"], {"reason": "no more"}, token=owner.token
    )
    assert denied.status == 200, denied
    ended = api.get("/api/v1/jobs/%s/wait?timeout=30" % job_id, token=second.token)
    assert ended.status == 200, ended
    assert ended.json["status"] == "killed" or ended.json["result"]["held"], ended.json
    result = api.get("/api/v1/jobs/%s/result" % job_id, token=second.token)
    assert result.status != 200, result
    for age in PRIVATE["age"]:
        assert str(age) not in result.text
    # And nothing more runs under it.
    again = api.post("/api/v1/code/%s/run" % theirs["id"], {"blocking": False}, token=second.token)
    assert again.status == 403, again


@needs_sandbox
def test_a_checked_run_that_prints_then_fails_keeps_its_print_from_its_requester(
    api, actors, asset
):
    """Found by a cold review: a run under a grant on data with output checks that printed and
    then raised ended unheld (the sandbox streams only what was printed before its last quarter
    second), and its requester read the print in its logs."""
    sci, owner = actors["scientist"], actors["owner"]
    text = "def print_then_fail(data):\n    print(data.to_csv())\n    raise ValueError('no')\n"
    code = submit(api, sci, "print_then_fail", text, asset.id)
    ds = api.get("/api/v1/code/" + code["id"], token=sci.token).json["inputs"]["data"]["dataset_id"]
    checks = api("PUT", "/api/v1/datasets/%s/output_checks" % ds, {"round_to": 5}, token=owner.token)
    assert checks.status == 200, checks
    try:
        req = api.post("/api/v1/requests", {"code_id": code["id"]}, token=sci.token)
        approved = api.post(
            "/api/v1/requests/%s/approve" % req.json["id"],
            {"repeat": {"per_hour": 5}},
            token=owner.token,
        )
        assert approved.status == 200, approved
        run = api.post("/api/v1/code/%s/run" % code["id"], {}, token=sci.token)
        assert run.status == 201, run
        assert run.json["status"] == "errored", run.json
        logs = api.get("/api/v1/jobs/%s/logs" % run.json["id"], token=sci.token)
        assert logs.status == 200, logs
        assert not logs.json["stdout"], logs.json
        for name in PRIVATE["name"]:
            assert name not in logs.text
        owners = api.get("/api/v1/jobs/%s/logs" % run.json["id"], token=owner.token)
        assert "ann" in owners.json["stdout"]
    finally:
        reset = api("PUT", "/api/v1/datasets/%s/output_checks" % ds, {}, token=owner.token)
        assert reset.status == 200, reset
