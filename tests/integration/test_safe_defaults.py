"""Safe defaults (issue 11, "Open by default"): a server binds loopback unless told otherwise, never
listens beyond it while the root password is the published default, answers only host names it
knows (DNS rebinding), and takes request bodies only as application/json (a web page can send
text/plain without the browser asking the server first)."""

import json
import os
import socket

import pytest

import datasite as sy
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, DetachedServer, unique

STRONG_ROOT_PASSWORD = "Root-" + PASSWORD


@pytest.fixture(autouse=True)
def no_root_password_in_env(monkeypatch):
    """The published default applies unless a test sets another."""
    monkeypatch.delenv("DATASITE_ROOT_PASSWORD", raising=False)


def non_loopback_address():
    """An address of this machine other than loopback, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent for a UDP connect
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def raw_request(port, request_bytes):
    """Sends bytes as they are; the status code and the parsed JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(request_bytes)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body else None


# Bind ---------------------------------------------------------------------------------------------


def test_default_bind_is_loopback(launcher, capsys):
    server = launcher.launch()
    info = json.loads(open(os.path.join(server.data_dir, "server.json")).read())
    assert info["host"] == "127.0.0.1"
    assert "Starting {} server on 127.0.0.1:{}".format(server.name, server.port) in (
        capsys.readouterr().out
    )
    assert Api(server.port).get("/healthz").status == 200
    other = non_loopback_address()
    if other is not None:
        with pytest.raises(OSError):
            socket.create_connection((other, server.port), timeout=5).close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_non_loopback_bind_with_the_default_password_is_refused(binary, tmp_path, host):
    server = DetachedServer(binary, tmp_path / "data", "--host", host)
    try:
        code, out, err = server.try_start()
        assert code != 0, out
        assert "refusing to listen on " + host in err, err
        assert "DATASITE_ROOT_PASSWORD" in err and "--root-password" in err, err
        assert not (tmp_path / "data" / "server.json").exists()
    finally:
        server.stop()


def test_orchestra_launch_on_every_interface_with_the_default_password_is_refused(launcher):
    with pytest.raises(RuntimeError) as err:
        launcher.launch(host="0.0.0.0")
    assert "refusing to listen on 0.0.0.0" in str(err.value)


def test_a_server_whose_root_still_has_the_default_password_is_refused_until_it_is_changed(
    binary, tmp_path
):
    data_dir = tmp_path / "data"
    loopback = DetachedServer(binary, data_dir)
    opened = DetachedServer(binary, data_dir, "--host", "0.0.0.0", name=loopback.name)
    try:
        loopback.start()
        assert loopback.land()[0] == 0
        code, _, err = opened.try_start()
        assert code != 0
        assert "change the password" in err and "--host 127.0.0.1" in err, err

        # --root-password applies only at first start: it does not open an existing server.
        again = DetachedServer(binary, data_dir, "--host", "0.0.0.0", "--root-password",
                               STRONG_ROOT_PASSWORD, name=loopback.name)
        assert again.try_start()[0] != 0

        loopback.start()
        client = sy.login(url="localhost", port=loopback.port, email=ROOT_EMAIL,
                          password=ROOT_PASSWORD)
        client.account.set_password(STRONG_ROOT_PASSWORD, old_password=ROOT_PASSWORD)
        assert loopback.land()[0] == 0
        code, out, err = opened.try_start()
        assert code == 0, err
        assert "Starting {} server on 0.0.0.0:".format(opened.name) in out
        assert Api(opened.port).get("/healthz").status == 200
    finally:
        opened.stop()
        loopback.stop()


def test_a_new_server_with_its_own_root_password_may_listen_beyond_loopback(binary, tmp_path):
    server = DetachedServer(binary, tmp_path / "data", "--host", "0.0.0.0", "--root-password",
                            STRONG_ROOT_PASSWORD)
    try:
        api = server.start()
        assert api.login(ROOT_EMAIL, STRONG_ROOT_PASSWORD)
    finally:
        server.stop()


@pytest.mark.parametrize("flags,message", [
    (("--host", "localhost"), "--host must be an IP address"),
    (("--allowed-host", "http://x.example"), "--allowed-host"),
    (("--allowed-host", "x.example:80"), "--allowed-host"),
])
def test_launch_refuses_bad_host_flags(binary, tmp_path, flags, message):
    server = DetachedServer(binary, tmp_path / "data", *flags)
    try:
        code, _, err = server.try_start()
        assert code != 0 and message in err, err
    finally:
        server.stop()


# Host header ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def named_server(module_launcher):
    return module_launcher.launch(allowed_hosts=["datasite.example"])


ROUTES = [
    ("GET", "/healthz", None),
    ("GET", "/api/v1/metadata", None),
    ("POST", "/api/v1/auth/login", {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}),
    ("POST", "/api/v1/auth/guest", {}),
    ("GET", "/api/v1/no/such/route", None),
]


@pytest.mark.parametrize("method,path,body", ROUTES)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example",
                                  "127.0.0.1.nip.io", "datasite.example.evil"])
def test_a_request_for_another_host_is_refused(named_server, method, path, body, host):
    kwargs = {} if body is None else {"body": body}
    resp = Api(named_server.port)(method, path, headers={"Host": host}, **kwargs)
    assert resp.status == 421, resp
    assert resp.error["code"] == "HOST_NOT_ALLOWED", resp
    assert "--allowed-host" in resp.error["message"]


@pytest.mark.parametrize("host", ["localhost", "localhost:1", "127.0.0.1", "[::1]:8080",
                                  "datasite.example", "DataSite.Example:443"])
def test_loopback_names_and_allowed_hosts_are_answered(named_server, host):
    api = Api(named_server.port)
    assert api.get("/healthz", headers={"Host": host}).status == 200
    resp = api.post("/api/v1/auth/login", {"email": ROOT_EMAIL, "password": ROOT_PASSWORD},
                    headers={"Host": host})
    assert resp.status == 200, resp


def test_an_allowed_host_is_not_allowed_without_the_flag(server):
    resp = Api(server.port).get("/healthz", headers={"Host": "datasite.example"})
    assert resp.status == 421, resp


def test_a_request_without_host_is_refused(named_server):
    status, body = raw_request(named_server.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert status == 400 and "Host" in body["error"]["message"], body
    status, body = raw_request(
        named_server.port, b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n"
        b"Connection: close\r\n\r\n")
    assert status == 400, body
    status, _ = raw_request(named_server.port,
                            b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
    assert status == 200


# Content-Type ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_server(module_launcher):
    return module_launcher.launch()


@pytest.fixture(scope="module")
def admin_token(plain_server):
    return Api(plain_server.port).login(ROOT_EMAIL, ROOT_PASSWORD)


def json_as(api, method, path, body, content_type, token=None):
    headers = {} if content_type is None else {"Content-Type": content_type}
    raw = json.dumps(body).encode()
    resp = api(method, path, raw=raw, token=token, headers=headers)
    return resp


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", ""])
@pytest.mark.parametrize("method,path,body,needs_token", [
    ("POST", "/api/v1/auth/login", {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}, False),
    ("POST", "/api/v1/auth/guest", {}, False),
    ("POST", "/api/v1/auth/register", {"name": "n", "email": "n@example.org", "password": PASSWORD,
                                        "password_verify": PASSWORD}, False),
    ("PATCH", "/api/v1/settings", {"signup_enabled": True}, True),
    ("POST", "/api/v1/users", {"name": "n", "email": "m@example.org", "password": PASSWORD}, True),
    ("POST", "/api/v1/code", {"name": "f", "source": "def f():\n    return 1\n"}, True),
])
def test_a_json_body_sent_as_another_type_is_refused(plain_server, admin_token, content_type,
                                                     method, path, body, needs_token):
    api = Api(plain_server.port)
    resp = json_as(api, method, path, body, content_type,
                   token=admin_token if needs_token else None)
    assert resp.status == 415, resp
    assert resp.error["code"] == "UNSUPPORTED_MEDIA_TYPE", resp
    assert "application/json" in resp.error["message"]
    # Nothing changed: sign-up is still off.
    settings = api.get("/api/v1/settings", token=admin_token).json
    assert settings["signup_enabled"] is False


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON"])
def test_json_with_parameters_is_accepted(plain_server, content_type):
    api = Api(plain_server.port)
    resp = json_as(api, "POST", "/api/v1/auth/login",
                   {"email": ROOT_EMAIL, "password": ROOT_PASSWORD}, content_type)
    assert resp.status == 200, resp


def test_a_request_without_a_body_needs_no_type(plain_server, admin_token):
    resp = Api(plain_server.port)("POST", "/api/v1/auth/guest", headers={"Content-Type": "text/plain"})
    assert resp.status == 200, resp


def test_uploads_keep_their_own_type(plain_server, admin_token):
    resp = Api(plain_server.port)("POST", "/api/v1/blobs?format=csv", raw=b"a,b\n1,2\n",
                                  token=admin_token,
                                  headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 201, resp
