"""--endpoint-egress HOST:PORT: an API endpoint's private function reaching a host the data owner
named, through the Python client against a real server (issue 17).

The sandbox has no network. With the flag, a private function's ``socket.create_connection``
(``urllib.request``, ``http.client``, ``requests``) asks the server, which connects to exactly a
listed HOST:PORT and hands the socket over. Everything else stays without a way out: other hosts
and ports, mock functions, servers launched without the flag, and the process's own sockets.

Two "warehouses" listen on loopback: one listed, one not. Each test launches its own server.
"""

import http.server
import socket
import subprocess
import threading
import uuid

import pytest

import datasite as sy
from code_helpers import make_code_actors
from helpers import needs_sandbox

pytestmark = needs_sandbox


class Warehouse:
    """An HTTP server on 127.0.0.1 answering every GET with ``answer``."""

    def __init__(self, answer):
        body = answer.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def warehouses():
    listed, unlisted = Warehouse("LISTED-WAREHOUSE"), Warehouse("UNLISTED-WAREHOUSE")
    yield listed, unlisted
    listed.close()
    unlisted.close()


@sy.api_endpoint_method()
def fetch(context, port: int, how: str = "urllib"):
    """GETs http://127.0.0.1:PORT/ (by ``how``); the body, or the exception's type and text."""
    url = f"http://127.0.0.1:{port}/rows"
    try:
        if how == "urllib":
            import urllib.request

            return urllib.request.urlopen(url, timeout=10).read().decode()
        if how == "requests":
            import requests

            return requests.get(url, timeout=10).text
        if how == "socket":  # its own socket, not create_connection
            import socket

            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.connect(("127.0.0.1", port))
            return "connected"
    except Exception as error:  # noqa: BLE001 (the test reads what was raised)
        return f"{type(error).__name__}: {error}"
    return "unknown how"


@sy.api_endpoint_method()
def hop(context, listed: int, target: int, how: str):
    """Connects to the listed port, then tries to point the same socket at ``target``: a TCP socket
    is disconnected by connect(AF_UNSPEC) and may then connect anywhere, or send with
    MSG_FASTOPEN to an address. What was done, and what came back."""
    import ctypes
    import socket
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    out = []
    s = socket.create_connection(("127.0.0.1", listed))
    unspec = struct.pack("H14x", 0)
    out.append(f"disconnect={libc.connect(s.fileno(), unspec, 16)}/{ctypes.get_errno()}")
    there = struct.pack("!HH4s8x", socket.AF_INET, target, socket.inet_aton("127.0.0.1"))
    there = struct.pack("H", socket.AF_INET) + there[2:]  # sa_family is in host order
    request = b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"
    if how == "reconnect":
        out.append(f"connect={libc.connect(s.fileno(), there, 16)}/{ctypes.get_errno()}")
        sent = libc.send(s.fileno(), request, len(request), 0)
    else:  # sendto with MSG_FASTOPEN connects without connect()
        sent = libc.sendto(s.fileno(), request, len(request), 0x20000000, there, 16)
    out.append(f"sent={sent}/{ctypes.get_errno()}")
    s.settimeout(5)
    got = b""
    try:
        while chunk := s.recv(4096):
            got += chunk
    except OSError as error:
        out.append(f"recv: {error}")
    out.append("got=" + got.decode(errors="replace"))
    return " ".join(out)


@sy.api_endpoint_method()
def probe(context, listed: int, name: str):
    """On a relayed socket: binds the abstract Unix name ``name`` (taken on the server's host), and
    opens connections until refused. What happened."""
    import socket

    s = socket.create_connection(("127.0.0.1", listed))
    try:
        s.bind("\0" + name)
        bound = "bound"
    except OSError as error:
        bound = f"errno {error.errno}"
    held = [s]
    refused = None
    for _ in range(20):
        try:
            held.append(socket.create_connection(("127.0.0.1", listed)))
        except ConnectionRefusedError as error:
            refused = str(error)
            break
    return {"bind": bound, "open": len(held), "refused": refused}


def add_fetch(owner, path):
    added = owner.api.services.api.add(
        endpoint=sy.TwinAPIEndpoint(path=path, mock_function=fetch, private_function=fetch)
    )
    assert isinstance(added, sy.SyftSuccess), added


def launch_with_egress(launcher, monkeypatch, egress):
    if egress is None:
        monkeypatch.delenv("DATASITE_ENDPOINT_EGRESS", raising=False)
    else:
        monkeypatch.setenv("DATASITE_ENDPOINT_EGRESS", egress)
    return launcher.launch()


def test_a_private_function_reaches_the_listed_host_and_nothing_else(
    launcher, monkeypatch, warehouses
):
    listed, unlisted = warehouses
    server = launch_with_egress(launcher, monkeypatch, f"127.0.0.1:{listed.port}")
    actors = make_code_actors(server.port)
    owner, scientist = actors["owner"].client, actors["scientist"].client
    add_fetch(owner, "warehouse.fetch")
    private = owner.api.services.warehouse.fetch.private

    assert private(port=listed.port) == "LISTED-WAREHOUSE"
    try:
        import requests  # noqa: F401 (only whether the sandbox's Python has it too)

        assert private(port=listed.port, how="requests") == "LISTED-WAREHOUSE"
    except ImportError:
        pass

    # Another port on the same host: refused by the server, never connected.
    refused = private(port=unlisted.port)
    assert refused.startswith("URLError") and "--endpoint-egress" in refused, refused
    # The function's own sockets reach nothing (seccomp: AF_UNIX only).
    assert "Address family not supported" in private(port=listed.port, how="socket")

    # The mock side has no egress, whoever calls it.
    for client in (owner.api.services.warehouse.fetch.mock, scientist.api.services.warehouse.fetch):
        mocked = client(port=listed.port)
        assert "LISTED" not in mocked and "Address family not supported" in mocked, mocked
    with pytest.raises(sy.SyftException) as raised:
        scientist.api.services.warehouse.fetch.private(port=listed.port)
    assert raised.value.status == 403


def test_the_handed_socket_cannot_be_pointed_elsewhere(launcher, monkeypatch, warehouses):
    # The cold attack on e19935f: the function got the server's TCP socket, disconnected it and
    # connected it to an unlisted port (any host the server reaches), or sent with MSG_FASTOPEN.
    # It now holds a Unix socket relayed by the server.
    listed, unlisted = warehouses
    server = launch_with_egress(launcher, monkeypatch, f"127.0.0.1:{listed.port}")
    owner = make_code_actors(server.port)["owner"].client
    owner.api.services.api.add(
        endpoint=sy.TwinAPIEndpoint(path="warehouse.hop", mock_function=hop, private_function=hop)
    )
    for how in ("reconnect", "fastopen"):
        got = owner.api.services.warehouse.hop.private(listed=listed.port, target=unlisted.port,
                                                       how=how)
        assert "UNLISTED-WAREHOUSE" not in got, (how, got)
        assert "sent=-1" in got or "LISTED-WAREHOUSE" in got, (how, got)


def test_a_relayed_socket_lives_in_the_sandbox_and_a_call_holds_few(
    launcher, monkeypatch, warehouses
):
    # The cold attack on a194cad: the function's end was made by the server, in the host's network
    # namespace, so binding an abstract name on it probed (and squatted) the host's names; and one
    # call could hold all 64 of the server's relays. The function now makes the pair itself.
    listed, _ = warehouses
    server = launch_with_egress(launcher, monkeypatch, f"127.0.0.1:{listed.port}")
    owner = make_code_actors(server.port)["owner"].client
    owner.api.services.api.add(
        endpoint=sy.TwinAPIEndpoint(path="warehouse.probe", mock_function=probe,
                                    private_function=probe)
    )
    name = "datasite-host-name-" + uuid.uuid4().hex
    taken = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    taken.bind("\0" + name)  # on the host
    try:
        got = owner.api.services.warehouse.probe.private(listed=listed.port, name=name)
    finally:
        taken.close()
    assert got["bind"] == "bound", got  # the host's name is not in the sandbox's namespace
    assert got["open"] == 8 and "8 connections open at once" in got["refused"], got


def test_without_the_flag_no_function_reaches_any_host(launcher, monkeypatch, warehouses):
    listed, _ = warehouses
    server = launch_with_egress(launcher, monkeypatch, None)
    owner = make_code_actors(server.port)["owner"].client
    add_fetch(owner, "warehouse.fetch")
    got = owner.api.services.warehouse.fetch.private(port=listed.port)
    assert "LISTED" not in got and "Address family not supported" in got, got


def test_a_bad_egress_target_is_refused_at_launch(binary, tmp_path):
    for bad, why in [
        ("warehouse", "no port"),
        ("*.example:443", "wildcards"),
        ("warehouse:70000", "port must be"),
        ("https://warehouse:443", "a host, not a URL"),
    ]:
        run = subprocess.run(
            [binary, "launch", "--name", "egress-bad", "--port", "auto", "--data-dir",
             str(tmp_path / "d"), "--endpoint-egress", bad],
            capture_output=True, text=True, timeout=30,
        )
        assert run.returncode != 0, (bad, run.stdout)
        assert why in run.stderr + run.stdout, (bad, run.stderr)
