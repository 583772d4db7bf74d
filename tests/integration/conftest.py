"""Fixtures: a real ``datasite`` binary, launched through the Python client.

Every server gets its own ``XDG_DATA_HOME`` (so its storage is private to the test or module),
binds a free port (``port="auto"``) and is always landed in teardown. Login is rate limited per
client address (20 a minute, and every test talks from 127.0.0.1), so tests log in once per actor
and reuse tokens; tests that need many logins get a server of their own.
"""

import hashlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import uuid

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


# DATASITE_TEST_ENGINE=postgres runs the servers this module launches on PostgreSQL (a database
# of their own on the server DATASITE_TEST_POSTGRES_URL names; scripts/test.sh starts one): the
# same tests, on the other engine. Tests that start the binary themselves stay on SQLite.
POSTGRES_ADMIN_URL = (
    os.environ.get("DATASITE_TEST_POSTGRES_URL", "")
    if os.environ.get("DATASITE_TEST_ENGINE") == "postgres"
    else ""
)
if os.environ.get("DATASITE_TEST_ENGINE") == "postgres" and not POSTGRES_ADMIN_URL:
    raise RuntimeError(
        "DATASITE_TEST_ENGINE=postgres needs DATASITE_TEST_POSTGRES_URL (bash scripts/pg.sh start DIR)"
    )


# The test run's PostgreSQL, whatever the engine of the run (tests of replicas and of migrate
# need one even when the suite's servers run on SQLite); "" when there is none.
TEST_POSTGRES_URL = os.environ.get("DATASITE_TEST_POSTGRES_URL", "")


def database_url(name):
    """The URL of database ``name`` on the test run's PostgreSQL."""
    base, _, query = TEST_POSTGRES_URL.partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")


@pytest.fixture()
def fresh_database():
    """A new, empty database on the test run's PostgreSQL (dropped afterwards): its URL."""
    name = "t_" + uuid.uuid4().hex[:16]
    psql(TEST_POSTGRES_URL, f"CREATE DATABASE {name}")
    yield database_url(name)
    psql(TEST_POSTGRES_URL, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def psql(url, sql):
    """Runs ``sql`` on ``url``; its output, unaligned and without headers."""
    return subprocess.run(["psql", "-qtA", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                          stdout=subprocess.PIPE, text=True, timeout=60).stdout.strip()


def postgres_database(xdg_dir, name, fresh):
    """The URL of the database of server ``name`` under ``xdg_dir``: one per server, kept across
    its relaunches, created (or, when ``fresh``, recreated) here."""
    db = "it_" + hashlib.sha256(f"{xdg_dir}/{name}".encode()).hexdigest()[:24]
    url = database_url(db)
    if fresh:
        psql(POSTGRES_ADMIN_URL, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    exists = subprocess.run(
        ["psql", "-qtA", POSTGRES_ADMIN_URL, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{db}'"],
        check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    if not exists:
        psql(POSTGRES_ADMIN_URL, f"CREATE DATABASE {db}")
    return url


def launch(xdg_dir, name=None, database=None, **kwargs):
    """Launches a server through the client with XDG_DATA_HOME set to ``xdg_dir``: on ``database``
    (a postgresql:// URL, or "sqlite" for SQLite in its data directory) when given, else on the
    engine of the test run."""
    kwargs.setdefault("port", "auto")
    # Test servers hold passwords to the standard rules unless a test asks for a development one.
    kwargs.setdefault("dev_mode", False)
    name = name or unique("srv")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(xdg_dir))
        if database == "sqlite":
            mp.delenv("DATASITE_DATABASE_URL", raising=False)
        elif database:
            mp.setenv("DATASITE_DATABASE_URL", database)
        elif POSTGRES_ADMIN_URL:
            # --reset wipes only the data directory; a fresh database stands in for the rest.
            fresh = bool(kwargs.pop("reset", False))
            if fresh:
                shutil.rmtree(pathlib.Path(xdg_dir) / "datasite" / name, ignore_errors=True)
            mp.setenv("DATASITE_DATABASE_URL", postgres_database(xdg_dir, name, fresh))
        return sy.orchestra.launch(name=name, **kwargs)


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
