"""The hash-chained audit log, end to end: a real history made through the client, then
``datasite audit verify`` (offline, on the database file) and the admin routes; then rows edited,
deleted and swapped directly with sqlite3, and verify names the first wrong entry.

Tampering happens on copies of the database (sqlite3's backup of the live file), so the server
keeps running and each copy shows one kind of damage: the module's server runs on SQLite whatever
the engine of the test run. On PostgreSQL, `audit verify --database URL` reads the database
directly (test_offline_verify_reads_postgresql, run when the tests have a PostgreSQL).
"""

import json
import pathlib
import sqlite3
import subprocess

import pytest

import datasite as sy
from code_helpers import asset_of, make_code_actors, upload_people, wait_for_status
from conftest import TEST_POSTGRES_URL, psql
from helpers import PASSWORD, Api, assert_error, needs_sandbox


def run_cli(binary, *args):
    return subprocess.run(
        [binary, "audit", *args], capture_output=True, text=True, timeout=60, check=False
    )


def copy_db(data_dir, dest):
    """A consistent copy of the server's database in a directory of its own."""
    dest.mkdir()
    src = sqlite3.connect("file:{}?mode=ro".format(pathlib.Path(data_dir) / "datasite.db"), uri=True)
    dst = sqlite3.connect(str(dest / "datasite.db"))
    src.backup(dst)
    src.close()
    dst.close()
    return dest


def tamper(dir_, *statements):
    db = sqlite3.connect(str(dir_ / "datasite.db"))
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()


@pytest.fixture(scope="module")
def module_server(module_launcher):
    """The module's server, on SQLite: the tests copy and edit its database file."""
    return module_launcher.launch(database="sqlite")


@pytest.fixture(scope="module")
def history(module_server):
    """A history with every kind of event the issue names that needs no sandbox."""
    port = module_server.port
    actors = make_code_actors(port)
    api = Api(port)
    owner, scientist = actors["owner"].client, actors["scientist"].client
    # A failed login (an unknown user and a wrong password) and a login.
    assert api.post("/api/v1/auth/login", {"email": actors["scientist"].user["email"],
                                           "password": "Wr0ng-Passw0rd"}).status == 401
    api.login(actors["scientist"].user["email"], PASSWORD)
    name = upload_people(owner)
    # A download of private data by its owner.
    resp = api.get("/api/v1/datasets/{}/assets/people/data".format(name),
                   token=actors["owner"].token)
    assert resp.status == 200
    asset = asset_of(scientist, name)

    @sy.syft_function_single_use(data=asset)
    def audited_mean(data):
        return float(data["age"].mean())

    request = scientist.code.request_code_execution(audited_mean, reason="for the audit test")
    assert owner.requests.get(request.id).approve()

    @sy.syft_function_single_use(data=asset)
    def audited_max(data):
        return float(data["age"].max())

    denied = scientist.code.request_code_execution(audited_max, reason="denied one")
    assert owner.requests.get(denied.id).deny(reason="the private names are Ann and Bob")
    assert actors["admin"].client.settings.update(description="audited description")
    return {"actors": actors, "dataset": name, "request": request.id, "denied": denied.id,
            "data_dir": module_server.data_dir, "port": port}


def entries(actors):
    return actors["admin"].client.audit.all()


def test_every_security_event_is_in_the_log(history):
    log = entries(history["actors"])
    actions = [e["action"] for e in log]
    for action in ("user.create_root", "user.create", "user.login", "user.login_failed",
                   "blob.upload", "dataset.create", "asset.read_private", "code.submit",
                   "request.submit", "request.approve", "request.deny", "settings.update"):
        assert action in actions, action
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    settings = [e for e in log if e["action"] == "settings.update"][-1]
    assert settings["detail"] == "description"  # the name of the setting, never its value
    assert "audited description" not in json.dumps(log)
    # The denial's reason (free text that may quote data) stays out of the log.
    assert "Ann and Bob" not in json.dumps(log)
    approve = [e for e in log if e["action"] == "request.approve"][-1]
    assert approve["target"] == "request:" + history["request"]
    assert approve["actor"] == "user:" + history["actors"]["owner"].user["id"]


def test_verify_passes_on_a_real_history_offline_and_through_the_route(history, binary):
    verdict = history["actors"]["admin"].client.audit.verify()
    assert verdict["ok"] is True, verdict
    assert verdict["head"] == entries(history["actors"])[-1]["hash"]
    out = run_cli(binary, "verify", "--data-dir", str(history["data_dir"]))
    assert out.returncode == 0, out.stderr + out.stdout
    assert out.stdout.startswith("ok: ")
    assert "head: seq " in out.stdout


def test_an_edit_is_found_and_named(history, binary, tmp_path):
    copy = copy_db(history["data_dir"], tmp_path / "edit")
    victim = [e for e in entries(history["actors"]) if e["action"] == "request.approve"][-1]
    tamper(copy, "UPDATE audit_events SET actor = 'user:nobody' WHERE seq = {}".format(
        victim["seq"]))
    out = run_cli(binary, "verify", "--data-dir", str(copy))
    assert out.returncode == 1
    assert "FAILED at seq {}:".format(victim["seq"]) in out.stdout, out.stdout


def test_a_deletion_is_found_and_named(history, binary, tmp_path):
    copy = copy_db(history["data_dir"], tmp_path / "delete")
    victim = [e for e in entries(history["actors"]) if e["action"] == "user.login_failed"][0]
    tamper(copy, "DELETE FROM audit_events WHERE seq = {}".format(victim["seq"]))
    out = run_cli(binary, "verify", "--data-dir", str(copy), "--json")
    assert out.returncode == 1
    verdict = json.loads(out.stdout)
    assert verdict["ok"] is False
    assert verdict["first_bad_seq"] == victim["seq"]
    assert "missing" in verdict["reason"]


def test_a_swap_is_found_and_named(history, binary, tmp_path):
    copy = copy_db(history["data_dir"], tmp_path / "swap")
    log = entries(history["actors"])
    a, b = log[3]["seq"], log[6]["seq"]
    tamper(copy,
           "UPDATE audit_events SET seq = -1 WHERE seq = {}".format(a),
           "UPDATE audit_events SET seq = {} WHERE seq = {}".format(a, b),
           "UPDATE audit_events SET seq = {} WHERE seq = -1".format(b))
    out = run_cli(binary, "verify", "--data-dir", str(copy), "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["first_bad_seq"] == a


def test_a_cut_tail_is_found_against_a_saved_head(history, binary, tmp_path):
    head = history["actors"]["admin"].client.audit.head
    copy = copy_db(history["data_dir"], tmp_path / "cut")
    last = entries(history["actors"])[-1]["seq"]
    tamper(copy, "DELETE FROM audit_events WHERE seq >= {}".format(last - 1))
    assert run_cli(binary, "verify", "--data-dir", str(copy)).returncode == 0
    out = run_cli(binary, "verify", "--data-dir", str(copy), "--head", head)
    assert out.returncode == 1
    assert "cut" in out.stdout
    # Against the live server the saved head is still there.
    assert history["actors"]["admin"].client.audit.verify(head=head)["ok"] is True


def test_prune_keeps_a_signed_checkpoint_that_verify_checks(history, binary, tmp_path):
    copy = copy_db(history["data_dir"], tmp_path / "prune")
    out = run_cli(binary, "prune", "--data-dir", str(copy), "--before", "5")
    assert out.returncode == 0, out.stderr
    assert "removed 4 entries" in out.stdout
    out = run_cli(binary, "verify", "--data-dir", str(copy), "--json")
    verdict = json.loads(out.stdout)
    assert verdict["ok"] is True and verdict["checkpoint_seq"] == 4, verdict
    # Moving the checkpoint over more entries without the server's key is found.
    db = sqlite3.connect(str(copy / "datasite.db"))
    h = db.execute("SELECT hash FROM audit_events WHERE seq = 6").fetchone()[0]
    db.execute("DELETE FROM audit_events WHERE seq <= 6")
    db.execute("UPDATE audit_checkpoint SET seq = 6, hash = ?", (h,))
    db.commit()
    db.close()
    out = run_cli(binary, "verify", "--data-dir", str(copy))
    assert out.returncode == 1
    assert "checkpoint" in out.stdout


def test_export_writes_json_lines_through_the_client_and_the_cli(history, binary, tmp_path):
    admin = history["actors"]["admin"].client
    n = admin.audit.export(str(tmp_path / "client.jsonl"))
    lines = (tmp_path / "client.jsonl").read_text().splitlines()
    assert n == len(lines) > 10
    assert json.loads(lines[0])["seq"] == 1
    out = run_cli(binary, "export", "--data-dir", str(history["data_dir"]),
                  "-o", str(tmp_path / "cli.jsonl"))
    assert out.returncode == 0, out.stderr
    cli_lines = (tmp_path / "cli.jsonl").read_text().splitlines()
    assert [json.loads(x)["hash"] for x in cli_lines[:n]] == [json.loads(x)["hash"] for x in lines]
    page = admin.audit.page(after_seq=2, limit=3)
    assert [e["seq"] for e in page] == [3, 4, 5]


def test_only_owners_and_admins_read_the_log(history):
    actors = history["actors"]
    api = Api(history["port"])
    for path in ("/api/v1/audit", "/api/v1/audit/verify"):
        assert_error(api.get(path, token=actors["scientist"].token), 403, "PERMISSION_DENIED")
        assert_error(api.get(path, token=actors["guest"].token), 403, "PERMISSION_DENIED")
        assert_error(api.get(path), 401, "UNAUTHENTICATED")
        assert api.get(path, token=actors["owner"].token).status == 200
    with pytest.raises(sy.PermissionDeniedError):
        actors["scientist"].client.audit.page()
    assert_error(api.get("/api/v1/audit?limit=0", token=actors["owner"].token), 400,
                 "INVALID_ARGUMENT")


@needs_sandbox
def test_review_runs_releases_and_result_reads_are_recorded(launcher):
    server = launcher.launch()
    actors = make_code_actors(server.port)
    scientist, owner = actors["scientist"].client, actors["owner"].client
    asset = asset_of(scientist, upload_people(owner))
    assert actors["admin"].client.settings.set_output_review(True)

    @sy.syft_function_single_use(data=asset)
    def released_mean(data):
        return float(data["age"].mean())

    request = scientist.code.request_code_execution(released_mean, reason="audit")
    assert owner.requests.get(request.id).approve()
    pointer = scientist.code.released_mean(data=asset)
    wait_for_status(pointer.job, ("completed",))
    assert owner.jobs.get(pointer.job.id).release()
    assert pointer.get() is not None
    log = actors["admin"].client.audit.all()
    actions = [e["action"] for e in log]
    assert "job.create" in actions, actions
    assert "job.release" in actions, actions
    assert "job.read_result" in actions, actions
    assert actors["admin"].client.audit.verify()["ok"] is True
    # A result shown inline with its job is recorded at the first read of each reader, not at
    # every poll (which made every poll of an ended job a durable write); a download, each time.
    api = Api(server.port)
    path = "/api/v1/jobs/" + pointer.job.id
    for _ in range(5):
        for who in ("scientist", "owner"):
            resp = api.get(path, token=actors[who].token)
            assert resp.status == 200 and "result" in resp.json, resp

    def reads(detail_has):
        return [(e["actor"], e["detail"]) for e in actors["admin"].client.audit.all()
                if e["action"] == "job.read_result" and e["target"] == "job:" + pointer.job.id
                and detail_has in e["detail"]]

    inline = reads("(inline)")
    assert len(inline) == len(set(inline)) == 2, inline  # one per reader
    downloads = len(reads(""))
    for _ in range(2):
        assert api.get(path + "/result", token=actors["scientist"].token).status == 200
    assert len(reads("")) == downloads + 2


def test_the_cli_verifies_and_exports_through_the_server_for_admins_only(history, binary, tmp_path):
    url = "http://127.0.0.1:{}".format(history["port"])
    actors = history["actors"]
    out = run_cli(binary, "verify", "--url", url, "--token", actors["admin"].token)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok: ") and "head: seq " in out.stdout
    out = run_cli(binary, "export", "--url", url, "--token", actors["owner"].token,
                  "--after-seq", "3", "-o", str(tmp_path / "x.jsonl"))
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])["seq"] == 4
    refused = run_cli(binary, "verify", "--url", url, "--token", actors["scientist"].token)
    assert refused.returncode == 1
    assert "may not call GET /api/v1/audit/verify" in refused.stderr


@pytest.mark.skipif(not TEST_POSTGRES_URL, reason="needs DATASITE_TEST_POSTGRES_URL")
def test_offline_verify_reads_postgresql(launcher, binary, tmp_path, fresh_database):
    url = fresh_database
    server = launcher.launch(name="audited", database=url)
    actors = make_code_actors(server.port)
    upload_people(actors["owner"].client)
    head = actors["admin"].client.audit.head
    out = run_cli(binary, "verify", "--database", url, "--head", head, "--json")
    assert out.returncode == 0, out.stderr + out.stdout
    verdict = json.loads(out.stdout)
    assert verdict["ok"] is True and verdict["head"] == head, verdict
    exported = run_cli(binary, "export", "--database", url)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert lines and lines[-1]["hash"] == head
    # Read-only: the tool wrote nothing (the chain's head is where it was).
    assert actors["admin"].client.audit.head == head
    # An entry edited in the database is found, and named.
    victim = lines[len(lines) // 2]["seq"]
    psql(url, "UPDATE audit_events SET actor = 'user:nobody' WHERE seq = {}".format(victim))
    out = run_cli(binary, "verify", "--database", url, "--json")
    assert out.returncode == 1, out.stdout
    assert json.loads(out.stdout)["first_bad_seq"] == victim
    # --database and --data-dir name two databases: refused.
    both = run_cli(binary, "verify", "--database", url, "--data-dir", str(tmp_path))
    assert both.returncode != 0 and "excludes" in (both.stderr + both.stdout).lower()
