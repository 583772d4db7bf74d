"""`datasite serve`: the API replica. It runs no job itself (jobs wait in the queue for `datasite
worker` processes), keeps the stored name when given none, and takes every flag also from an
environment variable (DATASITE_<FLAG>; a worker's DATASITE_WORKER_<FLAG>) that --help shows.

The tests that start servers run on SQLite (serve on a data directory, a worker beside it) and,
with DATASITE_TEST_POSTGRES_URL, on a fresh PostgreSQL database.
"""

import json
import os
import re
import sqlite3
import subprocess
import time

import pytest

from conftest import TEST_POSTGRES_URL, psql
from dataset_helpers import make_actors
from helpers import ROOT_EMAIL, ROOT_PASSWORD, Api, DetachedServer, needs_sandbox, unique
from test_code_server import submit, upload, wait_status
from test_workers import Worker


@pytest.fixture(params=["sqlite", "postgres"])
def database(request):
    """None (SQLite in the data directory) or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    if not TEST_POSTGRES_URL:
        pytest.skip("needs DATASITE_TEST_POSTGRES_URL")
    return request.getfixturevalue("fresh_database")


def database_flags(database):
    return ["--database", database] if database else []


def job_row(database, data_dir, job_id):
    """(status, attempts, lease owner) of a job, read from the database itself."""
    sql = "SELECT status, attempts, lease_owner FROM jobs WHERE id = '%s'" % job_id
    if database:
        status, attempts, owner = psql(database, sql).split("|")
        return status, int(attempts), owner
    db = sqlite3.connect(str(data_dir / "datasite.db"))
    try:
        return db.execute(sql).fetchone()
    finally:
        db.close()


def run(binary, *args, env=None):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env=env)


def without_datasite_variables():
    """This environment without any DATASITE_ variable but the binary's."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("DATASITE_") or k == "DATASITE_BINARY"}


# An option's line in CLI11's help: "  --job-timeout INT (Env:DATASITE_JOB_TIMEOUT)  Longest...".
OPTION_LINE = re.compile(r"^\s+(?:-\w,)?(--[a-z][a-z0-9-]*)\b(.*)$")


def help_options(binary, command):
    """{flag: the rest of its line} from `datasite COMMAND --help`."""
    out = run(binary, command, "--help")
    assert out.returncode == 0, out.stderr
    return {m.group(1): m.group(2) for m in map(OPTION_LINE.match, out.stdout.splitlines()) if m}


def expected_variable(prefix, flag):
    if flag == "--database":
        return "DATASITE_DATABASE_URL"
    if flag == "--blob":  # a worker's too: it must find the servers' blobs
        return "DATASITE_BLOB"
    return prefix + flag[2:].upper().replace("-", "_")


@pytest.mark.parametrize("command, prefix", [
    ("launch", "DATASITE_"), ("serve", "DATASITE_"), ("worker", "DATASITE_WORKER_")])
def test_help_shows_the_variable_of_every_flag(binary, command, prefix):
    options = help_options(binary, command)
    options.pop("--help")
    # The parse found the flags (not an empty list that would pass anything).
    assert {"--data-dir", "--database", "--name", "--workers"} <= set(options), options
    missing = {flag: rest for flag, rest in options.items()
               if "(Env:%s)" % expected_variable(prefix, flag) not in rest}
    assert not missing, missing


def test_serve_takes_the_flags_of_launch(binary):
    assert set(help_options(binary, "serve")) == set(help_options(binary, "launch"))


def test_serve_needs_a_name_or_a_data_dir(binary):
    out = run(binary, "serve", env=without_datasite_variables())
    assert out.returncode != 0
    assert "give --name, or the --data-dir" in out.stderr, out.stderr


@needs_sandbox
def test_a_job_waits_for_a_worker_and_runs_there_not_in_serve(binary, tmp_path, database):
    data_dir = tmp_path / "data"
    # No --workers 0 or --external-workers: those are serve's defaults.
    server = DetachedServer(binary, data_dir, *database_flags(database), command="serve")
    worker = None
    try:
        api = server.start()
        actors = make_actors(server.port)
        owner = actors["owner"].token
        asset_id = upload(api, actors)
        code = submit(api, owner, asset_id)
        queued = api.post("/api/v1/code/%s/run" % code, {"blocking": False}, token=owner)
        assert queued.status == 201, queued
        job_id = queued.json["id"]
        time.sleep(0.5)
        # Queued for a worker: serve runs no job itself.
        assert api.get("/api/v1/jobs/" + job_id, token=owner).json["status"] == "queued"
        worker = Worker(binary, data_dir, "w1", *database_flags(database))
        done = wait_status(api, owner, job_id, ("completed", "errored"))
        assert done["status"] == "completed", done
        assert job_row(database, data_dir, job_id) == ("completed", 1, "w1")
    finally:
        if worker:
            worker.stop()
        server.stop()


def test_serve_configured_only_by_the_environment(binary, tmp_path, database):
    data_dir = tmp_path / "data"
    name = unique("env")
    secret = "Env-Secret-" + unique("pw")
    env = without_datasite_variables()
    env.update({
        "DATASITE_NAME": name,
        "DATASITE_DATA_DIR": str(data_dir),
        "DATASITE_PORT": "auto",
        "DATASITE_DETACH": "true",
        "DATASITE_DEV_MODE": "1",  # debug logging: more chances to print a secret
        "DATASITE_ROOT_EMAIL": "root@env.example.org",
        "DATASITE_ROOT_PASSWORD": secret,
        "DATASITE_SIDE": "low",
        "DATASITE_SIGNUP": "true",
        "DATASITE_ALLOWED_HOST": "a.example,b.example",  # a repeatable flag: a list
    })
    if database:
        env["DATASITE_DATABASE_URL"] = database
    out = run(binary, "serve", env=env)
    try:
        assert out.returncode == 0, (out.stdout, out.stderr)
        info = json.loads((data_dir / "server.json").read_text())
        assert info["name"] == name
        api = Api(int(info["port"]))
        meta = api.get("/api/v1/metadata").json
        assert (meta["name"], meta["server_side_type"], meta["signup_enabled"],
                meta["admin_email"]) == (name, "low", True, "root@env.example.org"), meta
        api.login("root@env.example.org", secret)
        for host, answered in (("a.example", True), ("b.example", True), ("c.example", False)):
            resp = api.get("/api/v1/metadata", headers={"Host": host})
            assert (resp.status == 200) == answered, (host, resp)
    finally:
        run(binary, "land", name, "--data-dir", str(data_dir))
    # A secret given in the environment is never printed, not even in debug logs.
    logs = out.stdout + out.stderr + (data_dir / "server.log").read_text(errors="replace")
    assert secret not in logs


def test_a_flag_beats_its_variable(binary, tmp_path, database, monkeypatch):
    monkeypatch.setenv("DATASITE_SIDE", "low")
    monkeypatch.setenv("DATASITE_NAME", "name-from-env")
    monkeypatch.setenv("DATASITE_SIGNUP", "true")
    server = DetachedServer(binary, tmp_path / "data", "--side", "high", "--signup=false",
                            *database_flags(database), name="name-from-flag", command="serve")
    try:
        meta = server.start().get("/api/v1/metadata").json
        assert (meta["name"], meta["server_side_type"], meta["signup_enabled"]) == \
            ("name-from-flag", "high", False), meta
    finally:
        server.stop()


def test_a_bad_value_in_a_variable_is_refused_with_the_flags_name(binary, tmp_path):
    env = without_datasite_variables()
    env.update({"DATASITE_SIGNUP": "maybe", "DATASITE_DATA_DIR": str(tmp_path)})
    out = run(binary, "serve", env=env)
    assert out.returncode == 2, out.stderr
    assert "--signup" in out.stderr, out.stderr


def test_a_worker_takes_its_flags_from_its_own_variables(binary, tmp_path):
    env = without_datasite_variables()
    env.update({
        "DATASITE_WORKER_DATA_DIR": str(tmp_path / "from-env"),
        "DATASITE_WORKER_MAX_RESULT_BYTES": str(256 << 20),
        "DATASITE_WORKER_MAX_STORAGE_BYTES": str(1 << 40),
        "DATASITE_WORKER_USER_QUOTA_BYTES": str(1 << 30),
        "DATASITE_WORKER_MOCK_RESULTS_KEPT": "10",
        # A server's variable is not a worker's.
        "DATASITE_DATA_DIR": str(tmp_path / "servers"),
    })
    # Every required flag came from the environment: what fails is the missing datasite there.
    out = run(binary, "worker", env=env)
    assert out.returncode != 0
    assert "no datasite in" in out.stderr and "from-env" in out.stderr, out.stderr
    out = run(binary, "worker", "--data-dir", str(tmp_path / "from-flag"), env=env)
    assert "no datasite in" in out.stderr and "from-flag" in out.stderr, out.stderr


def test_serve_without_a_name_keeps_the_stored_one(binary, tmp_path, database):
    data_dir = tmp_path / "data"
    flags = database_flags(database)
    first = DetachedServer(binary, data_dir, *flags, name=unique("first"), command="serve")
    again = DetachedServer(binary, data_dir, *flags, command="serve", named=False)
    try:
        api = first.start()
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        renamed = unique("renamed")
        assert api.patch("/api/v1/settings", {"name": renamed}, token=admin).status == 200
        first.land()
        meta = again.start().get("/api/v1/metadata").json
        assert meta["name"] == renamed, meta
        # It runs under that name: `datasite land NAME` finds it.
        assert again.name == renamed
        code, out, err = again.land()
        assert code == 0 and again.pid is None, (out, err)
    finally:
        first.stop()
        again.stop()


def test_a_first_serve_without_a_name_is_refused(binary, tmp_path, database):
    server = DetachedServer(binary, tmp_path / "data", *database_flags(database),
                            command="serve", named=False)
    try:
        code, out, err = server.try_start()
        assert code != 0
        assert "no datasite has started on this database yet: give it a name" in out + err, \
            (out, err)
    finally:
        server.stop()


@pytest.mark.skipif(not TEST_POSTGRES_URL, reason="needs DATASITE_TEST_POSTGRES_URL")
def test_serve_refuses_to_reset_a_shared_database(binary, tmp_path, fresh_database):
    server = DetachedServer(binary, tmp_path / "data", "--reset", "--database", fresh_database,
                            command="serve")
    try:
        code, out, err = server.try_start()
        assert code != 0
        assert "--reset wipes the data directory only" in out + err, (out, err)
    finally:
        server.stop()


def test_serve_without_a_name_on_a_busy_directory_names_the_running_server(binary, tmp_path):
    first = DetachedServer(binary, tmp_path / "data", name=unique("busy"), command="serve")
    second = DetachedServer(binary, tmp_path / "data", command="serve", named=False)
    try:
        first.start()
        code, out, err = second.try_start()
        assert code != 0
        assert "a server named %s is already running" % first.name in err, err
        assert "datasite land %s" % first.name in err, err
    finally:
        second.stop()
        first.stop()
