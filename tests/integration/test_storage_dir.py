"""--storage-dir: the replicas of one datasite (separate data directories, one PostgreSQL database) and
its workers keep blobs and job results in one shared directory, so a file written through one process
is read through any other; each one's start-up clean-up leaves what the others are writing, and the
directory never serves two datasites."""

import os
import subprocess
import time
import uuid

import pytest

from conftest import TEST_POSTGRES_URL
from dataset_helpers import create_dataset, make_actors, new_blob
from helpers import DetachedServer, needs_sandbox, unique
from test_code_server import submit, wait_status
from test_workers import LIMITS

needs_postgres = pytest.mark.skipif(not TEST_POSTGRES_URL, reason="needs DATASITE_TEST_POSTGRES_URL")

CSV = b"age\n30\n40\n50\n"
MOCK = b"age\n1\n2\n"
HOUR = 3600


def replica(binary, tmp_path, side, url, storage):
    """A replica on `url` with its own data directory; its jobs are run by workers."""
    return DetachedServer(binary, tmp_path / ("data_" + side), "--database", url, "--storage-dir",
                          str(storage), "--workers", "0", "--external-workers", name="replica-" + side)


def run(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def big_result_through_replicas(binary, tmp_path, api_a, api_b, port_a, worker_flags, workers):
    """Uploads a dataset through replica A and reads its mock through B; starts a worker
    (`datasite worker` with `worker_flags`, appended to `workers`); runs code on the private data
    through B whose result is over 1 MiB (kept out of the database). Returns the owner's token and
    the completed job's id."""
    actors = make_actors(port_a)
    owner = actors["owner"].token
    mock = new_blob(api_a, owner, "csv", MOCK)
    data = new_blob(api_a, owner, "csv", CSV)
    made = create_dataset(api_a, owner, unique("d"), [{"name": "t", "mock": mock["id"], "data": data["id"]}])
    assert made.status == 201, made
    # Uploaded through A, served by B.
    resp = api_b.get("/api/v1/datasets/%s/assets/t/mock" % made.json["id"], token=actors["scientist"].token)
    assert resp.status == 200 and resp.raw == MOCK, resp
    log = open(str(tmp_path / "worker.log"), "wb")
    workers.append((subprocess.Popen([binary, "worker", "--name", "w1", "--workers", "1", *worker_flags, *LIMITS],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), log))
    code = submit(api_b, owner, made.json["assets"][0]["id"],
                  "return b'x' * (2 << 20) if int(data['age'].sum()) == 120 else b''")
    job = api_b.post("/api/v1/code/%s/run" % code, {"blocking": False}, token=owner)
    assert job.status == 201, job
    done = wait_status(api_b, owner, job.json["id"], ("completed", "errored"))
    assert done["status"] == "completed", (done, (tmp_path / "worker.log").read_text())
    return owner, job.json["id"]


def stop_workers(workers):
    for worker, log in workers:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()


@pytest.fixture
def storage(tmp_path):
    path = tmp_path / "storage"
    path.mkdir()
    return path


@needs_postgres
@needs_sandbox
def test_replicas_and_a_worker_share_blobs_and_results(binary, tmp_path, fresh_database, storage):
    a = replica(binary, tmp_path, "a", fresh_database, storage)
    b = replica(binary, tmp_path, "b", fresh_database, storage)
    workers = []
    try:
        api_a = a.start()
        api_b = b.start()
        # A worker on the database and the storage directory alone, no data directory.
        owner, job_id = big_result_through_replicas(
            binary, tmp_path, api_a, api_b, a.port,
            ["--database", fresh_database, "--storage-dir", str(storage)], workers)
        name = job_id + ".1"
        assert (storage / "results" / name[:2] / name).exists()
        resp = api_a.get("/api/v1/jobs/%s/result" % job_id, token=owner)
        assert resp.status == 200 and resp.raw == b"x" * (2 << 20), resp.status
        # The data directories hold no blobs or results.
        for side in ("a", "b"):
            assert not (tmp_path / ("data_" + side) / "blobs").exists()
            assert not (tmp_path / ("data_" + side) / "results").exists()
    finally:
        stop_workers(workers)
        a.stop()
        b.stop()


@needs_postgres
@needs_sandbox
@pytest.mark.skipif(not os.environ.get("DATASITE_TEST_S3_URL"), reason="needs DATASITE_TEST_S3_URL")
def test_replicas_and_a_worker_on_a_bucket_share_no_directory(binary, tmp_path, fresh_database,
                                                              monkeypatch):
    """With --blob s3://, blobs and job results are in the bucket: replicas and a worker, each with
    a data directory of its own and no --storage-dir, serve each other's uploads and results (a
    cluster needs no volume that pods share)."""
    from test_s3_blobs import blob_url, list_keys
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["DATASITE_TEST_S3_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["DATASITE_TEST_S3_SECRET_ACCESS_KEY"])
    url = blob_url(unique("nodisk"))
    sides = [DetachedServer(binary, tmp_path / ("data_" + side), "--database", fresh_database,
                            "--blob", url, "--workers", "0", "--external-workers",
                            name="replica-" + side) for side in ("a", "b")]
    workers = []
    try:
        api_a, api_b = sides[0].start(), sides[1].start()
        owner, job_id = big_result_through_replicas(
            binary, tmp_path, api_a, api_b, sides[0].port,
            ["--database", fresh_database, "--data-dir", str(tmp_path / "data_w"), "--blob", url], workers)
        # The worker's result, in the bucket beside the blobs, read through the other replicas.
        prefix = url.split("?")[0].split("/", 3)[3]
        assert prefix + "/results/" + job_id + ".1" in list_keys(url)
        for api in (api_a, api_b):
            resp = api.get("/api/v1/jobs/%s/result" % job_id, token=owner)
            assert resp.status == 200 and resp.raw == b"x" * (2 << 20), resp.status
        # No directory holds a blob or a result (scratch files of runs are gone too).
        for d in ("data_a", "data_b", "data_w"):
            held = [p for p in (tmp_path / d).rglob("*") if p.is_file()
                    and ("/blobs/" in str(p) or "/results/" in str(p))]
            assert held == [], held
    finally:
        stop_workers(workers)
        for side in sides:
            side.stop()


def aged(path, content, seconds):
    """Writes `content` at `path`, last modified `seconds` ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


@needs_postgres
def test_a_starting_replica_leaves_the_uploads_in_flight_on_another(binary, tmp_path, fresh_database, storage):
    a = replica(binary, tmp_path, "a", fresh_database, storage)
    b = replica(binary, tmp_path, "b", fresh_database, storage)
    try:
        a.start()
        blobs = storage / "blobs"
        # What an upload on A leaves at each step: its temporary file, then (renamed into place, its row
        # not written yet) a blob file no row records. Old ones of each are a crash's leftovers.
        fresh_id, old_id = str(uuid.uuid4()), str(uuid.uuid4())
        in_flight = [aged(blobs / "tmp" / (str(uuid.uuid4()) + ".part"), b"half", 0),
                     aged(blobs / fresh_id[:2] / fresh_id, b"age\n1\n", 0)]
        left_over = [aged(blobs / "tmp" / (str(uuid.uuid4()) + ".part"), b"half", 2 * HOUR),
                     aged(blobs / old_id[:2] / old_id, b"age\n1\n", 2 * HOUR)]
        b.start()
        assert all(p.exists() for p in in_flight), list(blobs.rglob("*"))
        assert not any(p.exists() for p in left_over), list(blobs.rglob("*"))
    finally:
        a.stop()
        b.stop()


@needs_postgres
def test_a_storage_dir_of_another_datasite_is_refused(binary, tmp_path, fresh_database, storage):
    other = str(uuid.uuid4())
    (storage / "DATASITE_ID").write_text(other + "\n")
    server = replica(binary, tmp_path, "a", fresh_database, storage)
    try:
        code, out, err = server.try_start()
        assert code != 0
        assert other in err and "DATASITE_ID" in err and "not of this datasite" in err, err
    finally:
        server.stop()
    out = run(binary, "worker", "--database", fresh_database, "--storage-dir", str(storage), *LIMITS)
    assert out.returncode != 0 and other in out.stderr and "DATASITE_ID" in out.stderr, out.stderr


@needs_postgres
def test_the_first_start_writes_the_datasite_id(binary, tmp_path, fresh_database, storage):
    server = replica(binary, tmp_path, "a", fresh_database, storage)
    try:
        server.start()
        first = (storage / "DATASITE_ID").read_text().strip()
        assert uuid.UUID(first)
        server.land()
        server.start()  # its own id: accepted
        assert (storage / "DATASITE_ID").read_text().strip() == first
    finally:
        server.stop()


URL = "postgresql://datasite@127.0.0.1:1/none"  # refused before any connection


@pytest.mark.parametrize("command", ["launch", "worker"])
def test_storage_dir_flag_errors(binary, tmp_path, monkeypatch, command):
    monkeypatch.delenv("DATASITE_DATABASE_URL", raising=False)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        ([str(tmp_path)], "--storage-dir needs --database"),
        (["relative/dir", "--database", URL], "--storage-dir must be an absolute path"),
        ([str(tmp_path / "missing"), "--database", URL], "create it first"),
        ([str(a_file), "--database", URL], "is not a directory"),
    ]
    for args, message in cases:
        if command == "launch":
            out = run(binary, "launch", "--name", "s", "--data-dir", str(tmp_path / "data"), "--storage-dir", *args)
        else:
            out = run(binary, "worker", "--storage-dir", *args, *LIMITS)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr, (args, out.stderr)


def test_a_worker_needs_a_data_dir_or_a_storage_dir(binary):
    out = run(binary, "worker", "--database", URL, *LIMITS)
    assert out.returncode == 2
    assert "--data-dir is required (or --database and --storage-dir)" in out.stderr, out.stderr
