"""Helpers shared by the integration tests: raw HTTP, error assertions, unique names."""

import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

import datasite as sy

ROOT_EMAIL = "info@example.org"
ROOT_PASSWORD = "changethis"
PASSWORD = "Str0ng-Passw0rd"
HTTP_TIMEOUT = 15
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def unique(prefix="t"):
    return "{}_{}".format(prefix, uuid.uuid4().hex[:10])


def unique_email(prefix="user"):
    return "{}.{}@example.org".format(prefix, uuid.uuid4().hex[:10])


# Raw HTTP ----------------------------------------------------------------------------------------

_NO_BODY = object()


class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.text = raw.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text) if raw else None
        except (ValueError, RecursionError):  # RecursionError: a hostile job's deeply nested result
            self.json = None

    @property
    def error(self):
        """The ``{"code", "message"}`` of an error body, or None."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"]
        return None

    def __repr__(self):
        return "<Response {} {}>".format(self.status, self.text[:300])


class Api:
    """Raw HTTP to one server: calls the client does not expose, and malformed requests."""

    def __init__(self, port, host="127.0.0.1"):
        self.host = host
        self.port = port

    def __call__(self, method, path, body=_NO_BODY, token=None, raw=None, headers=None):
        all_headers = {"Accept": "application/json"}
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        elif body is not _NO_BODY:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        if token is not None:
            all_headers["Authorization"] = "Bearer " + token
        all_headers.update(headers or {})
        conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)
        try:
            try:
                conn.request(method, path, body=data, headers=all_headers)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer (e.g. 413) and close before the whole body is sent.
                pass
            resp = conn.getresponse()
            raw_body = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return Response(resp.status, hdrs, raw_body)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self("GET", path, **kw)

    def post(self, path, body=_NO_BODY, **kw):
        return self("POST", path, body=body, **kw)

    def patch(self, path, body=_NO_BODY, **kw):
        return self("PATCH", path, body=body, **kw)

    def put(self, path, body=_NO_BODY, **kw):
        return self("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self("DELETE", path, **kw)

    def login(self, email, password):
        """A token for a user; fails the test when login is refused."""
        resp = self.post("/api/v1/auth/login", {"email": email, "password": password})
        assert resp.status == 200, "login of {} refused: {!r}".format(email, resp)
        return resp.json["token"]

    def guest(self):
        resp = self.post("/api/v1/auth/guest", {})
        assert resp.status == 200, "guest login refused: {!r}".format(resp)
        return resp.json["token"]

    def create_user(self, token, role="data_scientist", email=None, password=PASSWORD, name=None):
        """Creates a user (as the holder of ``token``) and returns its JSON."""
        body = {
            "name": name or "User " + uuid.uuid4().hex[:6],
            "email": email or unique_email(role),
            "password": password,
            "password_verify": password,
            "role": role,
        }
        resp = self.post("/api/v1/users", body, token=token)
        assert resp.status == 201, "creating a {} failed: {!r}".format(role, resp)
        return resp.json

    def user_total(self, token):
        resp = self.get("/api/v1/users?page=1&page_size=1", token=token)
        assert resp.status == 200, resp
        return resp.json["total"]

    def settings(self, token):
        resp = self.get("/api/v1/settings", token=token)
        assert resp.status == 200, resp
        return resp.json


def assert_error(resp, status, code):
    """The answer is ``status`` with the documented error body carrying ``code`` and a message."""
    assert resp.status == status, "expected {} {}, got {!r}".format(status, code, resp)
    assert resp.error is not None, 'no {{"error": {{code, message}}}} body: {!r}'.format(resp)
    assert resp.error.get("code") == code, "expected code {}, got {!r}".format(code, resp)
    assert isinstance(resp.error.get("message"), str) and resp.error["message"], resp


def client_for(port, token):
    """A DatasiteClient for an existing token, without another login."""
    api = Api(port)
    meta = api.get("/api/v1/metadata").json
    account = api.get("/api/v1/account", token=token)
    assert account.status == 200, account
    return sy.DatasiteClient("http://localhost:{}".format(port), token, account.json, meta)


def port_is_closed(port):
    """True when nothing accepts connections on 127.0.0.1:port."""
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def pid_is_datasite(pid):
    """True when ``pid`` is a running datasite process (so a stale pid is never signalled)."""
    try:
        cmdline = pathlib.Path("/proc/{}/cmdline".format(pid)).read_bytes()
    except OSError:
        return False
    return b"datasite" in cmdline


# A server launched with the binary's own flags -------------------------------------------------


class DetachedServer:
    """``datasite launch --detach`` on a chosen data dir, with flags the Python client does not
    pass (``--login-attempts-per-minute``, ``--max-storage-bytes``...). ``start`` may be called
    again after ``kill9`` or ``land`` (a restart on the same data dir). Always ``stop()`` it in a
    ``finally``: it lands the server and, if that fails, SIGTERMs the pid it started.
    ``command="serve"`` starts an API replica instead; with ``named=False`` it is given no
    ``--name`` (it keeps the stored one, which ``name`` then holds).
    """

    def __init__(self, binary, data_dir, *flags, name=None, timeout=60, command="launch",
                 named=True):
        self.binary = binary
        self.command = command
        self.named = named
        self.data_dir = pathlib.Path(data_dir)
        self.flags = [str(f) for f in flags]
        self.name = name or unique("srv")
        self.timeout = timeout
        self.port = None
        self.pid = None

    def _run(self, *args):
        """Runs the binary; (exit code, stdout, stderr). Output goes through files, not pipes: a
        detached server keeps inherited descriptors open."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = subprocess.call(
                [self.binary] + list(args),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                timeout=self.timeout,
            )
            out.seek(0)
            err.seek(0)
            return code, out.read().decode(errors="replace"), err.read().decode(errors="replace")

    def try_start(self):
        """Launches; (exit code, stdout, stderr) without asserting anything."""
        result = self._run(
            self.command, *(["--name", self.name] if self.named else []), "--port", "auto",
            "--detach", "--data-dir", str(self.data_dir), *self.flags
        )
        if result[0] == 0:
            info = json.loads((self.data_dir / "server.json").read_text())
            self.port = int(info["port"])
            self.pid = int(info["pid"])
            self.name = info["name"]
        return result

    def start(self):
        code, out, err = self.try_start()
        assert code == 0, "launch failed ({}): {} {}".format(code, out, err)
        return Api(self.port)

    def alive(self):
        if self.pid is None:
            return False
        try:
            stat = pathlib.Path("/proc/{}/stat".format(self.pid)).read_text()
        except OSError:
            return False
        return stat.rsplit(")", 1)[1].split()[0] != "Z"

    def kill9(self, timeout=10.0):
        """SIGKILLs the server and waits until it is gone."""
        if self.pid is not None and pid_is_datasite(self.pid):
            os.kill(self.pid, signal.SIGKILL)
        deadline = time.time() + timeout
        while self.alive():
            assert time.time() < deadline, "server {} did not die".format(self.pid)
            time.sleep(0.02)
        self.pid = None

    def land(self):
        """``datasite land``; (exit code, stdout, stderr). ``pid`` is None once it is gone."""
        result = self._run("land", self.name, "--data-dir", str(self.data_dir))
        if not self.alive():
            self.pid = None
        return result

    def stop(self):
        """Lands the server (or SIGTERMs its pid); never raises."""
        if self.pid is None:
            return
        try:
            self._run("land", self.name, "--data-dir", str(self.data_dir))
        except (OSError, subprocess.SubprocessError):
            pass
        if self.alive() and pid_is_datasite(self.pid):
            os.kill(self.pid, signal.SIGTERM)
        self.pid = None


def in_chroot():
    """True in a chroot (a debootstrap root, as ../shared/tools/fresh-machine makes), or where init's
    root can't even be looked at (a chroot refuses it too)."""
    try:
        root, init_root = os.stat("/"), os.stat("/proc/1/root")
    except PermissionError:
        return True
    except OSError:
        return False
    return (root.st_dev, root.st_ino) != (init_root.st_dev, init_root.st_ino)


def sandbox_impossible_here():
    """The sandbox needs user namespaces and a root directory an unprivileged uid can enter; a chroot
    (fresh-machine's debootstrap root: mode 0700, and the kernel refuses user namespaces in a chroot)
    has neither. Only there are the tests that run code skipped; anywhere else they run, and fail if
    the sandbox is broken."""
    if not in_chroot():
        return False
    world_enterable = os.stat("/").st_mode & 0o001
    try:
        userns = subprocess.run(["unshare", "-U", "true"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        userns = False
    return not (world_enterable and userns)


# Running code needs the sandbox. Where it can't exist (see sandbox_impossible_here) a server refuses to
# run code and says why (test_code_server.py checks that everywhere), and the tests that run code are
# skipped with this reason.
NO_SANDBOX_HERE = ("this is a chroot whose root directory an unprivileged uid can't enter and where the "
                   "kernel refuses user namespaces: bubblewrap can't sandbox jobs here, so the server "
                   "refuses to run code")
needs_sandbox = pytest.mark.skipif(sandbox_impossible_here(), reason=NO_SANDBOX_HERE)
