"""The code, request and job routes at the HTTP level: who may do what, what is refused and why,
and that a refusal changes nothing. (The whole flow through the Python client is test_code_flow.py;
hostile code is test_code_hostile.py.)"""

import base64
import json
import io
import time

import numpy as np
import pandas as pd
import pytest

from dataset_helpers import create_dataset, make_actors, marker, new_blob
from helpers import needs_sandbox, PASSWORD, Api, assert_error, unique

pytestmark = needs_sandbox

CODE = "/api/v1/code"
REQUESTS = "/api/v1/requests"
JOBS = "/api/v1/jobs"
SECRET = marker()
PRIVATE_CSV = ("age,name\n30,{0}\n40,{0}\n50,{0}\n".format(SECRET)).encode()
MOCK_CSV = b"age,name\n1,x\n2,y\n"


@pytest.fixture(scope="module")
def world(module_server):
    api = Api(module_server.port)
    actors = make_actors(module_server.port)
    owner = actors["owner"].token
    data = new_blob(api, owner, "csv", PRIVATE_CSV)
    mock = new_blob(api, owner, "csv", MOCK_CSV)
    resp = create_dataset(api, owner, unique("people"),
                          [{"name": "table", "data": data["id"], "mock": mock["id"]}])
    assert resp.status == 201, resp
    asset_id = resp.json["assets"][0]["id"]
    second = api.create_user(actors["admin"].token, role="data_scientist", name="Second")
    actors["scientist2"] = type(actors["scientist"])(
        "scientist2", api.login(second["email"], PASSWORD), None, second)
    return api, actors, asset_id


def tok(world, who):
    return world[1][who].token


def submit(world, who="scientist", source=None, name="f", inputs=None, policy=None, status=201):
    api, _, asset_id = world
    name = name if source else unique("f").replace("-", "_")
    source = source or "def {}(data):\n    return int(data['age'].sum())\n".format(name)
    body = {"name": name, "source": source,
            "inputs": inputs if inputs is not None else {"data": {"asset_id": asset_id}}}
    if policy is not None:
        body["output_policy"] = policy
    resp = api.post(CODE, body, token=tok(world, who))
    assert resp.status == status, resp
    return resp.json


def request(world, code_id, who="scientist"):
    resp = world[0].post(REQUESTS, {"code_id": code_id, "reason": "to study ages"},
                         token=tok(world, who))
    assert resp.status == 201, resp
    return resp.json


def approve(world, request_id):
    resp = world[0].post(REQUESTS + "/" + request_id + "/approve", {}, token=tok(world, "owner"))
    assert resp.status == 200, resp
    return resp.json


def run(world, code_id, who="scientist", **body):
    return world[0].post(CODE + "/" + code_id + "/run", body, token=tok(world, who))


def approved_code(world, **kw):
    code = submit(world, **kw)
    approve(world, request(world, code["id"])["id"])
    return code


# --- submitting -------------------------------------------------------------------------------

def test_submit_records_source_hash_inputs_and_policy(world):
    code = submit(world)
    assert len(code["code_hash"]) == 64
    assert code["inputs"]["data"]["asset_id"] == world[2]
    assert code["inputs"]["data"]["asset"] == "table"
    assert code["output_policy"] == {"kind": "single_execution", "limit": 1, "used": 0}
    assert code["request"] is None
    assert code["version"] == 1


def test_same_source_twice_is_refused_and_names_the_first(world):
    code = submit(world)
    resp = world[0].post(CODE, {"name": code["name"], "source": code["source"],
                                "inputs": {"data": {"asset_id": world[2]}}},
                         token=tok(world, "scientist"))
    assert_error(resp, 409, "ALREADY_EXISTS")
    assert code["id"] in resp.error["message"]


def test_new_source_under_the_same_name_is_the_next_version(world):
    name = unique("g").replace("-", "_")
    first = submit(world, name=name, source="def {}(data):\n    return 1\n".format(name))
    second = submit(world, name=name, source="def {}(data):\n    return 2\n".format(name))
    assert (first["version"], second["version"]) == (1, 2)
    history = world[0].get(CODE + "?name=" + name, token=tok(world, "scientist")).json["items"]
    assert [c["version"] for c in history] == [1, 2]  # oldest first


@pytest.mark.parametrize("body, fragment", [
    ({"name": "f", "source": "def g(data):\n    return 1\n"}, "named 'f'"),
    ({"name": "not valid", "source": "def f():\n    return 1\n"}, "identifier"),
    ({"name": "f", "source": ""}, "source"),
    ({"name": "f", "source": "def f():\n  return 1\n", "inputs": {"x": {"asset_id": "nope"}}}, "no asset"),
    ({"name": "f", "source": "def f():\n  return 1\n", "inputs": {"x": 5}}, "asset_id"),
    ({"name": "f", "source": "def f():\n  return 1\n", "inputs": {"1x": {"value": 1}}}, "identifier"),
    ({"name": "f", "source": "def f():\n  return 1\n", "output_policy": {"kind": "forever"}}, "kind"),
    ({"name": "f", "source": "def f():\n  return 1\n", "output_policy": {"kind": "execute_count"}}, "limit"),
    ({"name": "f", "source": "def f():\n  return 1\n", "output_policy": {"kind": "execute_count", "limit": 0}}, "limit"),
    ({"name": "f", "source": "def f():\n  return 1\n", "output_policy": {"kind": "single_execution", "limit": 3}}, "limit 1"),
    ({"name": "f", "source": "def f():\n  return 1\n", "extra": 1}, "extra"),
])
def test_bad_submissions_are_refused_clearly_and_store_nothing(world, body, fragment):
    api = world[0]
    before = len(api.get(CODE, token=tok(world, "scientist")).json["items"])
    resp = api.post(CODE, body, token=tok(world, "scientist"))
    assert resp.status in (400, 404), resp
    assert fragment in resp.error["message"], resp
    assert len(api.get(CODE, token=tok(world, "scientist")).json["items"]) == before


@pytest.mark.parametrize("who, status", [("anonymous", 401), ("guest", 403)])
def test_guests_and_anonymous_callers_may_not_submit(world, who, status):
    token = None if who == "anonymous" else tok(world, who)
    resp = world[0].post(CODE, {"name": "f", "source": "def f():\n  return 1\n"}, token=token)
    assert resp.status == status, resp


# --- visibility ---------------------------------------------------------------------------------

def test_a_scientist_sees_only_their_own_code_requests_and_jobs(world):
    api = world[0]
    code = approved_code(world)
    job = run(world, code["id"]).json
    other = tok(world, "scientist2")
    assert code["id"] not in [c["id"] for c in api.get(CODE, token=other).json["items"]]
    assert code["request"] is None or True
    assert all(r["code"]["id"] != code["id"] for r in api.get(REQUESTS, token=other).json["items"])
    assert job["id"] not in [j["id"] for j in api.get(JOBS, token=other).json["items"]]
    for path in (CODE + "/" + code["id"], JOBS + "/" + job["id"], JOBS + "/" + job["id"] + "/logs",
                 JOBS + "/" + job["id"] + "/result"):
        assert_error(api.get(path, token=other), 404, "NOT_FOUND")
    assert_error(run(world, code["id"], who="scientist2"), 404, "NOT_FOUND")
    assert_error(api.post(JOBS + "/" + job["id"] + "/kill", {}, token=other), 404, "NOT_FOUND")
    # The owner sees everything.
    assert code["id"] in [c["id"] for c in api.get(CODE, token=tok(world, "owner")).json["items"]]


def test_only_the_author_may_request_and_only_once(world):
    code = submit(world)
    resp = world[0].post(REQUESTS, {"code_id": code["id"]}, token=tok(world, "scientist2"))
    assert_error(resp, 404, "NOT_FOUND")
    request(world, code["id"])
    resp = world[0].post(REQUESTS, {"code_id": code["id"]}, token=tok(world, "scientist"))
    assert_error(resp, 409, "ALREADY_EXISTS")


# --- review ---------------------------------------------------------------------------------------

def test_scientists_cannot_approve_or_deny_and_nothing_changes(world):
    api = world[0]
    req = request(world, submit(world)["id"])
    for verb, body in (("approve", {}), ("deny", {"reason": "x"})):
        for who in ("scientist", "scientist2", "guest"):
            resp = api.post(REQUESTS + "/" + req["id"] + "/" + verb, body, token=tok(world, who))
            assert resp.status == 403, resp
    assert api.get(REQUESTS + "/" + req["id"], token=tok(world, "owner")).json["status"] == "pending"


def test_deny_needs_a_reason_and_the_requester_sees_it(world):
    api = world[0]
    code = submit(world)
    req = request(world, code["id"])
    assert_error(api.post(REQUESTS + "/" + req["id"] + "/deny", {}, token=tok(world, "owner")),
                 400, "INVALID_ARGUMENT")
    resp = api.post(REQUESTS + "/" + req["id"] + "/deny", {"reason": "too revealing"},
                    token=tok(world, "owner"))
    assert resp.json["status"] == "denied"
    seen = api.get(REQUESTS + "/" + req["id"], token=tok(world, "scientist")).json
    assert (seen["status"], seen["deny_reason"]) == ("denied", "too revealing")
    refused = run(world, code["id"])
    assert_error(refused, 403, "PERMISSION_DENIED")
    assert "too revealing" in refused.error["message"]
    # The same decision twice is refused (a changed one is test_code_review.py's).
    assert_error(api.post(REQUESTS + "/" + req["id"] + "/deny", {"reason": "again"},
                          token=tok(world, "owner")),
                 409, "FAILED_PRECONDITION")


def test_pending_code_does_not_run_on_private_data(world):
    code = submit(world)
    assert_error(run(world, code["id"]), 403, "PERMISSION_DENIED")
    request(world, code["id"])
    resp = run(world, code["id"])
    assert_error(resp, 403, "PERMISSION_DENIED")
    assert "pending" in resp.error["message"]
    assert world[0].get(JOBS + "?code_id=" + code["id"], token=tok(world, "scientist")).json["items"] == []


def test_owner_review_run_is_private_to_owners(world):
    api = world[0]
    code = submit(world)
    job = run(world, code["id"], who="owner").json
    assert (job["kind"], job["status"], job["result"]["inline"]) == ("review", "completed", 120)
    assert_error(api.get(JOBS + "/" + job["id"], token=tok(world, "scientist")), 404, "NOT_FOUND")
    assert job["id"] not in [j["id"] for j in api.get(JOBS, token=tok(world, "scientist")).json["items"]]
    # It did not use the policy.
    assert api.get(CODE + "/" + code["id"], token=tok(world, "scientist")).json["output_policy"]["used"] == 0


# --- running --------------------------------------------------------------------------------------

def test_approved_code_runs_on_private_data_and_single_use_is_then_reused(world):
    code = approved_code(world)
    first = run(world, code["id"])
    assert first.status == 201, first
    assert (first.json["kind"], first.json["status"]) == ("private", "completed")
    assert first.json["result"]["inline"] == 120  # 30 + 40 + 50, not the mock's 3
    again = run(world, code["id"])
    assert again.status == 200 and again.json["reused"] is True
    assert again.json["id"] == first.json["id"]
    used = world[0].get(CODE + "/" + code["id"], token=tok(world, "scientist")).json["output_policy"]
    assert used == {"kind": "single_execution", "limit": 1, "used": 1}


def test_execute_count_allows_exactly_n_runs(world):
    code = approved_code(world, policy={"kind": "execute_count", "limit": 2})
    ids = [run(world, code["id"]).json for _ in range(3)]
    assert [j["reused"] for j in ids] == [False, False, True]
    assert ids[2]["id"] == ids[1]["id"]


def test_mock_run_needs_no_approval_and_sees_only_the_mock(world):
    code = submit(world)
    job = run(world, code["id"], mock=True).json
    assert (job["kind"], job["status"], job["result"]["inline"]) == ("mock", "completed", 3)


def test_run_inputs_must_match_the_policy_exactly(world):
    api, actors, asset_id = world
    code = approved_code(world)
    for inputs, fragment in (({"data": {"value": 1}}, "differs"),
                             ({"data": {"asset_id": asset_id}, "x": {"value": 1}}, "not in"),
                             ({}, "missing")):
        resp = run(world, code["id"], inputs=inputs)
        assert_error(resp, 400, "INVALID_ARGUMENT")
        assert fragment in resp.error["message"]
    ok = run(world, code["id"], inputs={"data": {"asset_id": asset_id}})
    assert ok.json["status"] == "completed"


def test_constants_are_bound_and_must_match(world):
    name = unique("c").replace("-", "_")
    src = "def {}(data, k):\n    return int(data['age'].max()) * k\n".format(name)
    code = approved_code(world, name=name, source=src,
                         inputs={"data": {"asset_id": world[2]}, "k": {"value": 3}})
    resp = run(world, code["id"], inputs={"data": {"asset_id": world[2]}, "k": {"value": 4}})
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert run(world, code["id"]).json["result"]["inline"] == 150


def test_results_come_back_in_every_format(world):
    name = unique("r").replace("-", "_")
    cases = {
        "return {'a': [1, 2], 'b': None}": ("json", {"a": [1, 2], "b": None}),
        "return data.describe()": ("csv", None),
        "import numpy as np\n    return np.arange(6).reshape(2, 3)": ("npy", None),
        "return b'\\x00\\x01raw'": ("bytes", None),
    }
    for i, (body, (fmt, value)) in enumerate(cases.items()):
        fn = "{}_{}".format(name, i)
        code = submit(world, name=fn, source="def {}(data):\n    {}\n".format(fn, body))
        job = run(world, code["id"], mock=True).json
        assert job["status"] == "completed", job
        assert job["result"]["format"] == fmt
        raw = world[0].get(JOBS + "/" + job["id"] + "/result", token=tok(world, "scientist"))
        assert raw.status == 200 and raw.headers.get("x-datasite-result-format") == fmt
        if fmt == "json":
            assert job["result"]["inline"] == value
        elif fmt == "csv":
            frame = pd.read_csv(io.StringIO(job["result"]["inline"]), index_col=0)
            assert "age" in frame.columns
        elif fmt == "npy":
            arr = np.load(io.BytesIO(base64.b64decode(job["result"]["inline"])), allow_pickle=False)
            assert arr.shape == (2, 3)
        else:
            assert base64.b64decode(job["result"]["inline"]) == b"\x00\x01raw" == raw.raw


def test_user_exception_is_a_clear_job_error_with_traceback_for_owners(world):
    name = unique("e").replace("-", "_")
    code = submit(world, name=name, source="def {}(data):\n    return 1 / 0\n".format(name))
    job = run(world, code["id"], mock=True).json
    assert job["status"] == "errored"
    assert "ZeroDivisionError" in job["error"]
    logs_owner = world[0].get(JOBS + "/" + job["id"] + "/logs", token=tok(world, "owner")).json
    assert "Traceback" in logs_owner["stderr"]
    # A run on the mocks shows its own traceback to its user too.
    logs_ds = world[0].get(JOBS + "/" + job["id"] + "/logs", token=tok(world, "scientist")).json
    assert "Traceback" in logs_ds["stderr"]


def test_non_blocking_run_then_kill(world):
    name = unique("s").replace("-", "_")
    code = submit(world, name=name, source="import time\ndef {}(data):\n    time.sleep(30)\n".format(name))
    job = run(world, code["id"], mock=True, blocking=False).json
    assert job["status"] in ("queued", "running")
    killed = world[0].post(JOBS + "/" + job["id"] + "/kill", {}, token=tok(world, "scientist"))
    assert killed.status == 200, killed
    deadline = time.time() + 20
    while time.time() < deadline:
        state = world[0].get(JOBS + "/" + job["id"], token=tok(world, "scientist")).json["status"]
        if state == "killed":
            break
        time.sleep(0.05)
    assert state == "killed"
    assert_error(world[0].post(JOBS + "/" + job["id"] + "/kill", {}, token=tok(world, "scientist")),
                 409, "FAILED_PRECONDITION")


def test_timeout_ends_the_job_timed_out(world):
    name = unique("t").replace("-", "_")
    code = submit(world, name=name, source="def {}(data):\n    while True:\n        pass\n".format(name))
    job = run(world, code["id"], mock=True, timeout_seconds=1).json
    assert job["status"] == "timed_out", job
    assert_error(run(world, code["id"], mock=True, timeout_seconds=0), 400, "INVALID_ARGUMENT")


def test_output_review_holds_private_results_until_released(world):
    api = world[0]
    admin = tok(world, "admin")
    assert api.patch("/api/v1/settings", {"output_review": True}, token=admin).status == 200
    try:
        code = approved_code(world)
        job = run(world, code["id"]).json
        assert job["status"] == "completed"
        assert job["result"]["held"] is True and job["result"]["inline"] is None
        # Nor what the result's format is, or how long the run took: both can depend on the data
        # (issue 11: a run chose its format and duration by a private byte).
        seen = api.get(JOBS + "/" + job["id"], token=tok(world, "scientist")).json
        assert seen["result"]["format"] is None and seen["finished_at"] is None, seen
        assert_error(api.get(JOBS + "/" + job["id"] + "/result", token=tok(world, "scientist")),
                     409, "FAILED_PRECONDITION")
        assert api.get(JOBS + "/" + job["id"] + "/logs", token=tok(world, "scientist")).json["stdout"] is None
        assert_error(api.post(JOBS + "/" + job["id"] + "/release", {}, token=tok(world, "scientist")),
                     403, "PERMISSION_DENIED")
        # The owner sees it, releases it, and then the scientist does.
        assert api.get(JOBS + "/" + job["id"], token=tok(world, "owner")).json["result"]["inline"] == 120
        assert api.post(JOBS + "/" + job["id"] + "/release", {}, token=tok(world, "owner")).status == 200
        seen = api.get(JOBS + "/" + job["id"], token=tok(world, "scientist")).json
        assert seen["result"]["held"] is False and seen["result"]["inline"] == 120
        assert seen["result"]["format"] == "json" and seen["finished_at"] is not None
        # Mock runs are never held.
        assert run(world, submit(world)["id"], mock=True).json["result"]["held"] is False
    finally:
        api.patch("/api/v1/settings", {"output_review": False}, token=admin)


def test_private_bytes_never_reach_the_scientist_through_job_routes(world):
    """Even code that returns the private table: before approval nothing runs; a mock run sees
    only the mock; what leaves is only the approved result."""
    api = world[0]
    name = unique("leak").replace("-", "_")
    code = submit(world, name=name, source="def {}(data):\n    print(data.to_csv())\n    return data\n".format(name))
    for resp in (run(world, code["id"]), run(world, code["id"], mock=True)):
        assert SECRET not in resp.text
    for job in api.get(JOBS, token=tok(world, "scientist")).json["items"]:
        for suffix in ("", "/logs", "/result"):
            assert SECRET not in api.get(JOBS + "/" + job["id"] + suffix, token=tok(world, "scientist")).text


def test_failed_private_runs_count_against_the_policy(world):
    """A failed run's error may quote private values: retrying it must not be free."""
    name = unique("fail").replace("-", "_")
    code = approved_code(world, name=name,
                         source="def {}(data):\n    raise KeyError(str(data['age'].max()))\n".format(name))
    first = run(world, code["id"]).json
    assert first["status"] == "errored" and first["failure"] == "code_error"
    assert "KeyError" not in first["error"]
    again = run(world, code["id"])
    assert again.status == 200 and again.json["reused"] is True and again.json["id"] == first["id"]
    used = world[0].get(CODE + "/" + code["id"], token=tok(world, "scientist")).json["output_policy"]
    assert used["used"] == 1


def test_output_review_holds_errors_and_stdout_of_failed_private_runs(world):
    api = world[0]
    admin = tok(world, "admin")
    assert api.patch("/api/v1/settings", {"output_review": True}, token=admin).status == 200
    try:
        name = unique("heldfail").replace("-", "_")
        code = approved_code(world, name=name, source=(
            "def {}(data):\n    print(data['name'][0])\n    raise ValueError(data['name'][0])\n").format(name))
        job = run(world, code["id"]).json
        assert job["status"] == "errored"
        assert SECRET not in json.dumps(job) and "held" in job["error"]
        jid = job["id"]
        assert api.get(JOBS + "/" + jid + "/logs", token=tok(world, "scientist")).json["stdout"] is None
        assert SECRET not in api.get(JOBS + "/" + jid, token=tok(world, "scientist")).text
        # The owner sees the real error. Releasing the run shows its kind of failure; releasing
        # its error shows the scientist the text too.
        assert SECRET in api.get(JOBS + "/" + jid, token=tok(world, "owner")).json["error"]
        refused = api.post(JOBS + "/" + jid + "/release_error", {}, token=tok(world, "owner"))
        assert_error(refused, 409, "FAILED_PRECONDITION")
        assert api.post(JOBS + "/" + jid + "/release", {}, token=tok(world, "owner")).status == 200
        seen = api.get(JOBS + "/" + jid, token=tok(world, "scientist")).json
        assert SECRET not in json.dumps(seen) and seen["failure"] == "code_error"
        assert api.post(JOBS + "/" + jid + "/release_error", {},
                        token=tok(world, "owner")).status == 200
        assert SECRET in api.get(JOBS + "/" + jid, token=tok(world, "scientist")).json["error"]
    finally:
        api.patch("/api/v1/settings", {"output_review": False}, token=admin)


def test_a_deeply_nested_body_is_refused_and_the_server_lives(world):
    api = world[0]
    code = submit(world)
    deep = b'{"inputs":' + b"[" * 200000 + b"]" * 200000 + b"}"
    resp = api("POST", CODE + "/" + code["id"] + "/run", raw=deep, token=tok(world, "scientist"),
               headers={"Content-Type": "application/json"})
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert api.get("/healthz").status == 200


def test_a_hostile_source_is_refused_without_harm(world):
    api = world[0]
    source = "\ndef" + " " * 500000 + "f(data):\n    return 1\n"
    resp = api.post(CODE, {"name": "g", "source": source, "inputs": {}}, token=tok(world, "scientist"))
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert api.get("/healthz").status == 200
