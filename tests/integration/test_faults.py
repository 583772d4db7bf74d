"""Crashes and storage faults: SIGKILL during concurrent writes, a full disk, a read-only data dir.

Each test launches its own servers (``helpers.DetachedServer``) on a data dir of its own, on
loopback only, and is bounded in time and traffic. The full-disk and read-only tests mount a small
tmpfs (the tests run as root, here and in CI); where mounting is impossible they skip, saying why.
"""

import contextlib
import errno
import hashlib
import os
import pathlib
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pytest

import datasite as sy
from helpers import (
    PASSWORD,
    ROOT_EMAIL,
    ROOT_PASSWORD,
    DetachedServer,
    assert_error,
    unique_email,
)

BLOBS = "/api/v1/blobs"
OCTETS = {"Content-Type": "application/octet-stream"}
MIB = 1 << 20


def sha256(raw):
    return hashlib.sha256(raw).hexdigest()


def upload_raw(api, token, raw):
    return api("POST", BLOBS + "?format=raw", raw=raw, token=token, headers=OCTETS)


def open_db(data_dir):
    return sqlite3.connect(
        "file:{}?mode=ro".format(pathlib.Path(data_dir) / "datasite.db"), uri=True, timeout=10
    )


def integrity(data_dir):
    db = open_db(data_dir)
    try:
        return (
            db.execute("PRAGMA integrity_check").fetchone()[0],
            db.execute("PRAGMA foreign_key_check").fetchall(),
        )
    finally:
        db.close()


def blob_files(data_dir):
    """{blob id: path} of the recorded-blob files, and the list of everything else under blobs/."""
    root = pathlib.Path(data_dir) / "blobs"
    blobs, other = {}, []
    for path in root.rglob("*"):
        if path.is_dir() and path.parent == root:
            continue
        rel = path.relative_to(root)
        if len(rel.parts) == 2 and rel.parts[0] != "tmp" and rel.parts[1][:2] == rel.parts[0]:
            blobs[rel.parts[1]] = path
        else:
            other.append(str(rel))
    return blobs, other


def assert_storage_consistent(data_dir):
    """What the database says is what the disk holds: the integrity check passes, every asset's
    blobs are recorded, every recorded blob has a file of its size and SHA-256, no file is
    without its row, and no temporary file is left. Returns the rows of live datasets' assets."""
    check, fk = integrity(data_dir)
    assert check == "ok", "PRAGMA integrity_check: {}".format(check)
    assert fk == [], "PRAGMA foreign_key_check: {}".format(fk)
    db = open_db(data_dir)
    try:
        rows = {r[0]: r[1:] for r in db.execute("SELECT id, size, sha256 FROM blobs")}
        assets = db.execute(
            "SELECT d.name, a.name, a.data_blob_id, a.mock_blob_id FROM assets a "
            "JOIN datasets d ON d.id = a.dataset_id WHERE d.deleted_at IS NULL"
        ).fetchall()
        empty = db.execute(
            "SELECT name FROM datasets d WHERE deleted_at IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM assets a WHERE a.dataset_id = d.id)"
        ).fetchall()
    finally:
        db.close()
    assert empty == [], "datasets without assets: {}".format(empty)
    for dataset, asset, data_id, mock_id in assets:
        for blob_id in (data_id, mock_id):
            if blob_id is not None:
                assert blob_id in rows, "{}/{} uses unrecorded blob {}".format(
                    dataset, asset, blob_id)
    files, other = blob_files(data_dir)
    assert other == [], "temporary or stray files under blobs/: {}".format(other)
    assert sorted(files) == sorted(rows), "files without rows: {}; rows without files: {}".format(
        sorted(set(files) - set(rows)), sorted(set(rows) - set(files)))
    for blob_id, (size, digest) in rows.items():
        raw = files[blob_id].read_bytes()
        assert (len(raw), sha256(raw)) == (size, digest), "blob {} is damaged".format(blob_id)
    return assets


def list_datasets(api, token):
    items, page = [], 1
    while True:
        resp = api.get("/api/v1/datasets?page={}&page_size=1000".format(page), token=token)
        assert resp.status == 200, resp
        items += resp.json["items"]
        if len(items) >= resp.json["total"] or not resp.json["items"]:
            return items
        page += 1


# 1. SIGKILL during concurrent uploads, deletions, logins and registrations ------------------------


class Traffic:
    """Threads that write through the real client until the server dies, recording what the
    server acknowledged (a 2xx received) and what they meant to write."""

    def __init__(self, url, api, owners, seed):
        self.url = url
        self.api = api
        self.owners = owners  # [(email, password)]
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.intended = {}  # dataset name -> {asset: (data sha256, size, mock sha256, size)}
        self.datasets = []  # names whose upload_dataset returned
        self.deletable = []  # acknowledged datasets not yet picked for deletion
        self.deleting = []  # names picked for deletion (gone or not, unless acknowledged)
        self.deleted = []  # names whose deletion was acknowledged
        self.sessions = []  # tokens of acknowledged logins
        self.registered = []  # emails of acknowledged registrations
        self.errors = []  # (time, error) of the calls that failed
        self.stop = threading.Event()
        self.threads = []

    def _run(self, fn, *args):
        deadline = time.time() + 20
        try:
            while not self.stop.is_set() and time.time() < deadline:
                fn(*args)
        except Exception as err:  # After the kill, the point; before it, a failure (see join).
            with self.lock:
                self.errors.append((time.time(), repr(err)))

    def _upload(self, client, rng):
        name = "ds-" + uuid.uuid4().hex[:10]
        dataset = sy.Dataset(name=name, summary="crash test")
        assets = {}
        for i in range(rng.randint(1, 3)):
            data = os.urandom(rng.randint(1, 2048) * 1024)
            mock = os.urandom(rng.randint(1, 64) * 1024)
            assets["a{}".format(i)] = (sha256(data), len(data), sha256(mock), len(mock))
            dataset.add_asset(sy.Asset(name="a{}".format(i), data=data, mock=mock))
        with self.lock:
            self.intended[name] = assets
        client.upload_dataset(dataset)
        with self.lock:
            self.datasets.append(name)
            self.deletable.append(name)

    def _delete(self, client):
        with self.lock:
            name = self.deletable.pop(0) if len(self.deletable) > 1 else None
            if name is not None:
                self.deleting.append(name)
        if name is None:
            time.sleep(0.05)
            return
        client.datasets.delete(name)
        with self.lock:
            self.deleted.append(name)

    def _login(self, email, password):
        resp = self.api.post("/api/v1/auth/login", {"email": email, "password": password})
        assert resp.status == 200, resp
        with self.lock:
            self.sessions.append(resp.json["token"])

    def _register(self):
        email = unique_email("reg")
        body = {"name": "Reg", "email": email, "password": PASSWORD, "password_verify": PASSWORD}
        resp = self.api.post("/api/v1/auth/register", body)
        assert resp.status == 201, resp
        with self.lock:
            self.registered.append(email)

    def start(self):
        for email, password in self.owners:
            client = sy.login(url=self.url, email=email, password=password)
            rng = random.Random(self.rng.random())
            self.threads.append(
                threading.Thread(target=self._run, args=(self._upload, client, rng)))
        email, password = self.owners[0]
        deleter = sy.login(url=self.url, email=email, password=password)
        self.threads.append(threading.Thread(target=self._run, args=(self._delete, deleter)))
        self.threads.append(threading.Thread(target=self._run, args=(self._login, email, password)))
        self.threads.append(threading.Thread(target=self._run, args=(self._register,)))
        for t in self.threads:
            t.daemon = True
            t.start()

    def join(self, killed_at):
        """Waits for the threads; fails on a call that failed while the server was alive."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
            assert not t.is_alive(), "a writer thread hangs after the kill"
        before = [err for at, err in self.errors if at < killed_at]
        assert not before, "calls failed before the kill: {}".format(before)


def check_after_restart(api, data_dir, traffic, seen_before):
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    # The database and the disk agree, and nothing temporary or orphaned survived recovery.
    assets = assert_storage_consistent(data_dir)
    by_dataset = {}
    for dataset, asset, _, _ in assets:
        by_dataset.setdefault(dataset, set()).add(asset)

    listed = {d["name"]: d for d in list_datasets(api, root)}
    assert set(listed) == set(by_dataset), "the API and the database list different datasets"
    # Every acknowledged dataset is there (unless its deletion was acknowledged too); none is
    # visible with fewer assets than it was made of.
    missing = [n for n in traffic.datasets if n not in listed and n not in traffic.deleting]
    assert not missing, "acknowledged datasets lost in the crash: {}".format(missing)
    back = [n for n in traffic.deleted if n in listed]
    assert not back, "datasets whose deletion was acknowledged came back: {}".format(back)
    for name in traffic.deleted:
        resp = api.get("/api/v1/datasets/" + name, token=root)
        assert resp.status == 404, resp
    for name, dataset in listed.items():
        if name in seen_before:
            continue
        intended = traffic.intended.get(name)
        assert intended is not None, "a dataset nobody uploaded: {}".format(name)
        got = {
            a["name"]: (a["data_sha256"], a["data_size"], a["mock_sha256"], a["mock_size"])
            for a in dataset["assets"]
        }
        assert got == intended, "dataset {} is not what was uploaded".format(name)
    # A sample of downloads answers the recorded bytes.
    for name in random.Random(len(listed)).sample(sorted(listed), min(4, len(listed))):
        for asset in listed[name]["assets"]:
            for which in ("data", "mock"):
                path = "/api/v1/datasets/{}/assets/{}/{}".format(
                    listed[name]["id"], asset["name"], which)
                resp = api.get(path, token=root)
                assert resp.status == 200, resp
                assert sha256(resp.raw) == asset[which + "_sha256"], (name, asset["name"], which)
    # Acknowledged sessions and registrations survived.
    for token in traffic.sessions:
        resp = api.get("/api/v1/account", token=token)
        assert resp.status == 200, "an acknowledged login's session was lost: {!r}".format(resp)
    for email in traffic.registered:
        resp = api.get("/api/v1/users?search=" + email, token=root)
        assert resp.status == 200 and resp.json["total"] == 1, "registration of {} lost".format(
            email)
    return set(listed)


def test_sigkill_during_concurrent_writes_keeps_every_acknowledged_write(binary, tmp_path,
                                                                         monkeypatch):
    # The writers stop at the kill (what they had acknowledged is the point), not retry through it.
    monkeypatch.setattr(sy._http, "RETRY_SECONDS", 1.0)
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    sys.stderr.write("random seed of the kill moments and sizes: {}\n".format(seed))
    server = DetachedServer(binary, tmp_path / "data", "--signup",
                            "--login-attempts-per-minute", "1000000")
    started = time.time()
    try:
        api = server.start()
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        owners = []
        for _ in range(3):
            user = api.create_user(root, role="data_owner")
            owners.append((user["email"], PASSWORD))
        seen = set()
        rounds = 0
        for rounds in range(1, 4):
            # Up to three rounds, a new one only while the test has taken under 30 s: it stays
            # bounded without failing for a slow machine.
            if rounds > 1 and time.time() - started > 30:
                break
            traffic = Traffic("http://127.0.0.1:{}".format(server.port), api, owners, rng.random())
            traffic.start()
            # Some writes acknowledged, then a kill at a random moment of what follows.
            deadline = time.time() + 15
            while not (traffic.deleted and traffic.registered) and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))
            killed_at = time.time()
            server.kill9()
            traffic.join(killed_at)
            api = server.start()
            seen = check_after_restart(api, server.data_dir, traffic, seen)
        assert rounds >= 1
        assert seen, "no dataset was ever acknowledged: the kills came too early (seed {})".format(
            seed)
    finally:
        server.stop()


# Mounts -------------------------------------------------------------------------------------------


def _run(*args):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size_mib) -> a fresh tmpfs of that size (unmounted after the test); remount(path,
    options) changes its options. Skips, with the reason, where mounting is impossible."""
    mounted = []

    def mount(size_mib, name="disk"):
        path = tmp_path / name
        path.mkdir()
        result = _run("mount", "-t", "tmpfs", "-o", "size={}m,mode=0700".format(size_mib),
                      "tmpfs", str(path))
        if result.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {}".format(
                result.stderr.decode().strip()))
        mounted.append(path)
        return path

    def remount(path, options):
        result = _run("mount", "-o", "remount," + options, str(path))
        assert result.returncode == 0, "remount {} {}: {}".format(
            path, options, result.stderr.decode())

    def bind_read_only(path):
        """Makes ``path`` (a directory) read-only by a read-only bind mount over itself."""
        for args in (("mount", "--bind", str(path), str(path)),
                     ("mount", "-o", "remount,bind,ro", str(path))):
            result = _run(*args)
            assert result.returncode == 0, "{}: {}".format(args, result.stderr.decode())
        mounted.append(path)

    mount.remount = remount
    mount.bind_read_only = bind_read_only
    yield mount
    for path in reversed(mounted):
        if _run("umount", str(path)).returncode != 0:
            _run("umount", "-l", str(path))


def processes_using(data_dir):
    """Pids of processes whose command line names ``data_dir``."""
    needle = str(data_dir).encode()
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@contextlib.contextmanager
def running(server):
    try:
        yield server.start()
    finally:
        server.stop()


def make_dataset(api, token, name, data, mock):
    ids = []
    for raw in (data, mock):
        resp = upload_raw(api, token, raw)
        assert resp.status == 201, resp
        ids.append(resp.json["id"])
    resp = api.post("/api/v1/datasets", {
        "name": name, "assets": [{"name": "t", "data": ids[0], "mock": ids[1]}]}, token=token)
    assert resp.status == 201, resp
    return resp.json


def assert_dataset_intact(api, token, name, data, mock, database_full=False):
    """The dataset reads back whole. With ``database_full``, its private data is refused instead
    (disk full): a read of private data is recorded in the audit log before a byte is sent, and
    without the record there is no read."""
    resp = api.get("/api/v1/datasets/" + name, token=token)
    assert resp.status == 200, resp
    dataset = resp.json
    for which, raw in (("data", data), ("mock", mock)):
        got = api.get("/api/v1/datasets/{}/assets/t/{}".format(dataset["id"], which), token=token)
        if database_full and which == "data" and got.status != 200:
            assert_error(got, 413, "PAYLOAD_TOO_LARGE")
            assert "disk full" in got.error["message"], got
            continue
        assert got.status == 200 and got.raw == raw, (name, which, got.status)


# 2. A full disk -----------------------------------------------------------------------------------


def fill(path):
    """Writes a file on ``path``'s file system until it is full; returns the file."""
    filler = pathlib.Path(path) / "filler"
    block = b"\0" * MIB
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(block)
                f.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
    # Also the last partial block.
    try:
        with open(filler, "ab") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    return filler


def test_full_disk_refuses_uploads_clearly_and_recovers(binary, tmpfs):
    disk = tmpfs(64)
    server = DetachedServer(binary, disk / "data", "--login-attempts-per-minute", "1000000")
    data, mock = os.urandom(300 * 1024), os.urandom(30 * 1024)
    with running(server) as api:
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        make_dataset(api, root, "early", data, mock)

        # Fill the disk with accepted blobs until one does not fit.
        kept, refused = [], None
        for _ in range(10):
            resp = upload_raw(api, root, os.urandom(12 * MIB))
            if resp.status != 201:
                refused = resp
                break
            kept.append(resp.json["id"])
        assert refused is not None, "64 MiB took more than 120 MiB of uploads"
        assert_error(refused, 413, "PAYLOAD_TOO_LARGE")
        assert "disk full" in refused.error["message"], refused

        # The server goes on: reads, logins, the early dataset; the broken upload left nothing.
        assert api.get("/healthz").status == 200
        assert_dataset_intact(api, root, "early", data, mock)
        token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert api.get("/api/v1/account", token=token).status == 200
        assert list((server.data_dir / "blobs" / "tmp").iterdir()) == []

        # Completely full (the database too): writes fail with a clear error or succeed; nothing
        # crashes, and once there is room again everything works.
        small = upload_raw(api, root, os.urandom(1024))
        assert small.status == 201, small
        filler = fill(disk)
        answers = [
            upload_raw(api, root, os.urandom(64 * 1024)),
            api.post("/api/v1/auth/login", {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}),
            api.patch("/api/v1/settings", {"description": "x" * 9000}, token=root),
            api.post("/api/v1/users", {"name": "N", "email": unique_email(), "password": PASSWORD,
                                       "role": "data_scientist"}, token=root),
            api.post("/api/v1/datasets", {"name": "when-full", "assets": [
                {"name": "t", "data": small.json["id"]}]}, token=root),
        ]
        for resp in answers:
            if resp.status >= 300:
                assert_error(resp, 413, "PAYLOAD_TOO_LARGE")
                assert "disk full" in resp.error["message"], resp
        assert api.get("/healthz").status == 200
        assert_dataset_intact(api, root, "early", data, mock, database_full=True)
        filler.unlink()
        assert_storage_consistent(server.data_dir)
        resp = api.patch("/api/v1/settings", {"description": "room again"}, token=root)
        assert resp.status == 200, resp
        resp = api.get("/api/v1/datasets/when-full", token=root)
        assert resp.status in (200, 404), resp
        if resp.status == 200:
            assert [a["data_sha256"] for a in resp.json["assets"]] == [small.json["sha256"]]

        # Deleting makes room again.
        for blob_id in kept:
            resp = api.delete(BLOBS + "/" + blob_id, token=root)
            assert resp.status == 200, resp
        big = os.urandom(24 * MIB)
        resp = upload_raw(api, root, big)
        assert resp.status == 201, "no room after deleting: {!r}".format(resp)
        assert resp.json["sha256"] == sha256(big)
        assert_storage_consistent(server.data_dir)
    # After a clean stop and a restart, all of it is still there.
    with running(server) as api:
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert_dataset_intact(api, root, "early", data, mock)
        assert_storage_consistent(server.data_dir)


# 3. A read-only data directory --------------------------------------------------------------------


@pytest.fixture
def read_only_dir(binary, tmpfs):
    """A data dir with a dataset, landed, on a tmpfs then remounted read-only."""
    disk = tmpfs(32)
    server = DetachedServer(binary, disk / "data")
    data, mock = os.urandom(100 * 1024), os.urandom(10 * 1024)
    with running(server) as api:
        make_dataset(api, api.login(ROOT_EMAIL, ROOT_PASSWORD), "before", data, mock)
    tmpfs.remount(disk, "ro")
    return disk, server, data, mock


def test_read_only_data_dir_refuses_to_start_and_changes_nothing(read_only_dir, tmpfs):
    disk, server, data, mock = read_only_dir
    started = time.time()
    code, out, err = server.try_start()
    try:
        assert code != 0, "started on a read-only data dir: {} {}".format(out, err)
        assert time.time() - started < 30
        assert err.startswith("error: "), err
        assert server.pid is None
        assert processes_using(server.data_dir) == [], "a server process stayed behind"
    finally:
        server.stop()
    # Back to writable: the server starts and everything is as it was.
    tmpfs.remount(disk, "rw")
    with running(server) as api:
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert_dataset_intact(api, root, "before", data, mock)
        assert_storage_consistent(server.data_dir)


def test_read_only_data_dir_error_names_the_cause(read_only_dir):
    _, server, _, _ = read_only_dir
    code, out, err = server.try_start()
    server.stop()
    assert code != 0
    assert "already running" not in err, err
    assert "read-only" in err.lower() or "not writable" in err.lower(), err


def test_read_only_blob_storage_serves_reads_and_refuses_uploads_clearly(binary, tmpfs, tmp_path):
    """Only blobs/ read-only (the database writable): the server starts, serves the datasets and
    logins, and answers uploads with a clear error; writable again, uploads work."""
    data_dir = tmp_path / "data"
    server = DetachedServer(binary, data_dir)
    data, mock = os.urandom(100 * 1024), os.urandom(10 * 1024)
    with running(server) as api:
        make_dataset(api, api.login(ROOT_EMAIL, ROOT_PASSWORD), "before", data, mock)
    tmpfs.bind_read_only(data_dir / "blobs")
    with running(server) as api:
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert_dataset_intact(api, root, "before", data, mock)
        resp = upload_raw(api, root, b"new bytes")
        assert_error(resp, 503, "UNAVAILABLE")
        assert "not writable" in resp.error["message"], resp
        assert api.get("/healthz").status == 200
    subprocess.run(["umount", str(data_dir / "blobs")], timeout=30, check=True)
    with running(server) as api:
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert upload_raw(api, root, b"new bytes").status == 201
        assert_dataset_intact(api, root, "before", data, mock)
        assert_storage_consistent(server.data_dir)


def test_data_dir_turned_read_only_while_running(binary, tmpfs, tmp_path):
    """The data dir becomes read-only under a running server (a read-only bind mount over it):
    reads go on, uploads get a clear error, the server stops cleanly, and once writable again it
    restarts with everything intact."""
    data_dir = tmp_path / "data"
    server = DetachedServer(binary, data_dir)
    data, mock = os.urandom(100 * 1024), os.urandom(10 * 1024)
    try:
        api = server.start()
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        make_dataset(api, root, "before", data, mock)
        tmpfs.bind_read_only(data_dir)
        resp = upload_raw(api, root, b"new bytes")
        assert_error(resp, 503, "UNAVAILABLE")
        assert "not writable" in resp.error["message"], resp
        assert_dataset_intact(api, root, "before", data, mock)
        assert api.get("/api/v1/datasets", token=root).status == 200
        assert api.get("/healthz").status == 200
        code, out, err = server.land()
        assert code == 0, (out, err)
        assert server.pid is None, "the server did not stop"
    finally:
        server.stop()
    subprocess.run(["umount", str(data_dir)], timeout=30, check=True)
    with running(server) as api:
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert_dataset_intact(api, root, "before", data, mock)
        assert upload_raw(api, root, b"new bytes").status == 201
        assert_storage_consistent(server.data_dir)
