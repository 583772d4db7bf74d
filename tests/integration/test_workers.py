"""`datasite worker`: jobs of a server launched with `--workers 0 --external-workers` run in other
processes that share its data directory, through the queue's contract in the database (leases with an
owner and an expiry, kills as a row flag, waits that watch the row)."""

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from dataset_helpers import make_actors
from helpers import DetachedServer, assert_error, needs_sandbox
from test_code_server import submit, upload, wait_status


# The server's limits (its defaults here), which a worker must be given: it does not read them.
LIMITS = ["--max-storage-bytes", str(1 << 40), "--user-quota-bytes", str(1 << 30), "--max-result-bytes",
          str(256 << 20), "--mock-results-kept", "10"]


class Worker:
    """One `datasite worker` process on `data_dir`, its output in a file beside it."""

    def __init__(self, binary, data_dir, name, *flags):
        self.log = open(str(data_dir) + "." + name + ".log", "wb")
        self.proc = subprocess.Popen(
            [binary, "worker", "--data-dir", str(data_dir), "--name", name, "--workers", "1", *LIMITS, *flags],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def job_row(data_dir, job_id):
    db = sqlite3.connect(str(data_dir / "datasite.db"))
    try:
        return db.execute("SELECT status, attempts, lease_owner FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        db.close()


def start_running(api, owner, asset_id, body):
    """A run of new code with `body`, once a worker has it running."""
    code = submit(api, owner, asset_id, body)
    job = api.post("/api/v1/code/%s/run" % code, {"blocking": False}, token=owner).json
    wait_status(api, owner, job["id"], ("running",))
    return job


@pytest.fixture
def api_server(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0", "--external-workers")
    try:
        api = server.start()
        yield server, api, make_actors(server.port), tmp_path / "data"
    finally:
        server.stop()


def test_a_worker_needs_a_server_that_started_on_its_directory(binary, tmp_path):
    out = subprocess.run([binary, "worker", "--data-dir", str(tmp_path / "nothing"), "--workers", "1", *LIMITS],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "no datasite in" in out.stderr and "--external-workers" in out.stderr, out.stderr


def test_a_worker_must_be_given_the_servers_limits(binary, tmp_path):
    # A worker started on its defaults let a scientist keep 6x the server's --user-quota-bytes (cold attack).
    for at in range(0, len(LIMITS), 2):
        without = LIMITS[:at] + LIMITS[at + 2:]
        out = subprocess.run([binary, "worker", "--data-dir", str(tmp_path), "--workers", "1", *without],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode != 0
        assert LIMITS[at] + " is required" in out.stderr, out.stderr


@needs_sandbox
def test_jobs_wait_for_a_worker_then_run_in_it(binary, api_server):
    server, api, actors, data_dir = api_server
    owner = actors["owner"].token
    asset_id = upload(api, actors)
    code = submit(api, owner, asset_id)
    # No worker yet: queued, not refused.
    queued = api.post("/api/v1/code/%s/run" % code, {"blocking": False}, token=owner)
    assert queued.status == 201, queued
    time.sleep(0.5)
    assert api.get("/api/v1/jobs/" + queued.json["id"], token=owner).json["status"] == "queued"
    worker = Worker(binary, data_dir, "w1")
    try:
        done = wait_status(api, owner, queued.json["id"], ("completed", "errored"))
        assert done["status"] == "completed", done
        assert job_row(data_dir, queued.json["id"]) == ("completed", 1, "w1")
        # A blocking run sees the end the worker recorded, well before its deadline.
        started = time.time()
        blocking = api.post("/api/v1/code/%s/run" % submit(api, owner, asset_id, "return 7"), {},
                            token=owner)
        assert blocking.status == 201 and blocking.json["status"] == "completed", blocking
        assert time.time() - started < 20
    finally:
        worker.stop()


@needs_sandbox
def test_a_kill_on_the_server_stops_a_run_in_a_worker(binary, api_server):
    server, api, actors, data_dir = api_server
    owner = actors["owner"].token
    asset_id = upload(api, actors)
    worker = Worker(binary, data_dir, "w1", "--job-timeout", "120")
    try:
        job = start_running(api, owner, asset_id, "import time; time.sleep(60); return 1")
        killed_at = time.time()
        resp = api.post("/api/v1/jobs/%s/kill" % job["id"], {}, token=owner)
        assert resp.status == 200, resp
        ended = wait_status(api, owner, job["id"], ("killed", "completed", "errored"), timeout=30)
        assert ended["status"] == "killed", ended
        assert time.time() - killed_at < 15  # the worker's heartbeat, not the 60 s run
        assert_error(api.post("/api/v1/jobs/%s/kill" % job["id"], {}, token=owner), 409, "FAILED_PRECONDITION")
    finally:
        worker.stop()


@needs_sandbox
def test_a_worker_killed_mid_job_takes_it_back_when_it_starts_again(binary, api_server):
    server, api, actors, data_dir = api_server
    owner = actors["owner"].token
    asset_id = upload(api, actors)
    first = Worker(binary, data_dir, "w1")
    other = None
    try:
        job = start_running(api, owner, asset_id, "import time; time.sleep(3); return 5")
        first.kill9()
        # Another worker leaves a live-looking lease alone (it has not expired)...
        other = Worker(binary, data_dir, "w2")
        time.sleep(2)
        assert job_row(data_dir, job["id"]) == ("running", 1, "w1")
        # ...while a worker under the dead one's name takes its jobs back at once.
        first = Worker(binary, data_dir, "w1")
        done = wait_status(api, owner, job["id"], ("completed", "errored", "interrupted"))
        assert done["status"] == "completed", done
        status, attempts, lease_owner = job_row(data_dir, job["id"])
        assert (status, attempts) == ("completed", 2)
        assert lease_owner in ("w1", "w2")
        result = api.get("/api/v1/jobs/%s/result" % job["id"], token=owner)
        assert result.status == 200, result
    finally:
        first.stop()
        if other:
            other.stop()


@needs_sandbox
def test_a_pools_jobs_run_only_in_its_workers(binary, api_server, tmp_path):
    # Full stack (issue 19): the API server records the pool; `datasite worker --pool cpu` runs
    # its jobs in its image's environment and publishes the package hash approvals bind; a default
    # worker leaves them queued.
    server, api, actors, data_dir = api_server
    owner = actors["owner"].token
    asset_id = upload(api, actors)
    image = api.post("/api/v1/worker_images",
                     {"name": "system", "worker_config": {"python": "/usr/bin/python3"}},
                     token=owner)
    # Checking a path image starts a one-slot sandbox in the API process, even with --workers 0.
    assert image.status == 201, image
    pool = api.post("/api/v1/worker_pools", {"name": "cpu", "image_id": image.json["id"]},
                    token=owner)
    assert pool.status == 201, pool
    assert pool.json["status"] == "no_workers"
    name = "pooled"
    code = api.post("/api/v1/code", {"name": name, "worker_pool_name": "cpu",
                                     "source": "def pooled(data):\n    return int(data['age'].sum())\n",
                                     "inputs": {"data": {"asset_id": asset_id}}}, token=owner)
    assert code.status == 201, code
    default_worker = Worker(binary, data_dir, "w-default")
    try:
        queued = api.post("/api/v1/code/%s/run" % code.json["id"], {"blocking": False}, token=owner)
        assert queued.status == 201, queued
        time.sleep(2)  # the default worker is up and leasing: it must not take the pool's job
        assert api.get("/api/v1/jobs/" + queued.json["id"], token=owner).json["status"] == "queued"
        pool_worker = Worker(binary, data_dir, "w-cpu", "--pool", "cpu")
        try:
            done = wait_status(api, owner, queued.json["id"], ("completed", "errored"))
            assert done["status"] == "completed", done
            assert job_row(data_dir, queued.json["id"])[2] == "w-cpu"
            listed = api.get("/api/v1/worker_pools/cpu", token=owner).json
            assert listed["status"] == "external" and len(listed["packages_hash"]) == 64
        finally:
            pool_worker.stop()
    finally:
        default_worker.stop()
    # A worker of a pool nobody launched refuses to start, saying so.
    out = subprocess.run([binary, "worker", "--data-dir", str(data_dir), "--workers", "1",
                          "--pool", "gpu", *LIMITS], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "no worker pool 'gpu'" in out.stderr, out.stderr
