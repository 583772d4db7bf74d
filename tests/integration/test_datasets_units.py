"""The dataset client's own logic, without a datasite server: building datasets, encoding assets,
progress, display escaping, refusals made before any upload, and download checksums.
"""

import hashlib
import http.server
import io
import json
import os
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from datasite import _transfer, datasets
from datasite._http import Transport


# Building ----------------------------------------------------------------------------------------


def test_dataset_builder_mirrors_pysyft():
    ds = sy.Dataset(
        name="census",
        summary="s",
        description="d",
        citation="c",
        url="u",
        contributors=[{"name": "A", "email": "a@example.org"}],
    )
    assert ds.add_asset(sy.Asset(name="t", data=[1], mock=[2]))
    ds.add_contributor("Jane", "jane@example.org", role="Owner")
    ds.set_description("new d")
    ds.set_summary("new s")
    ds.add_citation("new c")
    ds.add_url("https://example.org")
    assert [c.name for c in ds.contributors] == ["A", "Jane"]
    body = ds.to_dict()
    assert body == {
        "name": "census",
        "summary": "new s",
        "description": "new d",
        "citation": "new c",
        "url": "https://example.org",
        "contributors": [
            {"name": "A", "email": "a@example.org"},
            {"name": "Jane", "email": "jane@example.org", "role": "Owner"},
        ],
        "assets": [{"name": "t", "mock_is_real": False}],
    }


def test_add_asset_refuses_a_duplicate_name_unless_forced():
    ds = sy.Dataset(name="d")
    ds.add_asset(sy.Asset(name="t", data=[1], mock=[2]))
    with pytest.raises(ValueError, match="already exists"):
        ds.add_asset(sy.Asset(name="t", data=[3], mock=[4]))
    ds.add_asset(sy.Asset(name="t", data=[5], mock=[6]), force_replace=True)
    assert len(ds.assets) == 1 and ds.assets["t"].data == [5]


def test_remove_asset_and_asset_list_indexing():
    ds = sy.Dataset(name="d", asset_list=[sy.Asset(name=n, data=[1], mock=[1]) for n in "abc"])
    assert ds.assets[0].name == "a" and ds.assets[-1].name == "c" and ds.assets["b"].name == "b"
    assert "b" in ds.assets and "z" not in ds.assets
    ds.remove_asset("b")
    assert ds.assets.names() == ["a", "c"]
    with pytest.raises(KeyError):
        ds.assets["b"]
    with pytest.raises(KeyError):
        ds.remove_asset("b")


def test_asset_setters():
    asset = sy.Asset(name="t", data=[1, 2])
    asset.set_mock([3, 4], mock_is_real=True)
    assert asset.mock == [3, 4] and asset.mock_is_real
    asset.no_mock()
    assert asset.mock is None and not asset.mock_is_real and not asset.has_mock
    asset.set_obj([9])
    assert asset.data == [9]


# Encoding ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj,fmt",
    [
        (pd.DataFrame({"a": [1]}), "csv"),
        (pd.Series([1, 2]), "csv"),
        (np.zeros(3), "npy"),
        ([1, 2], "json"),
        ({"a": 1}, "json"),
        (b"\x00\x01", "raw"),
        ("x/y.CSV", "csv"),
        ("x/y.json", "json"),
        ("x/y.npy", "npy"),
        ("x/y.parquet", "raw"),
        ("x/noext", "raw"),
    ],
)
def test_upload_format_of_each_kind(obj, fmt):
    assert _transfer.format_of(obj) == fmt


def test_unsupported_object_is_a_type_error():
    with pytest.raises(TypeError, match="DataFrame"):
        _transfer.format_of(3.5)


def test_series_is_one_csv_column_named_after_the_series():
    with _transfer.payload_of(pd.Series([1, 2], name="score")) as p:
        assert open(p.path).read().splitlines() == ["score", "1", "2"]
    with _transfer.payload_of(pd.Series([1.5])) as p:
        assert open(p.path).read().splitlines() == ["value", "1.5"]


def test_dataframe_csv_keeps_an_index_that_is_not_a_range():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=[10, 11])
    with _transfer.payload_of(df) as p:
        assert open(p.path).read().splitlines() == [",a,b", "10,1,x", "11,2,y"]
    with _transfer.payload_of(df.reset_index(drop=True)) as p:
        assert open(p.path).read().splitlines() == ["a,b", "1,x", "2,y"]
        path = p.path
    assert not os.path.exists(path), "the temporary CSV must be removed after the upload"


def test_ndarray_is_npy_and_object_arrays_are_refused():
    with _transfer.payload_of(np.arange(6, dtype="<i4").reshape(2, 3).T) as p:
        loaded = np.load(p.path)
        assert loaded.dtype.str == "<i4" and loaded.shape == (3, 2)
        assert np.array_equal(loaded, np.arange(6, dtype="<i4").reshape(2, 3).T)
    with pytest.raises(ValueError, match="object"):
        _transfer.payload_of(np.array([{"a": 1}], dtype=object))


def test_json_payload_and_nan_refused():
    with _transfer.payload_of({"k": [1, "é"]}) as p:
        assert json.load(open(p.path, encoding="utf-8")) == {"k": [1, "é"]}
    with pytest.raises(ValueError, match="JSON"):
        _transfer.payload_of([float("nan")])


def test_a_path_is_streamed_from_where_it_is(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    for given in (f, str(f)):
        with _transfer.payload_of(given) as p:
            assert p.path == str(f) and p.size == 3 and p.format == "raw" and not p.owned
    assert f.exists(), "a user's file is never deleted"
    with pytest.raises(FileNotFoundError):
        _transfer.payload_of(str(tmp_path / "missing.csv"))


# Progress ----------------------------------------------------------------------------------------


def test_progress_is_silent_for_small_transfers():
    out = io.StringIO()
    bar = _transfer.Progress(1000, "Uploading", stream=out)
    bar.update(1000)
    bar.close()
    assert out.getvalue() == ""


def test_progress_line_for_big_transfers_shows_mb_and_rate():
    out = io.StringIO()
    total = 40 * 10**6
    bar = _transfer.Progress(total, "Uploading x", stream=out, interval=0)
    for _ in range(4):
        bar.update(total // 4)
    bar.close()
    text = out.getvalue()
    assert text.startswith("\rUploading x:") and text.endswith("\n")
    assert "40.0/40.0 MB" in text and "MB/s" in text and "100.0%" in text


# Display -----------------------------------------------------------------------------------------

EVIL = "<script>alert(1)</script>"


def remote_dataset():
    data = {
        "id": "0b5c6f4e-1111-4222-8333-944445555666",
        "name": EVIL,
        "summary": EVIL,
        "description": "# Heading\n" + EVIL,
        "citation": EVIL,
        "url": "javascript:" + EVIL,
        "contributors": [{"name": EVIL, "email": EVIL, "role": EVIL}],
        "uploader": {"id": "u", "name": EVIL, "email": "o@example.org"},
        "created_at": "2026-11-26T09:00:00Z",
        "updated_at": "2026-11-26T09:00:00Z",
        "assets": [
            {
                "name": EVIL,
                "description": EVIL,
                "format": "csv",
                "mock_is_real": False,
                "has_mock": True,
                "mock_size": 10,
                "mock_sha256": "x",
                "schema": {"kind": "table", "columns": [{"name": EVIL, "type": "int"}], "rows": 2},
            }
        ],
    }
    return sy.Dataset._from_server(data, client=None)


def test_dataset_html_escapes_everything_from_the_server():
    html = remote_dataset()._repr_html_()
    # The only scripts are the asset table's own (paging, search, copy), one per table.
    assert html.count("<script>") == html.count('class="datasite ds-list"') == 1
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html
    assert "table, 2 rows" in html
    assert "<a " not in html, "a URL from the server is shown as text, never a link"


def test_dataset_text_repr_is_readable():
    text = repr(remote_dataset())
    assert "Dataset: " + EVIL in text and "table, 2 rows" in text and "Contributors" in text


def test_asset_preview_html_escapes_cells():
    asset = sy.Asset(name="t", data=pd.DataFrame({"c": [EVIL]}), mock=pd.DataFrame({"c": [EVIL]}))
    html = asset._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html and "Mock preview" in html


def test_preview_shows_first_five_rows():
    df = pd.DataFrame({"n": range(100)})
    preview = datasets._preview(df)
    assert preview[0] == "table" and len(preview[2]) == 5 and preview[3] == 100


def test_schema_text():
    assert (
        datasets.schema_text({"kind": "array", "dtype": "<f8", "shape": [3, 4]})
        == "array <f8 (3, 4)"
    )
    assert (
        datasets.schema_text({"kind": "json", "type": "array", "length": 2})
        == "json array, length 2"
    )
    assert datasets.schema_text({"kind": "bytes"}) == "bytes"


# Refusals before any upload ----------------------------------------------------------------------


class FakeClient:
    def __init__(self, role, side="high"):
        self._user = {"id": "u1", "role": role}
        self._metadata = {"server_side_type": side, "name": "fake"}
        self._transport = Transport("http://127.0.0.1:9")
        self.name = "fake"


@pytest.fixture
def no_upload(monkeypatch):
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("nothing may be uploaded")

    monkeypatch.setattr(_transfer, "upload", refuse)
    return calls


def small_dataset():
    return sy.Dataset(name="d", asset_list=[sy.Asset(name="t", data=[1], mock=[2])])


@pytest.mark.parametrize("role", ["guest", "data_scientist"])
def test_upload_dataset_refused_for_non_owners_before_upload(role, no_upload):
    with pytest.raises(sy.PermissionDeniedError, match="data owners and admins"):
        sy.DatasiteClient.upload_dataset(FakeClient(role), small_dataset())
    assert no_upload == []


def test_upload_dataset_on_low_side_refuses_private_data_before_upload(no_upload):
    with pytest.raises(sy.InvalidArgumentError, match="low-side"):
        sy.DatasiteClient.upload_dataset(FakeClient("data_owner", "low"), small_dataset())
    assert no_upload == []


@pytest.mark.parametrize(
    "asset,message",
    [
        (sy.Asset(name="t", mock=[1]), "no private data"),
        (sy.Asset(name="t", data=[1]), "no mock"),
        (sy.Asset(name="t", data=[1], mock=b"x"), "same format"),
        (sy.Asset(data=[1], mock=[2]), "name"),
    ],
)
def test_incomplete_assets_refused_before_upload(asset, message, no_upload):
    ds = sy.Dataset(name="d", asset_list=[asset])
    with pytest.raises(sy.InvalidArgumentError, match=message):
        sy.DatasiteClient.upload_dataset(FakeClient("data_owner"), ds)
    assert no_upload == []


def test_dataset_without_assets_refused(no_upload):
    with pytest.raises(sy.InvalidArgumentError, match="no assets"):
        sy.DatasiteClient.upload_dataset(FakeClient("admin"), sy.Dataset(name="d"))


# Download checksums ------------------------------------------------------------------------------


class _LyingHandler(http.server.BaseHTTPRequestHandler):
    body = b"the bytes"
    header = None

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.body)))
        if self.header is not None:
            self.send_header("X-Content-SHA256", self.header)
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def lying_server():
    server = http.server.HTTPServer(("127.0.0.1", 0), _LyingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    "header,ok",
    [
        (hashlib.sha256(b"the bytes").hexdigest(), True),
        (hashlib.sha256(b"other bytes").hexdigest(), False),
        (None, False),
    ],
)
def test_download_checks_x_content_sha256(lying_server, monkeypatch, header, ok):
    monkeypatch.setattr(_LyingHandler, "header", header)
    transport = Transport("http://127.0.0.1:{}".format(lying_server.server_address[1]))
    if ok:
        assert _transfer.fetch_object(transport, "blob_get", {"id": "x"}, "raw") == b"the bytes"
    else:
        with pytest.raises(sy.IntegrityError):
            _transfer.fetch_object(transport, "blob_get", {"id": "x"}, "raw")


# Streamed uploads against scripted servers -------------------------------------------------------


class ScriptedServer:
    """Accepts one connection and plays ``script(conn, headers)``; records what it received."""

    def __init__(self, script):
        self.script = script
        self.received = 0
        self.headers = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        conn, _ = self.sock.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            self.headers, _, rest = data.partition(b"\r\n\r\n")
            self.received = len(rest)
            self.script(self, conn)

    def read_body(self, conn, limit):
        while self.received < limit:
            chunk = conn.recv(1 << 20)
            if not chunk:
                return
            self.received += len(chunk)

    def close(self):
        self.sock.close()


def answer(conn, status, body):
    raw = json.dumps(body).encode()
    conn.sendall(
        "HTTP/1.1 {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
        "Connection: close\r\n\r\n".format(status, len(raw)).encode() + raw
    )


SIZE = 5 << 20


def run_upload(script):
    server = ScriptedServer(script)
    try:
        transport = Transport("http://127.0.0.1:{}".format(server.port), token="tok")
        payload = _transfer.Payload("raw", content=b"\x07" * SIZE)
        try:
            return server, _transfer.upload(transport, payload, progress_stream=io.StringIO())
        except sy.DatasiteError as err:
            return server, err
    finally:
        server.thread.join(10)
        server.close()


def test_upload_sends_headers_then_body_after_100_continue():
    def script(server, conn):
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        server.read_body(conn, SIZE)
        answer(conn, "201 Created", {"id": "b", "size": server.received})

    server, result = run_upload(script)
    assert result == {"id": "b", "size": SIZE}
    head = server.headers.decode().lower()
    assert "expect: 100-continue" in head and "content-length: {}".format(SIZE) in head
    assert "authorization: bearer tok" in head and "post /api/v1/blobs?format=raw" in head


def test_upload_refused_before_the_body_sends_no_body():
    def script(server, conn):
        answer(conn, "403 Forbidden", {"error": {"code": "PERMISSION_DENIED", "message": "no"}})

    server, result = run_upload(script)
    assert isinstance(result, sy.PermissionDeniedError) and result.message == "no"
    assert server.received == 0


def test_upload_refused_in_the_middle_stops_sending():
    def script(server, conn):
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        server.read_body(conn, 1 << 20)
        answer(
            conn,
            "413 Payload Too Large",
            {"error": {"code": "PAYLOAD_TOO_LARGE", "message": "too big"}},
        )
        time.sleep(0.5)

    server, result = run_upload(script)
    assert isinstance(result, sy.PayloadTooLargeError) and result.status == 413


def test_upload_without_100_continue_sends_the_body_after_a_wait(monkeypatch):
    monkeypatch.setattr(_transfer, "CONTINUE_WAIT_SECONDS", 0.3)

    def script(server, conn):
        server.read_body(conn, SIZE)
        answer(conn, "201 Created", {"id": "late"})

    server, result = run_upload(script)
    assert result == {"id": "late"} and server.received == SIZE


def test_late_100_continue_does_not_stop_the_upload(monkeypatch):
    monkeypatch.setattr(_transfer, "CONTINUE_WAIT_SECONDS", 0.2)

    def script(server, conn):
        time.sleep(0.5)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        server.read_body(conn, SIZE)
        answer(conn, "201 Created", {"id": "ok"})

    server, result = run_upload(script)
    assert result == {"id": "ok"} and server.received == SIZE


def test_client_works_without_pandas_and_numpy(tmp_path):
    """Standard library only: without pandas and numpy, CSV and npy come back as bytes."""
    import subprocess
    import sys

    from helpers import REPO_ROOT

    script = """
import sys
sys.modules["pandas"] = None
sys.modules["numpy"] = None
sys.path.insert(0, {python!r})
import datasite as sy
from datasite import _transfer
path = {csv!r}
open(path, "w").write("a\\n1\\n")
assert _transfer.format_of(path) == "csv"
assert _transfer.load_file(path, "csv") == b"a\\n1\\n"
assert _transfer.load_file(path, "npy") == b"a\\n1\\n"
with _transfer.payload_of([1, 2]) as p:
    assert p.format == "json" and _transfer.load_file(p.path, "json") == [1, 2]
try:
    _transfer.format_of(object())
except TypeError:
    pass
else:
    raise AssertionError("object accepted")
ds = sy.Dataset(name="d", asset_list=[sy.Asset(name="a", data=path, mock=b"x")])
print(repr(ds))
""".format(
        python=str(REPO_ROOT / "python"), csv=str(tmp_path / "t.csv")
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "Dataset: d" in proc.stdout
