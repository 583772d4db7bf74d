"""Hostile floods of the job queue and of the server's disk (issue 11), through a real server with
small limits set by launch flags.

- Queue flood: a data scientist queued 60 mock runs in 0.5 s and the owner's trivial job then waited
  35 s behind them. Now each scientist may have only ``--max-queued-jobs-per-user`` jobs queued or
  running (more: 429), and data owners' runs are leased before any scientist's.
- Disk flood: mock-run results were kept forever, outside ``--max-storage-bytes``. Now results and
  logs count toward the storage limit and a per-user quota, and only the newest mock outputs stay.
"""

import time

import pytest

from dataset_helpers import make_actors
from helpers import needs_sandbox, assert_error, DetachedServer, unique

pytestmark = needs_sandbox

QUEUE_CAP = 4
QUOTA = 3_000_000
# A data owner's review run counts its ceiling against the storage (3 MiB of result, 1 MiB of each log:
# see test_storage_meter_hidden_sizes.py), whatever it keeps: room for one, and the scientist's runs.
STORAGE = 10_000_000
KEPT = 2
WAIT = 60


def submit(api, token, name, body):
    """Submits ``def name(): body`` and returns its id."""
    source = "def {}():\n    {}\n".format(name, body)
    resp = api.post("/api/v1/code", {"name": name, "source": source}, token=token)
    assert resp.status == 201, resp
    return resp.json["id"]


def run(api, token, code_id, mock=True, blocking=True):
    return api.post("/api/v1/code/{}/run".format(code_id),
                    {"mock": mock, "blocking": blocking}, token=token)


def job(api, token, job_id):
    resp = api.get("/api/v1/jobs/" + job_id, token=token)
    assert resp.status == 200, resp
    return resp.json


def wait_ended(api, token, job_id):
    deadline = time.monotonic() + WAIT
    while True:
        j = job(api, token, job_id)
        if j["status"] not in ("queued", "running"):
            return j
        assert time.monotonic() < deadline, "job still {}: {}".format(j["status"], j)
        time.sleep(0.05)


@pytest.fixture(scope="module")
def flood_server(binary, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("floods") / "data"
    server = DetachedServer(binary, data_dir, "--workers", "1", "--job-timeout", "20",
                            "--max-queued-jobs-per-user", QUEUE_CAP,
                            "--user-quota-bytes", QUOTA, "--max-storage-bytes", STORAGE,
                            "--mock-results-kept", KEPT, "--max-result-bytes", 3 << 20)
    try:
        api = server.start()
        actors = make_actors(server.port)
        # The sandbox starts in the background: one job run to the end means it is up.
        warm = submit(api, actors["owner"].token, unique("warm"), "return 1")
        assert run(api, actors["owner"].token, warm).json["status"] == "completed"
        yield api, actors, data_dir
    finally:
        server.stop()


def test_queue_flood_is_capped_and_the_owners_job_goes_first(flood_server):
    api, actors, _ = flood_server
    scientist, owner = actors["scientist"].token, actors["owner"].token
    # Each flood job takes 1.5 s: the owner's run must come while the third is still running (the
    # last queued) even when the requests below are slow, as on a loaded machine.
    slow = submit(api, scientist, unique("slow"), "import time; time.sleep(1.5); return 1")
    flood = []
    refused = []
    for _ in range(QUEUE_CAP + 3):
        resp = run(api, scientist, slow, blocking=False)
        (flood if resp.status == 201 else refused).append(resp)
    assert len(flood) == QUEUE_CAP, [r.status for r in flood + refused]
    for resp in refused:
        assert_error(resp, 429, "RESOURCE_EXHAUSTED")
        assert resp.headers.get("retry-after") == "5", resp.headers
        assert "queued or running" in resp.error["message"], resp
    quota = actors["scientist"].client.account.quota
    assert quota.queued_jobs == QUEUE_CAP
    assert quota.max_queued_jobs == QUEUE_CAP

    # The owner is not limited by the cap, and their review run overtakes the queued flood.
    trivial = submit(api, owner, unique("trivial"), "return 42")
    reviewed = run(api, owner, trivial, mock=False)
    assert reviewed.status == 201, reviewed
    assert reviewed.json["kind"] == "review"
    assert reviewed.json["status"] == "completed", reviewed
    tail = job(api, scientist, flood[-1].json["id"])
    assert tail["status"] == "queued" and tail["started_at"] is None, tail
    assert actors["owner"].client.account.quota.max_queued_jobs is None

    for resp in flood:
        assert wait_ended(api, scientist, resp.json["id"])["status"] == "completed"
    # Once the flood ended, the scientist may queue again.
    again = run(api, scientist, slow, blocking=False)
    assert again.status == 201, again
    wait_ended(api, scientist, again.json["id"])


def result_files(data_dir):
    """The jobs with a result kept out of the database: the results' directory store holds one
    blob per run, `results/<ab>/<job id>.<attempts>`."""
    results = data_dir / "results"
    if not results.exists():
        return []
    return sorted(p.name.split(".")[0] for sub in results.iterdir()
                  if sub.is_dir() and len(sub.name) == 2 for p in sub.iterdir())


def test_disk_flood_is_counted_expired_and_refused(flood_server):
    api, actors, data_dir = flood_server
    scientist, owner = actors["scientist"].token, actors["owner"].token
    client = actors["scientist"].client
    before = client.account.quota
    assert before.quota_bytes == QUOTA and before.mock_results_kept == KEPT
    # Results over 1 MiB are kept in files, the smaller ones in the database.
    big = submit(api, scientist, unique("big"), "return b'x' * 1_200_000")
    runs = [run(api, scientist, big) for _ in range(3)]
    for resp in runs:
        assert resp.status == 201 and resp.json["status"] == "completed", resp
    ids = [r.json["id"] for r in runs]

    # Only the newest KEPT mock outputs stay: the oldest expired, its file is gone.
    oldest = job(api, scientist, ids[0])
    assert oldest["status"] == "completed" and oldest["result"]["expired"] is True, oldest
    expired = api.get("/api/v1/jobs/{}/result".format(ids[0]), token=scientist)
    assert_error(expired, 404, "NOT_FOUND")
    assert "expired" in expired.error["message"], expired
    for job_id in ids[1:]:
        assert job(api, scientist, job_id)["result"]["expired"] is False
        kept = api.get("/api/v1/jobs/{}/result".format(job_id), token=scientist)
        assert kept.status == 200 and len(kept.raw) == 1_200_000
    assert result_files(data_dir) == sorted(ids[1:])
    quota = client.account.quota
    assert quota.results_bytes == 2 * 1_200_000
    assert quota.used_bytes == quota.results_bytes + quota.logs_bytes + quota.code_bytes

    # A result the quota can hold only once older mock outputs go: they expire, oldest first.
    bigger = run(api, scientist, submit(api, scientist, unique("bigger"), "return b'y' * 2_000_000"))
    assert bigger.json["status"] == "completed", bigger
    assert client.account.quota.results_bytes == 2_000_000
    assert result_files(data_dir) == [bigger.json["id"]]

    # A result larger than the whole quota is not kept, and costs the other outputs nothing.
    huge = run(api, scientist, submit(api, scientist, unique("huge"),
                                      "print('still here'); return b'z' * 3_100_000"))
    assert huge.json["status"] == "errored", huge
    assert "was not kept" in huge.json["error"] and str(QUOTA) in huge.json["error"], huge
    assert huge.json["result"] is None
    logs = api.get("/api/v1/jobs/{}/logs".format(huge.json["id"]), token=scientist)
    assert "still here" in logs.json["stdout"], logs
    assert client.account.quota.results_bytes == 2_000_000
    assert result_files(data_dir) == [bigger.json["id"]]

    # The server's limit binds owners too: the review run of the queue test (counted at its ceiling,
    # 5.2 MB) and 2 MB kept leave no room for another review run's ceiling, whatever it keeps.
    owners = run(api, owner, submit(api, owner, unique("owners"), "return b'o' * 2_500_000"),
                 mock=False)
    assert owners.json["status"] == "errored", owners
    assert "storage limit of {} bytes".format(STORAGE) in owners.json["error"], owners
    assert result_files(data_dir) == [bigger.json["id"]]


def test_a_private_run_not_kept_tells_its_requester_no_size(flood_server):
    """The size of what a run on private data wrote is the code's to choose (a traceback's length
    tells the length of private values): its requester reads that it was not kept, not its size;
    data owners read both."""
    api, actors, _ = flood_server
    scientist, owner = actors["scientist"].token, actors["owner"].token
    code_id = submit(api, scientist, unique("toolarge"), "return b'p' * 3_100_123")
    request = api.post("/api/v1/requests", {"code_id": code_id, "reason": "size"}, token=scientist)
    assert request.status == 201, request
    approved = api.post("/api/v1/requests/{}/approve".format(request.json["id"]), {}, token=owner)
    assert approved.status == 200, approved
    ran = run(api, scientist, code_id, mock=False)
    assert ran.json["status"] == "errored", ran
    seen = wait_ended(api, scientist, ran.json["id"])
    assert "was not kept" in seen["error"] and "3100123" not in str(seen), seen
    owners_view = job(api, owner, ran.json["id"])
    assert "3100123" in owners_view["error"], owners_view
