"""Listing pages are cached per catalogue version: every change a listing shows must appear at once."""

import json
import os
import pathlib

from dataset_helpers import DATASETS, create_dataset, make_actors, new_blob
from helpers import Api, unique


def page(api, token, search=""):
    resp = api.get(DATASETS + "?page=1&page_size=50&search=" + search, token=token)
    assert resp.status == 200, resp
    return resp.json


def test_listing_shows_every_change_at_once(server):
    api = Api(server.port)
    actors = make_actors(server.port)
    owner, scientist = actors["owner"].token, actors["scientist"].token
    tag = unique("cache")
    blob = new_blob(api, owner, "csv", b"a\n1\n")
    created = create_dataset(api, owner, tag + "-one", [{"name": "t", "data": blob["id"]}])
    assert created.status == 201
    for token in (owner, scientist):
        page(api, token, tag)  # warm the cache for both renderings
    # A new dataset.
    blob2 = new_blob(api, owner, "csv", b"a\n2\n")
    assert create_dataset(api, owner, tag + "-two", [{"name": "t", "data": blob2["id"]}]).status == 201
    for token in (owner, scientist):
        assert page(api, token, tag)["total"] == 2
    # A metadata change.
    ds_id = created.json["id"]
    assert api.patch(DATASETS + "/" + ds_id, {"summary": "changed"}, token=owner).status == 200
    items = {d["id"]: d for d in page(api, scientist, tag)["items"]}
    assert items[ds_id]["summary"] == "changed"
    # The uploader renames themselves: the listing names them anew.
    assert api.patch("/api/v1/account", {"name": "Renamed Owner"}, token=owner).status == 200
    assert all(d["uploader"]["name"] == "Renamed Owner" for d in page(api, scientist, tag)["items"])
    # A deletion.
    assert api.delete(DATASETS + "/" + ds_id, token=owner).status == 200
    for token in (owner, scientist):
        listed = page(api, token, tag)
        assert listed["total"] == 1 and ds_id not in [d["id"] for d in listed["items"]]
    # The private fields stay in the owner's rendering only.
    assert "data_size" in page(api, owner, tag)["items"][0]["assets"][0]
    assert "data_size" not in page(api, scientist, tag)["items"][0]["assets"][0]


def test_a_cached_page_follows_role_changes_logout_and_deletion_at_once(server):
    # Pages are answered from memory for remembered sessions; a session's change must still count
    # on the very next request.
    api = Api(server.port)
    actors = make_actors(server.port)
    admin, owner = actors["admin"].token, actors["owner"].token
    tag = unique("cache")
    blob = new_blob(api, owner, "csv", b"a\n1\n")
    assert create_dataset(api, owner, tag, [{"name": "t", "data": blob["id"]}]).status == 201
    for _ in range(3):  # cached and remembered
        assert "data_size" in page(api, owner, tag)["items"][0]["assets"][0]
    user_id = actors["owner"].user["id"]
    assert api.patch("/api/v1/users/" + user_id, {"role": "data_scientist"}, token=admin).status == 200
    assert "data_size" not in page(api, owner, tag)["items"][0]["assets"][0]
    assert api.patch("/api/v1/users/" + user_id, {"role": "data_owner"}, token=admin).status == 200
    assert "data_size" in page(api, owner, tag)["items"][0]["assets"][0]

    scientist = actors["scientist"].token
    for _ in range(3):
        page(api, scientist, tag)
    assert api.post("/api/v1/auth/logout", token=scientist).status == 200
    assert api.get(DATASETS + "?page=1&page_size=50&search=" + tag, token=scientist).status == 401

    owner2 = actors["owner2"]
    for _ in range(3):
        page(api, owner2.token, tag)
    assert api.delete("/api/v1/users/" + owner2.user["id"], token=admin).status == 200
    assert api.get(DATASETS + "?page=1&page_size=50&search=" + tag, token=owner2.token).status == 401


def test_a_page_of_kept_and_new_renderings_matches_each_dataset(server):
    # A page read after one dataset changed takes the others' kept renderings (their assets are not
    # read again) and renders the changed one anew: every item must still be that dataset's whole
    # document, assets included, in the page's order.
    api = Api(server.port)
    owner = make_actors(server.port)["owner"].token
    tag = unique("mixed")
    ids = []
    for i, assets in enumerate((["t"], ["a", "b"], ["x"], ["p", "q", "r"])):
        listed = []
        for name in assets:
            blob = new_blob(api, owner, "csv", ("v\n%d\n" % i).encode())
            listed.append({"name": name, "data": blob["id"]})
        resp = create_dataset(api, owner, "%s-%d" % (tag, i), listed)
        assert resp.status == 201, resp
        ids.append(resp.json["id"])
    page(api, owner, tag)  # every rendering kept
    for changed in (ids[1], ids[3]):
        assert api.patch(DATASETS + "/" + changed, {"summary": "new " + changed}, token=owner).status == 200
    items = page(api, owner, tag)["items"]
    assert [d["id"] for d in items] == ids
    for item in items:
        alone = api.get(DATASETS + "/" + item["id"], token=owner)
        assert alone.status == 200
        assert item == alone.json
    assert [len(d["assets"]) for d in items] == [1, 2, 1, 3]
    assert items[3]["summary"] == "new " + ids[3] and items[1]["summary"] == "new " + ids[1]


def _rss_mb(handle):
    pid = json.loads((pathlib.Path(handle.data_dir) / "server.json").read_text())["pid"]
    for line in pathlib.Path("/proc/{}/status".format(pid)).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS for pid {}".format(pid))


# Second cold attack (dataset_page_cache): every page size and search is a page of its own in the
# cache, which was bounded in pages (2,000) but not in bytes: a guest kept 1 GB of pages.
def test_the_page_cache_is_bounded_in_bytes(launcher, monkeypatch):
    # Under AddressSanitizer (scripts/test-sanitizers.sh) freed memory waits in a quarantine of 256 MB
    # before it is reused, which RSS counts: this server frees at once.
    if os.environ.get("ASAN_OPTIONS"):
        monkeypatch.setenv("ASAN_OPTIONS", os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=0")
    handle = launcher.launch()
    api = Api(handle.port)
    owner = make_actors(handle.port)["owner"].token
    for i in range(20):
        blob = new_blob(api, owner, "csv", "a\n{}\n".format(i).encode())
        created = create_dataset(api, owner, unique("big{}".format(i)), [{"name": "t", "data": blob["id"]}],
                                 description="d" * 60_000)
        assert created.status == 201, created
    guest = api.guest()
    first = api.get(DATASETS + "?page=1&page_size=20", token=guest)
    assert first.status == 200 and len(first.raw) > 1_000_000, len(first.raw)
    before = _rss_mb(handle)
    for size in range(21, 321):  # 300 pages of all 20 datasets, each over 1 MB
        assert api.get(DATASETS + "?page=1&page_size={}".format(size), token=guest).status == 200
    grown = _rss_mb(handle) - before
    assert grown < 150, "the server kept {:.0f} MB of listing pages".format(grown)
