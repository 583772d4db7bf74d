"""Exact round trips of pandas objects through CSV: the CSV plus a typed sidecar.

A DataFrame or Series travels as a CSV file that the server reads like any other (its schema, its
mocks) and a sidecar: a small JSON document saying what CSV can't (each column's dtype, the index,
Series or DataFrame, the categories and their order, time zones, which cells are missing and how).
Decoding the pair gives back an object for which ``df.equals(back)`` holds and whose dtypes,
index and column labels are those that were encoded. docs/API.md, "Typed sidecars", describes
the document.

A sidecar is data, never code: it is read with ``json`` and checked field by field against a
fixed vocabulary (a dtype is one of the names below, a time zone a plain zone name), so a sidecar
written by anyone (a job writes the one of its result) can make a decode fail, never run anything.

The sandbox runs this file too: src/sandbox/CMakeLists.txt embeds it in front of runner.py. So it
imports only the standard library, numpy and pandas, and its top-level names start with
``sidecar_`` (the API) or ``_sc_`` (the rest).
"""

import datetime as _sc_datetime
import json as _sc_json
import math as _sc_math
import re as _sc_re

try:  # the client works without them (it then sends and reads no DataFrames)
    import numpy as _sc_np
    import pandas as _sc_pd
except ImportError:
    _sc_np = _sc_pd = None

SIDECAR_VERSION = "pandas/1"
SIDECAR_MAX_BYTES = 256 << 10  # the server refuses larger ones, too
SIDECAR_MAX_COLUMNS = 10000  # index levels and columns: the server's CSV reader reads no more
_SC_MAX_DEPTH = 32  # nesting of JSON values in an object column, of tuples in labels
_SC_UNITS = ("s", "ms", "us", "ns")
_SC_NUMPY = (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "bool",
)
_SC_MASKED = (
    "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64",
    "Float32", "Float64", "boolean",
)
_SC_MISSING_KINDS = ("None", "NaN", "NA", "NaT")
_SC_TZ_NAME = _sc_re.compile(r"^(dateutil/)?[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,3}$")


class SidecarError(ValueError):
    """A value that can't be carried exactly, or a sidecar (or its CSV) that is not valid."""


# Labels (column names, index names, the Series name) ---------------------------------------------


def _sc_label_out(label, depth=0):
    if depth > _SC_MAX_DEPTH:
        raise SidecarError("a label is nested too deeply")
    if label is None or isinstance(label, (bool, str)):
        return label
    if isinstance(label, _sc_np.bool_):
        return bool(label)
    if isinstance(label, (int, _sc_np.integer)):
        return int(label)
    if isinstance(label, (float, _sc_np.floating)):
        return {"float": repr(float(label))}
    if isinstance(label, tuple):
        return {"tuple": [_sc_label_out(x, depth + 1) for x in label]}
    if isinstance(label, _sc_pd.Timestamp):
        return {"timestamp": label.isoformat()}
    raise SidecarError(
        "a label of type {} can't be kept exactly: use str, int, float, bool, None, a tuple of "
        "these or a Timestamp as column and index names".format(type(label).__name__)
    )


def _sc_label_in(doc, depth=0):
    if depth > _SC_MAX_DEPTH:
        raise SidecarError("a label is nested too deeply")
    if doc is None or isinstance(doc, (bool, str)):
        return doc
    if isinstance(doc, int):
        return doc
    if isinstance(doc, dict) and len(doc) == 1:
        (key, value), = doc.items()
        if key == "float" and isinstance(value, str) and len(value) <= 40:
            return _sc_float(value)
        if key == "tuple" and isinstance(value, list):
            return tuple(_sc_label_in(x, depth + 1) for x in value)
        if key == "timestamp" and isinstance(value, str) and len(value) <= 64:
            try:
                return _sc_pd.Timestamp(value)
            except (ValueError, TypeError):
                raise SidecarError("a timestamp label is not valid") from None
    raise SidecarError("a label is not valid")


def _sc_float(text):
    try:
        return float(text)
    except ValueError:
        raise SidecarError("{!r} is not a number".format(text[:40])) from None


# Time zones --------------------------------------------------------------------------------------


def _sc_tz_out(tz):
    from pandas._libs.tslibs import timezones

    if timezones.is_utc(tz):
        return "UTC"
    name = timezones.get_timezone(tz)
    if isinstance(name, str) and name.startswith("dateutil//usr/share/zoneinfo/"):
        name = "dateutil/" + name[len("dateutil//usr/share/zoneinfo/"):]
    if isinstance(name, str):
        if not _SC_TZ_NAME.match(name) or ".." in name:
            raise SidecarError("the time zone {!r} can't be named in a sidecar".format(name))
        return name
    offset = tz.utcoffset(None)
    if offset is None or offset.microseconds or offset.seconds % 60:
        raise SidecarError("the time zone {!r} can't be kept exactly".format(tz))
    kind = "datetime" if isinstance(tz, _sc_datetime.timezone) else "pytz"
    if kind == "pytz" and type(tz).__name__ != "_FixedOffset":
        raise SidecarError("the time zone {!r} can't be kept exactly".format(tz))
    return {"offset_minutes": int(offset.total_seconds()) // 60, "class": kind}


def _sc_tz_in(doc):
    if isinstance(doc, str):
        if not _SC_TZ_NAME.match(doc) or ".." in doc or len(doc) > 64:
            raise SidecarError("the time zone {!r} is not valid".format(doc[:64]))
        try:
            return _sc_pd.DatetimeTZDtype("ns", doc).tz
        except Exception:
            raise SidecarError("the time zone {!r} is not known here".format(doc)) from None
    _sc_keys(doc, {"offset_minutes", "class"}, "a fixed time zone")
    minutes = doc["offset_minutes"]
    if not isinstance(minutes, int) or isinstance(minutes, bool) or abs(minutes) >= 24 * 60:
        raise SidecarError("a time zone offset is not valid")
    if doc["class"] == "datetime":
        return _sc_datetime.timezone(_sc_datetime.timedelta(minutes=minutes))
    if doc["class"] == "pytz":
        import pytz

        return pytz.FixedOffset(minutes)
    raise SidecarError("a time zone class is not valid")


# Columns -----------------------------------------------------------------------------------------


def _sc_token(used, count):
    """`count` strings for missing cells, none of them in `used` (the column's own cells)."""
    out, i = [], 0
    while len(out) < count:
        token = "" if i == 0 else ("<NA>" if i == 1 else "<NA{}>".format(i))
        if token not in used:
            out.append(token)
        i += 1
    return out


def _sc_missing_kind(value):
    if value is None:
        return "None"
    if value is _sc_pd.NA:
        return "NA"
    if value is _sc_pd.NaT:
        return "NaT"
    if isinstance(value, float) and value != value:
        return "NaN"
    return None


def _sc_plain(value, depth=0):
    """Whether `value` comes back from JSON as itself (numpy scalars become Python ones)."""
    if depth > _SC_MAX_DEPTH:
        return False
    if value is None or isinstance(value, (bool, str, int, float)):
        return True
    if isinstance(value, list):
        return all(_sc_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _sc_plain(v, depth + 1) for k, v in value.items())
    return False


def _sc_float_cells(values, nan="nan"):
    """Shortest round-trip text (repr); NaN as `nan` ("" for a numpy float column, where it is the
    only missing value: the server's CSV reader counts an empty cell as null)."""
    cells = values.astype(str).astype(object)
    cells[_sc_np.isnan(values)] = nan
    return cells


def _sc_empty_as(cells, text):
    out = cells.copy()
    out[out == ""] = text
    return out


def _sc_encode(series):
    """(spec, cells): the column's sidecar entry and its cells, an object array of str."""
    dtype = series.dtype
    name = str(dtype)
    if isinstance(dtype, _sc_pd.CategoricalDtype):
        categories = dtype.categories
        cat_spec, cat_cells = _sc_encode(_sc_pd.Series(categories))
        if "missing" in cat_spec:
            raise SidecarError("categories can't be missing values")
        cat_cells = list(cat_cells)
        (token,) = _sc_token(set(cat_cells), 1)
        lookup = _sc_np.array(cat_cells + [token], dtype=object)
        cells = lookup[series.cat.codes.to_numpy()]
        spec = {"dtype": "category", "ordered": bool(dtype.ordered),
                "categories": dict(cat_spec, values=cat_cells)}
        if series.isna().any():
            spec["missing"] = {token: "NaN"}
        return spec, cells
    if name in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
        return {"dtype": name}, series.to_numpy().astype(str).astype(object)
    if name in ("float16", "float32", "float64"):
        return {"dtype": name}, _sc_float_cells(series.to_numpy(), nan="")
    if name == "bool":
        return {"dtype": name}, _sc_np.where(series.to_numpy(), "True", "False").astype(object)
    if name in _SC_MASKED:
        array = series.array
        mask = _sc_np.asarray(array._mask)
        data = _sc_np.asarray(array._data)
        if name == "boolean":
            cells = _sc_np.where(data, "True", "False").astype(object)
        elif name.startswith("Float"):
            cells = _sc_float_cells(data)
        else:
            cells = data.astype(str).astype(object)
        spec = {"dtype": name}
        if mask.any():
            (token,) = _sc_token({"True", "False"} if name == "boolean" else set(), 1)
            cells[mask] = token
            spec["missing"] = {token: "NA"}
        return spec, cells
    if isinstance(dtype, _sc_pd.DatetimeTZDtype) or name.startswith("datetime64["):
        tz = getattr(dtype, "tz", None)
        values = series.dt.tz_convert("UTC").dt.tz_localize(None) if tz is not None else series
        unit = _sc_np.datetime_data(values.to_numpy().dtype)[0]
        if unit not in _SC_UNITS:
            raise SidecarError("datetime64 unit {!r} is not supported".format(unit))
        cells = _sc_np.datetime_as_string(values.to_numpy(), unit=unit).astype(object)
        cells[cells == "NaT"] = ""  # empty: null to the server's CSV reader
        spec = {"dtype": "datetime64[{}]".format(unit)}
        if tz is not None:
            spec["tz"] = _sc_tz_out(tz)
        return spec, cells
    if name.startswith("timedelta64["):
        values = series.to_numpy()
        unit = _sc_np.datetime_data(values.dtype)[0]
        if unit not in _SC_UNITS:
            raise SidecarError("timedelta64 unit {!r} is not supported".format(unit))
        cells = values.view("i8").astype(str).astype(object)
        cells[_sc_np.isnat(values)] = ""
        return {"dtype": "timedelta64[{}]".format(unit)}, cells
    if isinstance(dtype, _sc_pd.StringDtype):
        if dtype.storage != "python":
            raise SidecarError("string[{}] columns are not supported".format(dtype.storage))
        values = series.to_numpy(dtype=object, na_value=None)
        missing = _sc_np.array([v is None for v in values], dtype=bool)
        cells = values.copy()
        spec = {"dtype": "string"}
        if missing.any():
            (token,) = _sc_token(set(values[~missing]), 1)
            cells[missing] = token
            spec["missing"] = {token: "NA"}
        return spec, cells
    if name == "object":
        return _sc_encode_object(series)
    raise SidecarError(
        "a column of dtype {} can't be kept exactly (supported: int, uint, float, bool, the "
        "nullable Int/UInt/Float/boolean/string, object, datetime64 with or without a time "
        "zone, timedelta64, category)".format(name)
    )


def _sc_encode_object(series):
    values = series.to_numpy(dtype=object)
    kinds = [_sc_missing_kind(v) for v in values]
    present = [v for v, k in zip(values, kinds) if k is None]
    if all(isinstance(v, str) for v in present):
        found = sorted({k for k in kinds if k is not None}, key=_SC_MISSING_KINDS.index)
        tokens = _sc_token(set(present), len(found))
        by_kind = dict(zip(found, tokens))
        cells = _sc_np.array([v if k is None else by_kind[k] for v, k in zip(values, kinds)],
                             dtype=object)
        spec = {"dtype": "object"}
        if found:
            spec["missing"] = {t: k for k, t in by_kind.items()}
        return spec, cells
    plain = []
    for v, k in zip(values, kinds):
        if k is not None:
            plain.append(v)
            continue
        if isinstance(v, (_sc_np.bool_, _sc_np.integer, _sc_np.floating)):
            v = v.item()
        if not _sc_plain(v):
            raise SidecarError(
                "column {!r} holds a {}: an object column can hold str, int, float, bool, None, "
                "and lists and dicts of these; convert the column (e.g. pd.to_datetime, "
                "astype(str))".format(series.name, type(v).__name__)
            )
        plain.append(v)
    spec = {"dtype": "object", "encoding": "json"}
    found = {k for k in kinds if k in ("NA", "NaT")}
    if found:
        spec["missing"] = {"<" + k + ">": k for k in sorted(found)}
    cells = _sc_np.array(
        ["<" + k + ">" if k in ("NA", "NaT")
         else _sc_json.dumps(v, ensure_ascii=False, allow_nan=True)
         for v, k in zip(plain, kinds)], dtype=object)
    return spec, cells


def _sc_keys(doc, allowed, what, required=()):
    if not isinstance(doc, dict):
        raise SidecarError("{} must be a JSON object".format(what))
    extra = set(doc) - set(allowed)
    if extra:
        raise SidecarError("{} has unknown keys: {}".format(what, ", ".join(sorted(extra))[:200]))
    missing = (set(required) if required else set(allowed)) - set(doc)
    if missing:
        raise SidecarError("{} lacks {}".format(what, ", ".join(sorted(missing))))


def _sc_missing_in(spec, allowed_kinds):
    missing = spec.get("missing", {})
    if not isinstance(missing, dict) or len(missing) > len(allowed_kinds):
        raise SidecarError("'missing' must map at most {} tokens".format(len(allowed_kinds)))
    seen = set()
    for token, kind in missing.items():
        if kind not in allowed_kinds or kind in seen or len(token) > 16:
            raise SidecarError("'missing' is not valid")
        seen.add(kind)
    return missing


def _sc_check_spec(spec, depth=0):
    """Checks one column's sidecar entry against the vocabulary; returns its dtype name."""
    if not isinstance(spec, dict) or not isinstance(spec.get("dtype"), str):
        raise SidecarError("a column entry must be an object with a 'dtype'")
    name = spec["dtype"]
    base = {"name", "dtype"} if depth == 0 else {"dtype"}
    if name in _SC_NUMPY:
        _sc_keys(spec, base, "a column entry", base)
    elif name in _SC_MASKED or name == "string":
        _sc_keys(spec, base | {"missing"}, "a column entry", base)
        _sc_missing_in(spec, ("NA",))
    elif name == "object":
        _sc_keys(spec, base | {"missing", "encoding"}, "a column entry", base)
        if spec.get("encoding", "json") != "json":
            raise SidecarError("an object column's encoding must be 'json'")
        _sc_missing_in(spec, ("NA", "NaT") if "encoding" in spec else _SC_MISSING_KINDS)
    elif name in ["datetime64[{}]".format(u) for u in _SC_UNITS]:
        _sc_keys(spec, base | {"tz"}, "a column entry", base)
    elif name in ["timedelta64[{}]".format(u) for u in _SC_UNITS]:
        _sc_keys(spec, base, "a column entry", base)
    elif name == "category" and depth == 0:
        _sc_keys(spec, base | {"ordered", "categories", "missing"}, "a column entry",
                 base | {"ordered", "categories"})
        if not isinstance(spec["ordered"], bool):
            raise SidecarError("'ordered' must be true or false")
        categories = spec["categories"]
        if not isinstance(categories, dict) or not isinstance(categories.get("values"), list):
            raise SidecarError("'categories' must hold 'dtype' and 'values'")
        inner = {k: v for k, v in categories.items() if k != "values"}
        _sc_check_spec(inner, depth + 1)
        if "missing" in inner:
            raise SidecarError("categories can't be missing")
        values = categories["values"]
        if not all(isinstance(v, str) for v in values) or len(set(values)) != len(values):
            raise SidecarError("categories must be distinct strings")
        _sc_missing_in(spec, ("NaN",))
    else:
        raise SidecarError("dtype {!r} is not one a sidecar may name".format(name[:40]))
    return name


def _sc_decode(spec, cells):
    """The array (numpy or pandas extension) of one column from its entry and its cells."""
    name = spec["dtype"]
    missing = spec.get("missing", {})
    try:
        if name == "category":
            categories = spec["categories"]
            inner = {k: v for k, v in categories.items() if k != "values"}
            index = _sc_pd.Index(_sc_decode(inner, _sc_np.array(categories["values"],
                                                                   dtype=object)))
            if index.has_duplicates:
                raise SidecarError("categories must be distinct")
            lookup = {c: i for i, c in enumerate(categories["values"])}
            for token in missing:
                if token in lookup:
                    raise SidecarError("a missing token is also a category")
                lookup[token] = -1
            try:
                codes = _sc_np.fromiter((lookup[c] for c in cells), dtype=_sc_np.int64,
                                        count=len(cells))
            except KeyError as err:
                raise SidecarError("a cell is not one of its column's categories") from None
            dtype = _sc_pd.CategoricalDtype(index, ordered=spec["ordered"])
            return _sc_pd.Categorical.from_codes(codes, dtype=dtype)
        if name in _SC_NUMPY:
            if name == "bool":
                return _sc_bools(cells)
            if name.startswith("float"):
                return _sc_empty_as(cells, "nan").astype(_sc_np.float64).astype(name)
            return cells.astype(name)
        if name in _SC_MASKED:
            mask = _sc_np.isin(cells, list(missing)) if missing else _sc_np.zeros(len(cells), bool)
            filled = cells.copy()
            filled[mask] = "False" if name == "boolean" else "0"
            if name == "boolean":
                return _sc_pd.arrays.BooleanArray(_sc_bools(filled), mask)
            if name.startswith("Float"):
                data = filled.astype(_sc_np.float64).astype(name.lower())
                return _sc_pd.arrays.FloatingArray(data, mask)
            return _sc_pd.arrays.IntegerArray(filled.astype(name.lower()), mask)
        if name == "string":
            values = cells.copy()
            if missing:
                values[_sc_np.isin(cells, list(missing))] = _sc_pd.NA
            return _sc_pd.array(values, dtype=_sc_pd.StringDtype("python"))
        if name == "object":
            return _sc_decode_object(spec, cells)
        if name.startswith("datetime64["):
            values = _sc_empty_as(cells, "NaT").astype(name)
            if "tz" not in spec:
                return values
            tz = _sc_tz_in(spec["tz"])
            return _sc_pd.DatetimeIndex(values).tz_localize("UTC").tz_convert(tz).array
        if name.startswith("timedelta64["):
            nat = cells == ""
            filled = cells.copy()
            filled[nat] = str(_sc_np.iinfo(_sc_np.int64).min)
            return filled.astype(_sc_np.int64).view(name)
    except SidecarError:
        raise
    except (ValueError, TypeError, OverflowError) as err:
        raise SidecarError("a {} column holds a cell that is not one: {}".format(
            name, str(err)[:200])) from None
    raise SidecarError("dtype {!r} is not one a sidecar may name".format(name))


def _sc_bools(cells):
    true = cells == "True"
    if not (true | (cells == "False")).all():
        raise SidecarError("a bool column holds a cell other than True and False")
    return true


def _sc_decode_object(spec, cells):
    missing = spec.get("missing", {})
    special = {"None": None, "NaN": float("nan"), "NA": _sc_pd.NA, "NaT": _sc_pd.NaT}
    out = _sc_np.empty(len(cells), dtype=object)
    if spec.get("encoding") == "json":
        for i, cell in enumerate(cells):
            if cell in missing:
                out[i] = special[missing[cell]]
                continue
            try:
                out[i] = _sc_json.loads(cell)
            except (ValueError, RecursionError):
                raise SidecarError("an object column holds a cell that is not JSON") from None
        return out
    for i, cell in enumerate(cells):
        out[i] = special[missing[cell]] if cell in missing else cell
    return out


# Frames ------------------------------------------------------------------------------------------


def _sc_level(index, position):
    """Level `position` of `index` (get_level_values takes an int for a level's name first)."""
    if isinstance(index, _sc_pd.MultiIndex):
        return index._get_level_values(position)
    return index


def sidecar_write_csv(obj, target):
    """Writes DataFrame or Series `obj` as CSV to `target` (a path or a binary file); returns the
    sidecar (a dict). SidecarError when a part of it can't be carried exactly."""
    if isinstance(obj, _sc_pd.Series):
        kind, frame = "series", obj.to_frame(name=0)
    elif isinstance(obj, _sc_pd.DataFrame):
        kind, frame = "frame", obj
    else:
        raise SidecarError("only a DataFrame or a Series is written with a sidecar")
    meta = {"datasite": SIDECAR_VERSION, "kind": kind}
    if kind == "series":
        meta["name"] = _sc_label_out(obj.name)
    else:
        if frame.columns.nlevels > 1:
            meta["columns_levels"] = frame.columns.nlevels
        elif frame.columns.dtype == object:
            meta["columns_dtype"] = "object"  # else the labels' own (int64, float64, ...)
        meta["columns_names"] = [_sc_label_out(n) for n in frame.columns.names]
    index = frame.index
    cells, headers, index_specs, column_specs = [], [], [], []
    if isinstance(index, _sc_pd.RangeIndex):
        meta["index"] = {"range": [int(index.start), int(index.stop), int(index.step)],
                         "name": _sc_label_out(index.name)}
    if isinstance(index, _sc_pd.RangeIndex) and frame.shape[1] == 0:
        # A CSV needs a column: the range's values are written, and read back as a range.
        meta["index"]["levels"] = [{"dtype": "int64", "name": meta["index"]["name"]}]
        cells.append(_sc_np.asarray(index).astype(str).astype(object))
        headers.append("" if index.name is None else str(index.name))
    elif not isinstance(index, _sc_pd.RangeIndex):
        for level in range(index.nlevels):
            spec, level_cells = _sc_encode(_sc_pd.Series(_sc_level(index, level)))
            spec["name"] = _sc_label_out(index.names[level])
            index_specs.append(spec)
            cells.append(level_cells)
            name = index.names[level]
            headers.append("" if name is None else str(name))
        meta["index"] = {"levels": index_specs}
    for position in range(frame.shape[1]):
        label = frame.columns[position]
        spec, column_cells = _sc_encode(frame.iloc[:, position])
        spec["name"] = _sc_label_out(obj.name if kind == "series" else label)
        column_specs.append(spec)
        cells.append(column_cells)
        if kind == "series":
            headers.append("value" if obj.name is None else str(obj.name))
        else:
            headers.append("_".join(map(str, label)) if isinstance(label, tuple) else str(label))
    meta["columns"] = column_specs
    if len(cells) > SIDECAR_MAX_COLUMNS:
        raise SidecarError("more than {} columns".format(SIDECAR_MAX_COLUMNS))
    table = _sc_pd.DataFrame(dict(enumerate(cells)), columns=range(len(cells)))
    # CRLF, as RFC 4180: a cell holding CR or LF alone is then quoted too.
    table.to_csv(target, index=False, header=headers, lineterminator="\r\n", encoding="utf-8")
    text = sidecar_dumps(meta)
    if len(text) > SIDECAR_MAX_BYTES:
        raise SidecarError(
            "the sidecar would be {} bytes, more than {} (many or long categories?)".format(
                len(text), SIDECAR_MAX_BYTES))
    return meta


def sidecar_dumps(meta):
    return _sc_json.dumps(meta, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def sidecar_loads(text):
    """The sidecar in `text` (str or bytes), checked only for size and JSON here."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > SIDECAR_MAX_BYTES:
            raise SidecarError("a sidecar is larger than {} bytes".format(SIDECAR_MAX_BYTES))
        text = bytes(text).decode("utf-8", errors="strict")
    if len(text) > SIDECAR_MAX_BYTES:
        raise SidecarError("a sidecar is larger than {} bytes".format(SIDECAR_MAX_BYTES))

    def refuse_constant(name):
        raise SidecarError("a sidecar can't hold {}".format(name))

    try:
        return _sc_json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as err:
        if isinstance(err, SidecarError):
            raise
        raise SidecarError("a sidecar is not JSON") from None


def sidecar_check(meta):
    """Checks a sidecar's structure (not yet against its CSV); SidecarError when it is not valid."""
    _sc_keys(meta, {"datasite", "kind", "name", "columns_names", "columns_levels", "columns_dtype",
                    "index", "columns"}, "the sidecar", {"datasite", "kind", "index", "columns"})
    if meta["datasite"] != SIDECAR_VERSION:
        raise SidecarError("the sidecar's version is not {}".format(SIDECAR_VERSION))
    if meta["kind"] == "series":
        _sc_keys(meta, {"datasite", "kind", "name", "index", "columns"}, "a Series sidecar")
        _sc_label_in(meta["name"])
    elif meta["kind"] == "frame":
        _sc_keys(meta, {"datasite", "kind", "columns_names", "columns_levels", "columns_dtype",
                        "index", "columns"}, "a DataFrame sidecar",
                 {"datasite", "kind", "columns_names", "index", "columns"})
        if meta.get("columns_dtype", "object") != "object" or (
                "columns_dtype" in meta and "columns_levels" in meta):
            raise SidecarError("'columns_dtype' may only be 'object', for one level")
    else:
        raise SidecarError("the sidecar's kind must be 'frame' or 'series'")
    levels = meta.get("columns_levels", 1)
    if not isinstance(levels, int) or isinstance(levels, bool) or not 2 <= levels <= 64 and (
            "columns_levels" in meta):
        raise SidecarError("'columns_levels' must be an integer from 2 to 64")
    names = meta.get("columns_names", [None])
    if not isinstance(names, list) or len(names) != levels:
        raise SidecarError("'columns_names' must name each level of the columns")
    for n in names:
        _sc_label_in(n)
    index, columns = meta["index"], meta["columns"]
    if not isinstance(columns, list) or not isinstance(index, dict):
        raise SidecarError("'columns' must be a list and 'index' an object")
    specs = []
    if "range" in index:
        _sc_keys(index, {"range", "name", "levels"}, "a range index", {"range", "name"})
        bounds = index["range"]
        if (not isinstance(bounds, list) or len(bounds) != 3
                or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
                or bounds[2] == 0):
            raise SidecarError("a range index must be [start, stop, step]")
        _sc_label_in(index["name"])
        if "levels" in index:
            specs = index["levels"]
            if (columns or not isinstance(specs, list) or len(specs) != 1
                    or specs[0] != {"dtype": "int64", "name": index["name"]}):
                raise SidecarError("a range index is written only for a frame without columns")
        elif not columns:
            raise SidecarError("a frame without columns writes its index")
    else:
        _sc_keys(index, {"levels"}, "the index")
        specs = index["levels"]
        if not isinstance(specs, list) or not 1 <= len(specs) <= 64:
            raise SidecarError("the index must have from 1 to 64 levels")
    if meta["kind"] == "series" and len(columns) != 1:
        raise SidecarError("a Series sidecar has one column")
    if len(specs) + len(columns) > SIDECAR_MAX_COLUMNS:
        raise SidecarError("a sidecar names too many columns")
    for spec in list(specs) + list(columns):
        _sc_check_spec(spec)
        label = _sc_label_in(spec["name"])
        if levels > 1 and spec in columns and (
                not isinstance(label, tuple) or len(label) != levels):
            raise SidecarError("each column of a multi-level header is named by a tuple")
    return meta


def _sc_read_cells(source):
    """The header and the cells of each column (object arrays of str) of the CSV at `source`."""
    raw = _sc_pd.read_csv(source, header=None, dtype=str, na_filter=False,
                          keep_default_na=False, skip_blank_lines=False, encoding="utf-8",
                          engine="c", quoting=0)
    values = raw.to_numpy(dtype=object)
    return values[0], [values[1:, i] for i in range(values.shape[1])]


def sidecar_read_csv(source, meta):
    """The DataFrame or Series that the CSV at `source` (a path or a binary file) and its sidecar
    `meta` (a dict, e.g. from ``sidecar_loads``) describe. SidecarError when they do not fit."""
    sidecar_check(meta)
    try:
        _, columns = _sc_read_cells(source)
    except (ValueError, UnicodeDecodeError) as err:
        if isinstance(err, SidecarError):
            raise
        raise SidecarError("the CSV can't be read: {}".format(str(err)[:200])) from None
    index_doc, specs = meta["index"], meta["columns"]
    levels = index_doc.get("levels", [])
    if len(columns) != len(levels) + len(specs):
        raise SidecarError("the CSV has {} columns, its sidecar describes {}".format(
            len(columns), len(levels) + len(specs)))
    rows = len(columns[0]) if columns else 0
    if "range" in index_doc:
        start, stop, step = index_doc["range"]
        index = _sc_pd.RangeIndex(start, stop, step, name=_sc_label_in(index_doc["name"]))
        if len(index) != rows:
            raise SidecarError("the sidecar's index has {} rows, the CSV {}".format(
                len(index), rows))
        if levels and not _sc_np.array_equal(_sc_decode(levels[0], columns[0]), index):
            raise SidecarError("the range index's values are not the range")
        columns = columns[len(levels):]
    else:
        arrays = [_sc_decode(s, c) for s, c in zip(levels, columns)]
        names = [_sc_label_in(s["name"]) for s in levels]
        if len(arrays) == 1:
            index = _sc_pd.Index(arrays[0], dtype=arrays[0].dtype, name=names[0])
        else:
            index = _sc_pd.MultiIndex.from_arrays(
                [_sc_pd.Index(a, dtype=a.dtype) for a in arrays], names=names)
        columns = columns[len(levels):]
    # Each column as a Series of its own dtype: pandas would read an object column of NaT alone
    # as datetime64 otherwise.
    data = {}
    for i, (spec, cells) in enumerate(zip(specs, columns)):
        array = _sc_decode(spec, cells)
        data[i] = _sc_pd.Series(array, index=index, dtype=array.dtype, copy=False)
    labels = [_sc_label_in(s["name"]) for s in specs]
    if meta["kind"] == "series":
        data[0].name = labels[0]
        return data[0]
    frame = _sc_pd.DataFrame(data, index=index, columns=range(len(specs)), copy=False)
    names = [_sc_label_in(n) for n in meta["columns_names"]]
    if "columns_levels" in meta:
        frame.columns = _sc_pd.MultiIndex.from_tuples(labels, names=names)
    else:
        dtype = object if meta.get("columns_dtype") == "object" or not labels else None
        frame.columns = _sc_pd.Index(labels, dtype=dtype, name=names[0], tupleize_cols=False)
    return frame


def sidecar_read_plain_csv(source):
    """A CSV without a sidecar, read as before sidecars existed (floats exactly as written)."""
    return _sc_pd.read_csv(source, float_precision="round_trip")
