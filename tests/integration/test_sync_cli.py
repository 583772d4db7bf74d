"""``datasite sync identity | peer add | peer list | diff | export | import`` (issue 14).

Three layers: what the command line refuses before it talks to anyone; what it sends to and prints
from a scripted sync server (its HTTP exchange, exit codes, escaping); and the whole air-gapped
scenario between a launched low and high server driven through the CLI only, which skips while the
server has no sync routes (``GET /api/v1/sync/identity`` answers 404).
"""

import hashlib
import http.server
import json
import socket
import ssl
import subprocess
import threading

import pytest

import datasite as sy
from code_helpers import upload_people
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, client_for, needs_sandbox, unique
from test_cli_datasets import Site, run

KEY_LOW = "a" * 64
KEY_HIGH = "b" * 64


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return "http://127.0.0.1:{}".format(sock.getsockname()[1])


# What the command line refuses on its own -------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("sync",),
        ("sync", "peer"),
        ("sync", "peer", "add", "high"),
        ("sync", "export", "--peer", "high"),
        ("sync", "export", "--out", "x.dsync"),
        ("sync", "import"),
        ("sync", "diff", "--from", "http://127.0.0.1:1"),
        ("sync", "diff", "--to", "http://127.0.0.1:1"),
        ("sync", "identity", "--server", "a", "--url", "http://127.0.0.1:1"),
        ("sync", "identity", "--email", "a@example.org", "--token", "t"),
    ],
)
def test_usage_errors_exit_2(binary, args):
    result = run(binary, *args)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: "), result


def test_sync_commands_need_an_account(binary):
    result = run(binary, "sync", "identity", "--url", closed_port_url())
    assert result.returncode == 2, result
    assert "needs an account" in result.stderr, result


def test_an_unreachable_server_exits_1(binary):
    url = closed_port_url()
    result = run(binary, "sync", "identity", "--url", url, "--token", "t")
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: cannot reach {}: ".format(url)), result


def test_diff_names_the_side_it_cannot_reach(binary):
    url = closed_port_url()
    result = run(binary, "sync", "diff", "--from", url, "--to", url, "--token", "t")
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: --from: cannot reach {}: ".format(url)), result


def test_a_bad_server_url_is_refused(binary):
    result = run(binary, "sync", "identity", "--url", "ftp://127.0.0.1:1", "--token", "t")
    assert result.returncode == 2, result
    assert "http:// or https://" in result.stderr, result


# Against a scripted sync server ----------------------------------------------------------------

BUNDLE = b"DSSYNC01" + bytes(range(256)) * 64


def diff_json(batches, import_id="imp-1"):
    return {
        "import_id": import_id,
        "peer": {"name": "low", "verify_key": KEY_LOW},
        "direction": "low_to_high",
        "seq": 3,
        "created_at": 1,
        "summary": {"batches": len(batches), "objects": 2 * len(batches), "new": 2, "changed": 0,
                    "conflicts": 1, "same": 4, "deleted": 0, "ignored": 1},
        "batches": batches,
        "ignored": ["user:ignored-one"],
    }


def batch(batch_id, status="new", state="pending"):
    kind, _, obj = batch_id.partition(":")
    # As a diff lists them: kind, id and status (the fields come from the batch route).
    objects = [{"kind": kind, "id": obj, "status": status},
               {"kind": "code", "id": "c-" + obj, "status": status}]
    return {"id": batch_id, "root": {"kind": kind, "id": obj}, "status": status, "state": state,
            "objects": objects}


class Scripted:
    """One scripted sync server: answers the sync routes from ``state`` and records each call."""

    def __init__(self, name, side, key, peers=None, batches=None, tls=None):
        self.identity = {"name": name, "verify_key": key, "server_id": name + "-id", "side": side}
        self.peers = list(peers or [])
        self.batches = batches if batches is not None else []
        self.calls = []  # (method, path, auth, body bytes)
        self.refuse_import = None
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def send_json(self, status, body, headers=()):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def handle_one(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                outer.calls.append((self.command, self.path, self.headers.get("Authorization"), body))
                if self.headers.get("Authorization") != "Bearer tok":
                    return self.send_json(401, {"error": {"code": "UNAUTHENTICATED",
                                                          "message": "log in first"}})
                route = (self.command, self.path.split("?")[0])
                if route == ("GET", "/api/v1/sync/identity"):
                    return self.send_json(200, outer.identity)
                if route == ("GET", "/api/v1/sync/peers"):
                    return self.send_json(200, {"peers": outer.peers})
                if route == ("POST", "/api/v1/sync/peers"):
                    peer = json.loads(body)
                    if any(p["name"] == peer["name"] for p in outer.peers):
                        return self.send_json(409, {"error": {"code": "ALREADY_EXISTS",
                                                              "message": "peer name taken"}})
                    peer.update(side=None, added_at="2026-01-01T00:00:00Z", revoked_at=None,
                                last_sent_seq=0, last_applied_seq=0)
                    outer.peers.append(peer)
                    return self.send_json(201, peer)
                if route == ("GET", "/api/v1/sync/export"):
                    if self.path != "/api/v1/sync/export?peer=high%20side":
                        return self.send_json(404, {"error": {"code": "NOT_FOUND",
                                                              "message": "no peer named that"}})
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(BUNDLE)))
                    self.send_header("X-Datasite-Bundle-Seq", "7")
                    self.end_headers()
                    self.wfile.write(BUNDLE)
                    return
                if route == ("POST", "/api/v1/sync/imports"):
                    if outer.refuse_import:
                        return self.send_json(400, {"error": {"code": "INVALID_ARGUMENT",
                                                              "message": outer.refuse_import}})
                    return self.send_json(201, diff_json(outer.batches))
                if route == ("POST", "/api/v1/sync/imports/imp-1/apply"):
                    accepted = json.loads(body)["accept"]
                    return self.send_json(200, {"applied": accepted, "ignored": [], "denied": [],
                                                "summary": diff_json([])["summary"],
                                                "batches": [batch(b, "same", "applied")
                                                            for b in accepted]})
                self.send_json(404, {"error": {"code": "NOT_FOUND", "message": "no route"}})

            do_GET = do_POST = do_PUT = do_DELETE = handle_one

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:{}".format(self.httpd.server_address[1])
        if tls:  # (certificate, key): https, and the URL names the certificate's host
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.url = "https://localhost:{}".format(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def routes(self):
        return [(m, p) for m, p, _, _ in self.calls]


@pytest.fixture
def scripted():
    servers = []

    def make(*args, **kwargs):
        servers.append(Scripted(*args, **kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()


def cli(binary, server, *args):
    return run(binary, "sync", *args, "--url", server.url, "--token", "tok")


def test_identity_prints_the_key_and_json(binary, scripted):
    high = scripted("high", "high", KEY_HIGH)
    shown = cli(binary, high, "identity")
    assert shown.returncode == 0, shown
    assert KEY_HIGH in shown.stdout and "high" in shown.stdout
    as_json = cli(binary, high, "identity", "--json")
    assert json.loads(as_json.stdout) == high.identity


def test_https_with_the_servers_ca_file_and_only_with_it(binary, scripted, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    high = scripted("high", "high", KEY_HIGH, tls=(str(cert), str(key)))
    trusted = cli(binary, high, "identity", "--ca-file", str(cert))
    assert trusted.returncode == 0, trusted
    assert KEY_HIGH in trusted.stdout
    from_env = run(binary, "sync", "identity", "--url", high.url, "--token", "tok",
                   env={"DATASITE_CA_FILE": str(cert)})
    assert from_env.returncode == 0, from_env
    untrusted = cli(binary, high, "identity")
    assert untrusted.returncode == 1, untrusted
    assert untrusted.stderr.startswith("error: TLS with {} failed: ".format(high.url)), untrusted
    assert all(c[2] == "Bearer tok" for c in high.calls)  # the refused one sent nothing
    assert len(high.calls) == 2


def test_peer_add_and_list(binary, scripted):
    low = scripted("low", "low", KEY_LOW)
    added = cli(binary, low, "peer", "add", "high", KEY_HIGH)
    assert added.returncode == 0, added
    assert "added peer high" in added.stdout
    assert json.loads(low.calls[-1][3]) == {"name": "high", "verify_key": KEY_HIGH}
    listed = cli(binary, low, "peer", "list")
    assert listed.returncode == 0, listed
    header, row = listed.stdout.splitlines()
    assert header.split() == ["NAME", "SIDE", "VERIFY_KEY", "ADDED", "REVOKED", "SENT", "APPLIED"]
    assert row.split()[:3] == ["high", "-", KEY_HIGH]
    again = cli(binary, low, "peer", "add", "high", KEY_HIGH)
    assert again.returncode == 1, again
    assert again.stderr == "error: peer name taken\n", again


def test_export_streams_the_bundle_into_the_file(binary, scripted, tmp_path):
    high = scripted("high", "high", KEY_HIGH)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "to-low.dsync"
    result = cli(binary, high, "export", "--peer", "high side", "--out", str(out))
    assert result.returncode == 0, result
    assert out.read_bytes() == BUNDLE
    assert "bundle 7" in result.stdout and str(len(BUNDLE)) in result.stdout, result
    assert [p.name for p in out.parent.iterdir()] == ["to-low.dsync"]
    # Readable by its owner only, whatever the umask (as the Python client writes it).
    assert out.stat().st_mode & 0o777 == 0o600, oct(out.stat().st_mode)


def test_a_refused_export_leaves_no_file(binary, scripted, tmp_path):
    high = scripted("high", "high", KEY_HIGH)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "to-low.dsync"
    result = cli(binary, high, "export", "--peer", "nobody", "--out", str(out))
    assert result.returncode == 1, result
    assert result.stderr == "error: no peer named that\n", result
    assert list(out.parent.iterdir()) == []


def test_import_shows_the_diff_and_applies_nothing(binary, scripted, tmp_path):
    high = scripted("high", "high", KEY_HIGH, batches=[batch("request:r1"),
                                                        batch("request:r2", status="conflict")])
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    result = cli(binary, high, "import", str(path))
    assert result.returncode == 0, result
    assert ("POST", "/api/v1/sync/imports") in high.routes()
    assert high.calls[-1][3] == BUNDLE
    assert not any(p.endswith("/apply") for _, p in high.routes())
    assert "imp-1" in result.stdout and "low_to_high" in result.stdout
    assert "2 batches, 4 objects, 2 new, 0 changed, 1 conflicts, 4 same" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("request:")]
    assert rows == [["request:r1", "new", "pending", "2:", "request,", "code"],
                    ["request:r2", "conflict", "pending", "2:", "request,", "code"]]
    assert "user:ignored-one" in result.stdout


def test_import_yes_applies_every_batch_without_a_conflict(binary, scripted, tmp_path):
    high = scripted("high", "high", KEY_HIGH, batches=[
        batch("request:r1"), batch("request:r2", status="conflict"),
        batch("dataset:d1", status="changed"), batch("user:u1", state="ignored")])
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    result = cli(binary, high, "import", str(path), "--yes")
    assert result.returncode == 0, result
    method, route, _, body = high.calls[-1]
    assert (method, route) == ("POST", "/api/v1/sync/imports/imp-1/apply")
    assert json.loads(body) == {"accept": ["request:r1", "dataset:d1"], "overwrite": [],
                                "ignore": [], "deny": []}
    assert "Applied 2 batches:" in result.stdout
    assert "Left 1 batch with a conflict" in result.stdout and "request:r2" in result.stdout


def test_import_yes_acknowledges_an_empty_bundle(binary, scripted, tmp_path):
    high = scripted("high", "high", KEY_HIGH, batches=[])
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    result = cli(binary, high, "import", str(path), "--yes")
    assert result.returncode == 0, result
    assert high.routes()[-1] == ("POST", "/api/v1/sync/imports/imp-1/apply")
    assert "Nothing to sync" in result.stdout and "Applied 0 batches." in result.stdout


def test_a_refused_import_exits_1_with_the_servers_reason(binary, scripted, tmp_path):
    high = scripted("high", "high", KEY_HIGH)
    high.refuse_import = "bundle refused (tampered): the signature does not verify"
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    result = cli(binary, high, "import", str(path), "--yes")
    assert result.returncode == 1, result
    assert result.stderr == "error: {}\n".format(high.refuse_import), result
    assert not any(p.endswith("/apply") for _, p in high.routes())


def test_import_of_a_missing_file_sends_nothing(binary, scripted, tmp_path):
    high = scripted("high", "high", KEY_HIGH)
    result = cli(binary, high, "import", str(tmp_path / "nope.dsync"))
    assert result.returncode == 1, result
    assert "nope.dsync" in result.stderr, result
    assert ("POST", "/api/v1/sync/imports") not in high.routes()


def test_text_from_the_server_cannot_drive_the_terminal(binary, scripted, tmp_path):
    high = scripted("high", "high", KEY_HIGH, batches=[batch("request:\x1b[2Jr1\u202e")])
    path = tmp_path / "b.dsync"
    path.write_bytes(BUNDLE)
    result = cli(binary, high, "import", str(path))
    assert result.returncode == 0, result
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b[2Jr1\\u{202e}" in result.stdout


def test_diff_registers_missing_peers_carries_the_bundle_and_shows_it(binary, scripted):
    low = scripted("low", "low", KEY_LOW, peers=[{"name": "high side", "verify_key": KEY_HIGH,
                                                  "revoked_at": None}])
    high = scripted("high", "high", KEY_HIGH, batches=[batch("request:r1")])
    result = run(binary, "sync", "diff", "--from", low.url, "--to", high.url, "--token", "tok")
    assert result.returncode == 0, result
    # The low side knew the high side ("high side"); the high side learns the low side's key.
    assert ("POST", "/api/v1/sync/peers") not in low.routes()
    assert json.loads(high.calls[high.routes().index(("POST", "/api/v1/sync/peers"))][3]) == {
        "name": "low", "verify_key": KEY_LOW}
    assert ("GET", "/api/v1/sync/export?peer=high%20side") in low.routes()
    loaded = [c for c in high.calls if c[:2] == ("POST", "/api/v1/sync/imports")]
    assert [c[3] for c in loaded] == [BUNDLE]
    assert "request:r1" in result.stdout
    assert not any(p.endswith("/apply") for _, p in high.routes())


def test_diff_uses_each_sides_own_token(binary, scripted):
    low = scripted("low", "low", KEY_LOW)
    high = scripted("high", "high", KEY_HIGH)
    result = run(binary, "sync", "diff", "--from", low.url, "--to", high.url,
                 "--from-token", "tok", "--to-token", "wrong")
    assert result.returncode == 1, result
    assert result.stderr == "error: --to: log in first\n", result
    assert {c[2] for c in low.calls} == {"Bearer tok"}
    assert {c[2] for c in high.calls} == {"Bearer wrong"}


def test_diff_of_a_server_with_itself_is_refused(binary, scripted):
    low = scripted("low", "low", KEY_LOW)
    result = run(binary, "sync", "diff", "--from", low.url, "--to", low.url, "--token", "tok")
    assert result.returncode == 1, result
    assert "same server" in result.stderr
    assert not any(m == "POST" for m, _ in low.routes())


# The whole scenario between two launched servers, through the CLI only ------------------------


@pytest.fixture
def sides(binary, tmp_path):
    low = Site(binary, tmp_path / "low-xdg", "--side", "low")
    try:
        high = Site(binary, tmp_path / "high-xdg", "--side", "high")
    except BaseException:
        low.land()
        raise
    try:
        if low.api.get("/api/v1/sync/identity", token=low.admin_token).status == 404:
            pytest.skip("this server has no sync routes yet")
        yield low, high
    finally:
        low.land()
        high.land()


def as_admin(site, *args):
    return site.run("sync", *args, "--server", site.name, "--token", site.admin_token)


def identity_of(site):
    result = as_admin(site, "identity", "--json")
    assert result.returncode == 0, result
    return json.loads(result.stdout)


def carry(source, destination, peer, path, expect_applied=()):
    """Exports from ``source`` for ``peer`` into ``path`` and imports it with --yes."""
    exported = as_admin(source, "export", "--peer", peer, "--out", str(path))
    assert exported.returncode == 0, exported
    imported = as_admin(destination, "import", str(path), "--yes")
    assert imported.returncode == 0, imported
    for batch_id in expect_applied:
        assert "  " + batch_id in imported.stdout, imported
    return imported


@needs_sandbox
def test_air_gapped_scenario_through_the_cli(sides, tmp_path):
    low, high = sides
    low_id, high_id = identity_of(low), identity_of(high)
    assert (low_id["side"], high_id["side"]) == ("low", "high")
    assert as_admin(low, "peer", "add", "high", high_id["verify_key"]).returncode == 0
    assert as_admin(high, "peer", "add", "low", low_id["verify_key"]).returncode == 0
    listed = as_admin(low, "peer", "list")
    assert listed.returncode == 0 and high_id["verify_key"] in listed.stdout, listed

    # The dataset goes down as a mock.
    high_admin = client_for(high.port, high.admin_token)
    dataset = upload_people(high_admin)
    carry(high, low, "low", tmp_path / "down-1.dsync")

    # A scientist of the low side asks twice.
    scientist_user = low.api.create_user(low.admin_token, role="data_scientist")
    scientist = client_for(low.port, low.api.login(scientist_user["email"], PASSWORD))
    asset = scientist.datasets[dataset].assets["people"]

    @sy.syft_function_single_use(data=asset)
    def cli_sync_count(data):
        return len(data)

    @sy.syft_function_single_use(data=asset)
    def cli_sync_names(data):
        return list(data["name"])

    approved = scientist.code.request_code_execution(cli_sync_count, reason="count")
    denied = scientist.code.request_code_execution(cli_sync_names, reason="names")

    # Up; the high side sees both requests and applies them.
    up = carry(low, high, "high", tmp_path / "up-1.dsync",
               expect_applied=["request:" + approved.id, "request:" + denied.id])
    assert "low_to_high" in up.stdout

    # Replaying the same file is refused and changes nothing.
    replayed = as_admin(high, "import", str(tmp_path / "up-1.dsync"), "--yes")
    assert replayed.returncode == 1, replayed
    assert replayed.stderr.startswith("error: bundle refused (replayed): "), replayed
    # A fresh bundle with its last byte flipped is refused as tampered.
    tampered = tmp_path / "tampered.dsync"
    assert as_admin(low, "export", "--peer", "high", "--out", str(tampered)).returncode == 0
    raw = bytearray(tampered.read_bytes())
    raw[-1] ^= 0x01
    tampered.write_bytes(bytes(raw))
    refused = as_admin(high, "import", str(tampered))
    assert refused.returncode == 1, refused
    assert refused.stderr.startswith("error: bundle refused (tampered): "), refused

    # The owner decides on the high side and runs the approved code as its requester.
    ok = high.run("requests", "approve", approved.id, "--server", high.name,
                  "--token", high.admin_token)
    assert ok.returncode == 0, ok
    no = high.run("requests", "deny", denied.id, "--reason", "names identify people",
                  "--server", high.name, "--token", high.admin_token)
    assert no.returncode == 0, no
    job = high_admin.code.get(approved.code.id)(
        data=high_admin.datasets[dataset].assets["people"], blocking=False, for_requester=True)
    job.wait(timeout=60)

    # Down: the decisions and the result.
    carry(high, low, "low", tmp_path / "down-2.dsync",
          expect_applied=["request:" + approved.id, "request:" + denied.id])
    assert scientist.code.cli_sync_count(data=asset).get() == 5
    assert str(approved.refresh().status) == str(sy.RequestStatus.APPROVED)
    denied.refresh()
    assert str(denied.status) == str(sy.RequestStatus.REJECTED)
    assert denied.deny_reason == "names identify people"

    # Online: nothing new, so the diff has nothing to sync (a pending import on the high side).
    same = low.run("sync", "diff", "--from", low.url, "--to", high.url,
                   "--from-token", low.admin_token, "--to-token", high.admin_token)
    assert same.returncode == 0, same
    assert "Nothing to sync" in same.stdout, same

    # A new scientist on the low side shows up in the online diff and is applied by it.
    newcomer = low.api.create_user(low.admin_token, role="data_scientist")
    online = low.run("sync", "diff", "--from", low.url, "--to", high.url, "--yes",
                     "--from-token", low.admin_token, "--to-token", high.admin_token)
    assert online.returncode == 0, online
    assert "user:" + newcomer["id"] in online.stdout, online
    assert high_admin.users.search(email=newcomer["email"])
