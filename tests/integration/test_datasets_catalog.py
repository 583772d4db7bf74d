"""The catalogue: unique names, not-found answers, pagination, search, soft delete, metadata
updates, the client's list-like ``client.datasets``, and what a dataset looks like.
"""

import datetime
import uuid

import pandas as pd
import pytest

import datasite as sy
from datasite import datasets as datasets_module
from dataset_helpers import DATASETS, blob_files, create_dataset, dataset_total, new_blob
from helpers import assert_error, unique


@pytest.fixture(scope="module")
def owner(actors):
    return actors["owner"].client


@pytest.fixture(scope="module")
def scientist(actors):
    return actors["scientist"].client


def small(name, description=None, summary=None, **meta):
    """A dataset of one tiny JSON asset."""
    return sy.Dataset(
        name=name,
        description=description,
        summary=summary,
        asset_list=[sy.Asset(name="a", data=[1, 2], mock=[3, 4])],
        **meta
    )


def parse_time(text):
    assert isinstance(text, str) and text.endswith("Z"), text
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


# Creating, names ---------------------------------------------------------------------------------


def test_uploaded_dataset_has_the_documented_fields(owner, actors):
    ds = small(
        unique("fields"),
        description="# Title\nbody",
        summary="sum",
        citation="Doe 2026",
        url="https://example.org/d",
    )
    ds.add_contributor("Jane Doe", "jane@example.org", role="Maintainer")
    ds.add_contributor("Bob")
    uploaded = owner.upload_dataset(ds).value
    got = owner.datasets[ds.name]
    assert got.id == uploaded.id and uuid.UUID(got.id).hex
    assert (got.summary, got.description, got.citation, got.url) == (
        "sum",
        "# Title\nbody",
        "Doe 2026",
        "https://example.org/d",
    )
    # An absent email or role may come back absent, null or empty.
    assert [
        {k: v for k, v in c.to_dict().items() if v not in (None, "")} for c in got.contributors
    ] == [
        {"name": "Jane Doe", "email": "jane@example.org", "role": "Maintainer"},
        {"name": "Bob"},
    ]
    owner_user = actors["owner"].user
    assert got.uploader == {
        "id": owner_user["id"],
        "name": owner_user["name"],
        "email": owner_user["email"],
    }
    assert parse_time(got.created_at) <= parse_time(got.updated_at)
    assert set(got.to_dict()) >= {
        "id",
        "name",
        "summary",
        "description",
        "citation",
        "url",
        "contributors",
        "uploader",
        "created_at",
        "updated_at",
        "assets",
    }


def test_the_create_answer_is_what_the_catalogue_holds(api, actors):
    # Regression (issue 12): POST /api/v1/datasets answered has_mock false and an empty uploader
    # name and email although a mock was given and the uploader has both.
    token = actors["owner"].token
    data = new_blob(api, token, "csv", b"v\n1\n2\n")
    mock = new_blob(api, token, "csv", b"v\n3\n4\n")
    bare = new_blob(api, token, "csv", b"v\n5\n")
    resp = create_dataset(
        api,
        token,
        unique("answer"),
        [{"name": "t", "data": data["id"], "mock": mock["id"]}, {"name": "e", "data": bare["id"]}],
    )
    assert resp.status == 201, resp
    created = resp.json
    uploader = created["uploader"]
    assert uploader["id"] == actors["owner"].user["id"]
    assert uploader["email"] == actors["owner"].user["email"]
    assert uploader["name"] == actors["owner"].user["name"] and uploader["name"]
    with_mock, empty = created["assets"]
    assert with_mock["has_mock"] is True and with_mock["mock_size"] == len(b"v\n3\n4\n")
    assert empty["has_mock"] is False
    assert created == api.get(DATASETS + "/" + created["id"], token=token).json


def test_names_are_unique(owner, api, actors, module_server):
    name = unique("dup")
    owner.upload_dataset(small(name))
    files = blob_files(module_server.data_dir)
    with pytest.raises(sy.AlreadyExistsError) as info:
        owner.upload_dataset(small(name))
    assert info.value.status == 409 and info.value.code == "ALREADY_EXISTS"
    assert blob_files(module_server.data_dir) == files, "the refused upload left blobs behind"
    blob = new_blob(api, actors["owner"].token, "json", b"[1]")
    resp = create_dataset(api, actors["owner"].token, name, [{"name": "a", "data": blob["id"]}])
    assert_error(resp, 409, "ALREADY_EXISTS")
    assert dataset_total(api, actors["owner"].token, search=name) == 1


def test_name_of_another_owner_is_taken_too(actors, api):
    name = unique("taken")
    actors["owner"].client.upload_dataset(small(name))
    with pytest.raises(sy.AlreadyExistsError):
        actors["owner2"].client.upload_dataset(small(name))


# Not found ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_dataset_id_is_not_found(api, actors, method):
    path = DATASETS + "/" + str(uuid.uuid4())
    body = {"description": "x"} if method == "PATCH" else None
    resp = (
        api(method, path, body=body, token=actors["owner"].token)
        if body
        else api(method, path, token=actors["owner"].token)
    )
    assert_error(resp, 404, "NOT_FOUND")


def test_unknown_dataset_name_is_not_found(api, actors, scientist):
    assert_error(
        api.get(DATASETS + "/" + unique("nope"), token=actors["scientist"].token), 404, "NOT_FOUND"
    )
    with pytest.raises(sy.NotFoundError):
        scientist.datasets[unique("nope")]
    with pytest.raises(sy.NotFoundError):
        scientist.datasets.get(str(uuid.uuid4()))
    assert unique("nope") not in scientist.datasets


def test_unknown_asset_is_not_found(api, actors, owner):
    uploaded = owner.upload_dataset(small(unique("assets"))).value
    for route in ("mock", "data"):
        resp = api.get(
            "{}/{}/assets/nope/{}".format(DATASETS, uploaded.id, route),
            token=actors["owner"].token,
        )
        assert_error(resp, 404, "NOT_FOUND")
    for route in ("mock", "data"):
        resp = api.get(
            "{}/{}/assets/a/{}".format(DATASETS, uuid.uuid4(), route), token=actors["owner"].token
        )
        assert_error(resp, 404, "NOT_FOUND")


# Pagination and search ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seven(owner):
    """Seven datasets sharing a prefix found by search; descriptions carry another word."""
    prefix = unique("page")
    word = "zebra" + uuid.uuid4().hex[:6]
    names = []
    for i in range(7):
        name = "{}_{}".format(prefix, i)
        description = "about the {} herd".format(word) if i % 2 else "nothing"
        owner.upload_dataset(small(name, description=description))
        names.append(name)
    return {"prefix": prefix, "names": names, "word": word}


def page(api, token, number, size, search):
    resp = api.get(
        "{}?page={}&page_size={}&search={}".format(DATASETS, number, size, search), token=token
    )
    assert resp.status == 200, resp
    return resp.json


def test_pages_partition_the_list(api, actors, seven):
    token = actors["scientist"].token
    seen = []
    for number, expected in ((1, 3), (2, 3), (3, 1)):
        body = page(api, token, number, 3, seven["prefix"])
        assert body["total"] == 7
        assert body["page"] == number and body["page_size"] == 3
        assert len(body["items"]) == expected
        seen += [d["name"] for d in body["items"]]
    assert sorted(seen) == sorted(seven["names"])
    assert len(set(seen)) == 7
    beyond = page(api, token, 4, 3, seven["prefix"])
    assert beyond["items"] == [] and beyond["total"] == 7


@pytest.mark.parametrize("size", [1, 2, 7, 50])
def test_page_sizes(api, actors, seven, size):
    body = page(api, actors["guest"].token, 1, size, seven["prefix"])
    assert body["total"] == 7 and len(body["items"]) == min(size, 7)


def test_total_counts_every_dataset(api, actors, seven):
    resp = api.get(DATASETS, token=actors["scientist"].token)
    assert resp.status == 200, resp
    body = resp.json
    assert body["total"] >= 7 and body["page"] == 1
    assert len(body["items"]) == min(body["total"], body["page_size"])


@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "page=abc", "page_size=0", "page_size=abc", "page_size=1001"]
)
def test_invalid_paging_is_invalid_argument(api, actors, query):
    resp = api.get(DATASETS + "?" + query, token=actors["scientist"].token)
    assert_error(resp, 400, "INVALID_ARGUMENT")


def test_search_by_name_and_by_description(scientist, seven):
    assert sorted(d.name for d in scientist.datasets.search(seven["prefix"])) == seven["names"]
    assert sorted(d.name for d in scientist.datasets.search(seven["word"])) == [
        seven["names"][i] for i in (1, 3, 5)
    ]
    assert list(scientist.datasets.search(unique("absent"))) == []
    assert [d.name for d in scientist.datasets.search(seven["names"][4])] == [seven["names"][4]]


def test_client_pages_through_everything(scientist, seven, monkeypatch):
    monkeypatch.setattr(datasets_module.DatasetCollection, "_PAGE_SIZE", 2)
    found = scientist.datasets.search(seven["prefix"])
    assert sorted(d.name for d in found) == seven["names"]
    every = [d.name for d in scientist.datasets]
    assert set(seven["names"]) <= set(every)
    assert len(every) == len(set(every)) == len(scientist.datasets)


def test_client_datasets_is_list_like(scientist, seven):
    everything = scientist.datasets.get_all()
    assert len(scientist.datasets) == len(everything)
    assert scientist.datasets[0].id == everything[0].id
    assert scientist.datasets[-1].id == everything[-1].id
    assert scientist.datasets[len(everything) - 1].id == everything[-1].id
    assert [d.id for d in scientist.datasets[1:3]] == [d.id for d in everything[1:3]]
    with pytest.raises(IndexError):
        scientist.datasets[len(everything)]
    with pytest.raises(IndexError):
        scientist.datasets[-len(everything) - 1]
    name = seven["names"][2]
    assert scientist.datasets[name].name == name
    assert (
        scientist.datasets.get(name).id == scientist.datasets.get(scientist.datasets[name].id).id
    )
    assert everything[name].name == name
    assert name in scientist.datasets


# Soft delete -------------------------------------------------------------------------------------


def test_soft_delete_hides_the_dataset_and_frees_its_name(api, actors, owner, scientist):
    name = unique("gone")
    uploaded = owner.upload_dataset(small(name, description="findme")).value
    total = len(scientist.datasets)
    result = uploaded.delete()
    assert isinstance(result, sy.SyftSuccess)
    assert len(scientist.datasets) == total - 1
    assert name not in [d.name for d in scientist.datasets]
    assert list(scientist.datasets.search(name)) == []
    for path in (uploaded.id, name):
        assert_error(api.get(DATASETS + "/" + path, token=actors["owner"].token), 404, "NOT_FOUND")
    assert_error(
        api.get(
            "{}/{}/assets/a/mock".format(DATASETS, uploaded.id), token=actors["scientist"].token
        ),
        404,
        "NOT_FOUND",
    )
    assert_error(
        api.get("{}/{}/assets/a/data".format(DATASETS, uploaded.id), token=actors["owner"].token),
        404,
        "NOT_FOUND",
    )
    assert_error(
        api.delete(DATASETS + "/" + uploaded.id, token=actors["owner"].token), 404, "NOT_FOUND"
    )
    again = owner.upload_dataset(small(name)).value
    assert again.id != uploaded.id and owner.datasets[name].id == again.id


def test_delete_by_name_through_the_collection(owner, actors):
    name = unique("byname")
    owner.upload_dataset(small(name))
    assert actors["admin"].client.datasets.delete(name)
    with pytest.raises(sy.NotFoundError):
        owner.datasets[name]


# Update ------------------------------------------------------------------------------------------


def test_update_changes_metadata(owner, scientist):
    uploaded = owner.upload_dataset(small(unique("upd"), description="old")).value
    before = parse_time(uploaded.updated_at)
    result = uploaded.update(
        description="new *markdown*",
        summary="s2",
        citation="c2",
        url="https://example.org/2",
        contributors=[{"name": "Ann", "email": "ann@example.org", "role": "Author"}],
    )
    assert isinstance(result, sy.SyftSuccess)
    for ds in (uploaded, scientist.datasets[uploaded.id]):
        assert ds.description == "new *markdown*" and ds.summary == "s2"
        assert ds.citation == "c2" and ds.url == "https://example.org/2"
        assert [c.to_dict() for c in ds.contributors] == [
            {"name": "Ann", "email": "ann@example.org", "role": "Author"}
        ]
        assert parse_time(ds.updated_at) >= before
        assert ds.created_at == uploaded.created_at
        assert ds.assets.names() == ["a"]


def test_rename(owner, api, actors):
    old = unique("old")
    uploaded = owner.upload_dataset(small(old)).value
    new = unique("new")
    uploaded.update(name=new)
    assert owner.datasets[new].id == uploaded.id
    assert_error(api.get(DATASETS + "/" + old, token=actors["owner"].token), 404, "NOT_FOUND")
    assert owner.datasets[new].assets["a"].mock == [3, 4]


def test_rename_to_a_taken_name_is_refused(owner, api, actors):
    taken = unique("taken")
    owner.upload_dataset(small(taken))
    other = owner.upload_dataset(small(unique("other"))).value
    resp = api.patch(DATASETS + "/" + other.id, {"name": taken}, token=actors["owner"].token)
    assert_error(resp, 409, "ALREADY_EXISTS")
    assert owner.datasets[other.id].name == other.name


def test_empty_patch_changes_nothing(api, actors, owner):
    uploaded = owner.upload_dataset(small(unique("noop"), description="same")).value
    token = actors["owner"].token
    before = api.get(DATASETS + "/" + uploaded.id, token=token).json
    resp = api.patch(DATASETS + "/" + uploaded.id, {}, token=token)
    assert resp.status == 200, resp
    assert resp.json == before
    assert api.get(DATASETS + "/" + uploaded.id, token=token).json == before


@pytest.mark.parametrize(
    "body",
    [
        {"assets": []},
        {"id": "x"},
        {"uploader": {}},
        {"colour": "red"},
        {"name": 5},
        {"name": ""},
        {"contributors": "Ann"},
    ],
)
def test_bad_patch_is_refused(api, actors, owner, body):
    uploaded = owner.upload_dataset(small(unique("badpatch"))).value
    token = actors["owner"].token
    before = api.get(DATASETS + "/" + uploaded.id, token=token).json
    resp = api.patch(DATASETS + "/" + uploaded.id, body, token=token)
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert api.get(DATASETS + "/" + uploaded.id, token=token).json == before


def test_builder_methods_refuse_to_change_an_uploaded_dataset(owner):
    uploaded = owner.upload_dataset(small(unique("remote"))).value
    with pytest.raises(TypeError, match="update"):
        uploaded.set_description("x")
    with pytest.raises(TypeError):
        uploaded.add_asset(sy.Asset(name="b", data=[1], mock=[1]))
    with pytest.raises(TypeError):
        uploaded.assets["a"].set_mock([9])


# Display -----------------------------------------------------------------------------------------

EVIL = "<img src=x onerror=alert(1)>"


def test_dataset_display_escapes_and_shows_assets_and_schema(owner, scientist):
    ds = sy.Dataset(name=unique("show"), summary=EVIL, description="# Heading\n" + EVIL)
    ds.add_contributor(EVIL, "evil@example.org", role=EVIL)
    ds.add_asset(
        sy.Asset(
            name="table",
            description=EVIL,
            data=pd.DataFrame({"city": ["Paris", EVIL], "n": [1, 2]}),
            mock=pd.DataFrame({"city": [EVIL, "Rome"], "n": [3, 4]}),
        )
    )
    owner.upload_dataset(ds)
    seen = scientist.datasets[ds.name]
    html = seen._repr_html_()
    assert "<img" not in html and "&lt;img" in html
    assert "<h4>Heading</h4>" in html  # the description is Markdown, escaped first
    assert "city (string)" in html and "n (int)" in html
    text = repr(seen)
    assert ds.name in text and "city (string)" in text and "Contributors" in text
    asset_html = seen.assets["table"]._repr_html_()
    assert "<img" not in asset_html and "Mock preview" in asset_html and "Rome" in asset_html
    assert "Rome" in repr(seen.assets["table"])
    listing = scientist.datasets._repr_html_()
    assert "<img" not in listing and ds.name in listing


def test_array_asset_display_shows_dtype_and_shape(owner, scientist):
    import numpy as np

    name = unique("arrshow")
    owner.upload_dataset(
        sy.Dataset(
            name=name, asset_list=[sy.Asset(name="m", data=np.zeros((4, 3)), mock=np.ones((4, 3)))]
        )
    )
    asset = scientist.datasets[name].assets["m"]
    assert "&lt;f8" in asset._repr_html_() and "(4, 3)" in asset._repr_html_()
    assert "array <f8 (4, 3)" in repr(scientist.datasets[name])
