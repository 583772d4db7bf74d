"""Two servers sharing one PostgreSQL database, as API replicas do: a change made through one is
seen by the other's next request, whatever either had cached (sessions, settings, listings).

Needs the PostgreSQL of the test run (DATASITE_TEST_POSTGRES_URL, which scripts/test.sh sets);
skipped without it.
"""

import os
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import TEST_POSTGRES_URL, launch, psql
from dataset_helpers import make_actors
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, DetachedServer, needs_sandbox
from test_code_server import submit, upload, wait_status

pytestmark = pytest.mark.skipif(not TEST_POSTGRES_URL, reason="needs DATASITE_TEST_POSTGRES_URL")

DATASETS = "/api/v1/datasets"


@pytest.fixture()
def replicas(tmp_path, binary, fresh_database):
    """Servers A and B (their own data directories) on one fresh PostgreSQL database."""
    url = fresh_database
    handles = []
    for side in ("a", "b"):
        xdg = tmp_path / ("xdg_" + side)
        xdg.mkdir()
        handles.append(launch(xdg, name="replica-" + side, database=url))
    apis = [Api(h.port) for h in handles]
    for api in apis:
        api.database_url = url
    yield apis
    for h in handles:
        h.land()


def eventually(check, seconds=2.0):
    """The replicas hear each other's changes at commit (LISTEN/NOTIFY): allow that moment."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_a_session_and_a_logout_hold_on_every_replica(replicas):
    a, b = replicas
    root = a.login(ROOT_EMAIL, ROOT_PASSWORD)
    for _ in range(3):  # B checks it, then answers from its cache
        assert b.get("/api/v1/account", token=root).status == 200
    assert a.post("/api/v1/auth/logout", token=root).status == 200
    assert eventually(lambda: b.get("/api/v1/account", token=root).status == 401)


def test_a_role_change_and_a_deletion_on_one_replica_hold_on_the_other(replicas):
    a, b = replicas
    admin = a.login(ROOT_EMAIL, ROOT_PASSWORD)
    owner = a.create_user(admin, role="data_owner")
    token = b.login(owner["email"], PASSWORD)
    for _ in range(3):
        assert b.get("/api/v1/users?page=1&page_size=5", token=token).status == 200
    assert a.patch("/api/v1/users/" + owner["id"], {"role": "data_scientist"},
                   token=admin).status == 200
    # A data scientist may not list the users: B must see the new role, not its cached one.
    assert eventually(
        lambda: b.get("/api/v1/users?page=1&page_size=5", token=token).status == 403)
    assert a.delete("/api/v1/users/" + owner["id"], token=admin).status == 200
    assert eventually(lambda: b.get("/api/v1/account", token=token).status == 401)


def test_settings_changed_on_one_replica_are_served_by_the_other(replicas):
    a, b = replicas
    admin = a.login(ROOT_EMAIL, ROOT_PASSWORD)
    assert b.settings(admin)["name"] != "renamed-by-a"
    assert a.patch("/api/v1/settings", {"name": "renamed-by-a"}, token=admin).status == 200
    assert eventually(lambda: b.settings(admin)["name"] == "renamed-by-a")


def test_a_dataset_listing_cached_on_one_replica_shows_a_change_made_on_the_other(replicas):
    a, b = replicas
    admin = a.login(ROOT_EMAIL, ROOT_PASSWORD)
    for _ in range(3):  # rendered and cached on B
        page = b.get(DATASETS + "?page=1&page_size=50", token=admin)
        assert page.status == 200 and page.json["total"] == 0
    import datasite as sy
    import pandas as pd
    client = sy.login(url=f"http://127.0.0.1:{a.port}", email=ROOT_EMAIL, password=ROOT_PASSWORD)
    frame = pd.DataFrame({"x": [1, 2, 3]})
    client.upload_dataset(sy.Dataset(name="seen-by-b", asset_list=[
        sy.Asset(name="t", data=frame, mock=frame.copy())]))
    assert eventually(lambda: b.get(DATASETS + "?page=1&page_size=50",
                                    token=admin).json["total"] == 1)
    assert b.get(DATASETS + "?page=1&page_size=50", token=admin).json["items"][0]["name"] == \
        "seen-by-b"


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture()
def own_postgres(tmp_path):
    """A PostgreSQL of this test's own, which it may stop and start again."""
    # Not under tmp_path: user postgres must reach it (pytest's directories are root's alone).
    pgdir = tempfile.mkdtemp(prefix="datasite-test-pg.")
    url = subprocess.run(["bash", os.path.join(REPO, "scripts/pg.sh"), "start", str(pgdir)],
                         check=True, capture_output=True, text=True, timeout=120).stdout.strip()
    yield pgdir, url
    subprocess.run(["bash", os.path.join(REPO, "scripts/pg.sh"), "stop", str(pgdir)],
                   timeout=120)


def pg(cmd, pgdir):
    subprocess.run(["bash", os.path.join(REPO, "scripts/pg.sh"), cmd, str(pgdir)], check=True,
                   timeout=120)


def test_readyz_fails_while_the_database_is_down_and_recovers_without_a_restart(
        tmp_path, binary, own_postgres):
    pgdir, url = own_postgres
    handle = launch(tmp_path / "xdg", name="outage", database=url)
    try:
        api = Api(handle.port)
        token = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert api.get("/readyz").status == 200
        pg("down", pgdir)
        ready = api.get("/readyz")
        assert ready.status == 503, ready
        message = ready.json["error"]["message"]
        assert "database" in message
        # Anyone may ask /readyz: it names no host, port or role of the database.
        port = url.rsplit(":", 1)[1].split("/")[0]
        assert port not in message and "127.0.0.1" not in message and "datasite@" not in message
        # A request that needs the database fails as retriable, not as the server's fault.
        resp = api.get("/api/v1/users?page=1&page_size=5", token=token)
        assert resp.status == 503, resp
        assert api.get("/healthz").status == 200  # the process itself lives
        # A login is refused as unavailable, not as rate-limited (a cold attack saw 429).
        login = api.post("/api/v1/auth/login", {"email": ROOT_EMAIL, "password": ROOT_PASSWORD})
        assert login.status == 503, login
        pg("up", pgdir)
        assert eventually(lambda: api.get("/readyz").status == 200, seconds=10)
        assert api.get("/api/v1/users?page=1&page_size=5", token=token).status == 200
        # Sessions are checked against the database again after the outage: a logout still holds.
        assert api.post("/api/v1/auth/logout", token=token).status == 200
        assert api.get("/api/v1/account", token=token).status == 401
    finally:
        handle.land()


@pytest.mark.parametrize("url_of, words", [
    (lambda url: url.replace("/datasite", "/no_such_database"), "no_such_database"),
    (lambda url: url.replace("datasite@", "nobody@"), "nobody"),
    (lambda url: "postgresql://datasite@127.0.0.1:1/datasite", "cannot connect"),
])
def test_a_database_that_cannot_be_used_is_a_clear_error_at_start(
        tmp_path, binary, own_postgres, url_of, words):
    _, url = own_postgres
    proc = subprocess.run([binary, "launch", "--name", "bad", "--port", "auto", "--data-dir",
                           str(tmp_path / "data"), "--database", url_of(url)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert words in proc.stderr, proc.stderr


def test_a_schema_newer_than_the_binary_is_refused_at_start(tmp_path, binary, own_postgres):
    pgdir, url = own_postgres
    env = dict(os.environ, DATASITE_DATABASE_URL=url)
    proc = subprocess.Popen([binary, "launch", "--name", "newer", "--port", "auto", "--data-dir",
                             str(tmp_path / "data")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert eventually(lambda: subprocess.run(
            ["psql", "-qtA", url, "-c", "SELECT version FROM schema_version"],
            capture_output=True, text=True).stdout.strip().isdigit(), seconds=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    psql(url, "UPDATE schema_version SET version = 99")
    again = subprocess.run([binary, "launch", "--name", "newer2", "--port", "auto", "--data-dir",
                            str(tmp_path / "data2")], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode != 0
    assert "99" in again.stderr and "newer" in again.stderr, again.stderr


def database_of(url):
    return url.partition("?")[0].rsplit("/", 1)[1]


def commits(url):
    out = subprocess.run(
        ["psql", "-qtA", url, "-c",
         f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{database_of(url)}'"],
        check=True, capture_output=True, text=True, timeout=60).stdout
    return int(out.strip())


def test_idle_replicas_leave_the_database_nearly_idle(replicas):
    """Regression (a cold attack): a lease attempt that found nothing notified every queue, whose
    next attempt notified again: two idle replicas ran thousands of transactions a second."""
    a, b = replicas
    time.sleep(1)
    db_url = a.database_url
    before = commits(db_url)
    time.sleep(3)
    per_second = (commits(db_url) - before) / 3
    # Each replica: its job slots' polls (one a second each) and its listener's probes.
    assert per_second < 60, per_second


def test_a_replica_whose_listener_stalls_stops_trusting_its_caches(replicas):
    """Regression (a cold attack): with its listener's connection stalled (no error, no FIN), a
    replica went on honouring a token logged out on another replica, for as long as it stalled."""
    a, b = replicas
    root = a.login(ROOT_EMAIL, ROOT_PASSWORD)
    for _ in range(3):
        assert b.get("/api/v1/account", token=root).status == 200
    db_url = a.database_url
    pids = subprocess.run(
        ["psql", "-qtA", db_url, "-c",
         "SELECT pid FROM pg_stat_activity WHERE application_name = 'datasite-listener' AND "
         f"datname = '{database_of(db_url)}'"],
        check=True, capture_output=True, text=True, timeout=60).stdout.split()
    assert len(pids) == 2, pids  # one per replica
    for pid in pids:
        os.kill(int(pid), signal.SIGSTOP)
    try:
        assert a.post("/api/v1/auth/logout", token=root).status == 200
        assert eventually(lambda: b.get("/api/v1/account", token=root).status == 401, seconds=3)
    finally:
        for pid in pids:
            os.kill(int(pid), signal.SIGCONT)


def test_text_postgresql_cannot_hold_is_a_bad_request_not_a_server_error(replicas):
    """Regression (a cold attack): a NUL or non-UTF-8 byte in a search or an id gave 500 on
    PostgreSQL (SQLite, which stores any bytes, answered 200 or 404)."""
    a, _ = replicas
    admin = a.login(ROOT_EMAIL, ROOT_PASSWORD)
    for path in ("/api/v1/users?page=1&page_size=5&search=a%00b", DATASETS + "?search=%ff",
                 DATASETS + "/%ff", "/api/v1/jobs/a%00b"):
        resp = a.get(path, token=admin)
        assert resp.status in (400, 404), (path, resp)
    resp = a.post("/api/v1/auth/login", {"email": "a\u0000@x.org", "password": "x"})
    assert resp.status in (400, 401), resp


@needs_sandbox
def test_a_replica_starting_leaves_the_jobs_another_one_runs_alone(tmp_path, binary,
                                                                    fresh_database):
    """Regression (a cold attack): every server's leases were named 'local', so a replica that
    started took over (and ran again) the jobs another replica was running."""
    url = fresh_database
    a = DetachedServer(binary, tmp_path / "a", "--workers", "1", "--database", url)
    b = DetachedServer(binary, tmp_path / "b", "--workers", "1", "--database", url)
    try:
        api = a.start()
        actors = make_actors(a.port)
        owner = actors["owner"].token
        asset_id = upload(api, actors)
        code = submit(api, owner, asset_id, "import time; time.sleep(4); return 5")
        job = api.post("/api/v1/code/%s/run" % code, {"blocking": False}, token=owner).json
        running = wait_status(api, owner, job["id"], ("running",))
        b.start()  # its start-up recovery must not take A's lease
        done = wait_status(api, owner, job["id"], ("completed", "errored", "interrupted"))
        assert done["status"] == "completed", done
        assert done["attempts"] == running["attempts"] == 1, (running, done)
    finally:
        b.stop()
        a.stop()


def test_the_login_limits_hold_across_replicas(tmp_path, binary, fresh_database):
    """Each replica counted its own login attempts: with N replicas, N times the guesses."""
    url = fresh_database
    flags = ("--database", url, "--login-attempts-per-minute", "4")
    a = DetachedServer(binary, tmp_path / "a", *flags)
    b = DetachedServer(binary, tmp_path / "b", *flags)
    try:
        api_a, api_b = a.start(), b.start()
        wrong = {"email": ROOT_EMAIL, "password": "not-the-password"}
        for api in (api_a, api_b, api_a, api_b):  # four attempts from this address in all
            assert api.post("/api/v1/auth/login", wrong).status == 401
        for api in (api_a, api_b):
            resp = api.post("/api/v1/auth/login", {"email": ROOT_EMAIL, "password": ROOT_PASSWORD})
            assert resp.status == 429, resp
            assert int(resp.headers["retry-after"]) >= 1
    finally:
        b.stop()
        a.stop()
