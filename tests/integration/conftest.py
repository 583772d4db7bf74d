"""Fixtures: a real ``datasite`` binary, launched through the Python client.

Every server gets its own ``XDG_DATA_HOME`` (so its storage is private to the test or module),
binds a free port (``port="auto"``) and is always landed in teardown. Login is rate limited per
client address (20 a minute, and every test talks from 127.0.0.1), so tests log in once per actor
and reuse tokens; tests that need many logins get a server of their own.
"""

import json
import os
import pathlib
import signal
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "python"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import datasite as sy  # noqa: E402
from datasite import _binary  # noqa: E402
from helpers import Api, pid_is_datasite, unique  # noqa: E402

# The root admin must be the documented default in every test server.
for _var in ("DATASITE_ROOT_EMAIL", "DATASITE_ROOT_PASSWORD"):
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def binary():
    """The server binary, found the way the client finds it (DATASITE_BINARY first)."""
    try:
        path = _binary.find_binary()
    except FileNotFoundError as err:
        pytest.fail(str(err), pytrace=False)
    os.environ["DATASITE_BINARY"] = path
    return path


@pytest.fixture(autouse=True)
def xdg_data_home(tmp_path, monkeypatch):
    """A private XDG_DATA_HOME for each test."""
    path = tmp_path / "xdg"
    path.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(path))
    return path


def launch(xdg_dir, name=None, **kwargs):
    """Launches a server through the client with XDG_DATA_HOME set to ``xdg_dir``."""
    kwargs.setdefault("port", "auto")
    # Test servers hold passwords to the standard rules unless a test asks for a development one.
    kwargs.setdefault("dev_mode", False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(xdg_dir))
        return sy.orchestra.launch(name=name or unique("srv"), **kwargs)


def land_quietly(handle):
    """Lands a server; if that fails, stops the pid in its server.json (datasite only)."""
    try:
        handle.land()
        return
    except Exception as err:  # Teardown must go on; the fallback below stops the process.
        sys.stderr.write("land of {} failed: {}\n".format(handle.name, err))
    info_path = pathlib.Path(handle.data_dir or "") / "server.json"
    try:
        pid = int(json.loads(info_path.read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if pid_is_datasite(pid):
        os.kill(pid, signal.SIGTERM)


class Launcher:
    """Launches servers for one test (or module) and lands all of them at the end."""

    def __init__(self, xdg_dir):
        self.xdg_dir = xdg_dir
        self.handles = []

    def launch(self, name=None, **kwargs):
        handle = launch(self.xdg_dir, name=name, **kwargs)
        self.handles.append(handle)
        return handle

    def track(self, handle):
        """Lands ``handle`` at teardown too (for servers the test launched itself)."""
        self.handles.append(handle)
        return handle

    def land(self, handle):
        """Lands a server now (the test checks what follows); teardown does not land it again."""
        handle.land()
        self.handles.remove(handle)

    def land_all(self):
        while self.handles:
            land_quietly(self.handles.pop())


@pytest.fixture
def launcher(binary, xdg_data_home):
    launcher = Launcher(xdg_data_home)
    yield launcher
    launcher.land_all()


@pytest.fixture
def server(launcher):
    """A fresh server for one test."""
    return launcher.launch()


@pytest.fixture(scope="module")
def module_launcher(binary, tmp_path_factory):
    launcher = Launcher(tmp_path_factory.mktemp("xdg"))
    yield launcher
    launcher.land_all()


@pytest.fixture(scope="module")
def module_server(module_launcher):
    """One server shared by the tests of a module that do not disturb each other."""
    return module_launcher.launch()


@pytest.fixture(scope="module")
def api(module_server):
    """The raw HTTP API of the module's server."""
    return Api(module_server.port)


@pytest.fixture(scope="module")
def actors(module_server):
    """admin, owner, owner2, scientist and guest of the module's server (see make_actors)."""
    from dataset_helpers import make_actors

    return make_actors(module_server.port)
