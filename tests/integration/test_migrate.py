"""`datasite migrate --from DATA_DIR --to postgresql://...`: a datasite that ran on SQLite goes on,
on PostgreSQL, with its users, datasets, code, approvals, results and audit chain as they were.

Needs the PostgreSQL of the test run (DATASITE_TEST_POSTGRES_URL, which scripts/test.sh sets).
"""

import subprocess

import pytest

import datasite as sy
from code_helpers import MOCK, PRIVATE, asset_of, make_code_actors, upload_people
from conftest import TEST_POSTGRES_URL, launch
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api, sandbox_impossible_here

# Where no sandbox can exist (fresh-machine's chroot) the server runs no code: the move is tested
# without the approved code's run and result.
RUNS_CODE = not sandbox_impossible_here()

pytestmark = pytest.mark.skipif(not TEST_POSTGRES_URL, reason="needs DATASITE_TEST_POSTGRES_URL")


def test_a_sqlite_datasite_moves_to_postgresql_whole(tmp_path, binary, fresh_database, launcher):
    database = fresh_database
    xdg = tmp_path / "xdg"  # made by the xdg_data_home fixture
    # Every server is also landed at teardown (launcher.track), should the test stop early.
    handle = launcher.track(launch(xdg, name="moving", database="sqlite"))
    data_dir = xdg / "datasite" / "moving"
    actors = make_code_actors(handle.port)
    owner, scientist = actors["owner"].client, actors["scientist"].client
    people = upload_people(owner)
    asset = asset_of(scientist, people)

    @sy.syft_function_single_use(data=asset)
    def oldest(data):
        return int(data["age"].max())

    request = scientist.code.request_code_execution(oldest, reason="the oldest")
    assert owner.requests.get(request.id).approve()
    if RUNS_CODE:
        value = scientist.code.oldest(data=asset).get()
        assert value == int(PRIVATE["age"].max())
    api = Api(handle.port)
    admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    users_before = api.user_total(admin)
    audit_before = api.get("/api/v1/audit/verify", token=admin).json
    handle.land()

    # Refused while a server runs on the directory; and into a database holding a datasite.
    running = launcher.track(launch(xdg, name="moving", database="sqlite"))
    refused = subprocess.run([binary, "migrate", "--from", str(data_dir), "--to", database],
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "stop it first" in refused.stderr, refused.stderr
    running.land()

    moved = subprocess.run([binary, "migrate", "--from", str(data_dir), "--to", database],
                           capture_output=True, text=True, timeout=300)
    assert moved.returncode == 0, moved.stderr
    assert "users" in moved.stderr and "rows" in moved.stderr
    again = subprocess.run([binary, "migrate", "--from", str(data_dir), "--to", database],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "holds a datasite already" in again.stderr, again.stderr

    # The same data directory (blobs, results), now with the database on PostgreSQL.
    handle = launcher.track(launch(xdg, name="moving", database=database))
    try:
        api = Api(handle.port)
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert api.user_total(admin) == users_before
        scientist = sy.login(url=f"http://127.0.0.1:{handle.port}",
                             email=actors["scientist"].user["email"], password=PASSWORD)
        asset = asset_of(scientist, people)
        assert asset.mock.equals(MOCK) or list(asset.mock["age"]) == list(MOCK["age"])
        # The approved code's result is there, and its policy stays used up.
        if RUNS_CODE:
            with pytest.warns(sy.DatasiteWarning, match="used up"):
                reused = scientist.code.oldest(data=asset)
            assert reused.reused and reused.get() == value
        else:
            assert scientist.code.oldest.status is sy.UserCodeStatus.APPROVED
        # The audit chain verifies, one entry longer or more (the logins since), from the same start.
        audit = api.get("/api/v1/audit/verify", token=admin).json
        assert audit["ok"], audit
        assert audit["entries"] >= audit_before["entries"]
        # New rows follow the copied ones: every identity sequence stands at or past the copied
        # numbers, and rows made now (a request, its notifications, a job) get fresh ones.
        # (audit_events is left out: its entries carry the numbers of the chain, never the
        # sequence's.)
        for table in ("jobs", "request_decisions", "notifications", "change_log", "mail_outbox"):
            behind = subprocess.run(
                ["psql", "-qtA", database, "-c",
                 f"SELECT coalesce((SELECT max(seq) FROM {table}), 0) > coalesce((SELECT "
                 f"last_value FROM {table}_seq_seq), 0)"],
                capture_output=True, text=True, timeout=60).stdout.strip()
            assert behind == "f", (table, behind)

        @sy.syft_function_single_use(data=asset)
        def youngest(data):
            return int(data["age"].min())

        fresh = scientist.code.request_code_execution(youngest, reason="the youngest")
        owner = sy.login(url=f"http://127.0.0.1:{handle.port}", email=actors["owner"].user["email"],
                         password=PASSWORD)
        assert owner.requests.get(fresh.id).approve()
        if RUNS_CODE:
            assert scientist.code.youngest(data=asset).get() == int(PRIVATE["age"].min())
        assert api.create_user(admin, role="data_scientist")["email"]
        assert api.get("/api/v1/users?page=1&page_size=100", token=admin).json["total"] == \
            users_before + 1
    finally:
        handle.land()
