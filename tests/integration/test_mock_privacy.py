"""A generated mock shows the structure of the private data and what its owner declares, nothing
else (issue 11, "mocks tell the private data").

Private data is built to be recognizable: 5,000 rows, emails as JSON keys, nulls at chosen rows,
strings of distinctive lengths, a number column with a distinctive midpoint, a column of exactly 37
distinct values. The mock is generated through the real client with the default parameters and
read back by a guest, who must see none of it.
"""

import os

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from datasite import errors
from dataset_helpers import DATASETS
from helpers import ROOT_EMAIL, ROOT_PASSWORD, DetachedServer, assert_error, client_for, unique

ROWS = 5000


@pytest.fixture(scope="module")
def owner(actors):
    return actors["owner"].client


def private_table():
    i = np.arange(ROWS)
    amount = 1000.123 + (i * 31 % 901) + 0.0007
    amount[0], amount[1] = 1000.123, 1900.777  # midpoint 1450.45
    amount[i % 17 == 3] = np.nan  # nulls at rows 3, 20, 37, ...
    return pd.DataFrame(
        {
            "email": ["patient{}@hospital.org".format(k) for k in i],
            "name": ["x" * (3 + k * 7 % 29) for k in i],  # lengths 3..31 in a pattern
            "amount": amount,
            "code": ["C{}".format(k % 37) for k in i],  # 37 distinct values
        }
    )


def publish(owner, asset):
    ds = sy.Dataset(name=unique("mockpriv"), asset_list=[asset])
    owner.upload_dataset(ds)
    return ds.name


def guest_mock(actors, dataset, asset, api):
    """The mock as a guest reads it: the client's object, the raw bytes and the asset JSON."""
    guest = actors["guest"]
    seen = guest.client.datasets[dataset].assets[asset]
    raw = api.get("{}/{}/assets/{}/mock".format(DATASETS, dataset, asset), token=guest.token)
    assert raw.status == 200, raw
    return seen.mock, raw.raw, seen


def test_generated_table_mock_reveals_nothing_private(owner, actors, api):
    data = private_table()
    asset = sy.Asset(name="people", data=data)
    asset.generate_mock(owner)
    name = publish(owner, asset)
    mock, raw, seen = guest_mock(actors, name, "people", api)

    assert list(mock.columns) == list(data.columns)
    assert len(mock) == 100, "the private row count reached the mock"
    assert seen.schema["rows"] == 100
    assert b"@" not in raw and b"hospital" not in raw, "an email reached the mock"
    assert not mock.isna().any().any(), "the private nulls reached the mock"
    assert set(mock["name"].str.len()) <= {6, 7}, "string lengths of the private data"
    assert mock["code"].nunique() <= 10, "the private distinct count reached the mock"
    assert mock["amount"].between(0, 1).all()
    assert abs((mock["amount"].min() + mock["amount"].max()) / 2 - 1450.45) > 1000
    assert seen.mock_needs_regeneration is None, "only owners and admins see the flag"
    assert actors["owner"].client.datasets[name].assets["people"].mock_needs_regeneration is False


def test_generated_json_mock_shows_no_key_length_or_null(owner, actors, api):
    data = {
        "alice.smith@hospital.org": {"age": 34, "ward": "B", "visits": [1, 2, 3, 4, 5, 6, 7]},
        "bob.jones@hospital.org": {"age": 51, "ward": None, "visits": []},
        "carol@hospital.org": {"age": 47, "ward": "C12", "visits": [9]},
    }
    asset = sy.Asset(name="doc", data=data)
    asset.generate_mock(owner)
    name = publish(owner, asset)
    mock, raw, _ = guest_mock(actors, name, "doc", api)
    assert b"@" not in raw and b"age" not in raw, raw
    assert sorted(mock) == ["key_1", "key_2", "key_3"]

    # The owner declares the record keys (not the emails) public.
    asset = sy.Asset(name="doc", data=data)
    asset.generate_mock(owner, public_keys=["/*"], paths={"/*/age": {"min": 0, "max": 120}})
    name = publish(owner, asset)
    mock, raw, _ = guest_mock(actors, name, "doc", api)
    assert b"@" not in raw
    for record in mock.values():
        assert sorted(record) == ["age", "visits", "ward"]
        assert 0 <= record["age"] <= 120
        assert record["ward"] is not None and len(record["visits"]) == 3


def test_generated_array_mock_keeps_dtype_and_trailing_dimensions(owner, actors, api):
    data = np.full((ROWS, 3), 1450.45)
    data[::17] = np.nan
    asset = sy.Asset(name="arr", data=data)
    asset.generate_mock(owner, values={"min": -1, "max": 1})
    name = publish(owner, asset)
    mock, _, _ = guest_mock(actors, name, "arr", api)
    assert mock.dtype == data.dtype and mock.shape == (100, 3)
    assert not np.isnan(mock).any() and ((mock >= -1) & (mock <= 1)).all()


def test_owner_parameters_shape_the_mock(owner):
    asset = sy.Asset(name="people", data=private_table())
    asset.generate_mock(
        owner,
        seed=5,
        rows=250,
        columns={
            "code": {"categories": ["A", "B"]},
            "amount": {"min": 10, "max": 20, "null_fraction": 0.5},
        },
    )
    mock = asset.mock
    assert len(mock) == 250
    assert set(mock["code"]) == {"A", "B"}
    values = mock["amount"].dropna()
    assert values.between(10, 20).all() and 50 < mock["amount"].isna().sum() < 200
    again = sy.Asset(name="people", data=private_table())
    again.generate_mock(
        owner,
        seed=5,
        rows=250,
        columns={
            "code": {"categories": ["A", "B"]},
            "amount": {"min": 10, "max": 20, "null_fraction": 0.5},
        },
    )
    pd.testing.assert_frame_equal(again.mock, mock)


@pytest.mark.parametrize(
    "params,message",
    [
        ({"rows": 0}, "rows: must be a whole number from 1 to 1000000"),
        ({"columns": {"agee": {"min": 0, "max": 1}}}, "columns.agee: the table has no column"),
        ({"columns": {"email": {"min": 0, "max": 1}}}, "columns.email.min: column 'email' holds"),
        ({"columns": {"amount": {"min": 2, "max": 1}}}, "columns.amount.min: must not be greater"),
        ({"public_keys": ["/"]}, "public_keys: applies to JSON documents only"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(owner, params, message):
    asset = sy.Asset(name="people", data=private_table().head(5))
    with pytest.raises(errors.InvalidArgumentError) as err:
        asset.generate_mock(owner, **params)
    assert message in str(err.value)


def test_bad_parameters_over_http(actors, api):
    token = actors["owner"].token
    blob = api.post("/api/v1/blobs?format=csv", raw=b"a,b\n1,x\n", token=token,
                    headers={"Content-Type": "application/octet-stream"})
    assert blob.status == 201, blob
    path = "/api/v1/blobs/{}/mock".format(blob.json["id"])
    resp = api.post(path, {"row": 5}, token=token)
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert "row" in resp.error["message"]
    resp = api.post(path, {"columns": {"b": {"categories": [1]}}}, token=token)
    assert_error(resp, 400, "INVALID_ARGUMENT")
    assert resp.error["message"].startswith("columns.b.categories[0]:")
    resp = api.post(path, {"rows": 3}, token=token)
    assert resp.status == 201 and resp.json["schema"]["rows"] == 3


def test_regenerate_replaces_the_mock_and_only_owners_may(owner, actors, api):
    data = private_table().head(50)
    name = publish(owner, sy.Asset(name="people", data=data, mock=data.head(3)))
    path = "{}/{}/assets/people/mock".format(DATASETS, name)
    for key in ("scientist", "guest"):
        resp = api.post(path, {}, token=actors[key].token)
        assert resp.status in (401, 403), (key, resp)
    assert api.post(path, {}).status == 401

    asset = owner.datasets[name].assets["people"]
    result = asset.regenerate_mock(rows=7, seed=3)
    assert isinstance(result, sy.SyftSuccess)
    assert len(asset.mock) == 7 and asset.mock_needs_regeneration is False
    seen = actors["guest"].client.datasets[name].assets["people"]
    assert len(seen.mock) == 7 and seen.schema["rows"] == 7
    resp = api.post("{}/{}/assets/nope/mock".format(DATASETS, name), {},
                    token=actors["owner"].token)
    assert_error(resp, 404, "NOT_FOUND")


# Upgrade from a datasite whose mocks could reveal private data -----------------------------------

OLD_BINARY = os.environ.get("DATASITE_OLD_BINARY")


@pytest.mark.skipif(
    not OLD_BINARY,
    reason="set DATASITE_OLD_BINARY to a datasite built before store schema version 6",
)
def test_upgrade_flags_mocks_the_old_server_generated(binary, tmp_path):
    """A data dir written by the old binary: after the upgrade its generated mock is flagged to
    the owner (not to a guest), an uploaded mock is not, and regenerating clears the flag."""
    data_dir = tmp_path / "data"
    old = DetachedServer(OLD_BINARY, data_dir)
    try:
        api = old.start()
        admin = client_for(old.port, api.login(ROOT_EMAIL, ROOT_PASSWORD))
        data = private_table().head(200)
        generated = sy.Asset(name="generated", data=data)
        generated.generate_mock(admin)
        assert len(generated.mock) == 200, "the old server copies the row count"
        uploaded = sy.Asset(name="uploaded", data=data, mock=data.head(2))
        admin.upload_dataset(sy.Dataset(name="old", asset_list=[generated, uploaded]))
    finally:
        old.stop()

    new = DetachedServer(binary, data_dir, name=old.name)
    try:
        api = new.start()
        admin = client_for(new.port, api.login(ROOT_EMAIL, ROOT_PASSWORD))
        assets = admin.datasets["old"].assets
        assert assets["generated"].mock_needs_regeneration is True
        assert assets["uploaded"].mock_needs_regeneration is False
        assert "may reveal private data" in repr(assets["generated"])
        assert "may reveal private data" not in repr(assets["uploaded"])
        guest = client_for(new.port, api.guest())
        assert guest.datasets["old"].assets["generated"].mock_needs_regeneration is None

        assets["generated"].regenerate_mock()
        assert assets["generated"].mock_needs_regeneration is False
        assert len(assets["generated"].mock) == 100
        again = admin.datasets["old"].assets["generated"]
        assert again.mock_needs_regeneration is False
    finally:
        new.stop()
