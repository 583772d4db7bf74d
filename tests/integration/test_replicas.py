"""Two servers sharing one PostgreSQL database, as API replicas do: a change made through one is
seen by the other's next request, whatever either had cached (sessions, settings, listings).

Needs the PostgreSQL of the test run (DATASITE_TEST_POSTGRES_URL, which scripts/test.sh sets);
skipped without it.
"""

import os
import subprocess
import time
import uuid

import pytest

from conftest import POSTGRES_ADMIN_URL, launch
from helpers import PASSWORD, ROOT_EMAIL, ROOT_PASSWORD, Api

ADMIN_URL = POSTGRES_ADMIN_URL or os.environ.get("DATASITE_TEST_POSTGRES_URL", "")
pytestmark = pytest.mark.skipif(not ADMIN_URL, reason="needs DATASITE_TEST_POSTGRES_URL")

DATASETS = "/api/v1/datasets"


def psql(url, sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL, timeout=60)


@pytest.fixture()
def replicas(tmp_path, binary):
    """Servers A and B (their own data directories) on one fresh PostgreSQL database."""
    db = "rep_" + uuid.uuid4().hex[:16]
    psql(ADMIN_URL, f"CREATE DATABASE {db}")
    url = ADMIN_URL.partition("?")[0].rsplit("/", 1)[0] + "/" + db
    handles = []
    old = os.environ.get("DATASITE_DATABASE_URL")
    os.environ["DATASITE_DATABASE_URL"] = url
    try:
        for side in ("a", "b"):
            xdg = tmp_path / ("xdg_" + side)
            xdg.mkdir()
            handles.append(launch(xdg, name="replica-" + side))
    finally:
        if old is None:
            os.environ.pop("DATASITE_DATABASE_URL", None)
        else:
            os.environ["DATASITE_DATABASE_URL"] = old
    yield [Api(h.port) for h in handles]
    for h in handles:
        h.land()
    psql(ADMIN_URL, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


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
