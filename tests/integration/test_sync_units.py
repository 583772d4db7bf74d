"""The sync client (``datasite.syncing``) against a scripted server that speaks the sync contract:
what it sends, how it writes and streams bundle files, how refusals reach the caller, and the
resolver's HTML. The real servers are in test_sync.py."""

import http.server
import io
import json
import os
import resource
import signal
import threading

import pytest

import datasite as sy
from datasite import _transfer
from datasite import syncing as sync_module
from datasite.client import DatasiteClient
from datasite._http import Transport

BUNDLE = b"DSSYNC01" + bytes(range(256)) * 4096  # 1 MiB and a bit


def diff_json(batches, import_id="imp-1", ignored=()):
    return {
        "import_id": import_id,
        "peer": {"name": "low", "verify_key": "ab" * 32},
        "direction": "low_to_high",
        "seq": 3,
        "created_at": 0,
        "summary": {"batches": len(batches), "objects": 0, "new": 0, "changed": 0,
                    "conflicts": 0, "same": 0, "deleted": 0, "ignored": len(ignored)},
        "batches": batches,
        "ignored": list(ignored),
    }


def batch(obj_id, status="new", state="pending", kind="request", incoming=None, local=None):
    return {
        "id": "{}:{}".format(kind, obj_id),
        "root": {"kind": kind, "id": obj_id},
        "status": status,
        "state": state,
        "objects": [{"kind": kind, "id": obj_id, "status": status, "version": 1, "hash": "00",
                     "incoming": incoming or {"reason": "r"}, "local": local}],
    }


class FakeSync(http.server.BaseHTTPRequestHandler):
    """Plays the sync routes; the test sets what it answers and reads what it got."""

    protocol_version = "HTTP/1.1"
    calls = []
    uploads = []
    export_body = BUNDLE
    export_length = None  # a Content-Length other than the body's, to break an export off
    batches = []
    full_batches = []  # the batches with their fields, for the routes that give them
    apply_answer = {"applied": [], "ignored": [], "denied": [], "batches": []}
    refuse = None  # (status, code, message) for every route

    def _json(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = b""
        while len(raw) < length:
            chunk = self.rfile.read(min(1 << 16, length - len(raw)))
            if not chunk:
                break
            raw += chunk
        return raw

    def _handle(self, method):
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.send_response_only(100)
            self.end_headers()
        raw = self._body()
        type(self).calls.append((method, self.path, raw if self.path.endswith("/imports") else
                                 (json.loads(raw) if raw else None)))
        if self.refuse:
            status, code, message = self.refuse
            return self._json(status, {"error": {"code": code, "message": message}})
        path = self.path.split("?")[0]
        if path == "/api/v1/sync/identity":
            return self._json(200, {"name": "srv", "verify_key": "cd" * 32, "server_id": "s",
                                    "side": "high"})
        if path == "/api/v1/sync/export":
            body = self.export_body
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(self.export_length or len(body)))
            self.send_header("X-Datasite-Bundle-Seq", "7")
            self.end_headers()
            self.wfile.write(body)
            if self.export_length:
                self.close_connection = True
            return None
        if path == "/api/v1/sync/imports":
            type(self).uploads.append(raw)
            return self._json(201, diff_json(self.batches))
        if path.endswith("/apply"):
            return self._json(200, dict(self.apply_answer,
                                        summary=diff_json(self.batches)["summary"]))
        if "/batches/" in path:
            kind, obj_id = path.split("/batches/")[1].split("/")
            for full in self.full_batches:
                if full["id"] == kind + ":" + obj_id:
                    return self._json(200, full)
            return self._json(404, {"error": {"code": "NOT_FOUND", "message": "no batch"}})
        if path.startswith("/api/v1/sync/imports/"):
            query = dict(p.split("=") for p in self.path.partition("?")[2].split("&") if p)
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 1 << 30))
            return self._json(200, diff_json(self.full_batches[offset:offset + limit]))
        return self._json(200, {"peers": []})

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def log_message(self, *args):
        pass


@pytest.fixture
def out_dir(tmp_path):
    path = tmp_path / "out"
    path.mkdir()
    return path


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(FakeSync, "calls", [])
    monkeypatch.setattr(FakeSync, "uploads", [])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeSync)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = "http://127.0.0.1:{}".format(server.server_address[1])
    yield DatasiteClient(url, "tok", {"role": "admin", "id": "u"}, {"name": "srv"},
                         transport=Transport(url))
    server.shutdown()
    server.server_close()


def test_export_streams_into_the_file_and_names_it_once_whole(fake, out_dir):
    target = out_dir / "b.dsync"
    answer = fake.sync.export(target, peer="high")
    assert answer.value == target and answer.seq == 7 and answer.size == len(BUNDLE)
    assert target.read_bytes() == BUNDLE
    assert [p.name for p in out_dir.iterdir()] == ["b.dsync"]
    assert FakeSync.calls[-1][:2] == ("GET", "/api/v1/sync/export?peer=high")


def test_an_export_broken_off_leaves_no_file(fake, out_dir, monkeypatch):
    monkeypatch.setattr(FakeSync, "export_length", len(BUNDLE) + 100)
    with pytest.raises(sy.ServerConnectionError, match="broke off"):
        fake.sync.export(out_dir / "b.dsync", peer="high")
    assert list(out_dir.iterdir()) == []


def test_an_export_of_many_mebibytes_arrives_whole(fake, out_dir, monkeypatch):
    body = os.urandom(3 * (1 << 20) + 12345)
    monkeypatch.setattr(FakeSync, "export_body", body)
    answer = fake.sync.export(out_dir / "b.dsync", peer="high")
    assert answer.size == len(body)
    assert (out_dir / "b.dsync").read_bytes() == body


def _supports_o_direct(directory):
    probe = os.path.join(str(directory), ".probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600))
    except (OSError, AttributeError):
        return False
    finally:
        if os.path.exists(probe):
            os.unlink(probe)
    return True


def _readinto_pieces(data, piece):
    """A readinto over ``data`` that gives at most ``piece`` bytes a call, as a socket may."""
    source = io.BytesIO(data)

    def readinto(view):
        return source.readinto(view[:piece])

    return readinto


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, (1 << 20) - 1, 1 << 20, (1 << 20) + 1,
                                  3 * (1 << 20) + 12345])
def test_the_durable_writer_writes_every_size_byte_for_byte(tmp_path, size):
    data = os.urandom(size)
    for piece in (1000, 65536, 1 << 20):
        path = tmp_path / "f{}".format(piece)
        writer = _transfer.DurableFileWriter(os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        assert writer.direct == _supports_o_direct(tmp_path)
        read = _readinto_pieces(data, piece)
        while writer.fill(read):
            pass
        assert writer.size == size
        writer.finish()
        assert path.read_bytes() == data, (size, piece)


def test_a_failed_write_of_the_durable_writer_raises_it(tmp_path):
    """A write that fails in the writer's thread (past RLIMIT_FSIZE here, as a full disk would)
    is raised to the caller, never a short file taken for whole."""
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, old_limit[1]))
    try:
        writer = _transfer.DurableFileWriter(
            os.open(str(tmp_path / "f"), os.O_WRONLY | os.O_CREAT | os.O_EXCL))
        read = _readinto_pieces(os.urandom(8 << 20), 1 << 20)
        with pytest.raises(OSError):
            while writer.fill(read):
                pass
            writer.finish()
        writer.close()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)


def test_load_streams_the_file_and_gives_the_resolver(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(FakeSync, "batches", [batch("r1"), batch("r2", status="conflict")])
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    widget = fake.sync.load(path)
    assert FakeSync.uploads == [BUNDLE]
    assert len(widget) == 2 and widget.import_id == "imp-1"
    assert widget[0].obj_diff_batch.root_type == "request"
    assert widget[1].obj_diff_batch.is_conflict
    assert not widget.diff.is_same

    widget[0].click_sync()
    assert FakeSync.calls[-1] == ("POST", "/api/v1/sync/imports/imp-1/apply",
                                  {"accept": ["request:r1"], "overwrite": [], "ignore": [],
                                   "deny": []})
    widget[1].click_sync(overwrite=True)
    assert FakeSync.calls[-1][2]["overwrite"] == ["request:r2"]
    widget[0].ignore()
    assert FakeSync.calls[-1][2]["ignore"] == ["request:r1"]
    widget[0].deny_and_ignore("not this")
    assert FakeSync.calls[-1][2]["deny"] == [{"batch": "request:r1", "reason": "not this"}]
    widget[0].unignore()
    assert FakeSync.calls[-1][:2] == ("DELETE", "/api/v1/sync/ignored/low/request/r1")

    widget.sync_all()  # the conflict is left alone
    assert FakeSync.calls[-1][2]["accept"] == ["request:r1"]


def compact(full):
    """A batch as a diff lists it: its objects' kind, id and status only."""
    return dict(full, objects=[{k: o[k] for k in ("kind", "id", "status")}
                               for o in full["objects"]])


def test_fields_are_fetched_when_shown_and_the_html_pages(fake, tmp_path, monkeypatch):
    full = [batch("r{}".format(i), incoming={"reason": "why {}".format(i)}) for i in range(25)]
    monkeypatch.setattr(FakeSync, "full_batches", full)
    monkeypatch.setattr(FakeSync, "batches", [compact(b) for b in full])
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    widget = fake.sync.load(path)
    assert len(widget) == 25 and "request:r24" in repr(widget)
    assert [c[0] for c in FakeSync.calls] == ["POST"]  # nothing fetched for len, repr

    assert widget[3].obj_diff_batch.diffs[0].incoming == {"reason": "why 3"}
    assert FakeSync.calls[-1][:2] == ("GET", "/api/v1/sync/imports/imp-1/batches/request/r3")

    html = widget._repr_html_()
    assert FakeSync.calls[-1][:2] == ("GET",
                                      "/api/v1/sync/imports/imp-1?fields=1&offset=0&limit=20")
    assert "why 0" in html and "why 19" in html and "why 20" not in html
    assert "5 more batches" in html
    calls = len(FakeSync.calls)
    widget.diff._repr_html_()
    assert len(FakeSync.calls) == calls  # the page is kept


def test_an_apply_answer_updates_the_listed_batches(fake, tmp_path, monkeypatch):
    full = [batch("r1"), batch("r2"), batch("r3", status="conflict")]
    monkeypatch.setattr(FakeSync, "batches", [compact(b) for b in full])
    applied = dict(compact(batch("r1", status="same", state="applied")))
    monkeypatch.setattr(FakeSync, "apply_answer", {"applied": ["request:r1"],
                                                   "ignored": ["request:r2"], "denied": [],
                                                   "batches": [applied]})
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    widget = fake.sync.load(path)
    result = widget.diff._apply(accept=["request:r1"], ignore=["request:r2"])
    assert "synced request:r1" in result.message and "ignored request:r2" in result.message
    assert [b.id for b in widget.diff.batches] == ["request:r1", "request:r3"]
    assert widget[0].obj_diff_batch.state == "applied"
    assert widget[0].is_synced
    assert "request:r2" in widget.diff.ignored_batches
    with pytest.raises(LookupError):
        widget[1].obj_diff_batch  # r2: ignored, no longer listed
    widget.sync_all()  # r1 is applied, r3 in conflict: nothing to accept
    assert FakeSync.calls[-1][2]["accept"] == []


def test_sync_all_acknowledges_an_empty_bundle(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(FakeSync, "batches", [])
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    widget = fake.sync.load(path)
    assert len(widget) == 0 and widget.diff.is_same
    widget.sync_all()
    assert FakeSync.calls[-1][1] == "/api/v1/sync/imports/imp-1/apply"


def test_deny_and_ignore_is_for_request_batches_with_a_reason(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(FakeSync, "batches", [batch("d1", kind="dataset"), batch("r1")])
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    widget = fake.sync.load(path)
    calls = len(FakeSync.calls)
    with pytest.raises(ValueError, match="request batches"):
        widget[0].deny_and_ignore("no")
    with pytest.raises(ValueError, match="reason"):
        widget[1].deny_and_ignore("  ")
    assert len(FakeSync.calls) == calls


@pytest.mark.parametrize("status,code,error", [
    (400, "INVALID_ARGUMENT", sy.InvalidArgumentError),
    (403, "PERMISSION_DENIED", sy.PermissionDeniedError),
    (409, "FAILED_PRECONDITION", sy.FailedPreconditionError),
])
def test_a_refused_bundle_raises_the_servers_message(fake, tmp_path, monkeypatch, status, code,
                                                     error):
    message = "bundle refused (tampered): the objects section's SHA-256 differs"
    monkeypatch.setattr(FakeSync, "refuse", (status, code, message))
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    with pytest.raises(error) as info:
        fake.sync.load(path)
    assert message in str(info.value)
    with pytest.raises(error, match=r"bundle refused \(tampered\)"):
        fake.sync.export(tmp_path / "out.dsync", peer="high")
    assert not (tmp_path / "out.dsync").exists()


def test_load_of_a_missing_file_says_so(fake, tmp_path):
    with pytest.raises(FileNotFoundError):
        fake.sync.load(tmp_path / "nope.dsync")


def test_peer_arguments_are_checked_before_any_call(fake):
    for bad in ("", None, 3):
        with pytest.raises(ValueError):
            fake.sync.add_peer(name=bad, verify_key="ab")
        with pytest.raises(ValueError):
            fake.sync.add_peer(name="x", verify_key=bad)
    with pytest.raises(ValueError, match="request:<id>"):
        fake.sync.unignore("low", "no-colon")
    assert FakeSync.calls == []


HOSTILE = "<script>alert(1)</script>"


def test_the_resolver_html_escapes_every_field_and_name():
    data = diff_json([{
        "id": "request:" + HOSTILE,
        "root": {"kind": "request", "id": HOSTILE},
        "status": HOSTILE,
        "state": HOSTILE,
        "objects": [{"kind": HOSTILE, "id": HOSTILE, "status": HOSTILE, "version": 1,
                     "hash": "00", "incoming": {HOSTILE: HOSTILE, "source": "</pre>" + HOSTILE,
                                                "inputs": {"x": [HOSTILE]}},
                     "local": {HOSTILE: "<img src=x onerror=alert(1)>"}}],
    }], ignored=["request:" + HOSTILE])
    data["peer"]["name"] = HOSTILE
    diff = sync_module.ServerDiff(data, None)
    widget = diff.resolve()
    for html in (diff._repr_html_(), widget._repr_html_(), widget[0]._repr_html_()):
        assert "<script" not in html and "<img" not in html and "</pre><script" not in html
        assert "&lt;script&gt;" in html
    assert "Local" in diff._repr_html_() and "Incoming" in diff._repr_html_()


def test_the_resolver_shows_local_and_incoming_side_by_side():
    diff = sync_module.ServerDiff(diff_json([batch(
        "r1", status="conflict", incoming={"reason": "new reason", "name": "same"},
        local={"reason": "old reason", "name": "same"})]), None)
    obj = diff.batches[0].diffs[0]
    assert obj.changed_fields == ["reason"]
    assert obj.fields == ["name", "reason"]
    html = diff._repr_html_()
    assert html.index("old reason") < html.index("new reason")
    assert "request:r1" in repr(diff) and "conflict" in repr(diff)


def test_pysyft_names_are_exported():
    assert sy.sync is sync_module.sync
    assert sy.compare_clients is sync_module.compare_clients
    widget = sync_module.PaginatedResolveWidget
    assert widget._sync_all is widget.sync_all
