"""Regression: projects and project messages flooded the server (a cold attack on projects).

A data scientist created 1500 projects and posted 1500 messages of 10 KB each in 1.3 s on a server with
``--user-quota-bytes 100000``: all were accepted, each project notified every data owner and admin, the data
dir grew by 37.6 MB and their quota still showed ``used_bytes`` 0. Now what projects (name, description) and
messages keep counts toward the author's quota (``project_bytes``, in ``used_bytes``), a data scientist's
projects and messages are capped (``--max-projects-per-user``, ``--max-project-messages-per-user``), and a
creation past either is refused with 413 PAYLOAD_TOO_LARGE naming the limit, as a code version past the code
quota is. Data owners and admins are not limited.
"""

import pytest

from conftest import POSTGRES_ADMIN_URL, postgres_database
from dataset_helpers import make_actors
from helpers import assert_error, DetachedServer, PASSWORD

QUOTA = 25_000
MAX_PROJECTS = 3
MAX_MESSAGES = 4
TEXT = "x" * 10_000


def quota(api, token):
    resp = api.get("/api/v1/account/quota", token=token)
    assert resp.status == 200, resp
    return resp.json


def new_scientist(api, actors):
    user = api.create_user(actors["admin"].token, role="data_scientist")
    return api.login(user["email"], PASSWORD)


def create(api, token, name, description=""):
    return api.post("/api/v1/projects", {"name": name, "description": description}, token=token)


def post(api, token, project_id, text):
    return api.post("/api/v1/projects/{}/messages".format(project_id), {"message": text}, token=token)


@pytest.fixture(scope="module")
def server(binary, tmp_path_factory):
    """One server with a small quota and small caps (on PostgreSQL when the run's engine is)."""
    tmp = tmp_path_factory.mktemp("project-limits")
    flags = ("--user-quota-bytes", QUOTA, "--max-projects-per-user", MAX_PROJECTS,
             "--max-project-messages-per-user", MAX_MESSAGES)
    if POSTGRES_ADMIN_URL:
        flags += ("--database", postgres_database(tmp, "data", fresh=True))
    srv = DetachedServer(binary, tmp / "data", *flags)
    api = srv.start()
    try:
        yield api, make_actors(srv.port)
    finally:
        srv.stop()


def test_projects_past_the_cap_are_refused(server):
    api, actors = server
    scientist = new_scientist(api, actors)
    fresh = quota(api, scientist)
    assert (fresh["projects"], fresh["max_projects"], fresh["project_bytes"]) == (0, MAX_PROJECTS, 0)
    for i in range(MAX_PROJECTS):
        resp = create(api, scientist, "p{}".format(i), "d")
        assert resp.status == 201, resp
    past = create(api, scientist, "past", "d")
    assert_error(past, 413, "PAYLOAD_TOO_LARGE")
    assert "--max-projects-per-user" in past.error["message"], past
    use = quota(api, scientist)
    assert use["projects"] == MAX_PROJECTS
    assert use["project_bytes"] == MAX_PROJECTS * len("p0d")
    assert use["used_bytes"] == use["results_bytes"] + use["logs_bytes"] + use["code_bytes"] + \
        use["project_bytes"]
    # Nothing of the refused project was stored.
    listed = api.get("/api/v1/projects?name=past", token=scientist)
    assert listed.status == 200 and listed.json["total"] == 0, listed
    # Data owners are not limited.
    owner = actors["owner"].token
    for i in range(MAX_PROJECTS + 1):
        resp = create(api, owner, "owned{}".format(i), TEXT)
        assert resp.status == 201, resp
    assert quota(api, owner)["max_projects"] is None


def test_messages_past_the_cap_are_refused(server):
    api, actors = server
    scientist = new_scientist(api, actors)
    project = create(api, scientist, "chatty").json
    for i in range(MAX_MESSAGES):
        resp = post(api, scientist, project["id"], "hello {}".format(i))
        assert resp.status == 201, resp
    past = post(api, scientist, project["id"], "one more")
    assert_error(past, 413, "PAYLOAD_TOO_LARGE")
    assert "--max-project-messages-per-user" in past.error["message"], past
    use = quota(api, scientist)
    assert (use["project_messages"], use["max_project_messages"]) == (MAX_MESSAGES, MAX_MESSAGES)
    events = api.get("/api/v1/projects/{}/events".format(project["id"]), token=scientist).json
    assert len(events["items"]) == MAX_MESSAGES


def test_projects_and_messages_count_toward_the_quota(server):
    api, actors = server
    scientist = new_scientist(api, actors)
    kept = 0
    for name in ("big1", "big2"):
        resp = create(api, scientist, name, TEXT)
        assert resp.status == 201, resp
        kept += len(name) + len(TEXT)
    assert quota(api, scientist)["project_bytes"] == kept
    # A third would pass the quota of 25 kB.
    past = create(api, scientist, "big3", TEXT)
    assert_error(past, 413, "PAYLOAD_TOO_LARGE")
    assert "--user-quota-bytes" in past.error["message"], past
    assert str(QUOTA) in past.error["message"], past
    # So would a message of 10 kB; a short one still fits.
    project_id = api.get("/api/v1/projects?name=big1", token=scientist).json["items"][0]["id"]
    past = post(api, scientist, project_id, TEXT)
    assert_error(past, 413, "PAYLOAD_TOO_LARGE")
    assert "--user-quota-bytes" in past.error["message"], past
    assert post(api, scientist, project_id, "short").status == 201
    use = quota(api, scientist)
    assert use["project_bytes"] == kept + len("short")
    assert use["used_bytes"] >= use["project_bytes"]
