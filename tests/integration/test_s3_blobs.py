"""A datasite whose blobs live in an S3-compatible bucket (``--blob s3://...``): s3rver behind the
SigV4-checking proxy of tests/s3 (scripts/test-s3.sh starts them and sets DATASITE_TEST_S3_*).

The data owner uploads a dataset, a data scientist reads its mock, the owner its private data, and
all of it is still there after a restart; no blob is written to the data directory; a wrong secret
stops the start with S3's error, naming no key.
"""

import io
import os
import pathlib
import sqlite3
import urllib.parse

import pandas as pd
import pytest

import datasite as sy
from dataset_helpers import blob_files
from helpers import DetachedServer, PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, unique

S3_URL = os.environ.get("DATASITE_TEST_S3_URL")
pytestmark = pytest.mark.skipif(
    not S3_URL, reason="DATASITE_TEST_S3_URL is not set (scripts/test-s3.sh starts an S3 server)")

PRIVATE = pd.DataFrame({"age": [31, 47, 52], "name": ["ann", "bob", "cy"]})
MOCK = pd.DataFrame({"age": [20, 30, 40], "name": ["x", "y", "z"]})


def blob_url(prefix):
    """--blob for the test bucket: s3://BUCKET/PREFIX?endpoint=...&region=..."""
    parts = urllib.parse.urlsplit(S3_URL)
    bucket = parts.path.strip("/")
    query = urllib.parse.urlencode({
        "endpoint": "{}://{}".format(parts.scheme, parts.netloc),
        "region": os.environ.get("DATASITE_TEST_S3_REGION", "us-east-1"),
    })
    return "s3://{}/{}?{}".format(bucket, prefix, query)


@pytest.fixture
def s3_server(binary, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["DATASITE_TEST_S3_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["DATASITE_TEST_S3_SECRET_ACCESS_KEY"])
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0",
                            "--blob", blob_url(unique("site")))
    try:
        yield server
    finally:
        server.stop()


def login(port, email=ROOT_EMAIL, password=ROOT_PASSWORD):
    return sy.login(url="http://127.0.0.1", port=port, email=email, password=password)


def test_a_dataset_round_trips_through_the_bucket_and_survives_a_restart(s3_server):
    api = s3_server.start()
    owner = login(api.port)
    name = unique("s3set")
    dataset = sy.Dataset(name=name)
    dataset.add_asset(sy.Asset(name="t", data=PRIVATE, mock=MOCK))
    assert owner.upload_dataset(dataset)
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    user = api.create_user(root, role="data_scientist", email=unique("ds") + "@example.org")
    scientist = login(api.port, user["email"], PASSWORD)
    pd.testing.assert_frame_equal(scientist.datasets[name].assets["t"].mock, MOCK)
    pd.testing.assert_frame_equal(owner.datasets[name].assets["t"].data, PRIVATE)
    # Nothing of it in the data directory: the blobs are objects in the bucket.
    kept = {f for f in blob_files(s3_server.data_dir) if f.startswith("blobs" + os.sep)}
    assert not [f for f in kept if "s3-scratch" not in f], kept

    s3_server.land()
    api = s3_server.start()
    again = login(api.port)
    pd.testing.assert_frame_equal(again.datasets[name].assets["t"].data, PRIVATE)


def test_a_wrong_secret_fails_the_start_without_naming_a_key(binary, tmp_path, monkeypatch):
    """The start-up clean-up lists the bucket's unfinished uploads: a wrong key is found there,
    before anyone uploads."""
    secret = "not-the-secret-" + unique("k")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["DATASITE_TEST_S3_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0",
                            "--blob", blob_url(unique("bad")))
    try:
        code, out, err = server.try_start()
        assert code != 0
        assert "SignatureDoesNotMatch" in out + err, out + err
        assert secret not in out + err
        log = server.data_dir / "server.log"
        assert not log.exists() or secret not in log.read_text(errors="replace")
    finally:
        server.stop()


def test_a_blob_url_that_is_not_s3_is_refused(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data", "--blob", "file:///tmp/x")
    with pytest.raises(AssertionError) as err:
        server.start()
    assert "s3://" in str(err.value)


def migrate(server, to):
    """``datasite blobs migrate --from DATA_DIR --to URL``: (exit code, stdout, stderr)."""
    return server._run("blobs", "migrate", "--from", str(server.data_dir), "--to", to)


def put_object(url, blob_id, data):
    """Writes `data` as the object of `blob_id` under the --blob URL's prefix, behind the store's
    back (botocore, signed as the test proxy wants)."""
    client, bucket, prefix = bucket_client(url)
    client.put_object(Bucket=bucket, Key=prefix + "/" + blob_id, Body=data)


def bucket_client(url):
    """A botocore S3 client of the --blob URL's server (signed as the test proxy wants), its bucket
    and its prefix."""
    import botocore.config
    import botocore.session
    parts = urllib.parse.urlsplit(url)  # s3://BUCKET/PREFIX?endpoint=...&region=...
    query = dict(urllib.parse.parse_qsl(parts.query))
    client = botocore.session.get_session().create_client(
        "s3", endpoint_url=query["endpoint"], region_name=query["region"],
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(s3={"addressing_style": "path"}))
    return client, parts.netloc, parts.path.strip("/")


def blob_file(data_dir, blob_id):
    return pathlib.Path(data_dir) / "blobs" / blob_id[:2] / blob_id


@pytest.fixture
def aws_keys(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["DATASITE_TEST_S3_ACCESS_KEY_ID"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["DATASITE_TEST_S3_SECRET_ACCESS_KEY"])


def test_blobs_migrate_moves_a_local_datasite_into_the_bucket(binary, tmp_path, aws_keys):
    """A datasite that kept its blobs in its directory is copied into a bucket under the same
    ids, and then served from it; a second run copies nothing."""
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0")
    try:
        api = server.start()
        name = unique("moved")
        dataset = sy.Dataset(name=name)
        dataset.add_asset(sy.Asset(name="t", data=PRIVATE, mock=MOCK))
        assert login(api.port).upload_dataset(dataset)
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        user = api.create_user(root, role="data_scientist", email=unique("ds") + "@example.org")

        # Refused while the server runs: what it uploaded meanwhile would be left behind.
        url = blob_url(unique("moved"))
        code, out, err = migrate(server, url)
        assert code == 1 and "a server runs on" in err, (code, out, err)
        server.land()

        code, out, err = migrate(server, url)
        assert code == 0, (out, err)
        assert "Copied 2, already in the bucket 0, failed 0." in err, err
        code, out, err = migrate(server, url)
        assert code == 0 and "Copied 0, already in the bucket 2, failed 0." in err, (out, err)

        # A run stopped between storing an object and checking it must not leave bytes a second
        # run takes for the blob: other bytes of the same size under the id are copied again.
        with sqlite3.connect(server.data_dir / "datasite.db") as db:
            (blob_id, size) = db.execute(
                "SELECT b.id, b.size FROM blobs b JOIN assets a ON a.data_blob_id = b.id").fetchone()
        put_object(url, blob_id, b"\0" * size)
        code, out, err = migrate(server, url)
        assert code == 0 and "Copied 1, already in the bucket 1, failed 0." in err, (out, err)

        # Served from the bucket: the local files are moved out of the way to prove it.
        os.rename(server.data_dir / "blobs", tmp_path / "old-blobs")
        server.flags += ["--blob", url]
        api = server.start()
        pd.testing.assert_frame_equal(login(api.port).datasets[name].assets["t"].data, PRIVATE)
        scientist = login(api.port, user["email"], PASSWORD)
        pd.testing.assert_frame_equal(scientist.datasets[name].assets["t"].mock, MOCK)
    finally:
        server.stop()


def test_blobs_migrate_leaves_a_damaged_blob_out_of_the_bucket(binary, tmp_path, aws_keys):
    """A local file whose bytes are no longer those uploaded (same size, other SHA-256) is not
    copied, the run fails, and a second run tries it again rather than take it as copied."""
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0")
    try:
        api = server.start()
        dataset = sy.Dataset(name=unique("damaged"))
        dataset.add_asset(sy.Asset(name="t", data=PRIVATE, mock=MOCK))
        assert login(api.port).upload_dataset(dataset)
        server.land()
        with sqlite3.connect(server.data_dir / "datasite.db") as db:
            (blob_id,) = db.execute("SELECT data_blob_id FROM assets").fetchone()
        path = blob_file(server.data_dir, blob_id)
        data = bytearray(path.read_bytes())
        data[0] ^= 0xFF
        path.write_bytes(bytes(data))

        url = blob_url(unique("damaged"))
        for summary in ("Copied 1, already in the bucket 0, failed 1.",
                        "Copied 0, already in the bucket 1, failed 1."):
            code, out, err = migrate(server, url)
            assert code == 1, (out, err)
            assert summary in err, err
            assert "damaged" in err and blob_id in err, err
    finally:
        server.stop()


def test_blobs_migrate_refuses_what_is_not_a_datasite_or_a_bucket(binary, tmp_path, aws_keys):
    server = DetachedServer(binary, tmp_path / "nothing")
    code, out, err = migrate(server, blob_url("x"))
    assert code == 1 and "no blob directory" in err, err
    os.makedirs(tmp_path / "nothing" / "blobs")
    code, out, err = migrate(server, blob_url("x"))
    assert code == 1 and "no datasite database" in err, err
    code, out, err = migrate(server, "/tmp/elsewhere")
    assert code == 1 and "--to must be an s3://" in err, err


def gets_of(url, blob_id):
    """GET requests the test proxy forwarded for a blob's object (tests/s3/sigv4_proxy.py)."""
    import urllib.request
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    path = "/{}/{}/{}".format(parts.netloc, parts.path.strip("/"), blob_id)
    with urllib.request.urlopen(query["endpoint"] + "/__datasite_test/gets?path="
                                + urllib.parse.quote(path)) as r:
        return int(r.read())


def test_an_upload_of_raw_bytes_is_not_read_back_from_the_bucket(binary, tmp_path, aws_keys):
    """Raw bytes have no schema to infer: the upload must not fetch the whole object back (it
    did: one more read of every byte uploaded, and a local copy of it)."""
    from datasite import _http, _transfer
    url = blob_url(unique("raw"))
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0", "--blob", url)
    try:
        api = server.start()
        token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        payload = tmp_path / "bytes.bin"
        payload.write_bytes(os.urandom(3 << 20))
        transport = _http.Transport("http://127.0.0.1:%d" % api.port, token=token, timeout=60)
        info = _transfer.upload(transport, _transfer.Payload("raw", path=str(payload)),
                                progress_stream=io.StringIO())
        assert info["size"] == 3 << 20
        assert gets_of(url, info["id"]) == 0
    finally:
        server.stop()


def list_keys(url):
    """Keys of the objects under the --blob URL's prefix (botocore, behind the store's back)."""
    client, bucket, prefix = bucket_client(url)
    page = client.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    return [o["Key"] for o in page.get("Contents", [])]


def test_an_upload_of_stated_size_goes_as_one_put_and_a_cut_one_leaves_nothing(
        binary, tmp_path, aws_keys):
    """An upload with a Content-Length over one part (8 MiB) streams into one PUT; cut short, it
    leaves no object in the bucket (the last byte waits for the whole upload)."""
    import hashlib
    import socket
    import time
    url = blob_url(unique("put"))
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0", "--blob", url)
    try:
        api = server.start()
        token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        body = os.urandom(24 << 20)
        head = raw_upload_head(token, len(body))
        cut = socket.create_connection(("127.0.0.1", api.port), timeout=60)
        cut.sendall(head + body[:-1])  # all but the last byte
        time.sleep(2)
        assert list_keys(url) == []
        cut.close()
        time.sleep(1)
        assert list_keys(url) == []
        resp = api("POST", "/api/v1/blobs?format=raw", raw=body, token=token,
                   headers={"Content-Type": "application/octet-stream"})
        assert resp.status == 201, resp
        assert resp.json["sha256"] == hashlib.sha256(body).hexdigest()
        assert list_keys(url) == [url.split("?")[0].split("/", 3)[3] + "/" + resp.json["id"]]
        back = api("GET", "/api/v1/blobs/" + resp.json["id"], token=token)
        assert back.status == 200 and back.raw == body
    finally:
        server.stop()


def test_downloads_past_an_accounts_share_hold_no_read_ahead(binary, tmp_path, aws_keys):
    """One account's 4 stalled downloads hold their read-ahead windows; its 5th is sent a piece at
    a time (a GET per piece, nothing held), and another account's download still reads ahead. (16
    stalled downloads of one guest held the server's whole 256 MiB of windows: everyone else's
    downloads fell to a GET per piece.)"""
    import socket
    url = blob_url(unique("share"))
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0", "--blob", url)
    held = []
    try:
        api = server.start()
        root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        mock_bytes = os.urandom(24 << 20)
        ids = []
        for body in (b"private", mock_bytes):
            resp = api("POST", "/api/v1/blobs?format=raw", raw=body, token=root,
                       headers={"Content-Type": "application/octet-stream"})
            assert resp.status == 201, resp
            ids.append(resp.json["id"])
        resp = api.post("/api/v1/datasets", {"name": unique("share"), "assets": [
            {"name": "a", "data": ids[0], "mock": ids[1]}]}, token=root)
        assert resp.status in (200, 201), resp
        path = "/api/v1/datasets/{}/assets/a/mock".format(resp.json["id"])
        user = api.create_user(root)
        token = api.login(user["email"], PASSWORD)
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", api.port), timeout=30)
            sock.sendall("GET {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n"
                         .format(path, token).encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            held.append(sock)
        before = gets_of(url, ids[1])
        fifth = api.get(path, token=token)
        assert fifth.status == 200 and fifth.raw == mock_bytes
        # 24 MiB answered 64 KiB at a time, each piece a GET of its own: 384.
        assert gets_of(url, ids[1]) - before >= 300
        before = gets_of(url, ids[1])
        other = api.get(path, token=root)
        assert other.status == 200 and other.raw == mock_bytes
        # Windows of 256 KiB doubling to 8 MiB: 7 GETs.
        assert gets_of(url, ids[1]) - before <= 8
    finally:
        for sock in held:
            sock.close()
        server.stop()


class StallingForwarder:
    """A TCP forwarder to the test S3 server that can stall: while `stall` is set, no connection is
    read, the ones it accepts meanwhile never (a bucket that stopped answering)."""

    def __init__(self, upstream_port):
        import socket
        import threading
        self.upstream_port = upstream_port
        self.stall = False
        self.held = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.stall:
                self.held.append(client)  # accepted, never read
                continue
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst):
        import time
        try:
            while True:
                while self.stall:  # connections open before the stall stop reading too
                    time.sleep(0.05)
                data = src.recv(1 << 16)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
        for s in self.held:
            s.close()


def raw_upload_head(token, size):
    """The head of a raw upload of `size` bytes, for a test that sends its body itself."""
    return ("POST /api/v1/blobs?format=raw HTTP/1.1\r\nHost: localhost\r\n"
            "Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: {}\r\n\r\n").format(token, size).encode()


def stalling_bucket(name):
    """A StallingForwarder to the test S3 server, and a --blob URL that goes through it."""
    upstream = urllib.parse.urlsplit(S3_URL)
    forwarder = StallingForwarder(upstream.port)
    url = blob_url(unique(name)).replace(urllib.parse.quote("127.0.0.1:%d" % upstream.port, safe=""),
                                         urllib.parse.quote("127.0.0.1:%d" % forwarder.port, safe=""))
    assert str(forwarder.port) in url
    return forwarder, url


def test_an_upload_abandoned_while_the_bucket_stalls_holds_up_no_one(binary, tmp_path, aws_keys):
    """Four uploads of stated size (one streamed PUT each) whose clients go away while the bucket
    reads nothing: their ends must not wait on an I/O thread for the PUTs to time out (every
    request of the server, /healthz included, froze for ~55 s), and the PUTs end within seconds."""
    import socket
    import time
    forwarder, url = stalling_bucket("stall")
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0", "--blob", url)
    socks = []
    try:
        api = server.start()
        token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        forwarder.stall = True
        for _ in range(4):  # an account's most: more than the server's I/O threads
            sock = socket.create_connection(("127.0.0.1", api.port), timeout=30)
            sock.sendall(raw_upload_head(token, 40 << 20)
                         + os.urandom(9 << 20))
            socks.append(sock)
        time.sleep(3)
        for sock in socks:
            sock.close()
        socks = []
        time.sleep(0.5)
        for _ in range(3):
            started = time.monotonic()
            assert api.get("/healthz").status == 200
            assert time.monotonic() - started < 5.0
            time.sleep(0.5)
    finally:
        for sock in socks:
            sock.close()
        forwarder.stall = False
        server.stop()
        forwarder.close()


def test_uploads_stuck_on_a_stalled_bucket_hold_no_request_thread(binary, tmp_path, aws_keys):
    """Uploads wait for their bucket (a full buffer waits for the PUT to take bytes) on a lane of
    their own: four of them stuck on a bucket that reads nothing held all four request threads, so
    every other request waited for their 60 s stall timeout."""
    import socket
    import time
    forwarder, url = stalling_bucket("lane")
    server = DetachedServer(binary, tmp_path / "data", "--workers", "0", "--blob", url)
    socks = []
    try:
        api = server.start()
        token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        forwarder.stall = True
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", api.port), timeout=30)
            sock.setblocking(False)
            sock.send(raw_upload_head(token, 64 << 20))
            socks.append(sock)
        # Each sends what the server takes until its buffer and the stalled PUT are full.
        chunk = os.urandom(1 << 20)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for sock in socks:
                try:
                    sock.send(chunk)
                except BlockingIOError:
                    pass
            time.sleep(0.01)
        for _ in range(3):
            started = time.monotonic()
            resp = api.get("/api/v1/notifications", token=token)
            assert resp.status == 200, resp
            assert time.monotonic() - started < 5.0
    finally:
        for sock in socks:
            sock.close()
        forwarder.stall = False
        server.stop()
        forwarder.close()
