"""Random pandas and numpy values for the round-trip tests, each made from one seed.

``value_from(rng)`` draws a DataFrame, a Series or an ndarray covering every dtype the client
carries exactly (see python/datasite/_sidecar.py), the index kinds (RangeIndex of any start and
step, named, multi-level, of several dtypes), column labels that are not strings, duplicate labels,
empty frames, and missing values of every kind (NaN, None, pd.NA, NaT). ``assert_same`` is what
"comes back exactly" means: ``equals`` and equal dtypes, index and columns (their dtypes too).
"""

import datetime
import random
import string

import numpy as np
import pandas as pd

TEXT = string.ascii_letters + string.digits + " ,\"'\n\r\t;:|<>" + "éß中😀" + "\u00a0"


def _text(rng, allow_empty=True):
    n = rng.randint(0 if allow_empty else 1, 8)
    kind = rng.random()
    if kind < 0.15:
        return "".join(rng.choice(string.digits) for _ in range(max(n, 1)))  # "011": zip codes
    if kind < 0.2:
        return rng.choice(["", "NA", "nan", "None", "<NA>", "NaT", "null", "True", "1.0", " "])
    return "".join(rng.choice(TEXT) for _ in range(n))


def _float(rng):
    r = rng.random()
    if r < 0.05:
        return rng.choice([float("inf"), float("-inf"), -0.0, 5e-324, 1.7976931348623157e308])
    if r < 0.5:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
    return rng.choice([i / 499 for i in range(500)])  # np.linspace(0, 1, 500)'s values


def _maybe(rng, value, missing, p=0.2):
    return missing if rng.random() < p else value


def _int_range(dtype):
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def column(rng, n, family=None, for_index=False):
    """One column of ``n`` values (a Series)."""
    families = [
        "int", "uint", "float", "bool", "Int", "Float", "boolean", "string", "object_str",
        "object_mixed", "datetime", "datetime_tz", "timedelta", "category",
    ]
    if for_index:
        families = ["int", "float", "object_str", "datetime", "datetime_tz", "category",
                    "timedelta", "object_mixed"]
    family = family or rng.choice(families)
    if family == "int":
        dtype = rng.choice(["int8", "int16", "int32", "int64"])
        lo, hi = _int_range(dtype)
        values = [rng.choice([lo, hi, 0, rng.randint(lo, hi)]) for _ in range(n)]
        return pd.Series(np.array(values, dtype=dtype))
    if family == "uint":
        dtype = rng.choice(["uint8", "uint16", "uint32", "uint64"])
        lo, hi = _int_range(dtype)
        return pd.Series(np.array([rng.choice([hi, 0, rng.randint(lo, hi)]) for _ in range(n)],
                                  dtype=dtype))
    if family == "float":
        dtype = rng.choice(["float16", "float32", "float64", "float64"])
        values = np.array([_maybe(rng, _float(rng), np.nan) for _ in range(n)])
        with np.errstate(over="ignore"):
            return pd.Series(values.astype(dtype))
    if family == "bool":
        return pd.Series(np.array([rng.random() < 0.5 for _ in range(n)], dtype=bool))
    if family == "Int":
        dtype = rng.choice(["Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
                            "UInt64"])
        lo, hi = _int_range(dtype.lower())
        return pd.Series(pd.array([_maybe(rng, rng.randint(lo, hi), None) for _ in range(n)],
                                  dtype=dtype))
    if family == "Float":
        dtype = rng.choice(["Float32", "Float64"])
        with np.errstate(over="ignore"):
            values = np.array([_float(rng) for _ in range(n)]).astype(dtype.lower())
        mask = np.array([rng.random() < 0.2 for _ in range(n)], dtype=bool)
        if n and rng.random() < 0.3:
            values[rng.randrange(n)] = np.nan  # a NaN that is not NA
        return pd.Series(pd.arrays.FloatingArray(values, mask))
    if family == "boolean":
        return pd.Series(pd.array([_maybe(rng, rng.random() < 0.5, None) for _ in range(n)],
                                  dtype="boolean"))
    if family == "string":
        return pd.Series(pd.array([_maybe(rng, _text(rng), None) for _ in range(n)],
                                  dtype="string"))
    if family == "object_str":
        missing = [None, np.nan, pd.NA, pd.NaT] if not for_index else [None, np.nan]
        return pd.Series([_maybe(rng, _text(rng), rng.choice(missing)) for _ in range(n)],
                         dtype=object)
    if family == "object_mixed":
        choices = [
            lambda: _text(rng), lambda: rng.randint(-(2 ** 70), 2 ** 70), lambda: _float(rng),
            lambda: rng.random() < 0.5, lambda: None, lambda: [1, "a", None],
            lambda: {"k": [1.5, True]},
        ]
        if for_index:
            choices = choices[:4]
        values = [rng.choice(choices)() for _ in range(n)]
        if n:
            values[0] = rng.randint(0, 9)  # an int among other things: stays object, not str
        return pd.Series(values, dtype=object)
    if family in ("datetime", "datetime_tz"):
        base = np.datetime64("1970-01-01T00:00:00", "ns")
        values = [base + np.timedelta64(rng.randint(-(2 ** 62), 2 ** 62), "ns") for _ in range(n)]
        values = pd.Series(pd.to_datetime(np.array(values, dtype="datetime64[ns]")))
        if not for_index:
            values[[rng.random() < 0.2 for _ in range(n)]] = pd.NaT
        if family == "datetime_tz":
            tz = rng.choice(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata",
                             datetime.timezone(datetime.timedelta(hours=-3, minutes=-30)),
                             "dateutil/Europe/Berlin"])
            values = values.dt.tz_localize("UTC").dt.tz_convert(tz)
        return values
    if family == "timedelta":
        values = pd.Series(pd.to_timedelta(
            [rng.randint(-(2 ** 62), 2 ** 62) for _ in range(n)], unit="ns"))
        if not for_index:
            values[[rng.random() < 0.2 for _ in range(n)]] = pd.NaT
        return values
    if family == "category":
        kind = rng.choice(["str", "int", "float", "datetime"])
        k = rng.randint(1, 6)
        if kind == "str":
            categories = list(dict.fromkeys(_text(rng) for _ in range(k)))
        elif kind == "int":
            categories = list(dict.fromkeys(rng.randint(-50, 50) for _ in range(k)))
        elif kind == "float":
            categories = list(dict.fromkeys(_float(rng) for _ in range(k)))
            categories = [c for c in categories if c == c] or [0.5]
        else:
            categories = list(pd.date_range("2020-01-01", periods=k, freq="37min"))
        rng.shuffle(categories)
        missing = [] if for_index else [None]
        values = [rng.choice(categories + missing) for _ in range(n)]
        return pd.Series(pd.Categorical(values, categories=categories,
                                        ordered=rng.random() < 0.5))
    raise AssertionError(family)


def label(rng):
    r = rng.random()
    if r < 0.6:
        return _text(rng, allow_empty=False) + str(rng.randint(0, 99))
    if r < 0.8:
        return rng.randint(-5, 100)
    if r < 0.88:
        return rng.choice([None, True, 2.5, ""])
    return rng.choice(["dup", "dup", 0])  # duplicates across columns


def index(rng, n):
    r = rng.random()
    if r < 0.4:
        start, step = rng.randint(-10, 10), rng.choice([1, 1, 2, -1, 7])
        return pd.RangeIndex(start, start + n * step, step, name=rng.choice([None, "i", 3]))
    if r < 0.75:
        values = column(rng, n, for_index=True)
        return pd.Index(values, dtype=values.dtype, name=rng.choice([None, "key", 0]))
    levels = rng.randint(2, 3)
    arrays = [pd.Index(c, dtype=c.dtype) for c in
              (column(rng, n, for_index=True) for _ in range(levels))]
    names = [rng.choice([None, "a", "b", 1]) for _ in range(levels)]
    return pd.MultiIndex.from_arrays(arrays, names=names)


def frame(rng, n=None, width=None):
    n = rng.choice([0, 1, 2, 3, 5, 8, 13]) if n is None else n
    width = rng.randint(0, 6) if width is None else width
    columns = [column(rng, n) for _ in range(width)]
    out = pd.DataFrame({i: c.array for i, c in enumerate(columns)},
                       index=pd.RangeIndex(n))
    r = rng.random()
    if width and r < 0.15:
        out.columns = pd.MultiIndex.from_tuples(
            [(label(rng), rng.choice(["x", "y"])) for _ in range(width)],
            names=[rng.choice([None, "outer"]), None])
    else:
        out.columns = pd.Index([label(rng) for _ in range(width)], dtype=object)
        out.columns.name = rng.choice([None, None, "cols"])
    out.index = index(rng, n)
    return out


def series(rng):
    n = rng.choice([0, 1, 2, 4, 9])
    s = column(rng, n)
    s.index = index(rng, n)
    s.name = rng.choice([None, "value", 0, "x y", 2.5])
    return s


def array(rng):
    """An ndarray of a dtype the server stores (.npy without pickles)."""
    shape = tuple(rng.randint(0, 4) for _ in range(rng.randint(0, 3)))
    size = int(np.prod(shape)) if shape else 1
    kind = rng.choice(["i", "u", "f", "b", "c", "U", "S", "M", "m", "V", "struct", "f2", ">"])
    if kind == "i":
        return np.array([rng.randint(-100, 100) for _ in range(size)],
                        dtype=rng.choice(["i1", "i2", "i4", "i8"])).reshape(shape)
    if kind == "u":
        return np.array([rng.randint(0, 255) for _ in range(size)],
                        dtype=rng.choice(["u1", "u2", "u4", "u8"])).reshape(shape)
    if kind == "f":
        return np.array([_float(rng) for _ in range(size)]).astype(
            rng.choice(["f4", "f8"])).reshape(shape)
    if kind == "f2":
        return np.array([rng.random() for _ in range(size)], dtype="f2").reshape(shape)
    if kind == ">":
        return np.array([_float(rng) for _ in range(size)], dtype=">f8").reshape(shape)
    if kind == "b":
        return np.array([rng.random() < 0.5 for _ in range(size)], dtype=bool).reshape(shape)
    if kind == "c":
        return np.array([complex(_float(rng), _float(rng)) for _ in range(size)],
                        dtype=rng.choice(["c8", "c16"])).reshape(shape)
    if kind == "U":
        return np.array([_text(rng) for _ in range(size)], dtype="U8").reshape(shape)
    if kind == "S":
        return np.array([bytes(rng.randrange(256) for _ in range(rng.randint(0, 5)))
                         for _ in range(size)], dtype="S5").reshape(shape)
    if kind == "M":
        unit = rng.choice(["D", "s", "ms", "ns"])
        return np.array([rng.randint(-10 ** 6, 10 ** 6) for _ in range(size)],
                        dtype="M8[" + unit + "]").reshape(shape)
    if kind == "m":
        return np.array([rng.randint(-10 ** 6, 10 ** 6) for _ in range(size)],
                        dtype="m8[us]").reshape(shape)
    if kind == "V":
        return np.array([bytes(rng.randrange(256) for _ in range(3)) for _ in range(size)],
                        dtype="V3").reshape(shape)
    dtype = np.dtype([("id", "<i4"), ("name", "U4"), ("pos", "<f8", (2,)),
                      ("inner", [("a", "u1"), ("b", "S2")])])
    out = np.zeros(shape, dtype=dtype)
    flat = out.reshape(-1)
    for i in range(size):
        flat[i] = (rng.randint(-9, 9), _text(rng)[:4], (_float(rng), 1.5), (7, b"x"))
    return out


def value_from(rng, kinds=("frame", "series", "array")):
    kind = rng.choice(kinds)
    return {"frame": frame, "series": series, "array": array}[kind](rng)


def assert_same(original, back):
    """``back`` is ``original``, exactly (what the round-trip tests assert every time)."""
    assert type(back) is type(original), (type(original), type(back))
    if isinstance(original, np.ndarray):
        assert back.dtype == original.dtype and back.shape == original.shape
        assert original.tobytes() == np.ascontiguousarray(back).tobytes()
        return
    assert original.equals(back), (original, back)
    if isinstance(original, pd.Series):
        assert back.dtype == original.dtype, (original.dtype, back.dtype)
        assert back.name == original.name or (back.name != back.name and
                                               original.name != original.name)
    else:
        assert list(back.dtypes) == list(original.dtypes), (original.dtypes, back.dtypes)
        assert back.columns.equals(original.columns)
        assert list(back.columns.names) == list(original.columns.names)
        assert list(map(type, back.columns)) == list(map(type, original.columns))
    assert type(back.index) is type(original.index), (type(original.index), type(back.index))
    # "equiv": a MultiIndex's level may be a RangeIndex or an Int64Index of the same values.
    pd.testing.assert_index_equal(back.index, original.index, exact="equiv")
    assert list(back.index.names) == list(original.index.names)
    if isinstance(original.index, pd.MultiIndex):
        for level in range(original.index.nlevels):
            assert (back.index._get_level_values(level).dtype
                    == original.index._get_level_values(level).dtype)
    if isinstance(original, pd.DataFrame):
        for i in range(original.shape[1]):
            pd.testing.assert_series_equal(back.iloc[:, i], original.iloc[:, i],
                                           check_exact=True, check_names=False)
    else:
        pd.testing.assert_series_equal(back, original, check_exact=True)


def seeded(seed, kinds=("frame", "series", "array")):
    return value_from(random.Random(seed), kinds)
