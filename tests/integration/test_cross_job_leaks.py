"""Jobs must not see each other (issue 11): what one job held — private rows it read, a report it
forged, another user's constants and error text — must not be readable by a later job on the same
sandbox slot. The server runs one worker slot, so every job follows the previous one on the same
template process; the later job is a data scientist's mock run, which needs no approval."""

import pathlib

import pytest

from dataset_helpers import create_dataset, make_actors, marker, new_blob
from helpers import needs_sandbox, DetachedServer, unique

pytestmark = needs_sandbox

ROWS = 300

# Python source a probing job starts with (shared with src/sandbox/sandbox_test.cc): forge(report)
# sends a framed report on every socket the job holds; scan(needle) counts private rows in the job's
# memory and says whether its control row was found.
PROBES = pathlib.Path(__file__).resolve().parents[1] / "sandbox_probes"
FORGE = (PROBES / "forge.py").read_text()
SCAN = (PROBES / "scan.py").read_text()


@pytest.fixture(scope="module")
def one_slot(binary, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("leaks") / "data"
    server = DetachedServer(binary, data_dir, "--workers", "1", "--job-timeout", "60")
    try:
        api = server.start()
        actors = make_actors(server.port)
        owner = actors["owner"].token
        needle = marker()
        private = "row\n" + "".join("{}-{}\n".format(needle, i) for i in range(ROWS))
        data = new_blob(api, owner, "csv", private.encode())
        mock = new_blob(api, owner, "csv", b"row\nnothing\n")
        resp = create_dataset(api, owner, unique("leaky"), [{"name": "t", "data": data["id"], "mock": mock["id"]}])
        assert resp.status == 201, resp
        yield api, actors, resp.json["assets"][0]["id"], needle
    finally:
        server.stop()


def submit(api, token, source, inputs):
    code = api.post("/api/v1/code", {"name": "f", "source": source + "\n# " + unique("v") + "\n",
                                     "inputs": inputs}, token=token)
    assert code.status == 201, code
    return code.json["id"]


def run(api, token, code_id, **body):
    resp = api.post("/api/v1/code/%s/run" % code_id, body, token=token)
    assert resp.status in (200, 201), resp
    return resp.json


def test_an_owners_review_run_does_not_leak_private_rows_to_a_scientists_mock_run(one_slot):
    api, actors, asset_id, needle = one_slot
    owner, scientist = actors["owner"].token, actors["scientist"].token
    # A function an owner runs on the private data to review it smuggles the rows out in a forged
    # report with an extra field.
    leaky = submit(api, scientist, FORGE + (
        "def f(data):\n"
        "    rows = ''.join(data['row'].astype(str) + ',')\n"
        "    forge({'status': 'error', 'error': 'boom', 'rows': rows})\n"
        "    forge({'type': 'done', 'status': 'error', 'error': 'boom', 'rows': rows})\n"
        "    return 1\n"), {"data": {"asset_id": asset_id}})
    review = run(api, owner, leaky)
    assert needle not in str(review)
    # The scientist's next run, on the mock (no approval), scans the memory it was forked with.
    scanner = submit(api, scientist, SCAN + "def f(data, r):\n    return scan(r[::-1])\n",
                     {"data": {"asset_id": asset_id}, "r": {"value": needle[::-1]}})
    for _ in range(2):
        job = run(api, scientist, scanner, mock=True)
        assert job["status"] == "completed", job
        assert job["result"]["inline"] == [0, True], "private rows found in a later mock run's memory"


def test_another_users_job_is_not_on_the_next_jobs_stack(one_slot):
    api, actors, asset_id, _ = one_slot
    owner, scientist = actors["owner"].token, actors["scientist"].token
    key = marker()
    # The owner's job: a constant (an API key) and an error text holding private values.
    secret = submit(api, owner, "def f(api_key):\n    raise ValueError('private ' + api_key + '-1,')\n",
                    {"api_key": {"value": key}})
    assert run(api, owner, secret)["status"] == "errored"
    walker = submit(api, scientist, SCAN + (
        "import gc, sys\n"
        "def f(data, r):\n"
        "    has = lambda o: r[::-1] in repr(o)  # no frame keeps the needle\n"
        "    hits, frame = 0, sys._getframe().f_back\n"
        "    while frame is not None:\n"
        "        hits += sum(has(v) for v in frame.f_locals.values())\n"
        "        frame = frame.f_back\n"
        "    hits += sum(1 for o in gc.get_objects() if isinstance(o, dict) and has(o))\n"
        "    return [hits, scan(r[::-1])]\n"), {"data": {"asset_id": asset_id}, "r": {"value": key[::-1]}})
    job = run(api, scientist, walker, mock=True)
    assert job["status"] == "completed", job
    assert job["result"]["inline"] == [0, [0, True]], "the owner's constant was found by a later job"


def test_a_forged_report_is_an_error_of_its_own_job_and_the_slot_serves_on(one_slot):
    api, actors, asset_id, needle = one_slot
    scientist = actors["scientist"].token
    forger = submit(api, scientist, FORGE + (
        "import os\n"
        "def f(data):\n"
        "    forge({'type': 'done', 'status': 'sandbox', 'error': 'FORGED'})\n"
        "    os._exit(0)\n"), {"data": {"asset_id": asset_id}})
    job = run(api, scientist, forger, mock=True)
    assert job["status"] == "errored", job
    assert "FORGED" not in str(job) and "report" in job["error"], job
    ok = submit(api, scientist, "def f(data):\n    return len(data)\n", {"data": {"asset_id": asset_id}})
    assert run(api, scientist, ok, mock=True)["result"]["inline"] == 1
