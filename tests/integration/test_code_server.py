"""Jobs across a crash, and servers that can't (or mustn't) run code on private data."""

import os
import sqlite3
import time

import pytest

from dataset_helpers import create_dataset, make_actors, new_blob
from helpers import PASSWORD, DetachedServer, assert_error, needs_sandbox, unique

CSV = b"age\n30\n40\n50\n"


def upload(api, actors, with_data=True):
    owner = actors["owner"].token
    mock = new_blob(api, owner, "csv", b"age\n1\n2\n")
    asset = {"name": "t", "mock": mock["id"]}
    if with_data:
        asset["data"] = new_blob(api, owner, "csv", CSV)["id"]
    resp = create_dataset(api, owner, unique("d"), [asset])
    assert resp.status == 201, resp
    return resp.json["assets"][0]["id"]


def submit(api, token, asset_id, body="return int(data['age'].sum())"):
    name = unique("f").replace("-", "_")
    resp = api.post("/api/v1/code", {"name": name, "source": "def {}(data):\n    {}\n".format(name, body),
                                     "inputs": {"data": {"asset_id": asset_id}}}, token=token)
    assert resp.status == 201, resp
    return resp.json["id"]


def wait_status(api, token, job_id, want, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = api.get("/api/v1/jobs/" + job_id, token=token).json
        if job["status"] in want:
            return job
        time.sleep(0.05)
    raise AssertionError("job {} never reached {}: {}".format(job_id, want, job))


@needs_sandbox
def test_sigkill_keeps_queued_jobs_and_reruns_the_running_one(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data", "--workers", "1")
    try:
        api = server.start()
        actors = make_actors(server.port)
        owner = actors["owner"].token
        asset_id = upload(api, actors)
        slow = submit(api, owner, asset_id, "import time; time.sleep(2); return 1")
        quick = submit(api, owner, asset_id, "return 2")
        running = api.post("/api/v1/code/%s/run" % slow, {"blocking": False}, token=owner).json
        assert "id" in running, running
        queued = api.post("/api/v1/code/%s/run" % quick, {"blocking": False}, token=owner).json
        wait_status(api, owner, running["id"], ("running",))
        assert api.get("/api/v1/jobs/" + queued["id"], token=owner).json["status"] == "queued"
        server.kill9()

        db = sqlite3.connect(str(tmp_path / "data" / "datasite.db"))
        rows = dict(db.execute("SELECT id, status FROM jobs").fetchall())
        assert rows[running["id"]] == "running" and rows[queued["id"]] == "queued"
        db.close()

        api = server.start()
        owner = api.login(actors["owner"].user["email"], PASSWORD)
        first = wait_status(api, owner, running["id"], ("completed", "errored", "interrupted"))
        second = wait_status(api, owner, queued["id"], ("completed", "errored", "interrupted"))
        assert (first["status"], first["attempts"], first["result"]["inline"]) == ("completed", 2, 1)
        assert (second["status"], second["attempts"], second["result"]["inline"]) == ("completed", 1, 2)
        db = sqlite3.connect(str(tmp_path / "data" / "datasite.db"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    finally:
        server.stop()


@needs_sandbox
def test_a_private_run_that_wrote_output_before_a_crash_counts_and_is_not_run_again(binary,
                                                                                   tmp_path):
    # A cold attack: a scientist read a running private job's output (its live logs), the server
    # stopped, and the run was queued again (a second run's output for one use), then after the
    # second stop it ended `interrupted`, which did not count: a single-use approval ran again for
    # every restart. A run whose output may have been read counts, and is not run again.
    server = DetachedServer(binary, tmp_path / "data", "--workers", "1")
    try:
        api = server.start()
        actors = make_actors(server.port)
        owner, scientist = actors["owner"].token, actors["scientist"].token
        asset_id = upload(api, actors)
        code = submit(api, scientist, asset_id,
                      "print(int(data['age'].sum()), flush=True); import time; time.sleep(60)")
        request = api.post("/api/v1/requests", {"code_id": code, "reason": "r"}, token=scientist)
        assert request.status == 201, request
        approved = api.post("/api/v1/requests/%s/approve" % request.json["id"], {}, token=owner)
        assert approved.status == 200, approved
        job = api.post("/api/v1/code/%s/run" % code, {"blocking": False}, token=scientist).json
        assert job.get("kind") == "private", job
        deadline = time.time() + 60
        while api.get("/api/v1/jobs/%s/logs" % job["id"], token=scientist).json["stdout"] != "120\n":
            assert time.time() < deadline, "the private run's output never came"
            time.sleep(0.1)
        server.kill9()

        api = server.start()
        scientist = api.login(actors["scientist"].user["email"], PASSWORD)
        ended = wait_status(api, scientist, job["id"], ("completed", "errored", "interrupted"))
        assert (ended["status"], ended["attempts"]) == ("errored", 1), ended
        assert api.get("/api/v1/code/" + code, token=scientist).json["output_policy"]["used"] == 1
        # Its one use is spent: a new run is not a new private job.
        again = api.post("/api/v1/code/%s/run" % code, {"blocking": False}, token=scientist)
        assert again.status != 201 or again.json["id"] == job["id"], again
    finally:
        server.stop()


@pytest.mark.parametrize("flags, fragment", [
    pytest.param(("--python", "/nonexistent/python3"), "python", marks=needs_sandbox),
    (("--workers", "0"), "--workers 0"),
])
def test_a_server_without_a_sandbox_refuses_to_run_code_and_says_why(binary, tmp_path, flags, fragment):
    server = DetachedServer(binary, tmp_path / "data", *flags)
    try:
        api = server.start()
        actors = make_actors(server.port)
        owner = actors["owner"].token
        code_id = submit(api, owner, upload(api, actors))
        deadline = time.time() + 30
        while True:  # the sandbox starts in the background; its failure is known within seconds
            resp = api.post("/api/v1/code/%s/run" % code_id, {"blocking": False}, token=owner)
            if resp.status != 201 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert_error(resp, 503, "UNAVAILABLE")
        assert "can't run code" in resp.error["message"] and fragment in resp.error["message"], resp
        # Everything else still works.
        assert api.get("/api/v1/code/" + code_id, token=owner).status == 200
        assert api.get("/api/v1/settings", token=owner).status == 200
    finally:
        server.stop()


@needs_sandbox
def test_a_low_side_server_runs_mocks_only(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data", "--side", "low")
    try:
        api = server.start()
        actors = make_actors(server.port)
        scientist = actors["scientist"].token
        code_id = submit(api, scientist, upload(api, actors, with_data=False))
        req = api.post("/api/v1/requests", {"code_id": code_id}, token=scientist).json
        resp = api.post("/api/v1/requests/%s/approve" % req["id"], {}, token=actors["owner"].token)
        assert_error(resp, 409, "FAILED_PRECONDITION")
        assert "low-side" in resp.error["message"]
        assert_error(api.post("/api/v1/code/%s/run" % code_id, {}, token=actors["owner"].token),
                     409, "FAILED_PRECONDITION")
        job = api.post("/api/v1/code/%s/run" % code_id, {"mock": True}, token=scientist).json
        assert (job["status"], job["result"]["inline"]) == ("completed", 3)
    finally:
        server.stop()


def result_names(results):
    """Names of the results a directory store keeps (`results/<ab>/<job id>.<attempts>`), and of
    the files kept before results were blobs (`results/<name>`), sorted."""
    names = [p.name for p in results.iterdir() if p.is_file()]
    for sub in results.iterdir():
        if sub.is_dir() and len(sub.name) == 2:
            names += [p.name for p in sub.iterdir()]
    return sorted(names)


def result_path(results, name):
    """Where the directory store keeps the result blob `name`."""
    (results / name[:2]).mkdir(exist_ok=True)
    return results / name[:2] / name


def write_old(path, content):
    """Writes `content` at `path`, last modified two hours ago: older than any run (a younger
    result may be one another process is storing, and start-up leaves it)."""
    path.write_bytes(content)
    then = time.time() - 7200
    os.utime(path, (then, then))


@needs_sandbox
def test_a_restart_removes_result_files_no_completed_job_refers_to(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data")
    results = tmp_path / "data" / "results"
    try:
        api = server.start()
        actors = make_actors(server.port)
        owner = actors["owner"].token
        asset_id = upload(api, actors)
        # Over 1 MiB: kept as a blob of the results' store; small: kept in the job's row.
        big = api.post("/api/v1/code/%s/run" % submit(api, owner, asset_id, "return b'x' * (2 << 20)"), {},
                       token=owner).json
        small = api.post("/api/v1/code/%s/run" % submit(api, owner, asset_id), {}, token=owner).json
        assert big["status"] == "completed" and small["status"] == "completed", (big, small)
        # One blob per run: "<job id>.<attempts>".
        assert result_names(results) == [big["id"] + ".1"]
        assert not list((results / "tmp").iterdir())
        server.stop()

        # What a run interrupted by a crash leaves: a result beside a job whose result is in its
        # row, one beside no job at all, and one of another run of the completed job (a run whose
        # lease was taken while it ran); and a file of the kind kept before results were blobs.
        write_old(result_path(results, small["id"] + ".1"), b"partial")
        write_old(result_path(results, "01234567-89ab-4def-8123-456789abcdef.1"), b"partial")
        write_old(result_path(results, big["id"] + ".2"), b"stale")
        (results / (small["id"] + ".1")).write_bytes(b"partial, from before")
        write_old(results / "tmp" / "crashed.part", b"half a deposit")
        (results / "running" / (big["id"] + ".2")).write_bytes(b"a run that crashed")
        # Younger than any run: may be a result another process is storing now.
        result_path(results, "11234567-89ab-4def-8123-456789abcdef.1").write_bytes(b"storing")
        api = server.start()
        owner = api.login(actors["owner"].user["email"], PASSWORD)
        assert result_names(results) == sorted([big["id"] + ".1", "11234567-89ab-4def-8123-456789abcdef.1"])
        result_path(results, "11234567-89ab-4def-8123-456789abcdef.1").unlink()
        assert not list((results / "tmp").iterdir())
        assert not list((results / "running").iterdir())
        resp = api.get("/api/v1/jobs/%s/result" % big["id"], token=owner)
        assert resp.status == 200 and resp.raw == b"x" * (2 << 20), resp.status
        server.stop()

        # A job another worker process is running now (its lease not this server's and not expired):
        # its run's result stays; once that lease has expired, it goes.
        db = sqlite3.connect(str(tmp_path / "data" / "datasite.db"))
        far = int(time.time() * 1000) + 3_600_000
        db.execute("UPDATE jobs SET status = 'running', attempts = 1, lease_owner = 'worker-9', "
                   "lease_expires_at = ? WHERE id = ?", (far, small["id"]))
        db.commit()
        write_old(result_path(results, small["id"] + ".1"), b"stored elsewhere, row not yet")
        (results / "running" / (small["id"] + ".1")).write_bytes(b"in progress elsewhere")
        (results / "running" / (small["id"] + ".0")).write_bytes(b"an earlier run's")
        server.start()
        assert result_names(results) == sorted([big["id"] + ".1", small["id"] + ".1"])
        assert [p.name for p in (results / "running").iterdir()] == [small["id"] + ".1"]
        server.stop()
        db.execute("UPDATE jobs SET lease_expires_at = 1 WHERE id = ?", (small["id"],))
        db.commit()
        db.close()
        api = server.start()
        assert result_names(results) == [big["id"] + ".1"]
        assert not list((results / "running").iterdir())
        # Its job, recovered (leased once so far), runs again here.
        owner = api.login(actors["owner"].user["email"], PASSWORD)
        deadline = time.time() + 60
        while api.get("/api/v1/jobs/" + small["id"], token=owner).json["status"] != "completed":
            assert time.time() < deadline, "the recovered job did not run again"
            time.sleep(0.1)
        server.stop()

        # Results kept before they were blobs are still read, and kept: a file named by run, and
        # (before runs were named) one named by job.
        for legacy in (big["id"] + ".1", big["id"]):
            blob = next(p for p in [result_path(results, big["id"] + ".1")] + list(results.glob(big["id"] + "*"))
                        if p.is_file())
            blob.rename(results / legacy)
            api = server.start()
            owner = api.login(actors["owner"].user["email"], PASSWORD)
            assert result_names(results) == [legacy]
            resp = api.get("/api/v1/jobs/%s/result" % big["id"], token=owner)
            assert resp.status == 200 and resp.raw == b"x" * (2 << 20), resp.status
            server.stop()
        api = server.start()
        owner = api.login(actors["owner"].user["email"], PASSWORD)
        assert api.get("/api/v1/jobs/" + small["id"], token=owner).json["result"]["inline"] == 120
    finally:
        server.stop()
