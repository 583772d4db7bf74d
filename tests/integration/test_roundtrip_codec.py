"""Issue 12, exact round trips, in the client alone (no server): a DataFrame or Series written as
CSV plus its typed sidecar reads back equal, with its dtypes, index and labels; an ndarray written
as .npy reads back with its dtype and bytes. A property test over thousands of generated values, the
values the issue found changed, and the refusals: object arrays, objects a CSV can't hold, and
hostile sidecars (a sidecar is data: a bad one is refused, never evaluated).
"""

import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datasite import _sidecar, _transfer
from datasite._sidecar import SidecarError
import roundtrip_values as rv

SEEDS = st.integers(min_value=0, max_value=2**32 - 1)


def exhaustive(examples):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def through_csv(value):
    """``value`` written by the client's upload path and read back by its download path."""
    with _transfer.payload_of(value) as payload:
        meta = json.loads(_sidecar.sidecar_dumps(payload.meta)) if payload.meta else None
        return _transfer.load_file(payload.path, payload.format, meta)


@exhaustive(2000)
@given(SEEDS)
def test_generated_frames_and_series_round_trip(seed):
    value = rv.seeded(seed, ("frame", "series"))
    rv.assert_same(value, through_csv(value))


@exhaustive(1000)
@given(SEEDS)
def test_generated_arrays_round_trip(seed):
    value = rv.seeded(seed, ("array",))
    rv.assert_same(value, through_csv(value))


# What the issue found changed ---------------------------------------------------------------------


def test_floats_keep_their_last_digits():
    df = pd.DataFrame({"x": np.linspace(0, 1, 500)})
    back = through_csv(df)
    assert back["x"][1] == 0.002004008016032064
    assert back["x"].tolist() == df["x"].tolist()


def test_digit_strings_stay_strings():
    df = pd.DataFrame({"zip": ["011", "02139", "", None]})
    back = through_csv(df)
    assert back["zip"].tolist() == ["011", "02139", "", None]


def test_datetimes_categoricals_index_and_series_come_back():
    df = pd.DataFrame(
        {
            "when": pd.date_range("2024-03-30", periods=4, freq="7h", tz="Europe/Paris"),
            "size": pd.Categorical(["s", "l", "m", None], categories=["s", "m", "l"],
                                   ordered=True),
            "took": pd.to_timedelta([1, 2, None, 4], unit="s"),
        },
        index=pd.Index(["a", "b", "c", "d"], name="key"),
    )
    back = through_csv(df)
    rv.assert_same(df, back)
    assert back["size"].cat.ordered and list(back["size"].cat.categories) == ["s", "m", "l"]
    series = df["when"].rename("w")
    rv.assert_same(series, through_csv(series))


def test_a_groupby_result_grows_no_unnamed_column():
    df = pd.DataFrame({"g": ["a", "b", "a"], "v": [1, 2, 3]})
    grouped = df.groupby("g").sum()
    back = through_csv(grouped)
    assert list(back.columns) == ["v"]
    rv.assert_same(grouped, back)


def test_string_bytes_datetime_and_record_arrays_are_stored():
    for array in (
        np.array(["a", "b"]),
        np.array([b"x", b"yz"]),
        np.array(["2020-01-01", "NaT"], dtype="datetime64[ns]"),
        np.array([1, -2], dtype="timedelta64[ms]"),
        np.array([(1, "x")], dtype=[("id", "<i4"), ("name", "U3")]),
    ):
        rv.assert_same(array, through_csv(array))


# Refusals -----------------------------------------------------------------------------------------


def test_object_arrays_are_refused_saying_why():
    with pytest.raises(ValueError, match="pickle"):
        _transfer.payload_of(np.array([{"a": 1}, None], dtype=object))


def test_an_object_column_of_what_csv_cannot_hold_is_refused_naming_it():
    import decimal

    df = pd.DataFrame({"price": [decimal.Decimal("1.10")]})
    with pytest.raises(ValueError, match="column 'price' holds a Decimal"):
        _transfer.payload_of(df)


def test_unsupported_dtypes_are_refused_not_changed():
    for value in (pd.Series(pd.period_range("2020", periods=2, freq="M")),
                  pd.Series(pd.arrays.SparseArray([0, 1]))):
        with pytest.raises(ValueError, match="can't be kept exactly"):
            _transfer.payload_of(value)


def _meta_of(value):
    buffer = io.BytesIO()
    meta = _sidecar.sidecar_write_csv(value, buffer)
    return buffer.getvalue(), json.loads(_sidecar.sidecar_dumps(meta))


def _hostile_variants():
    df = pd.DataFrame({"c": pd.Categorical(["a", "b"]), "n": [1, 2],
                       "t": pd.date_range("2020", periods=2, tz="UTC")})
    csv, meta = _meta_of(df)
    yield "a pickle dtype", csv, dict(meta, columns=[dict(meta["columns"][0], dtype="O")]
                                      + meta["columns"][1:])
    yield "an unknown key", csv, dict(meta, exec="print(1)")
    yield "another version", csv, dict(meta, datasite="pandas/2")
    yield "a path as a time zone", csv, dict(meta, columns=meta["columns"][:2] + [
        dict(meta["columns"][2], tz="../../../etc/passwd")])
    yield "a time zone with code", csv, dict(meta, columns=meta["columns"][:2] + [
        dict(meta["columns"][2], tz="__import__('os')")])
    yield "one column too many", csv, dict(meta, columns=meta["columns"] + [meta["columns"][1]])
    yield "a cell not a category", csv, dict(meta, columns=[dict(
        meta["columns"][0], categories={"dtype": "object", "values": ["a"]})]
        + meta["columns"][1:])
    yield "a range of another length", csv, dict(meta, index={"range": [0, 5, 1], "name": None})
    yield "a range of step 0", csv, dict(meta, index={"range": [0, 2, 0], "name": None})
    yield "a deep label", csv, dict(meta, columns_names=[
        json.loads('{"tuple": [' * 100 + "1" + "]}" * 100)])
    yield "an int column of text", csv.replace(b"1,", b"x,"), meta
    yield "a missing token too long", csv, dict(meta, columns=[dict(
        meta["columns"][0], missing={"x" * 17: "NaN"})] + meta["columns"][1:])
    yield "a missing kind that is code", csv, dict(meta, columns=[dict(
        meta["columns"][0], missing={"": "eval"})] + meta["columns"][1:])


@pytest.mark.parametrize("what,csv,meta", list(_hostile_variants()),
                         ids=[v[0] for v in _hostile_variants()])
def test_hostile_sidecars_are_refused(what, csv, meta):
    with pytest.raises(SidecarError):
        _sidecar.sidecar_read_csv(io.BytesIO(csv), meta)


def test_sidecar_text_is_plain_bounded_json():
    with pytest.raises(SidecarError, match="larger than"):
        _sidecar.sidecar_loads("[" + " " * _sidecar.SIDECAR_MAX_BYTES + "]")
    with pytest.raises(SidecarError, match="NaN"):
        _sidecar.sidecar_loads('{"x": NaN}')
    with pytest.raises(SidecarError, match="not JSON"):
        _sidecar.sidecar_loads("{'datasite': 1}")


def test_a_csv_without_a_sidecar_reads_as_before_with_exact_floats():
    back = _transfer.load_file(_write(b"x,y\n0.002004008016032064,a\n"), "csv")
    assert back["x"][0] == 0.002004008016032064
    assert list(back.columns) == ["x", "y"]


def _write(raw):
    path = _transfer._temp_path(".csv")
    with open(path, "wb") as f:
        f.write(raw)
    return path
