"""A low-side server holds mock data only: private data is refused, mock-only assets work."""

import pandas as pd
import pytest

import datasite as sy
from datasite import _transfer
from dataset_helpers import (
    DATASETS,
    blob_files,
    create_dataset,
    dataset_total,
    make_actors,
    new_blob,
)
from helpers import Api, unique


@pytest.fixture(scope="module")
def low(module_launcher):
    return module_launcher.launch(server_side_type="low")


@pytest.fixture(scope="module")
def api(low):
    return Api(low.port)


@pytest.fixture(scope="module")
def actors(low):
    return make_actors(low.port)


def mock_frame():
    return pd.DataFrame({"age": [30, 40], "city": ["Paris", "Rome"]})


def test_server_says_it_is_low_side(actors):
    assert actors["owner"].client.metadata["server_side_type"] == "low"


def test_client_refuses_private_data_before_uploading_anything(actors, low, monkeypatch):
    sent = []
    monkeypatch.setattr(_transfer, "upload", lambda *a, **k: sent.append(a))
    files = blob_files(low.data_dir)
    ds = sy.Dataset(
        name=unique("low"),
        asset_list=[
            sy.Asset(name="mock_only", mock=mock_frame()),
            sy.Asset(name="private", data=mock_frame(), mock=mock_frame()),
        ],
    )
    with pytest.raises(sy.InvalidArgumentError) as info:
        actors["owner"].client.upload_dataset(ds)
    message = str(info.value)
    assert "low-side" in message and "'private'" in message and "'mock_only'" not in message
    assert sent == []
    assert blob_files(low.data_dir) == files
    with pytest.raises(sy.NotFoundError):
        actors["owner"].client.datasets[ds.name]


def test_server_refuses_data_in_a_low_side_dataset(api, actors):
    token = actors["owner"].token
    total = dataset_total(api, token)
    data = new_blob(api, token, "json", b"[1, 2]")["id"]
    mock = new_blob(api, token, "json", b"[3, 4]")["id"]
    name = unique("lowraw")
    resp = create_dataset(api, token, name, [{"name": "a", "data": data, "mock": mock}])
    assert resp.status in (400, 409) and resp.error, resp
    assert resp.error["code"] in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"), resp
    message = resp.error["message"].lower()
    assert "low" in message or "data" in message, resp
    assert dataset_total(api, token) == total
    assert api.get(DATASETS + "/" + name, token=token).status == 404


def test_mock_only_asset_works(actors):
    ds = sy.Dataset(name=unique("lowok"), summary="mock only")
    ds.add_asset(sy.Asset(name="table", mock=mock_frame()))
    ds.add_asset(sy.Asset(name="real", mock=[1, 2, 3], mock_is_real=True))
    result = actors["owner"].client.upload_dataset(ds)
    assert isinstance(result, sy.SyftSuccess)
    for who in ("scientist", "guest", "owner"):
        seen = actors[who].client.datasets[ds.name]
        pd.testing.assert_frame_equal(seen.assets["table"].mock, mock_frame())
        assert seen.assets["real"].mock == [1, 2, 3]
        assert seen.assets["real"].mock_is_real is True
    owner_view = actors["owner"].client.datasets[ds.name].assets["table"]
    assert owner_view.data_size is None and owner_view.data_sha256 is None
    with pytest.raises(sy.DatasiteError) as info:
        owner_view.data
    assert info.value.status is not None and 400 <= info.value.status < 500


def test_low_side_refuses_data_also_after_a_generated_mock(actors):
    """generate_mock needs private data, which has no place on a low-side server."""
    asset = sy.Asset(name="a", data=mock_frame())
    ds = sy.Dataset(name=unique("lowgen"), asset_list=[asset])
    with pytest.raises(sy.InvalidArgumentError, match="low-side"):
        actors["owner"].client.upload_dataset(ds)
