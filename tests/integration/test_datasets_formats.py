"""Every asset format goes up and comes back equal: DataFrame, Series, ndarray, JSON, bytes, and
file paths of each extension; the schema the server reports; empty mocks; generated mocks.
"""

import json

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from datasite import _transfer
from dataset_helpers import file_sha256, marker, new_blob, sha256, upload_blob
from helpers import assert_error, unique


@pytest.fixture(scope="module")
def owner(actors):
    return actors["owner"].client


@pytest.fixture(scope="module")
def scientist(actors):
    return actors["scientist"].client


def upload(owner, data, mock, name="asset", mock_is_real=False, description=None):
    """Uploads a one-asset dataset as ``owner``; the dataset as the server answered it."""
    ds = sy.Dataset(name=unique("ds"), summary="formats")
    ds.add_asset(
        sy.Asset(
            name=name, description=description, data=data, mock=mock, mock_is_real=mock_is_real
        )
    )
    result = owner.upload_dataset(ds)
    assert isinstance(result, sy.SyftSuccess), result
    assert result.value.name == ds.name
    return result.value


def frame():
    return pd.DataFrame(
        {
            "age": [31, 45, -2, 0],
            "income": [1200.5, 0.1, -3.25, 1e6],
            "member": [True, False, True, True],
            "city": ["Paris", "São Paulo", "a,b", 'say "hi"'],
        }
    )


TABLE_COLUMNS = [
    {"name": "age", "type": "int"},
    {"name": "income", "type": "float"},
    {"name": "member", "type": "bool"},
    {"name": "city", "type": "string"},
]


# DataFrame, Series -------------------------------------------------------------------------------


def test_dataframe_round_trips_with_dtypes(owner, scientist):
    data = frame()
    mock = frame().assign(age=[1, 2, 3, 4], city=["x", "y", "z", "w"])
    uploaded = upload(owner, data, mock)
    asset = owner.datasets[uploaded.name].assets["asset"]
    assert asset.format == "csv"
    pd.testing.assert_frame_equal(asset.data, data)
    pd.testing.assert_frame_equal(asset.mock, mock)
    pd.testing.assert_frame_equal(scientist.datasets[uploaded.id].assets[0].mock, mock)
    assert list(asset.data.dtypes.astype(str)) == ["int64", "float64", "bool", "object"]


def test_dataframe_schema_names_columns_types_and_rows(owner, scientist):
    uploaded = upload(owner, frame(), frame())
    for client in (owner, scientist):
        asset = client.datasets[uploaded.name].assets["asset"]
        assert asset.schema == {"kind": "table", "columns": TABLE_COLUMNS, "rows": 4}
        assert asset.shape == (4, 4)


def test_named_series_comes_back_as_a_series(owner):
    data = pd.Series([1.5, 2.5, 3.5], name="score")
    uploaded = upload(owner, data, pd.Series([0.5, 0.25, 9.0], name="score"))
    asset = owner.datasets[uploaded.name].assets[0]
    assert asset.schema["columns"] == [{"name": "score", "type": "float"}]
    # Issue 12: a Series comes back as a Series, not as a DataFrame of one column.
    pd.testing.assert_series_equal(asset.data, data)
    pd.testing.assert_series_equal(asset.mock, pd.Series([0.5, 0.25, 9.0], name="score"))


def test_unnamed_series_column_is_called_value(owner):
    uploaded = upload(owner, pd.Series([1, 2]), pd.Series([3, 4]))
    asset = owner.datasets[uploaded.name].assets[0]
    assert asset.schema["columns"] == [{"name": "value", "type": "int"}]
    pd.testing.assert_series_equal(asset.data, pd.Series([1, 2]))
    assert asset.data.name is None


# ndarray -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype,shape",
    [
        ("<f8", (7,)),
        ("<f4", (4, 2)),
        ("<i4", (3, 4)),
        ("<i8", (2, 2)),
        ("|u1", (2, 3, 4)),
        ("|b1", (5,)),
        ("<i2", (1, 6)),
    ],
)
def test_ndarray_round_trips(owner, scientist, dtype, shape):
    rng = np.random.default_rng(7)
    data = (rng.random(shape) * 100).astype(dtype)
    mock = (rng.random(shape) * 100).astype(dtype)
    uploaded = upload(owner, data, mock)
    asset = owner.datasets[uploaded.name].assets[0]
    assert asset.format == "npy"
    for got, expected in ((asset.data, data), (asset.mock, mock)):
        assert isinstance(got, np.ndarray)
        assert got.dtype.str == np.dtype(dtype).str and got.shape == shape
        assert np.array_equal(got, expected)
    seen = scientist.datasets[uploaded.name].assets[0]
    assert seen.schema == {"kind": "array", "dtype": np.dtype(dtype).str, "shape": list(shape)}
    assert np.array_equal(seen.mock, mock)


def test_fortran_ordered_array_round_trips(owner):
    data = np.asfortranarray(np.arange(12, dtype="<f8").reshape(3, 4))
    uploaded = upload(owner, data, data + 1)
    got = owner.datasets[uploaded.name].assets[0].data
    assert got.shape == (3, 4) and np.array_equal(got, data)


# JSON, bytes -------------------------------------------------------------------------------------


def test_json_list_round_trips(owner, scientist):
    data = [{"a": 1, "b": [1.5, None, True]}, "é", 3]
    mock = [{"a": 2, "b": [0.5, None, False]}, "x", 4]
    uploaded = upload(owner, data, mock)
    asset = owner.datasets[uploaded.name].assets[0]
    assert asset.format == "json"
    assert asset.data == data and asset.mock == mock
    assert scientist.datasets[uploaded.name].assets[0].schema == {
        "kind": "json",
        "type": "array",
        "length": 3,
    }


def test_json_dict_round_trips(owner):
    data = {"k": {"nested": [1, 2]}, "n": 1.25, "s": "text"}
    uploaded = upload(owner, data, {"k": {"nested": [3]}, "n": 0.5, "s": "mock"})
    asset = owner.datasets[uploaded.name].assets[0]
    assert asset.data == data
    assert asset.schema["kind"] == "json" and asset.schema["type"] == "object"


def test_bytes_round_trip(owner, scientist):
    data = bytes(range(256)) * 3
    mock = b"\x00mock\xff"
    uploaded = upload(owner, data, mock)
    asset = owner.datasets[uploaded.name].assets[0]
    assert asset.format == "raw"
    assert asset.data == data and asset.mock == mock
    seen = scientist.datasets[uploaded.name].assets[0]
    assert seen.schema == {"kind": "bytes"} and seen.mock == mock
    assert seen.mock_size == len(mock) and seen.mock_sha256 == sha256(mock)
    assert asset.data_size == len(data) and asset.data_sha256 == sha256(data)


# File paths --------------------------------------------------------------------------------------


def write_files(tmp_path, ext):
    """(data path, mock path, loader) for one extension."""
    data_path, mock_path = tmp_path / ("data" + ext), tmp_path / ("mock" + ext)
    if ext == ".csv":
        frame().to_csv(data_path, index=False)
        frame().assign(age=[5, 6, 7, 8]).to_csv(mock_path, index=False)
        return data_path, mock_path, pd.read_csv
    if ext == ".json":
        data_path.write_text(json.dumps({"rows": [1, 2, 3]}))
        mock_path.write_text(json.dumps({"rows": [4, 5, 6]}))
        return data_path, mock_path, lambda p: json.loads(open(p).read())
    if ext == ".npy":
        np.save(data_path, np.arange(10, dtype="<i8").reshape(2, 5))
        np.save(mock_path, np.ones((2, 5), dtype="<i8"))
        return data_path, mock_path, np.load
    data_path.write_bytes(b"\x89PNG fake \x00" * 10)
    mock_path.write_bytes(b"mock bytes")
    return data_path, mock_path, lambda p: open(p, "rb").read()


def equal(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
        return True
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize(
    "ext,fmt",
    [(".csv", "csv"), (".json", "json"), (".npy", "npy"), (".bin", "raw"), (".png", "raw")],
)
@pytest.mark.parametrize("as_str", [False, True], ids=["Path", "str"])
def test_file_path_round_trips_in_the_format_of_its_extension(owner, tmp_path, ext, fmt, as_str):
    data_path, mock_path, load = write_files(tmp_path, ext)
    given = (str(data_path), str(mock_path)) if as_str else (data_path, mock_path)
    uploaded = upload(owner, *given)
    asset = owner.datasets[uploaded.name].assets[0]
    assert asset.format == fmt
    assert equal(asset.data, load(data_path))
    assert equal(asset.mock, load(mock_path))
    assert asset.data_sha256 == file_sha256(data_path)
    assert asset.mock_sha256 == file_sha256(mock_path)
    assert asset.data_size == data_path.stat().st_size
    assert data_path.exists() and mock_path.exists(), "the user's files stay where they were"


def test_download_to_a_path_keeps_the_exact_bytes(owner, tmp_path):
    data_path, mock_path, _ = write_files(tmp_path, ".csv")
    uploaded = upload(owner, data_path, mock_path)
    asset = owner.datasets[uploaded.name].assets[0]
    out_data = asset.download_data(tmp_path / "out-data.csv")
    out_mock = asset.download_mock(tmp_path / "out-mock.csv")
    assert out_data.read_bytes() == data_path.read_bytes()
    assert out_mock.read_bytes() == mock_path.read_bytes()


# Blob answer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt,raw,schema",
    [
        (
            "csv",
            b"a,b\n1,x\n2,y\n",
            {
                "kind": "table",
                "rows": 2,
                "columns": [{"name": "a", "type": "int"}, {"name": "b", "type": "string"}],
            },
        ),
        ("json", b'{"a": 1}', {"kind": "json", "type": "object", "length": 1}),
        ("raw", b"\x00\x01\x02", {"kind": "bytes"}),
    ],
)
def test_blob_upload_answers_id_size_sha256_format_schema(api, actors, fmt, raw, schema):
    resp = upload_blob(api, actors["owner"].token, fmt, raw)
    assert resp.status == 201, resp
    blob = resp.json
    assert set(blob) >= {"id", "size", "sha256", "format", "schema"}, blob
    assert blob["size"] == len(raw) and blob["sha256"] == sha256(raw) and blob["format"] == fmt
    assert blob["schema"] == schema
    got = api.get("/api/v1/blobs/" + blob["id"], token=actors["owner"].token)
    assert got.status == 200 and got.raw == raw, got
    assert got.headers.get("x-content-sha256") == sha256(raw)
    assert got.headers.get("content-length") == str(len(raw))


def test_npy_blob_schema(api, actors):
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 2), dtype="<f8"))
    blob = new_blob(api, actors["owner"].token, "npy", buf.getvalue())
    assert blob["schema"] == {"kind": "array", "dtype": "<f8", "shape": [3, 2]}


@pytest.mark.parametrize(
    "fmt,content_type",
    [("csv", "text/csv"), ("json", "application/json"), ("raw", "application/octet-stream")],
)
def test_downloads_carry_the_content_type_of_their_format(api, actors, fmt, content_type):
    raw = {"csv": b"a\n1\n", "json": b"[1]", "raw": b"xyz"}[fmt]
    owner = actors["owner"]
    data = new_blob(api, owner.token, fmt, raw)
    mock = new_blob(api, owner.token, fmt, raw)
    name = unique("ctype")
    resp = api.post(
        "/api/v1/datasets",
        {"name": name, "assets": [{"name": "a", "data": data["id"], "mock": mock["id"]}]},
        token=owner.token,
    )
    assert resp.status == 201, resp
    for route in ("mock", "data"):
        got = api.get(
            "/api/v1/datasets/{}/assets/a/{}".format(resp.json["id"], route), token=owner.token
        )
        assert got.status == 200, got
        assert got.headers.get("content-type", "").split(";")[0].strip() == content_type
        assert got.headers.get("content-length") == str(len(raw))
        assert got.headers.get("x-content-sha256") == sha256(raw)


# Empty mock, mock_is_real ------------------------------------------------------------------------


def test_empty_mock_reads_as_none_and_its_route_is_not_found(api, owner, scientist, actors):
    ds = sy.Dataset(name=unique("nomock"))
    asset = sy.Asset(name="secret", data=frame())
    asset.no_mock()
    ds.add_asset(asset)
    owner.upload_dataset(ds)
    seen = scientist.datasets[ds.name].assets["secret"]
    assert seen.has_mock is False
    assert seen.mock is None
    assert seen.mock_is_real is False
    dataset_id = scientist.datasets[ds.name].id
    resp = api.get(
        "/api/v1/datasets/{}/assets/secret/mock".format(dataset_id),
        token=actors["scientist"].token,
    )
    assert_error(resp, 404, "NOT_FOUND")
    pd.testing.assert_frame_equal(owner.datasets[ds.name].assets["secret"].data, frame())


def test_mock_is_real_is_kept(owner, scientist):
    uploaded = upload(owner, [1, 2], [1, 2], mock_is_real=True)
    assert scientist.datasets[uploaded.name].assets[0].mock_is_real is True
    uploaded = upload(owner, [1, 2], [3, 4])
    assert scientist.datasets[uploaded.name].assets[0].mock_is_real is False


def test_asset_description_is_kept(owner, scientist):
    uploaded = upload(owner, [1], [2], description="one *row*")
    assert scientist.datasets[uploaded.name].assets[0].description == "one *row*"


# Generated mocks ---------------------------------------------------------------------------------


@pytest.fixture
def count_uploads(monkeypatch):
    calls = []
    real = _transfer.upload

    def counting(transport, payload, **kwargs):
        calls.append(payload.format)
        return real(transport, payload, **kwargs)

    monkeypatch.setattr(_transfer, "upload", counting)
    return calls


def private_table(n=60):
    rng = np.random.default_rng(11)
    return pd.DataFrame(
        {
            "id": rng.integers(10**12, 10**13, size=n),
            "weight": rng.random(n) * 1000,
            "flag": rng.random(n) > 0.5,
            "name": ["{}-{}".format(marker(), i) for i in range(n)],
        }
    )


def test_generated_table_mock_has_the_structure_and_no_private_value(
    owner, scientist, count_uploads
):
    data = private_table()
    asset = sy.Asset(name="people", data=data)
    result = asset.generate_mock(owner)
    assert isinstance(result, sy.SyftSuccess)
    mock = asset.mock
    assert isinstance(mock, pd.DataFrame) and mock is result.value
    assert list(mock.columns) == list(data.columns)
    assert list(mock.dtypes.astype(str)) == list(data.dtypes.astype(str))
    assert len(mock) == 100, "a fixed row count, not the private one"
    assert not set(mock["name"]) & set(data["name"])
    assert not any("PRIVATE-MARKER" in str(v) for v in mock["name"])
    assert not set(mock["id"]) & set(data["id"])
    assert not set(mock["weight"]) & set(data["weight"])
    assert asset.mock_is_real is False
    assert asset.schema["kind"] == "table"
    assert count_uploads == ["csv"], "generate_mock uploads the private data once"

    ds = sy.Dataset(name=unique("generated"), asset_list=[asset])
    owner.upload_dataset(ds)
    assert count_uploads == ["csv"], "upload_dataset reuses the blobs generate_mock made"
    seen = scientist.datasets[ds.name].assets["people"]
    pd.testing.assert_frame_equal(seen.mock, mock)
    pd.testing.assert_frame_equal(owner.datasets[ds.name].assets["people"].data, data)


@pytest.mark.parametrize("dtype,shape", [("<f8", (40, 3)), ("<i4", (25,)), ("<f4", (2, 3, 4))])
def test_generated_array_mock_has_dtype_and_shape_and_no_private_value(owner, dtype, shape):
    rng = np.random.default_rng(3)
    data = (rng.random(shape) * 10**6 + 10**6).astype(dtype)
    asset = sy.Asset(name="arr", data=data)
    asset.generate_mock(owner)
    mock = asset.mock
    assert isinstance(mock, np.ndarray)
    assert mock.dtype.str == np.dtype(dtype).str and mock.shape == (100,) + shape[1:]
    if np.dtype(dtype).kind == "f":
        assert not np.isin(mock, data).any(), "a private value was copied into the mock"
    else:
        assert not np.array_equal(mock, data)


def test_generated_mock_copies_no_category_of_a_few_distinct_values(owner):
    secret = marker()
    data = pd.DataFrame(
        {"group": ["{}-{}".format(secret, i % 3) for i in range(90)], "n": list(range(90))}
    )
    asset = sy.Asset(name="groups", data=data)
    asset.generate_mock(owner)
    assert list(asset.mock.columns) == ["group", "n"] and len(asset.mock) == 100
    leaked = sorted(set(asset.mock["group"]) & set(data["group"]))
    assert leaked == [], "private values copied into the mock: {}".format(leaked)
    assert not any(secret in str(v) for v in asset.mock["group"])


def test_same_seed_gives_the_same_mock(api, actors):
    token = actors["owner"].token
    blob = new_blob(api, token, "csv", frame().to_csv(index=False).encode())
    mocks = []
    for seed in (7, 7, 8):
        resp = api.post("/api/v1/blobs/{}/mock".format(blob["id"]), {"seed": seed}, token=token)
        assert resp.status == 201, resp
        assert resp.json["format"] == "csv"
        assert resp.json["schema"]["columns"] == TABLE_COLUMNS
        mocks.append(api.get("/api/v1/blobs/" + resp.json["id"], token=token).raw)
    assert mocks[0] == mocks[1]
    assert mocks[0] != mocks[2]


def test_generated_json_mock_keeps_the_structure_and_no_private_value(owner):
    secret = marker()
    data = {"name": secret, "values": [1.5, 2.5, 3.5], "nested": {"k": secret, "n": 12345}}
    asset = sy.Asset(name="doc", data=data)
    asset.generate_mock(owner, public_keys=["", "/nested"])
    mock = asset.mock
    assert isinstance(mock, dict) and sorted(mock) == sorted(data)
    assert isinstance(mock["values"], list) and len(mock["values"]) == 3
    assert sorted(mock["nested"]) == ["k", "n"]
    assert secret not in json.dumps(mock)
    assert asset.schema == {"kind": "json", "type": "object", "length": 3}


def test_raw_bytes_cannot_be_mocked_and_the_refusal_says_so(owner):
    asset = sy.Asset(name="bin", data=b"\x00private\x01")
    with pytest.raises(sy.DatasiteError) as info:
        asset.generate_mock(owner)
    assert info.value.status is not None and 400 <= info.value.status < 500
    assert "raw" in info.value.message.lower()
    assert asset.mock is None


@pytest.mark.parametrize("body", [{"seed": "x"}, {"seed": -1}, {"seed": 1.5}, {"colour": 1}])
def test_bad_mock_request_is_refused(api, actors, body):
    token = actors["owner"].token
    blob = new_blob(api, token, "json", b"[1, 2]")
    resp = api.post("/api/v1/blobs/{}/mock".format(blob["id"]), body, token=token)
    assert_error(resp, 400, "INVALID_ARGUMENT")


def test_generate_mock_without_data_is_refused(owner):
    with pytest.raises(ValueError, match="no private data"):
        sy.Asset(name="x").generate_mock(owner)
