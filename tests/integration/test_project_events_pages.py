"""Regression: ``GET /api/v1/projects/{id}/events`` answered a whole project at once (a cold attack on
projects): 4000 messages of 10 KB in one answer, held in memory until read, so 32 connections that never
read took the server's RSS up by 1.6 GiB. It answers a page at a time (``after_seq``, ``limit`` up to 1000,
at most about 1 MiB of text), saying whether more follow, and the Python client's ``project.events`` reads
every page.
"""

import datasite.projects
from helpers import assert_error, client_for, PASSWORD

MESSAGES = 4
TEXT = "x" * 10_000


def new_scientist(api, actors):
    user = api.create_user(actors["admin"].token, role="data_scientist")
    return api.login(user["email"], PASSWORD)


def create(api, token, name):
    return api.post("/api/v1/projects", {"name": name}, token=token)


def post(api, token, project_id, text):
    return api.post("/api/v1/projects/{}/messages".format(project_id), {"message": text}, token=token)


def test_events_are_answered_a_page_at_a_time(api, actors):
    scientist = new_scientist(api, actors)
    project = create(api, scientist, "paged").json
    for i in range(MESSAGES):
        assert post(api, scientist, project["id"], "m{}".format(i)).status == 201
    path = "/api/v1/projects/{}/events".format(project["id"])
    first = api.get(path + "?limit=3", token=scientist)
    assert first.status == 200, first
    assert [e["text"] for e in first.json["items"]] == ["m0", "m1", "m2"]
    assert first.json["more"] is True
    assert first.json["next_after_seq"] == first.json["items"][-1]["seq"]
    rest = api.get(path + "?limit=3&after_seq={}".format(first.json["next_after_seq"]),
                   token=scientist)
    assert [e["text"] for e in rest.json["items"]] == ["m3"]
    assert rest.json["more"] is False
    assert api.get(path + "?after_seq=4", token=scientist).json["items"] == []
    assert_error(api.get(path + "?limit=1001", token=scientist), 400, "INVALID_ARGUMENT")
    assert_error(api.get(path + "?limit=0", token=scientist), 400, "INVALID_ARGUMENT")
    assert_error(api.get(path + "?after_seq=-1", token=scientist), 400, "INVALID_ARGUMENT")


def test_the_python_client_reads_every_page_of_events(api, actors, monkeypatch):
    scientist = new_scientist(api, actors)
    project = create(api, scientist, "client-paged").json
    for i in range(MESSAGES):
        assert post(api, scientist, project["id"], "m{}".format(i)).status == 201
    client = client_for(api.port, scientist)
    monkeypatch.setattr(datasite.projects, "_EVENTS_PAGE", 3)  # four events: two pages
    loaded = client.projects.get_by_uid(project["id"])
    assert [m.message for m in loaded.get_messages()] == ["m0", "m1", "m2", "m3"]


def test_a_page_of_events_holds_about_one_mebibyte_of_text(api, actors):
    # 120 messages of 10 kB (1.2 MB), within the default caps and quota.
    owner = actors["owner2"].token
    project = create(api, owner, "long").json
    for i in range(120):
        assert post(api, owner, project["id"], TEXT).status == 201
    path = "/api/v1/projects/{}/events".format(project["id"])
    first = api.get(path, token=owner).json
    assert first["more"] is True
    assert len(first["items"]) == (1 << 20) // len(TEXT)  # 104 events: the 105th passes 1 MiB
    rest = api.get(path + "?after_seq={}".format(first["next_after_seq"]), token=owner).json
    assert rest["more"] is False
    assert [e["seq"] for e in first["items"] + rest["items"]] == list(range(1, 121))


# Second cold attack (events_slow_reader): the page's cap counted raw text, and JSON writes a control
# character as six bytes ("\u0001"), so a page of such messages was 6 MB.
def test_a_page_of_events_is_capped_as_json_writes_it(api, actors):
    owner = actors["owner2"].token
    project = create(api, owner, "controls").json
    for _ in range(40):
        assert post(api, owner, project["id"], "\x01" * 10_000).status == 201
    resp = api.get("/api/v1/projects/{}/events".format(project["id"]), token=owner)
    assert resp.json["more"] is True
    assert len(resp.raw) < (1 << 20) + 70_000, len(resp.raw)  # the cap, and one event past it


def test_a_page_of_quotes_is_capped_as_json_writes_it(api, actors):
    owner = actors["owner2"].token
    project = create(api, owner, "quotes").json
    for _ in range(150):
        assert post(api, owner, project["id"], '"' * 10_000).status == 201
    resp = api.get("/api/v1/projects/{}/events".format(project["id"]), token=owner)
    assert resp.json["more"] is True
    assert len(resp.raw) < (1 << 20) + 70_000, len(resp.raw)
