"""`datasite migrate --from DATA_DIR --to postgresql://...`: a datasite that ran on SQLite goes on,
on PostgreSQL, with its users, datasets, code, approvals, results and audit chain as they were.

Needs the PostgreSQL of the test run (DATASITE_TEST_POSTGRES_URL, which scripts/test.sh sets).
"""

import os
import subprocess
import uuid

import pytest

import datasite as sy
from code_helpers import MOCK, PRIVATE, asset_of, make_code_actors, upload_people
from conftest import launch
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api

ADMIN_URL = os.environ.get("DATASITE_TEST_POSTGRES_URL", "")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason="needs DATASITE_TEST_POSTGRES_URL")


def psql(url, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)


@pytest.fixture()
def database():
    db = "mig_" + uuid.uuid4().hex[:16]
    psql(ADMIN_URL, f"CREATE DATABASE {db}")
    yield ADMIN_URL.partition("?")[0].rsplit("/", 1)[0] + "/" + db
    psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def launch_sqlite(xdg, name):
    """A server on SQLite, even when the suite runs its servers on PostgreSQL."""
    saved = {k: os.environ.pop(k, None) for k in ("DATASITE_TEST_ENGINE",)}
    import conftest
    admin, conftest.POSTGRES_ADMIN_URL = conftest.POSTGRES_ADMIN_URL, ""
    try:
        return launch(xdg, name=name)
    finally:
        conftest.POSTGRES_ADMIN_URL = admin
        for k, v in saved.items():
            if v is not None:
                os.environ[k] = v


def test_a_sqlite_datasite_moves_to_postgresql_whole(tmp_path, binary, database):
    xdg = tmp_path / "xdg"  # made by the xdg_data_home fixture
    handle = launch_sqlite(xdg, "moving")
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
    value = scientist.code.oldest(data=asset).get()
    assert value == int(PRIVATE["age"].max())
    api = Api(handle.port)
    admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
    users_before = api.user_total(admin)
    audit_before = api.get("/api/v1/audit/verify", token=admin).json
    handle.land()

    # Refused while a server runs on the directory; and into a database holding a datasite.
    running = launch_sqlite(xdg, "moving")
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
    os.environ["DATASITE_DATABASE_URL"] = database
    try:
        handle = launch(xdg, name="moving")
    finally:
        os.environ.pop("DATASITE_DATABASE_URL", None)
    try:
        api = Api(handle.port)
        admin = api.login(ROOT_EMAIL, ROOT_PASSWORD)
        assert api.user_total(admin) == users_before
        scientist = sy.login(url=f"http://127.0.0.1:{handle.port}",
                             email=actors["scientist"].user["email"], password=PASSWORD)
        asset = asset_of(scientist, people)
        assert asset.mock.equals(MOCK) or list(asset.mock["age"]) == list(MOCK["age"])
        # The approved code's result is there, and its policy stays used up.
        with pytest.warns(sy.DatasiteWarning, match="used up"):
            reused = scientist.code.oldest(data=asset)
        assert reused.reused and reused.get() == value
        # The audit chain verifies, one entry longer or more (the logins since), from the same start.
        audit = api.get("/api/v1/audit/verify", token=admin).json
        assert audit["ok"], audit
        assert audit["entries"] >= audit_before["entries"]
        # New rows follow the copied ones (identity sequences moved past them).
        assert api.create_user(admin, role="data_scientist")["email"]
        assert api.get("/api/v1/users?page=1&page_size=100", token=admin).json["total"] == \
            users_before + 1
    finally:
        handle.land()
