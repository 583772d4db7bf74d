"""Bad uploads and bad dataset requests: each is a 4xx with a clear message, and leaves no dataset
and no blob behind.
"""

import io
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import uuid

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from dataset_helpers import (
    BLOBS,
    DATASETS,
    OCTETS,
    blob_files,
    create_dataset,
    dataset_total,
    make_actors,
    new_blob,
    upload_blob,
)
from helpers import Api, assert_error, pid_is_datasite, unique

LIMIT = 1000000


@pytest.fixture(scope="module")
def token(actors):
    return actors["owner"].token


@pytest.fixture
def unchanged(api, token, module_server):
    """After the test: as many datasets, and the same stored files, as before."""
    total = dataset_total(api, token)
    files = blob_files(module_server.data_dir)
    yield
    assert dataset_total(api, token) == total, "a dataset was left behind"
    assert blob_files(module_server.data_dir) == files, "a blob was left behind"


def test_blob_files_helper_sees_an_upload(api, token, module_server):
    """Guards the "no blob left" checks of this suite: a stored blob shows up as a new file."""
    before = blob_files(module_server.data_dir)
    blob = new_blob(api, token, "raw", b"seen")
    assert len(blob_files(module_server.data_dir) - before) >= 1
    assert api.delete(BLOBS + "/" + blob["id"], token=token).status == 200
    assert blob_files(module_server.data_dir) == before


def npy(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def assert_clear(resp, *words):
    """400 INVALID_ARGUMENT whose message mentions one of ``words``."""
    assert_error(resp, 400, "INVALID_ARGUMENT")
    message = resp.error["message"].lower()
    assert any(w in message for w in words), "unclear message: {!r}".format(resp.error)


# Blob uploads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["?format=xml", "?format=CSV", "?format=", "", "?fmt=csv"])
def test_unknown_or_missing_format_is_refused(api, token, query, unchanged):
    resp = api("POST", BLOBS + query, raw=b"a\n1\n", token=token, headers=OCTETS)
    assert_clear(resp, "format")


@pytest.mark.parametrize(
    "raw",
    [
        b"a,b\n1,2\n3\n",
        b"a,b\n1,2,3\n",
        b"a,b\n1,2\n3,4\n5,6,7,8\n",
        b'a,b\n"unclosed,2\n',
    ],
    ids=["short-row", "long-row", "late-long-row", "unclosed-quote"],
)
def test_ragged_or_broken_csv_is_refused(api, token, raw, unchanged):
    assert_clear(
        upload_blob(api, token, "csv", raw), "csv", "line", "field", "record", "column", "quote"
    )


def test_empty_csv_is_refused(api, token, unchanged):
    assert_clear(upload_blob(api, token, "csv", b""), "csv", "empty", "header")


@pytest.mark.parametrize(
    "raw",
    [
        b"\x93NUMPY\x01\x00" + b"\x10\x00" + b"{'descr': 'bad'" + b" " * 2,
        b"not an npy file at all",
        npy(np.zeros(3))[:-8],
        npy(np.zeros(3)).replace(b"'shape': (3,)", b"'shape': (9,)"),
        npy(np.zeros(3)).replace(b"'descr': '<f8'", b"'descr': '<q9'"),
        npy(np.zeros(3)).replace(b"'fortran_order': False", b"'fortran_order': Maybe"),
        b"",
    ],
    ids=[
        "truncated-header",
        "no-magic",
        "short-data",
        "shape-larger-than-data",
        "unknown-dtype",
        "bad-fortran-order",
        "empty",
    ],
)
def test_npy_with_a_bad_header_is_refused(api, token, raw, unchanged):
    assert_clear(
        upload_blob(api, token, "npy", raw),
        "npy",
        "header",
        "numpy",
        "array",
        "dtype",
        "shape",
        "magic",
    )


def test_npy_of_pickled_objects_is_refused(api, token, unchanged):
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert_clear(
        upload_blob(api, token, "npy", buf.getvalue()), "npy", "object", "pickle", "dtype"
    )


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"a": 1,}', b"[1, 2", b"nope", b"", b'{"a": 1} trailing', b"\xff\xfe"],
    ids=[
        "open-brace",
        "trailing-comma",
        "open-array",
        "word",
        "empty",
        "trailing-text",
        "not-utf8",
    ],
)
def test_invalid_json_is_refused(api, token, raw, unchanged):
    assert_clear(upload_blob(api, token, "json", raw), "json", "parse", "syntax", "utf")


def test_client_upload_with_a_bad_file_leaves_nothing(actors, tmp_path, unchanged):
    good = tmp_path / "good.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(good, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3\n")
    ds = sy.Dataset(name=unique("bad"))
    ds.add_asset(sy.Asset(name="fine", data=good, mock=good))
    ds.add_asset(sy.Asset(name="ragged", data=bad, mock=good))
    with pytest.raises(sy.InvalidArgumentError) as info:
        actors["owner"].client.upload_dataset(ds)
    assert info.value.status == 400 and info.value.message
    with pytest.raises(sy.NotFoundError):
        actors["owner"].client.datasets[ds.name]


# Dataset requests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mine(api, token):
    return new_blob(api, token, "json", b"[1, 2]")["id"]


@pytest.fixture(scope="module")
def theirs(api, actors):
    """A blob of another data owner."""
    return new_blob(api, actors["owner2"].token, "json", b"[3, 4]")["id"]


def test_blob_of_another_owner_cannot_be_used(api, token, mine, theirs, unchanged):
    for asset in ({"name": "a", "data": theirs}, {"name": "a", "data": mine, "mock": theirs}):
        resp = create_dataset(api, token, unique("theft"), [asset])
        assert 400 <= resp.status < 500 and resp.error, resp


def test_blob_that_does_not_exist_cannot_be_used(api, token, mine, unchanged):
    for asset in (
        {"name": "a", "data": "not-a-uuid"},
        {"name": "a", "data": str(uuid.uuid4())},
        {"name": "a", "data": mine, "mock": str(uuid.uuid4())},
    ):
        resp = create_dataset(api, token, unique("ghost"), [asset])
        assert 400 <= resp.status < 500 and resp.error, resp


@pytest.mark.parametrize(
    "body",
    [
        {"assets": [{"name": "a", "data": "MINE"}]},
        {"name": "", "assets": [{"name": "a", "data": "MINE"}]},
        {"name": 5, "assets": [{"name": "a", "data": "MINE"}]},
        {"name": "NAME"},
        {"name": "NAME", "assets": "a"},
        {"name": "NAME", "assets": [{"data": "MINE"}]},
        {"name": "NAME", "assets": [{"name": "", "data": "MINE"}]},
        {"name": "NAME", "assets": [{"name": "a"}]},
        {"name": "NAME", "assets": [{"name": "a", "data": "MINE", "colour": "red"}]},
        {"name": "NAME", "assets": [{"name": "a", "data": "MINE", "mock_is_real": "yes"}]},
        {"name": "NAME", "colour": "red", "assets": [{"name": "a", "data": "MINE"}]},
        {
            "name": "NAME",
            "contributors": [{"email": "x@example.org"}],
            "assets": [{"name": "a", "data": "MINE"}],
        },
        {"name": "NAME", "contributors": "Ann", "assets": [{"name": "a", "data": "MINE"}]},
    ],
    ids=[
        "no-name",
        "empty-name",
        "name-not-string",
        "no-assets",
        "assets-not-list",
        "asset-no-name",
        "asset-empty-name",
        "asset-no-data-high-side",
        "asset-unknown-field",
        "mock-is-real-not-bool",
        "unknown-field",
        "contributor-no-name",
        "contributors-not-list",
    ],
)
def test_malformed_dataset_is_refused(api, token, mine, body, unchanged):
    text = json.dumps(body).replace("MINE", mine).replace("NAME", unique("bad"))
    resp = api("POST", DATASETS, raw=text, token=token)
    assert_error(resp, 400, "INVALID_ARGUMENT")


def test_two_assets_of_one_name_are_refused(api, token, unchanged):
    a = new_blob(api, token, "json", b"[1]")["id"]
    b = new_blob(api, token, "json", b"[2]")["id"]
    resp = create_dataset(
        api, token, unique("twice"), [{"name": "x", "data": a}, {"name": "x", "data": b}]
    )
    assert resp.status in (400, 409) and resp.error, resp
    for blob in (a, b):
        api.delete(BLOBS + "/" + blob, token=token)


def test_data_and_mock_of_different_formats_are_refused(api, token, unchanged):
    """An asset has one ``format``, so its data and mock must share it."""
    data = new_blob(api, token, "csv", b"a\n1\n")["id"]
    mock = new_blob(api, token, "json", b"[1]")["id"]
    resp = create_dataset(api, token, unique("mixed"), [{"name": "x", "data": data, "mock": mock}])
    assert_error(resp, 400, "INVALID_ARGUMENT")
    for blob in (data, mock):
        api.delete(BLOBS + "/" + blob, token=token)


def test_unused_blob_can_be_deleted_by_its_uploader(api, token, unchanged):
    blob = new_blob(api, token, "raw", b"temporary")["id"]
    resp = api.delete(BLOBS + "/" + blob, token=token)
    assert resp.status == 200 and resp.json.get("message"), resp
    assert_error(api.get(BLOBS + "/" + blob, token=token), 404, "NOT_FOUND")


def test_blob_used_by_a_dataset_cannot_be_deleted(api, token):
    blob = new_blob(api, token, "raw", b"in use")["id"]
    resp = create_dataset(api, token, unique("inuse"), [{"name": "a", "data": blob}])
    assert resp.status == 201, resp
    refused = api.delete(BLOBS + "/" + blob, token=token)
    assert 400 <= refused.status < 500 and refused.error, refused
    got = api.get("{}/{}/assets/a/data".format(DATASETS, resp.json["id"]), token=token)
    assert got.status == 200 and got.raw == b"in use"


# Size limit --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(binary, tmp_path_factory):
    """A server launched with ``--max-blob-bytes 1000000``."""
    xdg = tmp_path_factory.mktemp("limited")
    env = dict(os.environ, XDG_DATA_HOME=str(xdg))
    name = unique("limited")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = subprocess.call(
            [
                binary,
                "launch",
                "--name",
                name,
                "--port",
                "auto",
                "--max-blob-bytes",
                str(LIMIT),
                "--detach",
            ],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=60,
        )
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    assert code == 0, "launch --max-blob-bytes {} failed: {} {}".format(LIMIT, stdout, stderr)
    port = int(re.search(r"server on .+:(\d+)", stdout).group(1))
    yield Api(port)
    subprocess.call(
        [binary, "land", name],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )
    info = xdg / "datasite" / name / "server.json"
    if info.exists():
        pid = json.loads(info.read_text()).get("pid")
        if pid and pid_is_datasite(pid):
            os.kill(pid, 15)


@pytest.fixture(scope="module")
def limited_owner(limited):
    actors = make_actors(limited.port)
    return actors["owner"]


def assert_too_large(resp):
    assert (resp.status, (resp.error or {}).get("code")) in (
        (413, "PAYLOAD_TOO_LARGE"),
        (429, "RESOURCE_EXHAUSTED"),
    ), resp
    assert resp.error.get("message"), resp


def test_upload_over_the_limit_is_refused(limited, limited_owner):
    resp = upload_blob(limited, limited_owner.token, "raw", b"\x00" * 2000000)
    assert_too_large(resp)
    print("over-limit upload of 2 MB answered {} {}".format(resp.status, resp.error))


def test_upload_at_the_limit_is_accepted_and_one_byte_more_refused(limited, limited_owner):
    resp = upload_blob(limited, limited_owner.token, "raw", b"\x01" * LIMIT)
    assert resp.status == 201 and resp.json["size"] == LIMIT, resp
    assert_too_large(upload_blob(limited, limited_owner.token, "raw", b"\x01" * (LIMIT + 1)))


def test_client_gets_the_size_refusal_quickly(limited_owner, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.write(b"\x02" * (50 << 20))
    ds = sy.Dataset(name=unique("big"), asset_list=[sy.Asset(name="a", data=big, mock=b"small")])
    started = time.monotonic()
    with pytest.raises((sy.PayloadTooLargeError, sy.RateLimitedError)) as info:
        limited_owner.client.upload_dataset(ds)
    elapsed = time.monotonic() - started
    assert info.value.status in (413, 429) and info.value.message
    assert elapsed < 10, "the refusal took {:.1f} s".format(elapsed)
    with pytest.raises(sy.NotFoundError):
        limited_owner.client.datasets[ds.name]


def test_chunked_upload_over_the_limit_is_refused_mid_stream(limited, limited_owner):
    # Without a Content-Length the size is known only as the body arrives, so the refusal comes from
    # the blob writer while later pieces are already queued behind it. The client still gets one
    # clear answer, and the server serves on.
    piece = b"\x03" * (256 << 10)
    sock = socket.create_connection(("127.0.0.1", limited.port), timeout=30)
    head = ("POST {}?format=raw HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").format(BLOBS, limited_owner.token)
    sock.sendall(head.encode())
    try:
        for _ in range(32):  # 8 MiB, eight times the limit
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may stop reading once it has answered
    answer = b""
    while b"\r\n\r\n" not in answer:
        more = sock.recv(65536)
        assert more, "connection closed without an answer"
        answer += more
    sock.close()
    status_line = answer.split(b"\r\n", 1)[0].decode()
    assert status_line.split()[1] in ("413", "429"), status_line
    assert b"limit" in answer or b"large" in answer, answer[:400]
    again = upload_blob(limited, limited_owner.token, "raw", b"\x04" * 1000)
    assert again.status == 201, again
