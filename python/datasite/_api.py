"""``client.api.services.<service>.<method>(...)``: every server operation, by PySyft's names.

The tree is built from the server's own OpenAPI document (``GET /api/v1/openapi.json``): each
operation's ``operationId`` ("user.get_all") names it, its path parameters are filled from
positional arguments (or by name; PySyft's ``uid=`` fills ``{id}``), its query parameters and JSON
body from keyword arguments, checked against what the document declares before anything is sent.
A route the server adds appears here without a new client. Answers become the client's objects
where one exists (``User``, ``Dataset``, ``Request``, ``Job``, ``UserCode``, ``Settings``), a
``SyftSuccess`` for a bare message, bytes for a download, else the decoded JSON.

A few PySyft operations are the client's own work on top of the routes (``code.submit`` and
``code.request_code_execution`` with a decorated function, ``request.get_all_pending``,
``code_history.get_history``, ``settings.welcome_preview`` ...); they sit in the same tree.
Custom endpoints (operations the server marks ``x-custom-endpoint``) may not use a built-in
service's name: such an operation is left out with a warning.

The custom API endpoints data owners add (``client.api.services.api.add``, see
``datasite.api_endpoints``) are attributes too: ``client.api.services.bigquery.query(...)``. Their
list is read on first use, again after this client changes one, on ``refresh()``, and when an
attribute names none of those known (another client may have added it since).
"""

import enum
import json
import re
import urllib.parse
import uuid
import warnings

from . import _display
from .errors import DatasiteError, DatasiteWarning, SyftSuccess

# The major version of the HTTP API this client speaks; a server of another major is refused at
# login. Servers from before the field (no "api_version") spoke 1.0.
API_MAJOR = 1
_HTTP_METHODS = ("get", "post", "patch", "put", "delete")
_OPERATION_ID = re.compile(r"[A-Za-z_]\w*\.[A-Za-z_]\w*")


class IncompatibleServerError(DatasiteError):
    """The server speaks another major version of the HTTP API than this client."""


def check_server_version(metadata, url, client_version):
    """Raises ``IncompatibleServerError`` when ``metadata`` (the server's /api/v1/metadata) names
    an API major version other than ``API_MAJOR``.
    """
    metadata = metadata or {}
    api_version = str(metadata.get("api_version") or "1.0")
    try:
        major = int(api_version.split(".", 1)[0])
    except ValueError:
        major = None
    if major == API_MAJOR:
        return
    raise IncompatibleServerError(
        "INCOMPATIBLE_SERVER",
        "the server at {} (datasite {}) speaks HTTP API version {}, and this client (datasite "
        "{}) speaks version {}.x: install the client that comes with the server's version "
        "(pip install -e <the server's checkout>/python)".format(
            url, metadata.get("version", "?"), api_version, client_version, API_MAJOR
        ),
        None,
    )


# Values -------------------------------------------------------------------------------------


class UID(str):
    """An object id (PySyft's ``sy.UID``): a UUID, written the server's way (lower case, with
    dashes). ``UID()`` makes a new one; ``UID("f8ea2225...")`` accepts the 32 hex digits PySyft
    prints, with or without dashes. It is a ``str``, so it goes wherever an id does.
    """

    def __new__(cls, value=None):
        if value is None:
            value = uuid.uuid4()
        elif isinstance(value, UID):
            return value
        elif isinstance(value, str):
            try:
                value = uuid.UUID(value.strip())
            except ValueError:
                raise ValueError("not a UID: {!r}".format(value)) from None
        elif isinstance(value, bytes) and len(value) == 16:
            value = uuid.UUID(bytes=value)
        elif not isinstance(value, uuid.UUID):
            raise TypeError(
                "a UID is made from a str, a uuid.UUID or 16 bytes, got {!r}".format(value)
            )
        return super().__new__(cls, str(value))

    @classmethod
    def from_string(cls, value):
        return cls(value)

    @property
    def value(self):
        return uuid.UUID(str(self))

    @property
    def no_dash(self):
        return str(self).replace("-", "")

    def to_string(self):
        return self.no_dash

    @property
    def short(self):
        return self.no_dash[:8]

    def __repr__(self):
        return "<UID: {}>".format(self.no_dash)


def _wire(value):
    """A Python value as JSON the server reads: roles and other enums by value, UIDs as text."""
    from .enums import ServiceRole

    if isinstance(value, ServiceRole):
        return value.server_value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    return value


def _ident(value):
    """A path parameter: an object's id (``User``, ``Dataset`` ...) or the value as text."""
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    ident = getattr(value, "id", None)
    if ident is not None:
        return str(ident)
    raise TypeError("expected an id, got {!r}".format(value))


# Answers ------------------------------------------------------------------------------------


def _converters():
    """service -> (one object from JSON, a list of them from JSON items)."""
    from .code import UserCode, UserCodeList
    from .datasets import Dataset, DatasetList
    from .grants import Grant, GrantList
    from .jobs import Job, JobList
    from .requests import Request, RequestList
    from .users import User, UserList

    def plain(cls, list_cls):
        return (lambda d, c: cls(d, c), lambda items, c: list_cls(cls(i, c) for i in items))

    return {
        "user": plain(User, UserList),
        "account": plain(User, UserList),
        "request": plain(Request, RequestList),
        "job": plain(Job, JobList),
        "code": plain(UserCode, UserCodeList),
        "grant": plain(Grant, GrantList),
        "grants": plain(Grant, GrantList),
        "dataset": (
            lambda d, c: Dataset._from_server(d, c),
            lambda items, c: DatasetList(Dataset._from_server(i, c) for i in items),
        ),
    }


def _convert(op, data, client):
    from .jobs import Job
    from .settings import Markdown, Settings
    from .users import Account

    if op.id == "code.call" and isinstance(data, dict):
        return Job(data, client)
    if op.service == "project" and isinstance(data, dict):
        from .projects import Project, ProjectList

        if isinstance(data.get("items"), list) and op.id == "project.get_all":
            return ProjectList(Project._from_server(i, client) for i in data["items"])
        if "id" in data and "members" in data:
            return Project._from_server(data, client)
    if op.id == "user.get_current_user" and isinstance(data, dict):
        return Account(data, client)
    if op.id == "settings.welcome_show" and isinstance(data, dict):
        return Markdown(data.get("markdown", ""))
    if op.service == "settings" and isinstance(data, dict) and "name" in data and "id" in data:
        return Settings(data, client)
    if op.service in ("worker_image", "worker_pool"):
        from . import worker_pools as _wp

        one, many = {
            "worker_image": (_wp.WorkerImage, _wp.WorkerImageList),
            "worker_pool": (_wp.WorkerPool, _wp.WorkerPoolList),
        }[op.service]
        if isinstance(data, list):
            return many(one(i, client) for i in data if isinstance(i, dict))
        if isinstance(data, dict) and ("id" in data or "image_id" in data):
            return one(data, client)
    if not isinstance(data, dict):
        return data
    if set(data) == {"message"}:
        return SyftSuccess(data["message"])
    one, many = _converters().get(op.service, (None, None))
    if many is not None and isinstance(data.get("items"), list):
        return many(data["items"], client)
    if one is not None and "id" in data:
        return one(data, client)
    return data


# The tree -----------------------------------------------------------------------------------


class _Operation:
    """One operation of the OpenAPI document."""

    def __init__(self, op_id, http_method, path, spec):
        self.id = op_id
        self.service, self.method = op_id.split(".", 1)
        self.http_method = http_method.upper()
        self.path = path
        self.summary = spec.get("summary") or ""
        self.min_role = spec.get("x-min-role") or "anyone"
        self.custom = bool(spec.get("x-custom-endpoint"))
        params = spec.get("parameters") or []
        self.path_params = [p["name"] for p in params if p.get("in") == "path"]
        self.query = [p["name"] for p in params if p.get("in") == "query"]
        content = (spec.get("requestBody") or {}).get("content") or {}
        self.binary_body = "application/octet-stream" in content
        self.schema = (content.get("application/json") or {}).get("schema")

    def signature(self):
        names = list(self.path_params)
        if self.schema is not None:
            props = self.schema.get("properties") or {}
            required = set(self.schema.get("required") or ())
            names += [n if n in required else n + "=None" for n in props]
        names += [q + "=None" for q in self.query]
        return "{}({})".format(self.method, ", ".join(names))

    def bind(self, args, kwargs):
        """``(path, body)`` for a call; TypeError for arguments the operation does not take."""
        args = list(args)
        kwargs = dict(kwargs)
        values = {}
        for name in self.path_params:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name == "id" and "uid" in kwargs:
                value = kwargs.pop("uid")
            elif args:
                value = args.pop(0)
            else:
                raise TypeError("{}() needs {}: {}".format(self.id, name, self.signature()))
            values[name] = _ident(value)
        path = re.sub(
            r"\{([^}/]+)\}",
            lambda m: urllib.parse.quote(values[m.group(1)], safe=""),
            self.path,
        )
        if self.binary_body:
            raise TypeError(
                "{}() takes a file upload; use client.upload_dataset(...) for data".format(self.id)
            )
        if self.schema is not None:
            body = {}
            if args:
                if len(args) == 1 and isinstance(args[0], dict):
                    body.update(args.pop(0))
                else:
                    raise TypeError(
                        "{}() takes keyword arguments: {}".format(self.id, self.signature())
                    )
            body.update(kwargs)
            props = self.schema.get("properties") or {}
            if self.schema.get("additionalProperties") is False:
                unknown = sorted(k for k in body if k not in props)
                if unknown:
                    raise TypeError(
                        "{}() got unexpected argument(s) {}: {}".format(
                            self.id, ", ".join(unknown), self.signature()
                        )
                    )
            missing = [k for k in self.schema.get("required") or () if k not in body]
            if missing:
                raise TypeError(
                    "{}() needs {}: {}".format(self.id, ", ".join(missing), self.signature())
                )
            return path, {k: _wire(v) for k, v in body.items() if v is not None}
        if args:
            raise TypeError(
                "{}() got too many positional arguments: {}".format(self.id, self.signature())
            )
        unknown = sorted(k for k in kwargs if k not in self.query)
        if unknown:
            raise TypeError(
                "{}() got unexpected argument(s) {}: {}".format(
                    self.id, ", ".join(unknown), self.signature()
                )
            )
        pairs = [(k, _wire(v)) for k, v in kwargs.items() if v is not None]
        if pairs:
            path += "?" + urllib.parse.urlencode(pairs)
        return path, None


class APIEndpoint:
    """A callable server operation, e.g. ``client.api.services.user.get_all``."""

    def __init__(self, client, op):
        self._client = client
        self._op = op
        self.__name__ = op.method
        self.__doc__ = "{}\n\n{} {} (at least: {})".format(
            op.summary, op.http_method, op.path, op.min_role
        )

    @property
    def path(self):
        return self._op.id

    def __call__(self, *args, **kwargs):
        op = self._op
        path, body = op.bind(args, kwargs)
        raw, headers = self._client._transport.send(op.http_method, path, body=body)
        ctype = (headers.get("content-type") or "").split(";")[0].strip()
        if not raw:
            return SyftSuccess("{} done".format(op.id))
        if ctype != "application/json":
            return raw
        return _convert(op, json.loads(raw.decode("utf-8")), self._client)

    def __repr__(self):
        return "<API endpoint {}: {}>".format(self._op.id, self._op.signature())


class _ClientCall:
    """An operation the client composes itself (see the module docstring)."""

    def __init__(self, name, func, doc):
        self.__name__ = name
        self._func = func
        self.__doc__ = doc

    def __call__(self, *args, **kwargs):
        return self._func(*args, **kwargs)

    def __repr__(self):
        return "<client call {}>".format(self.__name__)


class APIModule:
    """One service of ``client.api.services``: its operations as attributes."""

    def __init__(self, name):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", {})

    def _add(self, name, member):
        self._members[name] = member

    def __getattr__(self, name):
        members = object.__getattribute__(self, "_members")
        if name in members:
            return members[name]
        raise AttributeError(
            "service {!r} has no operation {!r}; it has: {}".format(
                self._name, name, ", ".join(sorted(members))
            )
        )

    def __setattr__(self, name, value):
        raise AttributeError("client.api.services is read-only")

    def __dir__(self):
        return sorted(self._members)

    def _rows(self):
        rows = []
        for name in sorted(self._members):
            member = self._members[name]
            op = getattr(member, "_op", None)
            rows.append(
                (
                    "{}.{}".format(self._name, name),
                    op.summary if op is not None else (member.__doc__ or "").split("\n")[0],
                )
            )
        return rows

    def __repr__(self):
        return _display.text_table(("operation", "what"), self._rows())

    def _repr_html_(self):
        return _display.html_table("Service " + self._name, ("operation", "what"), self._rows())


class APIServices(APIModule):
    """``client.api.services``: one ``APIModule`` per service, and the custom API endpoints'
    paths (``services.bigquery.query``)."""

    def __init__(self, name, api=None):
        super().__init__(name)
        object.__setattr__(self, "_api", api)

    def __getattr__(self, name):
        members = object.__getattribute__(self, "_members")
        if name in members:
            return members[name]
        api = object.__getattribute__(self, "_api")
        if api is not None and not name.startswith("_"):
            child = api._custom_child(None, name)
            if child is not None:
                return child
        raise AttributeError(
            "no service or API endpoint {!r}; the services are: {}".format(
                name, ", ".join(sorted(members))
            )
        )

    def __dir__(self):
        names = set(self._members)
        if self._api is not None:
            names |= {p.split(".")[0] for p in self._api._endpoints()}
        return sorted(names)

    def _rows(self):
        rows = []
        for name in sorted(self._members):
            rows += self._members[name]._rows()
        if self._api is not None:
            for path, view in sorted(self._api._endpoints().items()):
                rows.append((path, "API endpoint{}: {}".format(
                    view.signature or "()", view.description or "")))
        return rows


def _client_calls(client):
    """service -> {method: callable}: the operations the client composes itself."""
    from .api_endpoints import APIEndpointService
    from .output_checks import get_output_checks, set_output_checks
    from .worker_pools import WorkerImageCollection, WorkerPoolCollection

    def welcome_preview(markdown=None, html=None):
        return client.settings.welcome_preview(markdown=markdown, html=html)

    def welcome_customize(markdown=None, html=None):
        return client.settings.welcome_customize(markdown=markdown, html=html)

    endpoints = APIEndpointService(client)
    images = WorkerImageCollection(client)
    pools = WorkerPoolCollection(client)
    return {
        "worker_image": {
            "get_all": (images.get_all, "The worker images (Python environments), oldest first."),
            "get": (images.get, "One worker image by id."),
            "get_by_uid": (images.get, "One worker image by id."),
            "submit": (
                images.submit,
                "Registers an environment: submit(worker_config=sy.PythonWorkerConfig(...)).",
            ),
            "build": (images.build, "Builds a worker image's environment (data owners)."),
            "remove": (images.remove, "Removes a worker image (data owners)."),
        },
        "worker_pool": {
            "get_all": (pools.get_all, "The worker pools, default first."),
            "get_by_name": (pools.get_by_name, "One worker pool by name."),
            "launch": (pools.launch, "Starts a pool of warm workers on an image (data owners)."),
            "create": (pools.launch, "Starts a pool of warm workers on an image (data owners)."),
            "scale": (pools.scale, "Sets a pool's number of workers (data owners)."),
            "delete": (pools.delete, "Deletes a worker pool (data owners)."),
        },
        "api": {
            "add": (endpoints.add, "Adds a custom API endpoint (data owners)."),
            "update": (endpoints.update, "Changes a custom API endpoint (data owners)."),
            "delete": (endpoints.delete, "Deletes a custom API endpoint (data owners)."),
            "api_endpoints": (endpoints.api_endpoints, "The custom API endpoints."),
            "get_all": (endpoints.api_endpoints, "The custom API endpoints."),
            "view": (endpoints.view, "One custom API endpoint, by path."),
            "get": (endpoints.view, "One custom API endpoint, by path."),
            "call": (endpoints.call, "Calls a custom API endpoint by path."),
        },
        "code": {
            "request_code_execution": (
                client.code.request_code_execution,
                "Submits a decorated function (if new) and asks for its approval.",
            ),
        },
        "code_history": {
            "get_history": (lambda: client.code_history, "Your functions' versions, by name."),
            "get_histories": (lambda: client.code_histories, "Every user's functions' versions."),
            "get_all": (lambda: client.code_histories, "Every history you may see."),
        },
        "request": {
            "get_all_pending": (client.requests.get_all_pending, "Pending requests."),
            "get_all_approved": (client.requests.get_all_approved, "Approved requests."),
            "get_all_rejected": (client.requests.get_all_rejected, "Denied requests."),
        },
        "settings": {
            "welcome_preview": (welcome_preview, "The welcome message as it would show."),
            "welcome_customize": (welcome_customize, "Sets the welcome message."),
            "allow_guest_signup": (
                lambda enable: client.settings.allow_guest_signup(enable),
                "Turns self-registration on or off.",
            ),
            "set": (
                lambda settings: client.settings.set(settings),
                "Makes the server's settings those of a whole settings object.",
            ),
        },
        "user": {
            "search": (client.users.search, "Users by email and/or name."),
        },
        "grant": {
            "get_all": (
                lambda status=None: client.grants.get_all(status=status),
                "Grants (code approved for repeated use) you may see, newest first.",
            ),
            "get_by_uid": (lambda uid: client.grants.get(_ident(uid)), "One grant by id."),
            "revoke": (
                lambda uid: client.grants.revoke(_ident(uid)),
                "Revokes a grant (data owners).",
            ),
        },
        "dataset": {
            "search": (
                lambda name=None, **kw: client.datasets.search(name, **kw),
                "Datasets by name and description.",
            ),
            "get_output_checks": (
                lambda dataset: get_output_checks(client, _ident(dataset)),
                "A dataset's output checks (sy.OutputChecks), or None.",
            ),
            "set_output_checks": (
                lambda dataset, checks: set_output_checks(client, _ident(dataset), checks),
                "Sets a dataset's output checks (data owners); sy.OutputChecks() removes them.",
            ),
        },
    }


def _submit(client, generic):
    from .code import SubmitUserCode

    def submit(*args, **kwargs):
        if args and isinstance(args[0], SubmitUserCode):
            return client.code.submit(*args, **kwargs)
        return generic(*args, **kwargs)

    return submit


class SyftAPI:
    """``client.api``: ``services`` (the tree) and ``refresh()``."""

    def __init__(self, client, document):
        self._client = client
        self.document = document
        self._endpoint_views = None  # path -> EndpointView; None: not read yet
        self.services = build_services(client, document, api=self)

    def refresh(self):
        """Reads the server's description and its custom API endpoints again (e.g. after it
        gained routes, or another client added an endpoint)."""
        self.document = self._client._transport.call("openapi", authenticated=False)
        self._endpoint_views = None
        self.services = build_services(self._client, self.document, api=self)
        self._endpoints()
        return self

    # Custom API endpoints -------------------------------------------------------------------

    def _forget_endpoints(self):
        """The endpoints are read again on next use (this client changed one)."""
        self._endpoint_views = None

    def _endpoints(self, reload=False):
        """path -> ``EndpointView`` of the server's custom API endpoints ({} when this caller
        may not list them, or the server has none)."""
        from .api_endpoints import EndpointView

        if self._endpoint_views is None or reload:
            try:
                data = self._client._transport.call("api_endpoints_list") or {}
            except DatasiteError:
                data = {}
            items = data.get("items") if isinstance(data, dict) else None
            self._endpoint_views = {
                v.path: v
                for v in (EndpointView(i, self._client) for i in items or [])
                if isinstance(v.path, str)
            }
        return self._endpoint_views

    def _custom_child(self, prefix, name):
        """The ``CustomEndpoint`` for ``prefix.name`` (``name`` alone without a prefix) when an
        endpoint's path is or starts with it, looking the endpoints up again once; else None."""
        from .api_endpoints import CustomEndpoint

        path = name if prefix is None else prefix + "." + name

        def known(views):
            return any(p == path or p.startswith(path + ".") for p in views)

        loaded = self._endpoint_views is not None
        if known(self._endpoints()) or (loaded and known(self._endpoints(reload=True))):
            return CustomEndpoint(self, path)
        return None

    def __getattr__(self, name):
        # PySyft's client.api.<service> reaches the same tree as client.api.services.<service>.
        if name.startswith("_") or name in ("document", "services"):
            raise AttributeError(name)
        return getattr(self.services, name)

    def __dir__(self):
        return ["document", "refresh", "services"] + list(dir(self.services))

    def __repr__(self):
        return "API of {} ({} services):\n{}".format(
            self._client.url, len(dir(self.services)), repr(self.services)
        )

    def _repr_html_(self):
        return self.services._repr_html_()


def build_services(client, document, api=None):
    """The ``APIServices`` tree for an OpenAPI ``document``; ``api`` (the ``SyftAPI``) adds the
    custom API endpoints' paths to it."""
    builtin, custom = [], []
    for path, item in (document.get("paths") or {}).items():
        for method, spec in item.items():
            if method not in _HTTP_METHODS or not isinstance(spec, dict):
                continue
            op_id = spec.get("operationId")
            if not isinstance(op_id, str) or not _OPERATION_ID.fullmatch(op_id):
                continue
            op = _Operation(op_id, method, path, spec)
            (custom if op.custom else builtin).append(op)
    services = APIServices("services", api)
    modules = {}

    def module(name):
        if name not in modules:
            modules[name] = APIModule(name)
            services._add(name, modules[name])
        return modules[name]

    for op in builtin:
        module(op.service)._add(op.method, APIEndpoint(client, op))
    calls = _client_calls(client)
    for service, members in calls.items():
        for name, (func, doc) in members.items():
            module(service)._add(name, _ClientCall(service + "." + name, func, doc))
    code = modules.get("code")
    if code is not None and "submit" in code._members:
        submit = _submit(client, code._members["submit"])
        code._add(
            "submit",
            _ClientCall("code.submit", submit, "Submits a decorated function, or a raw body."),
        )
    reserved = set(modules)
    for op in custom:
        if op.service in reserved:
            warnings.warn(
                DatasiteWarning(
                    "custom endpoint {} left out: {!r} is a built-in service".format(
                        op.id, op.service
                    )
                ),
                stacklevel=3,
            )
            continue
        module(op.service)._add(op.method, APIEndpoint(client, op))
    return services
