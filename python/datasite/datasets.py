"""Datasets and assets: ``sy.Dataset``, ``sy.Asset``, ``client.datasets``, ``upload_dataset``.

A ``Dataset`` or ``Asset`` you build yourself lives in memory until ``client.upload_dataset``; the
ones ``client.datasets`` answers describe what is on the server (``dataset.id`` is set) and read
their bytes from it on demand: ``asset.mock`` for everyone, ``asset.data`` for data owners and
admins.
"""

import re
import warnings

from . import _display, _transfer, errors
from . import output_checks as _output_checks
from ._pysyft import DataSubject
from ._action import is_empty as _is_empty
from .enums import ContributorRole, ServiceRole
from .errors import SyftSuccess

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
PREVIEW_ROWS = 5
PREVIEW_MAX_BYTES = 8 << 20
_UPLOAD_ROLES = ("data_owner", "admin")
_DATASET_FIELDS = ("name", "summary", "description", "citation", "url", "contributors")


def _is_uuid(value):
    return isinstance(value, str) and bool(_UUID.match(value))


def _invalid(message):
    return errors.InvalidArgumentError("INVALID_ARGUMENT", message, None)


# Contributors ------------------------------------------------------------------------------------


class Contributor:
    """A person credited on a dataset or an asset (PySyft's ``sy.Contributor``): a name, and
    optionally email, role, phone and a note.
    """

    _FIELDS = ("name", "email", "role", "phone", "note")

    def __init__(self, name, email=None, role=None, phone=None, note=None):
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a contributor needs a name")
        if isinstance(role, ServiceRole):
            role = role.server_value
        elif isinstance(role, ContributorRole):
            role = role.value
        self.name = name
        self.email = email
        self.role = role
        self.phone = phone
        self.note = note

    @classmethod
    def of(cls, value):
        if isinstance(value, Contributor):
            return value
        if isinstance(value, dict):
            fields = [value.get(k) for k in cls._FIELDS]
            fields[3:] = [v or None for v in fields[3:]]  # the server sends "" for no phone/note
            return cls(*fields)
        if isinstance(value, str):
            return cls(value)
        raise TypeError(
            "a contributor is a sy.Contributor, a dict {{name, email, role, phone, note}} or a "
            "name, got {!r}".format(value)
        )

    def to_dict(self):
        out = {"name": self.name}
        for key in self._FIELDS[1:]:
            value = getattr(self, key)
            if value not in (None, ""):
                out[key] = value
        return out

    def __eq__(self, other):
        if isinstance(other, Contributor):
            return self.to_dict() == other.to_dict()
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "Contributor({})".format(
            ", ".join("{}={!r}".format(k, v) for k, v in self.to_dict().items())
        )


# Schema and preview text -------------------------------------------------------------------------


def schema_text(schema, max_columns=12):
    """One line describing a blob schema, e.g. ``table, 3 rows: age (int), name (string)``."""
    if not isinstance(schema, dict):
        return ""
    kind = schema.get("kind")
    if kind == "table":
        columns = schema.get("columns") or []
        parts = [
            "{} ({})".format(c.get("name"), c.get("type")) if isinstance(c, dict) else str(c)
            for c in columns[:max_columns]
        ]
        if len(columns) > max_columns:
            parts.append("… {} more".format(len(columns) - max_columns))
        rows = schema.get("rows")
        head = "table" if rows is None else "table, {} rows".format(rows)
        return head + ": " + ", ".join(parts)
    if kind == "array":
        shape = schema.get("shape")
        shape_text = str(tuple(shape)) if isinstance(shape, list) else str(shape)
        return "array {} {}".format(schema.get("dtype"), shape_text)
    if kind == "json":
        text = "json {}".format(schema.get("type"))
        if schema.get("length") is not None:
            text += ", length {}".format(schema.get("length"))
        return text
    if kind == "bytes":
        return "bytes"
    return str(kind or "")


def _shape_of_schema(schema):
    if not isinstance(schema, dict):
        return None
    if schema.get("kind") == "table" and schema.get("rows") is not None:
        return (schema["rows"], len(schema.get("columns") or []))
    if schema.get("kind") == "array" and isinstance(schema.get("shape"), list):
        return tuple(schema["shape"])
    if schema.get("kind") == "json" and schema.get("length") is not None:
        return (schema["length"],)
    return None


def _preview(obj):
    """("table", columns, rows) for a DataFrame/Series, ("text", str) for anything else."""
    pd, np = _transfer._pandas(imported_only=True), _transfer._numpy(imported_only=True)
    if pd is not None and isinstance(obj, pd.Series):
        obj = obj.to_frame()
    if pd is not None and isinstance(obj, pd.DataFrame):
        head = obj.head(PREVIEW_ROWS)
        rows = [list(r) for r in head.itertuples(index=False, name=None)]
        return ("table", [str(c) for c in head.columns], rows, len(obj))
    if np is not None and isinstance(obj, np.ndarray):
        return ("text", "array of dtype {} and shape {}".format(obj.dtype.str, obj.shape))
    if isinstance(obj, (bytes, bytearray)):
        return ("text", "{} bytes".format(len(obj)))
    if isinstance(obj, (list, dict)):
        text = repr(obj)
        return ("text", text if len(text) <= 500 else text[:500] + " …")
    if obj is None:
        return ("text", "empty mock")
    return ("text", _transfer.kind_of(obj))


def _preview_text(preview):
    if preview[0] == "table":
        _, columns, rows, total = preview
        text = _display.text_table(columns, rows)
        if total > len(rows):
            text += "\n… {} rows in all".format(total)
        return text
    return preview[1]


def _preview_html(preview):
    if preview[0] == "table":
        _, columns, rows, total = preview
        html = _display.html_table("", columns, rows).replace("<h3></h3>", "")
        if total > len(rows):
            html += "<p>… {} rows in all</p>".format(total)
        return html
    return "<p>{}</p>".format(_display.esc(preview[1]))


# Assets ------------------------------------------------------------------------------------------


class Asset:
    """One asset of a dataset: private ``data`` and a ``mock`` of the same structure.

    ``data``/``mock`` may be a pandas DataFrame or Series (uploaded as CSV), a numpy ndarray
    (.npy), a list or dict (JSON), bytes (raw), or the path of a file (format from the extension:
    .csv, .json, .npy, anything else raw), which is streamed from disk.
    """

    def __init__(
        self,
        name=None,
        description=None,
        data=None,
        mock=None,
        mock_is_real=False,
        contributors=None,
        data_subjects=None,
        shape=None,
    ):
        self.name = name
        self.description = description
        # Descriptive metadata, kept by the server with the asset.
        self.contributors = [Contributor.of(c) for c in (contributors or [])]
        self.data_subjects = [DataSubject.of(d) for d in (data_subjects or [])]
        self._declared_shape = tuple(shape) if shape is not None else None
        self._data = None if _is_empty(data) else data
        self._mock = None if _is_empty(mock) else mock
        self._mock_empty = _is_empty(mock)
        self._mock_is_real = bool(mock_is_real)
        self._blobs = {}  # "data"/"mock" -> (owner key, blob JSON): uploads to reuse
        self._remote = None
        self._client = None
        self._dataset_id = None
        self._dataset_name = None
        self._mock_loaded = False

    @classmethod
    def _from_server(cls, data, client, dataset_id, dataset_name=None):
        asset = cls(name=data.get("name"), description=data.get("description"))
        asset._remote = dict(data)
        asset._client = client
        asset._dataset_id = dataset_id
        asset._dataset_name = dataset_name
        asset._mock_is_real = bool(data.get("mock_is_real"))
        asset.contributors = [Contributor.of(c) for c in data.get("contributors") or []]
        asset.data_subjects = [DataSubject.of(d) for d in data.get("data_subjects") or []]
        return asset

    @property
    def on_server(self):
        return self._remote is not None

    def _local_only(self, what):
        if self.on_server:
            raise TypeError(
                "{} changes an asset you are building; this one is already on the server "
                "(assets of an uploaded dataset cannot be changed)".format(what)
            )

    # Building -------------------------------------------------------------------------------

    def set_obj(self, data):
        """Sets the private data."""
        self._local_only("set_obj")
        self._data = None if _is_empty(data) else data
        self._blobs.pop("data", None)
        return SyftSuccess("Private data of asset '{}' set.".format(self.name))

    def set_mock(self, mock, mock_is_real=False):
        """Sets the mock; ``mock_is_real=True`` says the mock is the real data."""
        self._local_only("set_mock")
        if mock is None or _is_empty(mock):
            return self.no_mock()
        self._mock = mock
        self._mock_empty = False
        self._mock_is_real = bool(mock_is_real)
        self._blobs.pop("mock", None)
        return SyftSuccess("Mock of asset '{}' set.".format(self.name))

    def set_description(self, description):
        """Sets the asset's description."""
        self._local_only("set_description")
        self.description = description
        return SyftSuccess("Description of asset '{}' set.".format(self.name))

    def set_shape(self, shape):
        """Declares the data's shape (PySyft's ``set_shape``); uploaded assets report the shape
        the server reads from the data."""
        self._local_only("set_shape")
        self._declared_shape = tuple(shape)
        return SyftSuccess("Shape of asset '{}' set.".format(self.name))

    def add_contributor(self, name, email=None, role=None, phone=None, note=None):
        """Credits a person on this asset."""
        self._local_only("add_contributor")
        self.contributors.append(Contributor(name, email, role, phone, note))
        return SyftSuccess("Contributor '{}' added to asset '{}'.".format(name, self.name))

    def add_data_subject(self, data_subject):
        """Records who or what the data is about (a ``sy.DataSubject``)."""
        self._local_only("add_data_subject")
        self.data_subjects.append(DataSubject.of(data_subject))
        return SyftSuccess("Data subject added to asset '{}'.".format(self.name))

    def no_mock(self):
        """Declares an empty mock: data scientists see the structure only (schema, no values)."""
        self._local_only("no_mock")
        self._mock = None
        self._mock_empty = True
        self._mock_is_real = False
        self._blobs.pop("mock", None)
        return SyftSuccess("Asset '{}' has an empty mock.".format(self.name))

    def generate_mock(
        self, client, seed=None, rows=None, columns=None, paths=None, public_keys=None, values=None
    ):
        """Uploads the private data and has the server make a mock of it, which becomes this
        asset's mock.

        The mock shows only the structure of the data (column names and types; a JSON document's
        shape of types; an array's dtype and trailing dimensions) and what you declare here; the
        rest comes from defaults that do not depend on the data. ``rows``: how many rows (or
        top-level JSON elements, or the array's first dimension; default 100). ``columns`` (CSV),
        by column name, ``paths`` (JSON), by JSON Pointer with ``*`` for array elements and
        synthetic keys, and ``values`` (arrays): ``{"min": 0, "max": 120}``,
        ``{"categories": ["F", "M"]}``, ``{"null_fraction": 0.1}``, and for JSON ``{"length":
        5}``. ``public_keys`` (JSON): the paths of the objects whose keys may be shown (others
        get ``key_1``, ``key_2``, ...). See docs/API.md, "Generated mocks".

        Look at it with ``asset.mock`` before ``client.upload_dataset``, which reuses both
        uploads.
        """
        self._local_only("generate_mock")
        if self._data is None:
            raise _invalid("asset '{}' has no private data to make a mock of".format(self.name))
        _require_uploader(client, "generate a mock")
        body = _mock_parameters(seed, rows, columns, paths, public_keys, values)
        data_blob = self._upload(client, "data", [])
        blob = client._transport.call("blob_mock", path_params={"id": data_blob["id"]}, body=body)
        mock = _transfer.fetch_object(
            client._transport,
            "blob_get",
            {"id": blob["id"]},
            blob.get("format"),
            label="Downloading mock of " + str(self.name),
        )  # a generated mock has no sidecar: it shows structure only (docs/API.md)
        self._mock = mock
        self._mock_empty = False
        self._mock_is_real = False
        self._blobs["mock"] = (_owner_key(client), blob)
        return SyftSuccess("Mock of asset '{}' generated.".format(self.name), value=mock)

    def regenerate_mock(
        self, seed=None, rows=None, columns=None, paths=None, public_keys=None, values=None
    ):
        """Replaces the mock of this uploaded asset with one the server generates anew from the
        private data (data owners and admins), with the parameters of ``generate_mock``. Clears
        ``mock_needs_regeneration``. Returns the new mock.
        """
        self._require_remote("regenerate_mock")
        body = _mock_parameters(seed, rows, columns, paths, public_keys, values)
        dataset = self._client._transport.call(
            "asset_mock_regenerate", path_params=self._route_params(), body=body
        )
        for remote in dataset.get("assets") or []:
            if remote.get("name") == self.name:
                self._remote = dict(remote)
        self._mock_is_real = bool(self._remote.get("mock_is_real"))
        self._mock = None
        self._mock_loaded = False
        return SyftSuccess("Mock of asset '{}' generated anew.".format(self.name), value=self.mock)

    def _upload(self, client, which, created):
        """The blob JSON of this asset's data or mock on ``client``'s server, uploading it unless
        an earlier upload by the same user can be reused. New blob ids are appended to
        ``created``.
        """
        key = _owner_key(client)
        cached = self._blobs.get(which)
        if cached is not None and cached[0] == key:
            return cached[1]
        obj = self._data if which == "data" else self._mock
        if which == "mock":
            _warn_of_unused_categories(self.name, obj)
        with _transfer.payload_of(obj) as payload:
            blob = _transfer.upload(
                client._transport,
                payload,
                label="Uploading {} of {}".format(which, self.name),
            )
            if payload.meta is not None:
                blob = dict(blob, sidecar=payload.meta)  # sent with the dataset, as <which>_meta
        created.append(blob["id"])
        self._blobs[which] = (key, blob)
        return blob

    def _check(self, low_side=False):
        if not isinstance(self.name, str) or not self.name.strip():
            raise _invalid("every asset needs a name")
        if self._data is None and not low_side:
            raise _invalid(
                "asset '{}' has no private data: set it with sy.Asset(data=...) or "
                "asset.set_obj(...)".format(self.name)
            )
        if self._mock is None and not self._mock_empty:
            raise _invalid(
                "asset '{}' has no mock: set one with asset.set_mock(...), have the server make "
                "one with asset.generate_mock(client), or declare an empty mock with "
                "asset.no_mock()".format(self.name)
            )
        formats = {}
        for which, obj in (("data", self._data), ("mock", self._mock)):
            if obj is not None:
                formats[which] = _transfer.format_of(obj)
        if len(set(formats.values())) > 1:
            raise _invalid(
                "asset '{}': the data would be uploaded as {} but the mock as {}; data and mock "
                "must have the same format".format(self.name, formats["data"], formats["mock"])
            )

    # Reading --------------------------------------------------------------------------------

    def _field(self, key):
        return self._remote.get(key) if self._remote is not None else None

    @property
    def id(self):
        """The asset's id on the server (None for an asset you are building); code binds its
        inputs to assets by this id.
        """
        return self._field("id")

    @property
    def dataset_id(self):
        return self._dataset_id

    @property
    def dataset_name(self):
        return self._dataset_name

    @property
    def format(self):
        if self.on_server:
            return self._remote.get("format")
        for obj in (self._data, self._mock):
            if obj is not None:
                try:
                    return _transfer.format_of(obj)
                except TypeError:
                    return None
        return None

    @property
    def mock_is_real(self):
        return self._mock_is_real

    @property
    def mock_needs_regeneration(self):
        """True when the mock was generated by an earlier datasite, whose mocks could reveal
        private data (keys, row counts, null positions, lengths, ranges); fix it with
        ``asset.regenerate_mock()``. Shown to data owners and admins only (else None).
        """
        return self._field("mock_needs_regeneration")

    @property
    def has_mock(self):
        if self.on_server:
            return bool(self._remote.get("has_mock"))
        return self._mock is not None

    @property
    def schema(self):
        """The server's description of the mock (columns and types, dtype and shape, ...)."""
        if self.on_server:
            return self._remote.get("schema")
        for which in ("mock", "data"):
            cached = self._blobs.get(which)
            if cached is not None:
                return cached[1].get("schema")
        return None

    @property
    def shape(self):
        shape = _shape_of_schema(self.schema)
        return shape if shape is not None or self.on_server else self._declared_shape

    @property
    def mock_size(self):
        return self._field("mock_size")

    @property
    def mock_sha256(self):
        return self._field("mock_sha256")

    @property
    def data_size(self):
        """Size of the private data in bytes (shown to data owners and admins only)."""
        return self._field("data_size")

    @property
    def data_sha256(self):
        return self._field("data_sha256")

    @property
    def mock(self):
        """The mock as a Python object (DataFrame, ndarray, JSON value or bytes); None when the
        mock is empty.
        """
        if not self.on_server:
            return self._mock
        if not self.has_mock:
            return None
        if not self._mock_loaded:
            self._mock = _transfer.fetch_object(
                self._client._transport,
                "asset_mock",
                self._route_params(),
                self.format,
                label="Downloading mock of " + str(self.name),
                meta=self._remote.get("mock_meta"),
                sha256=self._remote.get("mock_sha256"),
            )
            self._mock_loaded = True
        return self._mock

    @property
    def data(self):
        """The private data (data owners and admins; others get PermissionDeniedError)."""
        if not self.on_server:
            return self._data
        return _transfer.fetch_object(
            self._client._transport,
            "asset_data",
            self._route_params(),
            self.format,
            label="Downloading data of " + str(self.name),
            meta=self._remote.get("data_meta"),
            sha256=self._remote.get("data_sha256"),
        )

    def _route_params(self):
        return {"id": self._dataset_id, "name": self.name}

    # Differential privacy --------------------------------------------------------------------

    @property
    def dp(self):
        """DP queries on this (tabular) asset: ``asset.dp.count(epsilon=0.1)``,
        ``asset.dp.mean("age", epsilon=0.2, where={"sex": "F"}, group_by="region")``, ``.cost``,
        ``.policy``, ``.budget`` (see ``datasite.dp``)."""
        from .dp import AssetDP

        return AssetDP(self)

    @property
    def dp_policy(self):
        """The asset's ``sy.DPPolicy``; None when there is none."""
        return self.dp.policy

    def set_dp_policy(self, policy):
        """Sets the asset's differential-privacy policy (data owners): a ``sy.DPPolicy`` (or its
        wire dict); None removes it, and with it DP queries on the asset."""
        from .dp import DPPolicy
        from .errors import SyftSuccess

        self._require_remote("set_dp_policy")
        if policy is None:
            self._client._transport.call("dp_policy_delete", {"id": self.id})
            return SyftSuccess("DP policy of '{}' removed.".format(self.name))
        if isinstance(policy, dict):
            policy = DPPolicy.from_wire(policy)
        if not isinstance(policy, DPPolicy):
            raise TypeError("set_dp_policy takes a sy.DPPolicy, got {!r}".format(policy))
        stored = self._client._transport.call("dp_policy_set", {"id": self.id},
                                              body=policy.to_wire())
        return SyftSuccess("DP policy of '{}' set.".format(self.name),
                           value=DPPolicy.from_wire(stored))

    def download_mock(self, path):
        """Writes the mock's bytes to ``path`` (checked against their SHA-256); returns it."""
        self._require_remote("download_mock")
        if not self.has_mock:
            raise errors.NotFoundError(None, "asset '{}' has an empty mock".format(self.name))
        return _transfer.fetch_to_path(
            self._client._transport,
            "asset_mock",
            self._route_params(),
            path,
            label="Downloading mock of " + str(self.name),
        )

    def download_data(self, path):
        """Writes the private data's bytes to ``path`` (data owners and admins); returns it."""
        self._require_remote("download_data")
        return _transfer.fetch_to_path(
            self._client._transport,
            "asset_data",
            self._route_params(),
            path,
            label="Downloading data of " + str(self.name),
        )

    def _require_remote(self, what):
        if not self.on_server:
            raise TypeError("{} reads an uploaded asset; this one is not on a server".format(what))

    def to_dict(self):
        if self.on_server:
            return dict(self._remote)
        return {
            "name": self.name,
            "description": self.description,
            "format": self.format,
            "mock_is_real": self.mock_is_real,
            "has_mock": self.has_mock,
        }

    # Display --------------------------------------------------------------------------------

    def _rows(self):
        rows = [("Name", self.name), ("Description", self.description)]
        if self.on_server:
            rows += [("Dataset", self._dataset_name), ("Format", self.format)]
            rows.append(("Schema", schema_text(self.schema)))
            rows.append(
                ("Mock", "yes ({} bytes)".format(self.mock_size) if self.has_mock else "empty")
            )
            rows.append(("Mock is real", self.mock_is_real))
            if self.mock_needs_regeneration:
                rows.append(("Warning", _REGENERATE_WARNING))
            if self.data_size is not None:
                rows.append(
                    (
                        "Private data",
                        "{} bytes, sha256 {}".format(self.data_size, self.data_sha256),
                    )
                )
        else:
            rows += [
                ("Format", self.format),
                ("Private data", _transfer.kind_of(self._data)),
                ("Mock", "empty" if self._mock_empty else _transfer.kind_of(self._mock)),
                ("Mock is real", self.mock_is_real),
            ]
        return rows

    def _mock_preview(self):
        """The preview of the mock, or a note saying why there is none; never raises."""
        if self.on_server:
            if not self.has_mock:
                return ("text", "empty mock")
            schema = self.schema or {}
            if schema.get("kind") == "array":
                return (
                    "text",
                    "array of dtype {} and shape {}".format(
                        schema.get("dtype"), tuple(schema.get("shape") or ())
                    ),
                )
            if (self.mock_size or 0) > PREVIEW_MAX_BYTES and not self._mock_loaded:
                return ("text", "mock of {} bytes: read it with asset.mock".format(self.mock_size))
        try:
            return _preview(self.mock)
        except Exception as err:  # A display hook must not raise.
            return ("text", "no preview: {}".format(err))

    def __repr__(self):
        text = _display.text_fields("Asset", self._rows())
        return text + "\n\nMock preview:\n" + _preview_text(self._mock_preview())

    def _repr_html_(self):
        return (
            _display.html_fields("Asset: " + _display.show(self.name), self._rows())
            + "<h4>Mock preview</h4>"
            + _preview_html(self._mock_preview())
        )


_ASSET_COLUMNS = ("name", "description", "format", "schema", "mock", "mock_is_real")

_REGENERATE_WARNING = (
    "this mock was generated by an earlier datasite and may reveal private data; replace it "
    "with asset.regenerate_mock()"
)


def _mock_parameters(seed, rows, columns, paths, public_keys, values):
    """The body of a mock generation: only what was given (the server checks it strictly)."""
    given = {
        "seed": seed,
        "rows": rows,
        "columns": columns,
        "paths": paths,
        "public_keys": public_keys,
        "values": values,
    }
    return {key: value for key, value in given.items() if value is not None}


def _asset_row(asset):
    mock = (
        "yes"
        if asset.has_mock
        else ("empty" if asset.on_server or asset._mock_empty else "not set")
    )
    if asset.on_server and asset.mock_needs_regeneration:
        mock = "yes (WARNING: may reveal private data; asset.regenerate_mock())"
    return [
        asset.name,
        asset.description,
        asset.format,
        schema_text(asset.schema),
        mock,
        asset.mock_is_real,
    ]


class AssetList(list):
    """A dataset's assets: index by position (``[0]``, ``[-1]``) or by name (``["table"]``)."""

    def __getitem__(self, key):
        if isinstance(key, str):
            for asset in self:
                if asset.name == key:
                    return asset
            raise KeyError(
                "no asset named {!r}; the assets are: {}".format(
                    key, ", ".join(repr(a.name) for a in self) or "none"
                )
            )
        result = super().__getitem__(key)
        return AssetList(result) if isinstance(key, slice) else result

    def __contains__(self, item):
        if isinstance(item, str):
            return any(a.name == item for a in self)
        return super().__contains__(item)

    def names(self):
        return [a.name for a in self]

    def __repr__(self):
        return _display.text_table(_ASSET_COLUMNS, [_asset_row(a) for a in self])

    def _repr_html_(self):
        return _display.html_list("Assets", _ASSET_COLUMNS, [_asset_row(a) for a in self])


# Datasets ----------------------------------------------------------------------------------------


class Dataset:
    """A dataset: metadata and a list of assets.

    Build one with ``sy.Dataset(name=...)`` and ``add_asset``, then ``client.upload_dataset``.
    Datasets read from ``client.datasets`` have an ``id`` and change with ``update``/``delete``.
    """

    def __init__(
        self,
        name=None,
        summary=None,
        description=None,
        citation=None,
        url=None,
        contributors=None,
        asset_list=None,
    ):
        self.name = name
        self.summary = summary
        self.description = description
        self.citation = citation
        self.url = url
        self.contributors = [Contributor.of(c) for c in (contributors or [])]
        self._assets = AssetList()
        self._remote = None
        self._client = None
        for asset in asset_list or []:
            self.add_asset(asset)

    @classmethod
    def _from_server(cls, data, client):
        dataset = cls.__new__(cls)
        dataset._client = client
        dataset._load(data)
        return dataset

    def _load(self, data):
        data = dict(data or {})
        self._remote = data
        self.name = data.get("name")
        self.summary = data.get("summary")
        self.description = data.get("description")
        self.citation = data.get("citation")
        self.url = data.get("url")
        self.contributors = [Contributor.of(c) for c in data.get("contributors") or []]
        self._assets = AssetList(
            Asset._from_server(a, self._client, data.get("id"), data.get("name"))
            for a in data.get("assets") or []
        )

    @property
    def on_server(self):
        return self._remote is not None

    def _field(self, key):
        return self._remote.get(key) if self._remote is not None else None

    @property
    def id(self):
        return self._field("id")

    @property
    def uploader(self):
        return self._field("uploader")

    @property
    def created_at(self):
        return self._field("created_at")

    @property
    def updated_at(self):
        return self._field("updated_at")

    @property
    def assets(self):
        return self._assets

    asset_list = assets

    def to_dict(self):
        if self.on_server:
            return dict(self._remote)
        return self._create_body({})

    # Building -------------------------------------------------------------------------------

    def _local_only(self, what):
        if self.on_server:
            raise TypeError(
                "{} changes a dataset you are building; this one is on the server: use "
                "dataset.update(...)".format(what)
            )

    def add_asset(self, asset, force_replace=False):
        """Adds an asset; one with the same name is replaced only with ``force_replace=True``."""
        self._local_only("add_asset")
        if not isinstance(asset, Asset):
            raise TypeError("add_asset takes a sy.Asset, got {}".format(type(asset).__name__))
        for i, existing in enumerate(self._assets):
            if existing.name == asset.name:
                if not force_replace:
                    raise ValueError(
                        "asset '{}' already exists in dataset '{}': use force_replace=True to "
                        "replace it".format(asset.name, self.name)
                    )
                list.__setitem__(self._assets, i, asset)
                return SyftSuccess(
                    "Asset '{}' replaced in '{}' Dataset.".format(asset.name, self.name)
                )
        self._assets.append(asset)
        return SyftSuccess("Asset '{}' added to '{}' Dataset.".format(asset.name, self.name))

    def replace_asset(self, asset):
        return self.add_asset(asset, force_replace=True)

    def remove_asset(self, name):
        """Removes the asset called ``name``."""
        self._local_only("remove_asset")
        for i, existing in enumerate(self._assets):
            if existing.name == name:
                del self._assets[i]
                return SyftSuccess("Asset '{}' removed from '{}' Dataset.".format(name, self.name))
        raise KeyError("dataset '{}' has no asset named {!r}".format(self.name, name))

    def add_contributor(self, name, email=None, role=None, phone=None, note=None):
        """Credits a person (name, email, role, phone, note) on the dataset."""
        self._local_only("add_contributor")
        contributor = Contributor(name, email, role, phone, note)
        self.contributors.append(contributor)
        return SyftSuccess("Contributor '{}' added to '{}' Dataset.".format(name, self.name))

    def set_description(self, description):
        self._local_only("set_description")
        self.description = description
        return SyftSuccess("Dataset description set.")

    def set_summary(self, summary):
        self._local_only("set_summary")
        self.summary = summary
        return SyftSuccess("Dataset summary set.")

    def add_citation(self, citation):
        self._local_only("add_citation")
        self.citation = citation
        return SyftSuccess("Dataset citation set.")

    def add_url(self, url):
        self._local_only("add_url")
        self.url = url
        return SyftSuccess("Dataset URL set.")

    def _create_body(self, blob_ids):
        body = {"name": self.name}
        for key in ("summary", "description", "citation", "url"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        if self.contributors:
            body["contributors"] = [c.to_dict() for c in self.contributors]
        assets = []
        for asset in self._assets:
            item = {"name": asset.name}
            if asset.description is not None:
                item["description"] = asset.description
            ids = blob_ids.get(asset.name, {})
            for which in ("data", "mock", "data_meta", "mock_meta"):
                if ids.get(which):
                    item[which] = ids[which]
            item["mock_is_real"] = bool(asset.mock_is_real and ids.get("mock"))
            if asset.contributors:
                item["contributors"] = [c.to_dict() for c in asset.contributors]
            if asset.data_subjects:
                item["data_subjects"] = [d.to_dict() for d in asset.data_subjects]
            assets.append(item)
        body["assets"] = assets
        return body

    # On the server --------------------------------------------------------------------------

    def _require_remote(self, what):
        if not self.on_server:
            raise TypeError(
                "{} acts on an uploaded dataset; upload this one with "
                "client.upload_dataset(dataset)".format(what)
            )

    def update(self, **fields):
        """Changes metadata on the server: any of name, summary, description, citation, url,
        contributors.
        """
        self._require_remote("update")
        if not fields:
            raise ValueError("update needs at least one field, e.g. description=...")
        unknown = sorted(set(fields) - set(_DATASET_FIELDS))
        if unknown:
            raise TypeError(
                "update takes {}; got {}".format(", ".join(_DATASET_FIELDS), ", ".join(unknown))
            )
        body = dict(fields)
        if "contributors" in body and body["contributors"] is not None:
            body["contributors"] = [Contributor.of(c).to_dict() for c in body["contributors"]]
        data = self._client._transport.call(
            "dataset_update", path_params={"id": self.id}, body=body
        )
        self._load(data)
        return SyftSuccess("Dataset '{}' updated.".format(self.name), value=self)

    @property
    def output_checks(self):
        """The rules results of runs nobody reviews must pass (``sy.OutputChecks``), read from
        the server; None when the dataset has none. See ``set_output_checks``.
        """
        self._require_remote("output_checks")
        return _output_checks.get_output_checks(self._client, self.id)

    def set_output_checks(self, checks):
        """Sets the rules that the output of a run nobody reviews (a run under a grant) must pass
        when its code binds an asset of this dataset (data owners), e.g.
        ``sy.OutputChecks(min_cell_count=10, round_to=5)``; ``sy.OutputChecks()`` or None
        removes them. The SyftSuccess's value is the rules as the server now holds them.
        """
        self._require_remote("set_output_checks")
        return _output_checks.set_output_checks(self._client, self.id, checks, self.name)

    def refresh(self):
        """Reads this dataset anew from the server."""
        self._require_remote("refresh")
        self._load(self._client._transport.call("dataset_get", path_params={"id": self.id}))
        return self

    def delete(self):
        """Deletes the dataset (soft delete: it disappears from listings and frees its name)."""
        self._require_remote("delete")
        return self._client.datasets.delete(self.id)

    # Display --------------------------------------------------------------------------------

    def _uploader_text(self):
        uploader = self.uploader
        if isinstance(uploader, dict):
            name, email = uploader.get("name"), uploader.get("email")
            return "{} <{}>".format(name, email) if email else _display.show(name)
        return _display.show(uploader)

    def _rows(self):
        rows = []
        if self.on_server:
            rows += [
                ("Id", self.id),
                ("Uploaded by", self._uploader_text()),
                ("Created at", self.created_at),
                ("Updated at", self.updated_at),
            ]
        rows += [("Summary", self.summary), ("Citation", self.citation), ("URL", self.url)]
        return rows

    def __repr__(self):
        parts = [_display.text_fields("Dataset: " + _display.show(self.name), self._rows())]
        if self.description:
            parts.append(
                "Description:\n"
                + "\n".join("  " + line for line in _display.show(self.description).split("\n"))
            )
        if self.contributors:
            parts.append(
                "Contributors:\n"
                + _display.text_table(
                    ("name", "email", "role"),
                    [(c.name, c.email, c.role) for c in self.contributors],
                )
            )
        parts.append("Assets:\n" + repr(self._assets))
        return "\n\n".join(parts)

    def _repr_html_(self):
        esc = _display.esc
        out = ['<div class="datasite"><h3>{}</h3>'.format(esc(self.name))]
        out.append(_display.html_fields("", self._rows()).replace("<h3></h3>", ""))
        out.append("<h4>Description</h4>")
        out.append(_display.markdown_html(self.description))
        out.append(
            _display.html_table(
                "Contributors",
                ("name", "email", "role"),
                [(c.name, c.email, c.role) for c in self.contributors],
            )
            .replace("<h3>", "<h4>")
            .replace("</h3>", "</h4>")
        )
        out.append(self._assets._repr_html_().replace("<h3>", "<h4>").replace("</h3>", "</h4>"))
        out.append("</div>")
        return "".join(out)


_DATASET_COLUMNS = ("name", "summary", "assets", "uploader", "created_at", "id")


def _unused_categories(obj):
    """``[(label, n)]``: the categorical columns and index levels of a DataFrame or Series whose
    dtype declares ``n`` categories that none of its rows holds."""
    pd = _transfer._pandas(imported_only=True)
    if pd is None or not isinstance(obj, (pd.DataFrame, pd.Series)):
        return []
    frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
    found = []
    columns = [(label, frame.iloc[:, i]) for i, label in enumerate(frame.columns)]
    levels = [("index " + str(name if name is not None else level),
               obj.index.get_level_values(level)) for level, name in enumerate(obj.index.names)]
    for label, values in columns + levels:
        if isinstance(values.dtype, pd.CategoricalDtype):
            unused = len(values.dtype.categories) - values.nunique(dropna=True)
            if unused:
                found.append((str(label), unused))
    return found


def _warn_of_unused_categories(asset_name, mock):
    """A mock cut from the private frame (``private.sample(5)``) keeps every category of it, and
    its typed sidecar, public like the mock, names them all: say so before they leave."""
    found = _unused_categories(mock)
    if found:
        warnings.warn(
            errors.DatasiteWarning(
                "the mock of asset '{}' declares categories that none of its rows holds ({}); "
                "they are public with the mock. pandas keeps every category of the frame a mock "
                "is cut from: if they come from the private data, drop them with "
                "mock[column] = mock[column].cat.remove_unused_categories()".format(
                    asset_name, ", ".join("{}: {}".format(label, n) for label, n in found)
                )
            ),
            stacklevel=4,
        )


class DatasetList(list):
    """Datasets that render as a table; index by position or by name."""

    def __getitem__(self, key):
        if isinstance(key, str):
            for dataset in self:
                if dataset.name == key:
                    return dataset
            raise KeyError("no dataset named {!r}".format(key))
        result = super().__getitem__(key)
        return DatasetList(result) if isinstance(key, slice) else result

    @property
    def datasets(self):
        """PySyft's page view names its items ``datasets``: the same list."""
        return self

    def _table_rows(self):
        return [
            [d.name, d.summary, len(d.assets), d._uploader_text(), d.created_at, d.id]
            for d in self
        ]

    def __repr__(self):
        return _display.text_table(_DATASET_COLUMNS, self._table_rows())

    def _repr_html_(self):
        return _display.html_list("Dataset List", _DATASET_COLUMNS, self._table_rows())


class DatasetCollection:
    """``client.datasets``: the server's datasets, fetched anew on each use.

    List-like: ``len``, ``[i]`` (negative too), ``["name"]``, iteration; and ``get_all``,
    ``search``, ``get`` and ``delete``.
    """

    _PAGE_SIZE = 100

    def __init__(self, client):
        self._client = client

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, **kwargs)

    def _page(self, page, page_size, search=None):
        return (
            self._call(
                "datasets_list", query={"page": page, "page_size": page_size, "search": search}
            )
            or {}
        )

    def _iter(self, search=None):
        page, seen = 1, 0
        while True:
            data = self._page(page, self._PAGE_SIZE, search)
            batch = data.get("items") or []
            for item in batch:
                yield Dataset._from_server(item, self._client)
            seen += len(batch)
            total = data.get("total")
            if not batch or total is None or seen >= total:
                return
            page += 1

    def get_all(self):
        """Every dataset, all pages."""
        return DatasetList(self._iter())

    def search(self, name=None, text=None, page_size=None, page_index=None):
        """Datasets whose name or description contains the text (the server's search), oldest
        first; with ``page_size`` only page ``page_index`` (from 0) of them, as PySyft pages."""
        needle = name if name is not None else text
        if not isinstance(needle, str):
            raise TypeError("search takes the text to look for, e.g. search('census')")
        if page_size is None:
            if page_index not in (None, 0):
                raise ValueError("page_index needs a page_size")
            return DatasetList(self._iter(needle))
        for arg, value, low in (("page_size", page_size, 1), ("page_index", page_index or 0, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError("{} must be an int of at least {}, got {!r}".format(arg, low, value))
        data = self._page((page_index or 0) + 1, page_size, needle)
        return DatasetList(
            Dataset._from_server(item, self._client) for item in data.get("items") or []
        )

    def get(self, name_or_id):
        """One dataset by name or id; NotFoundError when there is none."""
        if isinstance(name_or_id, Dataset):
            name_or_id = name_or_id.id
        data = self._call("dataset_get", path_params={"id": name_or_id})
        return Dataset._from_server(data, self._client)

    get_by_id = get

    def _id_of(self, name_or_id):
        if isinstance(name_or_id, Dataset):
            return name_or_id.id
        if _is_uuid(name_or_id):
            return name_or_id.lower()
        return self.get(name_or_id).id

    def delete(self, name_or_id):
        """Deletes a dataset by name or id (soft delete)."""
        dataset_id = self._id_of(name_or_id)
        data = self._call("dataset_delete", path_params={"id": dataset_id}) or {}
        return SyftSuccess(data.get("message") or "Dataset {} deleted.".format(name_or_id))

    def __len__(self):
        return int(self._page(1, 1).get("total") or 0)

    def __iter__(self):
        return self._iter()

    def __contains__(self, name):
        try:
            self.get(name.name if isinstance(name, Dataset) else name)
        except errors.NotFoundError:
            return False
        return True

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.get(key)
        if isinstance(key, slice):
            return self.get_all()[key]
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError("datasets are indexed by position or name, got {!r}".format(key))
        index = key
        if index < 0:
            index += len(self)
        if index < 0:
            raise IndexError("dataset index {} out of range".format(key))
        items = self._page(index + 1, 1).get("items") or []
        if not items:
            raise IndexError("dataset index {} out of range".format(key))
        return Dataset._from_server(items[0], self._client)

    def __repr__(self):
        return repr(self.get_all())

    def _repr_html_(self):
        return self.get_all()._repr_html_()


# Uploading ---------------------------------------------------------------------------------------


def _owner_key(client):
    return (client._transport.base_url, client._user.get("id"))


def _require_uploader(client, what):
    role = client._user.get("role")
    if role not in _UPLOAD_ROLES:
        label = (
            "a guest" if role == "guest" or role is None else "a " + str(role).replace("_", " ")
        )
        raise errors.PermissionDeniedError(
            "PERMISSION_DENIED",
            "only data owners and admins may {}; you are logged in as {}".format(what, label),
            None,
        )


def upload_dataset(client, dataset):
    """Uploads every asset's data and mock, then creates the dataset; returns SyftSuccess with
    the uploaded dataset as ``value``. Blobs this call uploaded are deleted again when it fails.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError("upload_dataset takes a sy.Dataset, got {}".format(type(dataset).__name__))
    if dataset.on_server:
        raise TypeError("this dataset is already on the server (id {})".format(dataset.id))
    _require_uploader(client, "upload datasets")
    if not isinstance(dataset.name, str) or not dataset.name.strip():
        raise _invalid("the dataset needs a name")
    if not dataset.assets:
        raise _invalid(
            "dataset '{}' has no assets: add one with dataset.add_asset(...)".format(dataset.name)
        )
    low_side = (client._metadata.get("server_side_type") or "high") == "low"
    if low_side:
        with_data = [a.name for a in dataset.assets if a._data is not None]
        if with_data:
            raise _invalid(
                "{} is a low-side server, which holds mock data only; asset(s) {} have private "
                "data. Upload them without data (sy.Asset(name=..., mock=...)) here, and with "
                "their data to the high-side server.".format(
                    client.name, ", ".join(repr(n) for n in with_data)
                )
            )
    for asset in dataset.assets:
        asset._check(low_side=low_side)
    created = []
    try:
        ids = {}
        for asset in dataset.assets:
            entry = {}
            for which, obj in (("data", asset._data), ("mock", asset._mock)):
                if obj is None:
                    continue
                blob = asset._upload(client, which, created)
                entry[which] = blob["id"]
                if blob.get("sidecar") is not None:
                    entry[which + "_meta"] = blob["sidecar"]
            ids[asset.name] = entry
        data = client._transport.call("datasets_create", body=dataset._create_body(ids))
    except BaseException:
        for blob_id in created:
            try:
                client._transport.call("blob_delete", path_params={"id": blob_id})
            except Exception:  # Best effort: unused blobs are also removed after a day.
                pass
        for asset in dataset.assets:
            for which in ("data", "mock"):
                cached = asset._blobs.get(which)
                if cached is not None and cached[1].get("id") in created:
                    del asset._blobs[which]
        raise
    for asset in dataset.assets:
        asset._blobs.clear()  # now used by this dataset: a second upload sends them anew
    uploaded = Dataset._from_server(data, client)
    return SyftSuccess(
        "Dataset '{}' uploaded to '{}'.".format(uploaded.name, client.name), value=uploaded
    )
