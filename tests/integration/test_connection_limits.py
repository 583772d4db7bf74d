"""What one anonymous caller can hold of a launched server: connections from one address
(--max-connections-per-address), also on the metrics listener, and request bodies in memory (small
bodies on anonymous routes, none read for a role route without a token). Regression tests for a cold
attack's findings (idle connections locking everyone out, stalled bodies pinning memory, the metrics
listener filled), scaled down. The
attacker connects from 127.0.0.2, the legitimate caller from 127.0.0.1 (both loopback)."""

import socket
import time

import pytest

from helpers import ROOT_EMAIL, ROOT_PASSWORD, Api, DetachedServer

ATTACKER = "127.0.0.2"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def limited(binary, tmp_path_factory):
    metrics_port = free_port()
    server = DetachedServer(
        binary,
        tmp_path_factory.mktemp("limits") / "data",
        "--workers", "0",
        "--max-connections-per-address", "4",
        "--metrics-address", "127.0.0.1:{}".format(metrics_port),
    )
    api = server.start()
    try:
        yield server, api, metrics_port
    finally:
        server.stop()


def idle_sockets(port, count, source=ATTACKER):
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def still_open(socks):
    """How many of `socks` the server has not closed (an open idle one has nothing to read)."""
    time.sleep(0.5)
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) != b"":
                n += 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def test_one_address_holds_at_most_its_share_and_others_get_in(limited):
    _, api, _ = limited
    socks = idle_sockets(api.port, 12)
    try:
        assert still_open(socks) == 4
        assert api.get("/api/v1/metadata").status == 200
    finally:
        for s in socks:
            s.close()


def test_idle_sockets_do_not_stop_metrics_scrapes(limited):
    _, _, metrics_port = limited
    socks = idle_sockets(metrics_port, 70)
    try:
        assert still_open(socks) <= 8
        resp = Api(metrics_port).get("/metrics")
        assert resp.status == 200, resp
    finally:
        for s in socks:
            s.close()


def post_head(path, port, content_length, headers=""):
    return ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n%s"
            "Content-Length: %d\r\n\r\n" % (path, port, headers, content_length)).encode()


def read_head(s):
    """The head of the next answer on `s` (b"" when the server closed first)."""
    got = b""
    while b"\r\n\r\n" not in got:
        piece = s.recv(4096)
        if not piece:
            break
        got += piece
    return got.split(b"\r\n\r\n", 1)[0].decode()


def raw_post(port, path, content_length, body=b"", headers="", source="127.0.0.1"):
    """Sends the headers and `body` of a POST from `source` and returns the status line it gets
    (within 10 s)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10,
                                  source_address=(source, 0)) as s:
        s.sendall(post_head(path, port, content_length, headers) + body)
        return read_head(s).split("\r\n", 1)[0]


def test_login_takes_a_small_body_only(limited):
    _, api, _ = limited
    status = raw_post(api.port, "/api/v1/auth/login", 1 << 20, b"{" + b" " * 1000)
    assert status == "HTTP/1.1 413 Payload Too Large"


def test_a_role_route_answers_a_caller_without_a_token_before_the_body(limited):
    _, api, _ = limited
    # The body never comes: the answer can't wait for it.
    assert raw_post(api.port, "/api/v1/code", 1 << 20) == "HTTP/1.1 401 Unauthorized"


# bogus_token_body_budget: only an empty Authorization header was refused before the body, so a
# made-up token held a whole 1 MiB of the body budget for 26 s while sending nothing.
def test_a_role_route_answers_a_made_up_token_before_the_body(limited):
    _, api, _ = limited
    status = raw_post(api.port, "/api/v1/code", 1 << 20,
                      headers="Authorization: Bearer not-a-token\r\n")
    assert status == "HTTP/1.1 401 Unauthorized"


# cold review: the token check asked only whether a session was live, so a guest session (anyone's
# for the asking) held a role route's whole body, and had the run route's body scanned, before the
# handler refused its role.
def test_a_role_route_answers_a_lesser_role_before_the_body(limited):
    _, api, _ = limited
    guest = api.guest()
    for path in ("/api/v1/code", "/api/v1/code/00000000-0000-0000-0000-000000000000/run",
                 "/api/v1/users"):
        status = raw_post(api.port, path, 1 << 20, headers="Authorization: Bearer " + guest + "\r\n")
        assert status == "HTTP/1.1 403 Forbidden", path


# second cold attack (guest_body_budget): routes a guest may call took 1 MiB bodies, so one guest
# token from 16 addresses held the whole body budget and every login and POST got 503.
def test_a_guest_route_takes_a_small_body_only(limited):
    _, api, _ = limited
    guest = "Authorization: Bearer " + api.guest() + "\r\n"
    status = raw_post(api.port, "/api/v1/auth/logout", 1 << 20, headers=guest)
    assert status == "HTTP/1.1 413 Payload Too Large"


@pytest.fixture(scope="module")
def small_budget(binary, tmp_path_factory):
    """A server whose body budget is 4 MiB: one client may hold one 1 MiB body
    (more than a sixteenth of it)."""
    server = DetachedServer(binary, tmp_path_factory.mktemp("budget") / "data", "--workers", "0",
                            "--body-memory-bytes", str(4 << 20))
    api = server.start()
    try:
        yield api
    finally:
        server.stop()


# bogus_token_body_budget: 64 connections from each of 4 addresses held the whole body budget,
# and every other client's login and POST got 503 meanwhile.
def test_one_address_holds_at_most_its_share_of_the_body_budget(small_budget):
    api = small_budget
    root = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    auth = "Authorization: Bearer %s\r\n" % root
    with socket.create_connection(("127.0.0.1", api.port), timeout=10,
                                  source_address=(ATTACKER, 0)) as held:
        # The go-ahead comes once the body's share is taken; the body never comes.
        held.sendall(post_head("/api/v1/code", api.port, 1 << 20,
                               auth + "Expect: 100-continue\r\n"))
        assert read_head(held) == "HTTP/1.1 100 Continue"
        with socket.create_connection(("127.0.0.1", api.port), timeout=10,
                                      source_address=(ATTACKER, 0)) as more:
            more.sendall(post_head("/api/v1/code", api.port, 100, auth))
            head = read_head(more)
        assert head.startswith("HTTP/1.1 503 Service Unavailable"), head
        assert "\r\nRetry-After: 5" in head, head
        # Another network still gets its body read (a 400 for the empty object, not a 503); at
        # this budget a network (127.0.0.0/24) holds no more than one client.
        status = raw_post(api.port, "/api/v1/code", 2, b"{}", headers=auth, source="127.0.1.1")
        assert status == "HTTP/1.1 400 Bad Request"


def test_serve_help_names_the_new_flags_and_their_variables(binary):
    import subprocess
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
    for flag, env in [("--max-connections-per-address", "DATASITE_MAX_CONNECTIONS_PER_ADDRESS"),
                      ("--header-timeout-seconds", "DATASITE_HEADER_TIMEOUT_SECONDS"),
                      ("--body-memory-bytes", "DATASITE_BODY_MEMORY_BYTES")]:
        assert flag in out and env in out, flag


def test_a_request_id_from_an_untrusted_peer_is_replaced(limited):
    _, api, _ = limited
    got = api.get("/readyz", headers={"X-Request-Id": "chosen-by-me"}).headers.get("x-request-id")
    assert got and got != "chosen-by-me"
