"""Uploads on the wire: the body of an upload with a Content-Length is read past the HTTP parser,
straight into the upload's buffers. These tests send bodies in every shape a client may: together
with the headers, in odd pieces, followed at once by the next request on the same connection, cut
off in the middle; each must store exactly the bytes sent, or nothing."""

import hashlib
import json
import os
import pathlib
import socket
import time

import pytest

from helpers import ROOT_EMAIL, ROOT_PASSWORD, Api


def request_bytes(token, body, path="/api/v1/blobs?format=raw", expect_continue=False):
    head = "POST {} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n".format(
        path, token, len(body))
    if expect_continue:
        head += "Expect: 100-continue\r\n"
    return head.encode() + b"\r\n", body


def read_response(sock, buf=b""):
    """Reads one response with a Content-Length from `sock`; returns (status, body, rest)."""
    while b"\r\n\r\n" not in buf:
        more = sock.recv(65536)
        assert more, "connection closed before a response"
        buf += more
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(buf) < length:
        more = sock.recv(65536)
        assert more, "connection closed inside a response"
        buf += more
    return status, buf[:length], buf[length:]


@pytest.fixture
def signed_in(server):
    api = Api(server.port)
    return api, api.login(ROOT_EMAIL, ROOT_PASSWORD)


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def check_blob(server, status, body, sent):
    """The answer names the bytes sent, and the file on disk holds exactly them."""
    assert status == 201, body
    blob = json.loads(body)
    assert blob["size"] == len(sent)
    assert blob["sha256"] == hashlib.sha256(sent).hexdigest()
    stored = pathlib.Path(server.data_dir) / "blobs" / blob["id"][:2] / blob["id"]
    assert stored.read_bytes() == sent
    return blob


def test_body_sent_with_the_headers_and_a_pipelined_request_after_it(server, signed_in):
    api, token = signed_in
    first = os.urandom(1000)
    second = os.urandom(70000)
    head1, body1 = request_bytes(token, first)
    head2, body2 = request_bytes(token, second)
    health = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    sock = connect(server.port)
    # Two uploads and a GET in one send: the server must not read past each body.
    sock.sendall(head1 + body1 + head2 + body2 + health)
    status, body, rest = read_response(sock)
    check_blob(server, status, body, first)
    status, body, rest = read_response(sock, rest)
    check_blob(server, status, body, second)
    status, body, rest = read_response(sock, rest)
    assert status == 200, body
    sock.close()


def test_large_body_in_odd_pieces_is_stored_exactly(server, signed_in):
    api, token = signed_in
    data = os.urandom((3 << 20) + 12345)
    head, body = request_bytes(token, data)
    sock = connect(server.port)
    # The headers and the first bytes of the body together, then pieces of every size.
    sock.sendall(head + body[:777])
    at = 777
    for i, size in enumerate([1, 4095, 4097, 65536, 1 << 20, 3, (1 << 20) + 1] * 4):
        if at >= len(body):
            break
        sock.sendall(body[at:at + size])
        at += size
        if i % 5 == 0:
            time.sleep(0.01)
    sock.sendall(body[at:])
    status, resp, _ = read_response(sock)
    check_blob(server, status, resp, data)
    sock.close()


def test_expect_continue_then_body_is_stored(server, signed_in):
    api, token = signed_in
    data = os.urandom((1 << 20) + 1)
    head, body = request_bytes(token, data, expect_continue=True)
    sock = connect(server.port)
    sock.sendall(head)
    status, _, rest = read_response(sock)
    assert status == 100
    assert rest == b""
    sock.sendall(body)
    status, resp, _ = read_response(sock)
    check_blob(server, status, resp, data)
    sock.close()


def test_body_cut_off_leaves_nothing_and_the_server_serves_on(server, signed_in):
    api, token = signed_in
    tmp = pathlib.Path(server.data_dir) / "blobs" / "tmp"
    data = os.urandom(5 << 20)
    head, body = request_bytes(token, data)
    sock = connect(server.port)
    sock.sendall(head + body[:(2 << 20) + 5])
    deadline = time.time() + 10
    while time.time() < deadline and not any(p.stat().st_size > 0 for p in tmp.glob("*.part")):
        time.sleep(0.02)
    assert list(tmp.glob("*.part")), "the upload in progress should have a temporary file"
    sock.close()
    deadline = time.time() + 10
    while time.time() < deadline and list(tmp.glob("*.part")):
        time.sleep(0.02)
    assert not list(tmp.glob("*.part")), "a broken upload must leave no temporary file"
    blobs = pathlib.Path(server.data_dir) / "blobs"
    assert not [p for p in blobs.glob("??/*")], "a broken upload must store nothing"
    assert api.get("/healthz").status == 200
    # And the next upload is whole.
    small = os.urandom(5000)
    resp = api.post("/api/v1/blobs?format=raw", raw=small, token=token)
    assert resp.status == 201, resp
    assert resp.json["sha256"] == hashlib.sha256(small).hexdigest()


def test_fast_then_trickling_body_is_stored_exactly(server, signed_in):
    """The server waits for larger reads while a client sends fast; one that slows to a trickle must
    still be read to the end, byte by byte if need be."""
    api, token = signed_in
    data = os.urandom((2 << 20) + 300 * 1024 + 7)
    head, body = request_bytes(token, data)
    sock = connect(server.port)
    fast = (2 << 20) + 100 * 1024
    sock.sendall(head + body[:fast])
    at = fast
    while at < len(body):
        sock.sendall(body[at:at + 1024])
        at += 1024
        time.sleep(0.004)
    status, resp, _ = read_response(sock)
    check_blob(server, status, resp, data)
    sock.close()


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate,chunked", "identity"])
def test_a_body_in_another_transfer_coding_than_chunked_is_refused(server, signed_in, coding):
    """Only chunked is understood: "gzip, chunked" was read as chunked and its gzip bytes stored
    as the blob (found by a cold attack)."""
    api, token = signed_in
    sock = connect(server.port)
    body = b"5\r\nhello\r\n0\r\n\r\n"
    sock.sendall("POST /api/v1/blobs?format=raw HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n"
                 "Content-Type: application/octet-stream\r\nTransfer-Encoding: {}\r\n\r\n".format(
                     token, coding).encode() + body)
    status, answer, _ = read_response(sock)
    assert status == 501, answer
    assert b"chunked" in answer

    # Chunked alone is read as always.
    sock = connect(server.port)
    sock.sendall("POST /api/v1/blobs?format=raw HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n"
                 "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".format(
                     token).encode() + body)
    status, answer, _ = read_response(sock)
    check_blob(server, status, answer, b"hello")


@pytest.mark.parametrize("coding", ["chunked, chunked", "chunked,chunked", ""])
def test_a_transfer_encoding_of_chunked_twice_or_nothing_is_malformed(server, signed_in, coding):
    """Beast reads "chunked, chunked" as no chunked coding: the body's bytes would have been read
    as the next request (found by a cold review)."""
    api, token = signed_in
    sock = connect(server.port)
    sock.sendall("POST /api/v1/blobs?format=raw HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n"
                 "Content-Type: application/octet-stream\r\nTransfer-Encoding: {}\r\n\r\n".format(
                     token, coding).encode() + b"5\r\nhello\r\n0\r\n\r\n")
    status, answer, _ = read_response(sock)
    assert status == 400, answer


def test_a_chunked_body_in_http_1_0_is_malformed(server, signed_in):
    """HTTP/1.0 has no chunked coding: the server read such a body as chunked and kept the
    connection for the next request (found by a cold attack)."""
    api, token = signed_in
    sock = connect(server.port)
    sock.sendall("POST /api/v1/blobs?format=raw HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n"
                 "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n".format(
                     token).encode() + b"5\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    status, answer, rest = read_response(sock)
    assert status == 400, answer
    sock.settimeout(5)
    while True:  # then the connection closes: the pipelined request is not answered
        more = sock.recv(65536)
        if not more:
            break
        rest += more
    assert b"HTTP/1.1 200" not in rest
