"""No private byte reaches a data scientist, a guest or an anonymous caller; they may read the
catalogue and the mocks, and may change nothing.

A marker string is planted in every private file; every route that could return private bytes is
tried by every party without the right to them, and neither the answer nor its error message may
carry the marker. The same routes succeed for the data owner and the admin.
"""

import io

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from datasite import _transfer
from dataset_helpers import (
    BLOBS,
    DATASETS,
    assert_no_marker,
    assert_refused,
    blob_files,
    create_dataset,
    dataset_total,
    marker,
    new_blob,
    sha256,
    upload_blob,
)
from helpers import assert_error, unique

SECRET = marker()
UNPRIVILEGED = ("anonymous", "guest", "scientist")


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


# Each asset: (format, private bytes carrying SECRET, mock bytes or None).
ASSETS = {
    "table": (
        "csv",
        "id,name,score\n" + "".join("{},{}-{},{}.5\n".format(i, SECRET, i, i) for i in range(5)),
        "id,name,score\n1,alice,0.5\n2,bob,1.5\n3,carol,2.5\n",
    ),
    "doc": (
        "json",
        '{"owner": "' + SECRET + '", "values": [1, 2, 3]}',
        '{"owner": "someone", "values": [4, 5, 6]}',
    ),
    "blob": ("raw", b"\x00\x01" + SECRET.encode() + b"\xff", b"mock-bytes"),
    "arr": (
        "npy",
        # The marker's ASCII codes as uint8: they appear verbatim in the .npy bytes.
        npy_bytes(np.frombuffer(SECRET.encode(), dtype="|u1")),
        npy_bytes(np.zeros(len(SECRET), dtype="|u1")),
    ),
    "hidden": ("csv", "secret\n" + SECRET + "\n", None),
}


def as_bytes(value):
    return value.encode() if isinstance(value, str) else value


def token_of(actors, key):
    return None if key == "anonymous" else actors[key].token


@pytest.fixture(scope="module")
def private(api, actors):
    """The owner's dataset with a marker in every private file; its blob ids."""
    owner = actors["owner"].token
    assets, blobs = [], {}
    for name, (fmt, data, mock) in ASSETS.items():
        entry = {"name": name, "description": "asset " + name}
        blobs[name] = {"data": new_blob(api, owner, fmt, as_bytes(data))["id"]}
        entry["data"] = blobs[name]["data"]
        if mock is not None:
            blobs[name]["mock"] = new_blob(api, owner, fmt, as_bytes(mock))["id"]
            entry["mock"] = blobs[name]["mock"]
        assets.append(entry)
    name = unique("private")
    resp = create_dataset(
        api, owner, name, assets, summary="has secrets", description="searchable description"
    )
    assert resp.status == 201, resp
    # A blob of the owner that no dataset uses.
    loose = new_blob(api, owner, "raw", b"loose " + SECRET.encode())["id"]
    return {"id": resp.json["id"], "name": name, "blobs": blobs, "loose": loose, "json": resp.json}


def data_path(private, asset):
    return "{}/{}/assets/{}/data".format(DATASETS, private["id"], asset)


def mock_path(private, asset):
    return "{}/{}/assets/{}/mock".format(DATASETS, private["id"], asset)


def expected_error(key):
    return (401, "UNAUTHENTICATED") if key == "anonymous" else (403, "PERMISSION_DENIED")


# Refused: private data route ---------------------------------------------------------------------


@pytest.mark.parametrize("asset", sorted(ASSETS))
@pytest.mark.parametrize("who", UNPRIVILEGED)
def test_private_data_route_refused(api, actors, private, who, asset):
    resp = api.get(data_path(private, asset), token=token_of(actors, who))
    assert_error(resp, *expected_error(who))
    assert_no_marker(resp, SECRET)


@pytest.mark.parametrize("asset", ["table", "doc"])
@pytest.mark.parametrize("who", UNPRIVILEGED)
def test_private_data_route_refused_by_dataset_name_too(api, actors, private, who, asset):
    resp = api.get(
        "{}/{}/assets/{}/data".format(DATASETS, private["name"], asset),
        token=token_of(actors, who),
    )
    assert_refused(resp)
    assert_no_marker(resp, SECRET)


# Refused: the owner's blobs ----------------------------------------------------------------------


def owner_blob_ids(private):
    ids = [private["loose"]]
    for entry in private["blobs"].values():
        ids.append(entry["data"])
    return ids


@pytest.mark.parametrize("who", UNPRIVILEGED + ("owner2", "admin"))
def test_blobs_of_the_owner_are_refused_to_everyone_else(api, actors, private, who):
    """docs: a blob belongs to its uploader and is visible to nobody else."""
    for blob_id in owner_blob_ids(private):
        resp = api.get(BLOBS + "/" + blob_id, token=token_of(actors, who))
        if who == "anonymous":
            assert_error(resp, 401, "UNAUTHENTICATED")
        else:
            assert_refused(resp, (403, 404))
        assert_no_marker(resp, SECRET)


@pytest.mark.parametrize("who", UNPRIVILEGED + ("owner2", "admin"))
def test_mock_of_someone_elses_blob_is_refused(api, actors, private, who):
    for blob_id in owner_blob_ids(private)[:3]:
        resp = api.post(BLOBS + "/" + blob_id + "/mock", {}, token=token_of(actors, who))
        if who == "anonymous":
            assert_error(resp, 401, "UNAUTHENTICATED")
        else:
            assert_refused(resp, (403, 404))
        assert_no_marker(resp, SECRET)


@pytest.mark.parametrize("who", ("scientist", "guest", "owner2"))
def test_blob_delete_of_someone_elses_blob_is_refused(api, actors, private, who):
    resp = api.delete(BLOBS + "/" + private["loose"], token=token_of(actors, who))
    assert_refused(resp, (403, 404))
    assert api.get(BLOBS + "/" + private["loose"], token=actors["owner"].token).status == 200


# Refused: private fields of the dataset JSON -----------------------------------------------------


def dataset_answers(api, private, token):
    """Every answer that carries the dataset's JSON: by id, by name, list, search."""
    return [
        api.get(DATASETS + "/" + private["id"], token=token),
        api.get(DATASETS + "/" + private["name"], token=token),
        api.get(DATASETS + "?page=1&page_size=100", token=token),
        api.get(DATASETS + "?search=" + private["name"], token=token),
    ]


def assets_in(resp, private):
    body = resp.json
    items = body["items"] if "items" in body else [body]
    found = [d for d in items if d["id"] == private["id"]]
    assert found, "dataset missing from {!r}".format(resp)
    return found[0]["assets"]


@pytest.mark.parametrize("who", ("guest", "scientist"))
def test_dataset_json_hides_private_size_and_hash(api, actors, private, who):
    for resp in dataset_answers(api, private, token_of(actors, who)):
        assert resp.status == 200, resp
        assert_no_marker(resp, SECRET)
        for asset in assets_in(resp, private):
            assert "data_size" not in asset and "data_sha256" not in asset, asset
        for name, (_, data, _) in ASSETS.items():
            assert sha256(as_bytes(data)) not in resp.text


def test_dataset_json_refused_without_a_token(api, private):
    for resp in dataset_answers(api, private, None):
        assert_error(resp, 401, "UNAUTHENTICATED")
        assert_no_marker(resp, SECRET)


@pytest.mark.parametrize("who", ("owner", "admin"))
def test_dataset_json_shows_private_size_and_hash_to_owners(api, actors, private, who):
    for resp in dataset_answers(api, private, token_of(actors, who)):
        assert resp.status == 200, resp
        by_name = {a["name"]: a for a in assets_in(resp, private)}
        for name, (_, data, _) in ASSETS.items():
            raw = as_bytes(data)
            assert by_name[name]["data_size"] == len(raw)
            assert by_name[name]["data_sha256"] == sha256(raw)


def test_schema_for_scientists_describes_the_mock_not_the_private_rows(api, actors, private):
    resp = api.get(DATASETS + "/" + private["id"], token=actors["scientist"].token)
    table = {a["name"]: a for a in resp.json["assets"]}["table"]
    assert table["schema"]["rows"] == 3, "the private row count (5) must not be told"
    assert [c["name"] for c in table["schema"]["columns"]] == ["id", "name", "score"]


# Refused through the client ----------------------------------------------------------------------


@pytest.mark.parametrize("who", ("guest", "scientist"))
def test_asset_data_raises_permission_denied_with_the_servers_message(
    actors, private, who, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    dataset = actors[who].client.datasets[private["name"]]
    for asset in dataset.assets:
        with pytest.raises(sy.PermissionDeniedError) as info:
            asset.data
        assert info.value.status == 403 and info.value.message
        assert SECRET not in str(info.value)
        target = out / (asset.name + ".out")
        with pytest.raises(sy.PermissionDeniedError):
            asset.download_data(target)
        assert list(out.iterdir()) == [], "nothing is written for a refused download"


# Allowed: owners ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ("owner", "admin"))
def test_private_data_route_serves_owners(api, actors, private, who):
    for name, (_, data, _) in ASSETS.items():
        resp = api.get(data_path(private, name), token=actors[who].token)
        assert resp.status == 200, resp
        assert resp.raw == as_bytes(data)
        assert resp.headers.get("x-content-sha256") == sha256(resp.raw)


def test_uploader_reads_and_mocks_its_own_blobs(api, actors, private):
    token = actors["owner"].token
    for name, blob_id in ((n, e["data"]) for n, e in private["blobs"].items()):
        resp = api.get(BLOBS + "/" + blob_id, token=token)
        assert resp.status == 200 and resp.raw == as_bytes(ASSETS[name][1]), resp
    made = api.post(BLOBS + "/" + private["blobs"]["table"]["data"] + "/mock", {}, token=token)
    assert made.status == 201, made
    mock = api.get(BLOBS + "/" + made.json["id"], token=token)
    assert mock.status == 200
    assert_no_marker(mock, SECRET)
    assert made.json["schema"]["rows"] == 100, "a fixed row count, not the private one (5)"


@pytest.mark.parametrize("who", ("owner", "admin"))
def test_client_asset_data_for_owners(actors, private, who):
    dataset = actors[who].client.datasets[private["name"]]
    assert SECRET in dataset.assets["table"].data["name"][0]
    assert dataset.assets["blob"].data == as_bytes(ASSETS["blob"][1])
    assert dataset.assets["arr"].data.tobytes() == SECRET.encode()


# Allowed: reading the catalogue and the mocks ----------------------------------------------------


@pytest.mark.parametrize("who", ("guest", "scientist"))
def test_catalogue_and_mocks_are_readable(api, actors, private, who):
    client = actors[who].client
    assert len(client.datasets) >= 1
    assert private["name"] in [d.name for d in client.datasets]
    assert [d.name for d in client.datasets.search(private["name"])] == [private["name"]]
    assert client.datasets.get(private["id"]).name == private["name"]
    dataset = client.datasets[private["name"]]
    assert dataset.summary == "has secrets"
    assert dataset.assets["table"].mock["name"].tolist() == ["alice", "bob", "carol"]
    assert dataset.assets["doc"].mock == {"owner": "someone", "values": [4, 5, 6]}
    assert dataset.assets["blob"].mock == b"mock-bytes"
    assert dataset.assets["arr"].mock.tolist() == [0] * len(SECRET)
    assert dataset.assets["hidden"].mock is None
    for name, (_, _, mock) in ASSETS.items():
        if mock is None:
            continue
        resp = api.get(mock_path(private, name), token=actors[who].token)
        assert resp.status == 200 and resp.raw == as_bytes(mock), resp
        assert resp.headers.get("x-content-sha256") == sha256(as_bytes(mock))
        assert_no_marker(resp, SECRET)


def test_mocks_refused_without_a_token(api, private):
    resp = api.get(mock_path(private, "table"))
    assert_error(resp, 401, "UNAUTHENTICATED")


# Refused: changes --------------------------------------------------------------------------------


@pytest.fixture
def nothing_changes(api, actors, private, module_server):
    """After the test: the dataset, the listing and the stored blobs exactly as before."""
    owner = actors["owner"].token
    before = api.get(DATASETS + "/" + private["id"], token=owner).json
    total = dataset_total(api, owner)
    files = blob_files(module_server.data_dir)
    yield
    assert api.get(DATASETS + "/" + private["id"], token=owner).json == before
    assert dataset_total(api, owner) == total
    assert blob_files(module_server.data_dir) == files


@pytest.mark.parametrize("who", UNPRIVILEGED)
def test_unprivileged_cannot_upload_blobs(api, actors, who, nothing_changes):
    for fmt, raw in (("csv", b"a\n1\n"), ("raw", b"x" * 5000)):
        resp = upload_blob(api, token_of(actors, who), fmt, raw)
        assert_error(resp, *expected_error(who))


@pytest.mark.parametrize("who", UNPRIVILEGED)
def test_unprivileged_cannot_create_datasets(api, actors, private, who, nothing_changes):
    resp = create_dataset(
        api,
        token_of(actors, who),
        unique("nope"),
        [{"name": "a", "data": private["blobs"]["doc"]["data"]}],
    )
    assert_error(resp, *expected_error(who))


@pytest.mark.parametrize("who", UNPRIVILEGED)
def test_unprivileged_cannot_update_datasets(api, actors, private, who, nothing_changes):
    resp = api.patch(
        DATASETS + "/" + private["id"], {"description": "defaced"}, token=token_of(actors, who)
    )
    assert_error(resp, *expected_error(who))


@pytest.mark.parametrize("who", UNPRIVILEGED)
def test_unprivileged_cannot_delete_datasets(api, actors, private, who, nothing_changes):
    resp = api.delete(DATASETS + "/" + private["id"], token=token_of(actors, who))
    assert_error(resp, *expected_error(who))


@pytest.mark.parametrize("who", ("guest", "scientist"))
def test_client_refuses_uploads_of_non_owners_before_sending(
    actors, who, monkeypatch, nothing_changes
):
    sent = []
    monkeypatch.setattr(_transfer, "upload", lambda *a, **k: sent.append(a))
    ds = sy.Dataset(
        name=unique("nope"),
        asset_list=[
            sy.Asset(name="a", data=pd.DataFrame({"x": [1]}), mock=pd.DataFrame({"x": [2]}))
        ],
    )
    with pytest.raises(sy.PermissionDeniedError, match="data owners and admins"):
        actors[who].client.upload_dataset(ds)
    assert sent == []


@pytest.mark.parametrize("who", ("guest", "scientist"))
def test_client_update_and_delete_refused(actors, private, who, nothing_changes):
    dataset = actors[who].client.datasets[private["name"]]
    with pytest.raises(sy.PermissionDeniedError):
        dataset.update(description="defaced")
    with pytest.raises(sy.PermissionDeniedError):
        dataset.delete()
    with pytest.raises(sy.PermissionDeniedError):
        actors[who].client.datasets.delete(private["name"])


def test_streamed_upload_of_a_scientist_is_refused_before_the_body(actors, nothing_changes):
    """The client's streaming upload gets the refusal (it asks with Expect: 100-continue)."""
    payload = _transfer.Payload("raw", content=b"\x00" * (3 << 20))
    with pytest.raises(sy.PermissionDeniedError) as info:
        _transfer.upload(actors["scientist"].client._transport, payload)
    assert info.value.status == 403
