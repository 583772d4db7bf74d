"""Uploads and downloads in flight per account: one account (or all guests together) may not hold
every buffer of the blob store. With an S3 store, 64 stalled uploads of one data owner held the
whole 512 MiB part budget and every other upload got 503; 16 stalled mock downloads of one guest held
the 256 MiB read-window budget. Each account now has 4 uploads at once, past which the answer is 429
with a Retry-After; and 4 downloads read ahead (all guests together 8), past which a download is
sent without read-ahead (test_s3_blobs.py shows what that means for the bucket)."""

import os
import socket
import time

import pytest

from dataset_helpers import create_dataset, new_blob, upload_blob
from helpers import unique

PER_USER = 4
GUESTS = 8
MOCK_BYTES = 48 << 20  # far more than loopback's socket buffers hold: a download that isn't read stalls


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_head(sock):
    """The status line and headers of the next answer on `sock`."""
    head = b""
    while b"\r\n\r\n" not in head:
        more = sock.recv(4096)
        assert more, "connection closed before an answer"
        head += more
    return head


def stalled_upload(port, token, declared=16 << 20):
    """An upload the server has opened (it says "100 Continue" once the upload holds its place),
    whose first KiB is sent, and nothing more. Waiting for the go-ahead keeps the test's next
    upload from taking a place first on a loaded machine (it did: the stalled one was refused)."""
    sock = connect(port)
    sock.sendall("POST /api/v1/blobs?format=raw HTTP/1.1\r\nHost: localhost\r\n"
                 "Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n"
                 "Expect: 100-continue\r\nContent-Length: {}\r\n\r\n".format(token, declared).encode())
    head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 100"), head[:300]
    sock.sendall(os.urandom(1024))
    return sock


def stalled_download(port, token, path):
    """A download whose status line says 200 and whose body is then not read."""
    sock = connect(port)
    sock.sendall("GET {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n".format(
        path, token).encode())
    head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def retry_until(call, status, seconds=10):
    """Calls until the response has `status` (the server sees a closed connection a little later)."""
    deadline = time.monotonic() + seconds
    while True:
        resp = call()
        if resp.status == status or time.monotonic() > deadline:
            return resp
        time.sleep(0.1)


def assert_busy(resp, what):
    assert resp.status == 429, resp
    assert resp.headers.get("retry-after") == "5", resp.headers
    assert what in resp.error["message"], resp.error


def close_all(socks):
    for s in socks:
        s.close()


def test_an_account_has_four_uploads_at_once_and_others_are_not_affected(api, actors):
    owner, owner2 = actors["owner"], actors["owner2"]
    held = [stalled_upload(api.port, owner.token) for _ in range(PER_USER)]
    try:
        assert_busy(retry_until(lambda: upload_blob(api, owner.token, "raw", b"one more"), 429),
                    "uploads in progress")
        # Someone else uploads as always.
        assert upload_blob(api, owner2.token, "raw", b"not affected").status == 201
        # One of the four goes: the owner may upload again.
        held.pop().close()
        assert retry_until(lambda: upload_blob(api, owner.token, "raw", b"again"), 201).status == 201
    finally:
        close_all(held)


def test_a_finished_or_refused_upload_gives_its_slot_back(api, actors):
    owner = actors["owner"]
    for _ in range(3 * PER_USER):
        assert upload_blob(api, owner.token, "raw", b"small").status == 201
    # An upload refused by its parser (not JSON) gives its slot back too.
    for _ in range(2 * PER_USER):
        assert upload_blob(api, owner.token, "json", b"{not json").status == 400
    assert upload_blob(api, owner.token, "raw", b"still fine").status == 201


@pytest.fixture(scope="module")
def big_mock(api, actors):
    owner = actors["owner"]
    data = new_blob(api, owner.token, "raw", b"private bytes")
    mock = new_blob(api, owner.token, "raw", os.urandom(MOCK_BYTES))
    name = unique("slots")
    resp = create_dataset(api, owner.token, name,
                          [{"name": "a", "data": data["id"], "mock": mock["id"]}])
    assert resp.status in (200, 201), resp
    return "/api/v1/datasets/{}/assets/a/mock".format(resp.json["id"])


def test_an_account_past_four_downloads_is_still_served(api, actors, big_mock):
    """Past its 4 downloads read ahead, an account's next one is sent without read-ahead (from an
    S3 store, a GET per piece: test_s3_blobs.py counts them): slower, never refused."""
    scientist = actors["scientist"]
    held = [stalled_download(api.port, scientist.token, big_mock) for _ in range(PER_USER)]
    try:
        more = api.get(big_mock, token=scientist.token)
        assert more.status == 200 and len(more.raw) == MOCK_BYTES
    finally:
        close_all(held)


def test_guests_past_their_eight_downloads_are_still_served(api, actors, big_mock):
    guests = [api.guest() for _ in range(GUESTS + 1)]
    held = [stalled_download(api.port, guests[i], big_mock) for i in range(GUESTS)]
    try:
        more = api.get(big_mock, token=guests[GUESTS])
        assert more.status == 200 and len(more.raw) == MOCK_BYTES
    finally:
        close_all(held)
