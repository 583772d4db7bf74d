"""SIGKILL in the middle of an upload: after a restart nothing half-written is visible, every acknowledged
write is there, no orphan bytes remain, and the database passes its integrity check."""

import hashlib
import json
import os
import pathlib
import signal
import socket
import sqlite3
import time
import uuid

from helpers import ROOT_EMAIL, ROOT_PASSWORD, Api

CSV = b"age,score\n31,1.5\n45,2.25\n29,3.0\n"


def upload(api, token, data, fmt="csv"):
    resp = api.post("/api/v1/blobs?format=" + fmt, raw=data, token=token)
    assert resp.status == 201, resp
    return resp.json


def start_partial_upload(port, token, total, sent):
    """Opens an upload of `total` bytes and sends only `sent` of them; returns the open socket."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = ("POST /api/v1/blobs?format=raw HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n"
            "Content-Length: {}\r\n\r\n").format(token, total)
    sock.sendall(head.encode())
    block = b"\xab" * (1 << 20)
    for _ in range(sent >> 20):
        sock.sendall(block)
    return sock


def wait_for(predicate, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def server_pid(data_dir):
    return int(json.loads((pathlib.Path(data_dir) / "server.json").read_text())["pid"])


def kill9(pid):
    os.kill(pid, signal.SIGKILL)

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie of ours still answers kill(0); read its state.
        try:
            return pathlib.Path("/proc/%d/stat" % pid).read_text().split()[2] == "Z"
        except OSError:
            return True

    assert wait_for(gone), "server did not die"


def blob_files(data_dir):
    root = pathlib.Path(data_dir) / "blobs"
    return sorted(p.name for p in root.glob("??/*"))


def test_sigkill_mid_upload_leaves_nothing_half_visible(launcher):
    server = launcher.launch()
    data_dir = server.data_dir
    api = Api(server.port)
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)

    # An acknowledged dataset before the crash.
    data = upload(api, token, CSV)
    mock = upload(api, token, CSV.replace(b"31", b"40"))
    resp = api.post("/api/v1/datasets", {"name": "kept", "assets": [
        {"name": "t", "data": data["id"], "mock": mock["id"]}]}, token=token)
    assert resp.status == 201, resp

    # An upload in flight when the server dies.
    sock = start_partial_upload(server.port, token, total=256 << 20, sent=32 << 20)
    tmp = pathlib.Path(data_dir) / "blobs" / "tmp"
    assert wait_for(lambda: any(p.stat().st_size > 0 for p in tmp.glob("*.part"))), "no upload seen"
    kill9(server_pid(data_dir))
    sock.close()
    assert list(tmp.glob("*.part")), "the broken upload's temporary file should be there before restart"

    # Bytes that a crash left between the file's rename and its database row.
    orphan = str(uuid.uuid4())
    orphan_dir = pathlib.Path(data_dir) / "blobs" / orphan[:2]
    orphan_dir.mkdir(exist_ok=True)
    (orphan_dir / orphan).write_bytes(b"orphan")

    again = launcher.launch(name=server.name)
    api = Api(again.port)
    token = api.login(ROOT_EMAIL, ROOT_PASSWORD)

    listing = api.get("/api/v1/datasets", token=token).json
    assert [d["name"] for d in listing["items"]] == ["kept"]
    got = api.get("/api/v1/datasets/kept/assets/t/mock", token=token)
    assert got.status == 200 and got.raw == CSV.replace(b"31", b"40")
    assert got.headers["x-content-sha256"] == hashlib.sha256(got.raw).hexdigest()

    assert list(tmp.glob("*")) == [], "temporary files of the broken upload must be gone"
    assert blob_files(data_dir) == sorted([data["id"], mock["id"]]), "only recorded blobs remain"

    db = sqlite3.connect("file:{}?mode=ro".format(pathlib.Path(data_dir) / "datasite.db"), uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM blobs").fetchone()[0] == 2
    finally:
        db.close()
