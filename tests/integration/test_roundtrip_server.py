"""Issue 12, exact round trips through a real server: generated DataFrames, Series and ndarrays go
up as assets (private data and mocks, each with its own sidecar) and come back exactly; the code of
a job sees exactly what the owner uploaded (its input is read with the sidecar inside the sandbox)
and its result comes back exactly (written with a sidecar by the runner). Then each dtype family on
its own, the refusals of bad sidecars by the server, and a job that forges its result's sidecar.
"""

import random
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import datasite as sy
from datasite import errors
from datasite.jobs import Job
from helpers import needs_sandbox, unique
import roundtrip_values as rv

FRAMES = 160  # DataFrames and Series, as assets and as jobs' inputs and results
ARRAYS = 60  # ndarrays, as assets and results
ASSETS_PER_DATASET = 100


@pytest.fixture(scope="module")
def owner(actors):
    return actors["owner"]


@pytest.fixture(scope="module")
def scientist(actors):
    return actors["scientist"].client


def _values(seed, count, kinds):
    rng = random.Random(seed)
    return [rv.value_from(rng, kinds) for _ in range(count)]


def _upload(owner_client, pairs):
    """Uploads (data, mock) pairs as assets a0, a1, ... of datasets of at most 100 assets; returns
    the uploaded assets as the owner reads them, in order."""
    assets = []
    for start in range(0, len(pairs), ASSETS_PER_DATASET):
        ds = sy.Dataset(name=unique("roundtrip"), summary="generated values")
        chunk = pairs[start:start + ASSETS_PER_DATASET]
        for i, (data, mock) in enumerate(chunk):
            ds.add_asset(sy.Asset(name="a{}".format(i), data=data, mock=mock))
        uploaded = owner_client.upload_dataset(ds).value
        remote = owner_client.datasets[uploaded.id]
        assets.extend(remote.assets["a{}".format(i)] for i in range(len(chunk)))
    return assets


def _echo(api, owner, asset, index, mock):
    """Runs, as the owner, a function returning its input unchanged on ``asset``'s private data
    (a review run) or its mock; returns the job's value as the client decodes it."""
    source = "def echo{0}(data):\n    return data\n".format(index)
    code = api.post("/api/v1/code", token=owner.token, body={
        "name": "echo{}".format(index), "source": source,
        "inputs": {"data": {"asset_id": asset.id}}})
    assert code.status == 201, code
    run = api.post("/api/v1/code/{}/run".format(code.json["id"]), token=owner.token,
                   body={"mock": mock, "blocking": True})
    assert run.status in (200, 201), run
    return Job(run.json, owner.client).get()


@needs_sandbox
def test_generated_values_round_trip_as_assets_inputs_and_results(api, owner, scientist):
    started = time.monotonic()
    frames = _values(12, 2 * FRAMES, ("frame", "series"))
    arrays = _values(13, 2 * ARRAYS, ("array",))
    pairs = list(zip(frames[::2], frames[1::2])) + list(zip(arrays[::2], arrays[1::2]))
    assets = _upload(owner.client, pairs)
    by_id = {a.id: pair for a, pair in zip(assets, pairs)}
    for asset, (data, mock) in zip(assets, pairs):
        rv.assert_same(data, asset.data)
        rv.assert_same(mock, asset.mock)
    for dataset_id in {a.dataset_id for a in assets}:
        for asset in scientist.datasets[dataset_id].assets:
            rv.assert_same(by_id[asset.id][1], asset.mock)
    for index, (asset, (data, mock)) in enumerate(zip(assets, pairs)):
        rv.assert_same(data, _echo(api, owner, asset, index, mock=False))
        if index % 2 == 0:
            rv.assert_same(mock, _echo(api, owner, asset, index + 100000, mock=True))
    assert time.monotonic() - started < 170


# Each dtype family through the whole path ---------------------------------------------------------

FAMILIES = ["int", "uint", "float", "bool", "Int", "Float", "boolean", "string", "object_str",
            "object_mixed", "datetime", "datetime_tz", "timedelta", "category"]


@needs_sandbox
def test_each_dtype_family_round_trips_as_asset_input_and_result(api, owner, scientist):
    rng = random.Random(7)
    pairs = []
    for family in FAMILIES:
        columns = {"{}_{}".format(family, i): rv.column(rng, 6, family).array for i in range(3)}
        data = pd.DataFrame(columns, index=pd.Index(list("abcdef"), name="key"))
        mock = pd.DataFrame({k: v[:2] for k, v in columns.items()}).set_axis(
            pd.MultiIndex.from_tuples([(1, "x"), (2, "y")], names=["n", None]))
        pairs.append((data, mock))
    pairs.append((pd.Series(pd.array([1, None], dtype="Int8"), name="only"),
                  pd.Series(pd.array([None], dtype="Int8"), name="only")))
    pairs.append((np.array(["a", "b"]), np.array(["zz"])))
    assets = _upload(owner.client, pairs)
    for index, (asset, (data, mock)) in enumerate(zip(assets, pairs)):
        rv.assert_same(data, asset.data)
        rv.assert_same(mock, asset.mock)
        rv.assert_same(data, _echo(api, owner, asset, 200000 + index, mock=False))
        rv.assert_same(mock, _echo(api, owner, asset, 300000 + index, mock=True))


@needs_sandbox
def test_the_job_sees_the_uploaded_dtypes_and_index(api, owner):
    data = pd.DataFrame({"zip": ["011", "02139"], "x": np.linspace(0, 1, 2),
                         "when": pd.to_datetime(["2020-01-01", None]).tz_localize("UTC")},
                        index=pd.RangeIndex(5, 7, name="row"))
    (asset,) = _upload(owner.client, [(data, data)])
    source = ("def describe(data):\n    return {'dtypes': [str(t) for t in data.dtypes], "
              "'index': repr(data.index), 'zip': list(data['zip'])}\n")
    code = api.post("/api/v1/code", token=owner.token, body={
        "name": "describe", "source": source, "inputs": {"data": {"asset_id": asset.id}}})
    run = api.post("/api/v1/code/{}/run".format(code.json["id"]), token=owner.token,
                   body={"blocking": True})
    value = Job(run.json, owner.client).get()
    assert value == {"dtypes": ["object", "float64", "datetime64[ns, UTC]"],
                     "index": "RangeIndex(start=5, stop=7, step=1, name='row')",
                     "zip": ["011", "02139"]}


# Refusals -----------------------------------------------------------------------------------------


def _blob(api, token, fmt, raw):
    resp = api.post("/api/v1/blobs?format=" + fmt, token=token, raw=raw,
                    headers={"Content-Type": "application/octet-stream"})
    assert resp.status == 201, resp
    return resp.json["id"]


GOOD_META = {"datasite": "pandas/1", "kind": "frame", "columns_names": [None],
             "columns_dtype": "object", "index": {"range": [0, 2, 1], "name": None},
             "columns": [{"dtype": "int64", "name": "a"}, {"dtype": "object", "name": "b"}]}


@pytest.mark.parametrize("meta,message", [
    ("not an object", "must be an object"),
    (dict(GOOD_META, columns=GOOD_META["columns"][:1]), "the CSV has 2"),
    (dict(GOOD_META, code="import os"), "keys"),
    (dict(GOOD_META, columns=[{"dtype": "O", "name": "a"}, GOOD_META["columns"][1]]),
     "unknown dtype"),
    (dict(GOOD_META, datasite="pandas/9"), "pandas/1"),
    (dict(GOOD_META, columns=[{"dtype": "int64", "name": "x" * (300 << 10)},
                              GOOD_META["columns"][1]]), "longer than"),
])
def test_the_server_refuses_a_bad_sidecar(api, owner, meta, message):
    data = _blob(api, owner.token, "csv", b"a,b\r\n1,x\r\n2,y\r\n")
    resp = api.post("/api/v1/datasets", token=owner.token, body={
        "name": unique("badmeta"), "assets": [{"name": "a", "data": data, "data_meta": meta}]})
    assert resp.status == 400, resp
    assert message in resp.error["message"], resp


def test_a_sidecar_needs_a_csv_and_its_file(api, owner):
    raw = _blob(api, owner.token, "raw", b"bytes")
    resp = api.post("/api/v1/datasets", token=owner.token, body={
        "name": unique("badmeta"), "assets": [{"name": "a", "data": raw, "data_meta": GOOD_META}]})
    assert resp.status == 400 and "only a CSV file has a sidecar" in resp.error["message"], resp
    csv = _blob(api, owner.token, "csv", b"a,b\r\n1,x\r\n2,y\r\n")
    resp = api.post("/api/v1/datasets", token=owner.token, body={
        "name": unique("badmeta"), "assets": [{"name": "a", "data": csv, "mock_meta": GOOD_META}]})
    assert resp.status == 400 and "mock_meta is given without its mock" in resp.error["message"]


def test_the_private_sidecar_is_shown_to_owners_only(api, owner, scientist):
    data = pd.DataFrame({"secret": pd.Categorical(["private-category-value"])})
    mock = pd.DataFrame({"secret": pd.Categorical(["mock-value"])})
    (asset,) = _upload(owner.client, [(data, mock)])
    as_scientist = scientist.datasets[asset.dataset_id].assets[0]
    assert "private-category-value" not in str(as_scientist.to_dict())
    assert as_scientist.to_dict()["mock_meta"]["columns"][0]["categories"]["values"] == [
        "mock-value"]
    assert "data_meta" not in as_scientist.to_dict()
    assert owner.client.datasets[asset.dataset_id].assets[0].to_dict()["data_meta"]


@needs_sandbox
def test_a_job_that_forges_its_result_sidecar_fails(api, owner):
    data = pd.DataFrame({"a": [1, 2]})
    (asset,) = _upload(owner.client, [(data, data)])
    source = ("def forge(data):\n    import sys\n    runner = sys.modules['__main__']\n"
              "    runner.sidecar_dumps = lambda meta: '{\"datasite\": \"pandas/1\", "
              "\"kind\": \"frame\", \"eval\": 1}'\n    return data\n")
    code = api.post("/api/v1/code", token=owner.token, body={
        "name": "forge", "source": source, "inputs": {"data": {"asset_id": asset.id}}})
    assert code.status == 201, code
    run = api.post("/api/v1/code/{}/run".format(code.json["id"]), token=owner.token,
                   body={"blocking": True})
    job = Job(run.json, owner.client)
    with pytest.raises(errors.DatasiteError, match="sidecar was refused"):
        job.get()


@needs_sandbox
def test_an_object_array_result_is_refused_saying_why(api, owner):
    data = pd.DataFrame({"a": [1]})
    (asset,) = _upload(owner.client, [(data, data)])
    code = api.post("/api/v1/code", token=owner.token, body={
        "name": "objects", "source": "def objects(data):\n    import numpy\n"
        "    return numpy.array([{'a': 1}], dtype=object)\n",
        "inputs": {"data": {"asset_id": asset.id}}})
    run = api.post("/api/v1/code/{}/run".format(code.json["id"]), token=owner.token,
                   body={"blocking": True})
    with pytest.raises(errors.DatasiteError, match="never travel as pickles"):
        Job(run.json, owner.client).get()


def test_the_server_still_reads_types_and_makes_mocks_of_a_sidecar_csv(owner):
    # Missing floats and datetimes are empty cells, so the server's schema keeps the column types
    # and a generated mock takes the owner's bounds.
    data = pd.DataFrame({"n": [1, 2, 3], "x": [0.5, np.nan, 2.0], "ok": [True, False, True],
                         "when": pd.to_datetime(["2020-01-01", None, "2021-01-01"]),
                         "name": ["a", None, "c"]})
    asset = sy.Asset(name="t", data=data)
    asset.generate_mock(owner.client, seed=1, rows=5, columns={"x": {"min": 10, "max": 20}})
    assert asset.mock["x"].between(10, 20).all()
    ds = sy.Dataset(name=unique("types"))
    ds.add_asset(asset)
    uploaded = owner.client.upload_dataset(ds).value
    remote = owner.client.datasets[uploaded.id].assets["t"]
    assert [c["type"] for c in remote.to_dict()["data_schema"]["columns"]] == [
        "int", "float", "bool", "string", "string"]
    rv.assert_same(data, remote.data)


def test_a_mock_cut_from_the_private_frame_warns_of_its_categories(owner):
    """A mock made with private.sample() keeps every category of the private column, and its
    sidecar shows them to guests (a cold attack read patient names so): the upload says so."""
    private = pd.DataFrame({"name": pd.Categorical(["Alice", "Bob", "Carol"]), "age": [1, 2, 3]})
    mock = private.iloc[[2]]
    with pytest.warns(sy.DatasiteWarning, match=r"name: 2.*remove_unused_categories"):
        _upload(owner.client, [(private, mock)])
    pruned = mock.assign(name=mock["name"].cat.remove_unused_categories())
    with warnings.catch_warnings():
        warnings.simplefilter("error", sy.DatasiteWarning)
        _upload(owner.client, [(private, pruned)])
