"""Custom API endpoints (PySyft's ``sy.api_endpoint``, ``sy.TwinAPIEndpoint``).

A data owner puts a function on the server under a dotted path; everyone logged in calls it
there, and its settings (keys, a warehouse's address) never leave the server::

    @sy.api_endpoint_method(settings={"key": "..."})
    def mock_query(context, sql: str):
        return [{"age": 40}]

    @sy.api_endpoint_method(settings={"key": "..."})
    def private_query(context, sql: str):
        return run_on_the_warehouse(context.settings["key"], sql)

    owner.api.services.api.add(endpoint=sy.TwinAPIEndpoint(
        path="bigquery.query", mock_function=mock_query, private_function=private_query))
    scientist.api.services.bigquery.query(sql="SELECT 1")   # the mock, for a data scientist
    owner.api.services.bigquery.query.private(sql="...")    # data owners only

``@sy.api_endpoint(path=...)`` makes an endpoint of one function that everyone calls. An endpoint
passed as an input of code (``@sy.syft_function_single_use(endpoint=client.api.services.a.b)``)
is called by the code on the server: the private side in an approved run on private data.
"""

import base64
import binascii
import inspect
import json
import keyword
import re
import sys
import warnings

from . import _display
from ._http import route_path
from ._listing import TableList
from .errors import DatasiteError, DatasiteWarning, InvalidArgumentError, SyftSuccess

# The server's bounds (endpoint-api.md, "Paths").
MAX_PATH_CHARS = 128
MAX_PATH_PARTS = 2
DEFAULT_TIMEOUT_SECONDS = 60
# How long a call may take over HTTP beyond the endpoint's own timeout.
CALL_MARGIN_SECONDS = 30
SIDES = ("auto", "mock", "private")
_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def check_path(path):
    """``path`` if it is 'service.method', two Python identifiers (not keywords) of at most
    128 characters in all, as the server takes it; otherwise InvalidArgumentError, a ValueError
    and ``sy.SyftException`` as PySyft's refusal of a bad path is. Whether its first part is a
    built-in service's name is the server's to say."""
    if not isinstance(path, str):
        raise TypeError("an endpoint path is text such as 'bigquery.query', got {!r}".format(path))
    parts = path.split(".")
    if (
        not path
        or len(path) > MAX_PATH_CHARS
        or len(parts) != MAX_PATH_PARTS
        or not all(_PART.fullmatch(p) and not keyword.iskeyword(p) for p in parts)
    ):
        raise InvalidArgumentError(
            None,
            "an endpoint path is 'service.method', two Python identifiers of at most {} "
            "characters in all, e.g. 'bigquery.query'; got {!r}".format(MAX_PATH_CHARS, path)
        )
    return path


def _check_timeout(value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            "endpoint_timeout must be a whole number of seconds (at least 1), got {!r}".format(
                value
            )
        )
    return value


def _check_settings(settings):
    if settings is None:
        return {}
    if not isinstance(settings, dict):
        raise TypeError("settings must be a dict (a JSON object), got {!r}".format(settings))
    try:
        json.dumps(settings, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError("settings must be JSON: {}".format(err)) from None
    return dict(settings)


def _helpers_of(helper_functions):
    """PySyft's ``helper_functions`` (a list of functions, or a dict name -> function or
    source) as ``{name: source}``."""
    from .code import _function_source

    if not helper_functions:
        return {}
    if isinstance(helper_functions, dict):
        items = list(helper_functions.items())
    elif isinstance(helper_functions, (list, tuple)):
        items = [(getattr(f, "__name__", None), f) for f in helper_functions]
    else:
        raise TypeError(
            "helper_functions is a list of functions, got {!r}".format(helper_functions)
        )
    helpers = {}
    for name, func in items:
        if isinstance(func, str):
            helpers[name] = func
        else:
            helpers[name or func.__name__] = _function_source(func, what="helper_functions")
    return helpers


# One side ----------------------------------------------------------------------------------------


class Endpoint:
    """One side of an endpoint (PySyft's ``Endpoint``): a function whose first parameter is
    ``context``, its ``settings`` (a JSON object kept on the server, read by the function as
    ``context.settings``) and its helper functions. Made by ``@sy.api_endpoint_method(...)``.

    Inside the function, ``context.settings``, ``context.state`` (a dict the server keeps between
    calls), ``context.user`` (the caller) and the helpers (``context.code.<name>``) are there.
    With ``assets={"db": asset}`` (beyond PySyft) the function also reads dataset assets as
    ``context.assets["db"]``: their private data on the private side, their mocks on the mock
    side (a CSV asset is a DataFrame, a raw file bytes).
    """

    def __init__(self, func, settings=None, helper_functions=None, assets=None):
        from .code import _function_source, _outside_names

        self.source = _function_source(func, what="api_endpoint")
        self.func = func
        self.name = func.__name__
        self.settings = _check_settings(settings)
        self.helpers = _helpers_of(helper_functions)
        self.assets = _assets_of(assets)
        signature = inspect.signature(func)
        params = list(signature.parameters.values())
        if not params or params[0].name != "context":
            raise TypeError(
                "{}{}: the first parameter of an endpoint function is context, e.g. "
                "def {}(context, query: str)".format(self.name, signature, self.name)
            )
        for p in params[1:]:
            if p.kind is p.POSITIONAL_ONLY or p.kind is p.VAR_POSITIONAL:
                raise TypeError(
                    "{}: argument {!r} can't be given by name; an endpoint is called with "
                    "keyword arguments".format(self.name, p.name)
                )
        self.signature = signature.replace(parameters=params[1:])
        self.params = [p.name for p in params[1:]]
        self.__doc__ = func.__doc__
        self.__wrapped__ = func
        outside = [
            n for n in _outside_names(self.source, self.name) if n not in self.helpers
        ]
        if outside:
            warnings.warn(
                DatasiteWarning(
                    "{} uses {}, defined outside it; the server runs the function's source "
                    "alone, so import modules inside the function".format(
                        self.name, ", ".join(outside)
                    )
                ),
                stacklevel=3,
            )

    @classmethod
    def of(cls, value, what="mock_function"):
        """An ``Endpoint`` from one, or from a plain function (no settings)."""
        if value is None or isinstance(value, Endpoint):
            return value
        if inspect.isfunction(value):
            return cls(value)
        raise TypeError(
            "{} must be a function decorated with @sy.api_endpoint_method(...), got {!r}".format(
                what, value
            )
        )

    def to_wire(self):
        """The side as the server takes it (endpoint-api.md, "One side")."""
        return {
            "name": self.name,
            "source": self.source,
            "settings": self.settings,
            "helpers": dict(self.helpers),
            "signature": str(self.signature),
            "params": list(self.params),
            "assets": dict(self.assets),
        }

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "{} is an endpoint function: add it to the server (client.api.services.api.add) and "
            "call it there, e.g. client.api.services.<path>(...)".format(self.name)
        )

    def __repr__(self):
        return "Endpoint {}{}".format(self.name, self.signature)


def _assets_of(assets):
    """``{name: asset}`` as the server takes it, ``{name: asset id}``."""
    if assets is None:
        return {}
    if not isinstance(assets, dict):
        raise TypeError("assets is a dict of name: asset, got {!r}".format(assets))
    out = {}
    for name, asset in assets.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError("asset names are Python identifiers, got {!r}".format(name))
        asset_id = asset if isinstance(asset, str) else getattr(asset, "id", None)
        if not asset_id:
            raise TypeError(
                "assets[{!r}] must be an asset on the server (client.datasets[...].assets[...])"
                .format(name)
            )
        out[name] = str(asset_id)
    return out


def api_endpoint_method(settings=None, helper_functions=None, assets=None):
    """Decorator: ``@sy.api_endpoint_method(settings={...})`` makes an ``Endpoint``, one side of
    a ``sy.TwinAPIEndpoint``; ``assets={name: asset}`` binds dataset assets (see ``Endpoint``)."""
    if inspect.isfunction(settings):
        raise TypeError("write @sy.api_endpoint_method() with parentheses")

    def decorator(func):
        return Endpoint(func, settings=settings, helper_functions=helper_functions, assets=assets)

    return decorator


# Both sides --------------------------------------------------------------------------------------


class TwinAPIEndpoint:
    """An endpoint to add to a server (PySyft's ``TwinAPIEndpoint``): ``path``, the mock side
    (what data scientists call) and, optionally, the private side (data owners, and code
    approved to run on private data). Without a private side everyone calls the mock one.
    """

    def __init__(
        self,
        path,
        mock_function,
        private_function=None,
        description=None,
        worker_pool_name=None,
        endpoint_timeout=DEFAULT_TIMEOUT_SECONDS,
        hide_mock_definition=False,
    ):
        self.path = check_path(path)
        self.mock_function = Endpoint.of(mock_function, "mock_function")
        if self.mock_function is None:
            raise TypeError("TwinAPIEndpoint needs mock_function")
        self.private_function = Endpoint.of(private_function, "private_function")
        if self.private_function is not None:
            _check_same_params(self.mock_function, self.private_function)
        if description is not None and not isinstance(description, str):
            raise TypeError("description must be text, got {!r}".format(description))
        self.description = description
        self.worker_pool_name = worker_pool_name
        self.endpoint_timeout = _check_timeout(endpoint_timeout)
        if not isinstance(hide_mock_definition, bool):
            raise TypeError("hide_mock_definition must be True or False")
        self.hide_mock_definition = hide_mock_definition

    @property
    def signature(self):
        return self.mock_function.signature

    def to_wire(self, output_checks=None):
        """The body of ``POST /api/v1/api_endpoints``."""
        return {
            "path": self.path,
            "description": self.description,
            "mock": self.mock_function.to_wire(),
            "private": None if self.private_function is None else self.private_function.to_wire(),
            "timeout_seconds": self.endpoint_timeout,
            "worker_pool_name": self.worker_pool_name,
            "hide_mock_definition": self.hide_mock_definition,
            "output_checks": _output_checks_wire(output_checks),
        }

    def __call__(self, *args, **kwargs):
        raise TypeError(
            "{} is not on a server yet: client.api.services.api.add(endpoint=...) adds it, then "
            "client.api.services.{}(...) calls it".format(self.path, self.path)
        )

    def __repr__(self):
        return "TwinAPIEndpoint {}{} ({})".format(
            self.path,
            self.signature,
            "mock and private" if self.private_function is not None else "one function",
        )


def _check_same_params(mock, private):
    if mock.params != private.params:
        raise InvalidArgumentError(
            None,
            "the mock and private functions take different parameters: {}{} and {}{}".format(
                mock.name, mock.signature, private.name, private.signature
            ),
            None,
        )


def _output_checks_wire(output_checks):
    if output_checks is None:
        return None
    from .output_checks import OutputChecks

    checks = OutputChecks.of(output_checks)
    return None if checks.empty else checks.to_wire()


def api_endpoint(
    path,
    settings=None,
    helper_functions=None,
    description=None,
    worker_pool_name=None,
    endpoint_timeout=DEFAULT_TIMEOUT_SECONDS,
):
    """Decorator: ``@sy.api_endpoint(path="first.query", settings={...})`` makes a
    ``TwinAPIEndpoint`` of one function, which everyone calls."""
    if inspect.isfunction(path):
        raise TypeError('write @sy.api_endpoint(path="a.b") with its path')
    check_path(path)

    def decorator(func):
        return TwinAPIEndpoint(
            path,
            Endpoint(func, settings=settings, helper_functions=helper_functions),
            description=description,
            worker_pool_name=worker_pool_name,
            endpoint_timeout=endpoint_timeout,
        )

    return decorator


# Endpoints on the server ----------------------------------------------------------------------


class EndpointView:
    """An endpoint as the server describes it: ``path``, ``description``, ``signature``,
    ``params``, ``has_private``, ``timeout_seconds`` ..., and its sides ``mock`` and ``private``
    (dicts: ``name``, ``source``; data owners also see ``settings``, ``helpers``, ``state``). A
    data scientist sees no private side, and no mock one when the owner hid its definition.
    """

    def __init__(self, data, client=None):
        data = dict(data or {})
        self._data = data
        self._client = client
        self.path = data.get("path")
        self.id = self.path
        self.description = data.get("description")
        self.signature = data.get("signature")
        self.params = list(data.get("params") or [])
        self.has_private = bool(data.get("has_private"))
        self.timeout_seconds = data.get("timeout_seconds")
        self.worker_pool_name = data.get("worker_pool_name")
        self.hide_mock_definition = bool(data.get("hide_mock_definition"))
        self.created_at = data.get("created_at")
        self.updated_at = data.get("updated_at")
        self.mock = data.get("mock")
        self.private = data.get("private")
        self.output_checks = data.get("output_checks")

    def to_dict(self):
        return dict(self._data)

    @property
    def mock_source(self):
        return (self.mock or {}).get("source")

    @property
    def private_source(self):
        return (self.private or {}).get("source")

    def _rows(self):
        return [
            ("Path", self.path),
            ("Description", self.description),
            ("Signature", self.signature),
            ("Private side", "yes" if self.has_private else "no"),
            ("Timeout", "{} s".format(self.timeout_seconds)),
            ("Updated", self.updated_at),
        ]

    def __repr__(self):
        parts = [_display.text_fields("API endpoint", self._rows())]
        for side in ("mock", "private"):
            source = (getattr(self, side) or {}).get("source")
            if source:
                parts.append("{} function:\n{}".format(side.title(), _display.reveal_code(source)))
        return "\n\n".join(parts)

    def _repr_html_(self):
        from .code import _source_html

        shown = _display.html_fields("API endpoint: " + _display.show(self.path), self._rows())
        for side in ("mock", "private"):
            source = (getattr(self, side) or {}).get("source")
            if source:
                shown += _source_html(source).replace(
                    "<h4>Code</h4>", "<h4>{} function</h4>".format(side.title()), 1
                )
        return shown


class EndpointViewList(TableList):
    """Endpoints, oldest first; index by position or path."""

    _noun = "endpoint"
    _title = "API endpoints"
    _columns = ("path", "signature", "description", "private side", "updated_at")

    def _row(self, e):
        return [e.path, e.signature, e.description, "yes" if e.has_private else "no", e.updated_at]


def _decode_call(data):
    """The value of a CALL answer (endpoint-api.md, "CALL")."""
    from .jobs import decode_result

    fmt = data.get("format") or "json"
    if fmt == "json" and "result" in data:
        return data["result"]
    # A JSON result the server sent as bytes (nested too deep to inline) is decoded here.
    try:
        raw = base64.b64decode(data.get("data_base64") or "", validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise DatasiteError(
            "BAD_RESPONSE", "the endpoint's {} result is not base64".format(fmt), None
        ) from None
    return decode_result(fmt, raw, data.get("meta"))


def _echo(stdout, stderr):
    """What the function printed, printed here."""
    if stdout:
        sys.stdout.write(stdout if stdout.endswith("\n") else stdout + "\n")
        sys.stdout.flush()
    if stderr:
        sys.stderr.write(stderr if stderr.endswith("\n") else stderr + "\n")
        sys.stderr.flush()


def call_endpoint(client, path, side, args, kwargs, params=None, timeout_seconds=None):
    """Calls endpoint ``path`` on ``side``; the result's value. What it printed is printed here;
    a refusal or the function's error raises ``sy.SyftException`` (``DatasiteError``)."""
    if side not in SIDES:
        raise InvalidArgumentError(
            None, "side is one of {}, got {!r}".format(", ".join(SIDES), side), None
        )
    kwargs = dict(kwargs)
    if args:
        if params is None or len(args) > len(params):
            raise TypeError(
                "{}() takes its arguments by name{}".format(
                    path, "" if params is None else ": ({})".format(", ".join(params))
                )
            )
        for name, value in zip(params, args):
            if name in kwargs:
                raise TypeError("{}() got argument {!r} twice".format(path, name))
            kwargs[name] = value
    body = {"side": side, "kwargs": kwargs}
    method, url = route_path("api_endpoint_call", {"path": path})
    timeout = (timeout_seconds or DEFAULT_TIMEOUT_SECONDS) + CALL_MARGIN_SECONDS
    transport = client._transport
    try:
        # Sent once: a call is no idempotent change (it may count, or cost), and a timed-out
        # endpoint (504) is an answer, not a proxy's.
        raw, _ = transport.send(method, url, body=body, timeout=timeout)
    except DatasiteError as err:
        envelope = getattr(err, "body", None)
        if isinstance(envelope, dict):
            inner = envelope.get("error") if isinstance(envelope.get("error"), dict) else {}
            _echo(inner.get("stdout") or envelope.get("stdout"),
                  inner.get("stderr") or envelope.get("stderr"))
        raise
    try:
        data = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        raise DatasiteError(
            "BAD_RESPONSE", "the endpoint call's answer is not JSON", None
        ) from None
    _echo(data.get("stdout"), data.get("stderr"))
    return _decode_call(data)


class CustomEndpoint:
    """``client.api.services.<a>.<b>``: an endpoint path on the server, or a part of one.

    Calling it calls the endpoint (side "auto": the private function for data owners when there
    is one, else the mock); ``.mock(...)`` and ``.private(...)`` call a named side (``.private``:
    data owners only). Its parts are attributes: ``services.bigquery.query``. Passed as an input
    of code, it binds that argument to the endpoint.
    """

    def __init__(self, api, path):
        object.__setattr__(self, "_api", api)
        object.__setattr__(self, "_path", path)

    @property
    def path(self):
        return self._path

    @property
    def view(self):
        """The ``EndpointView`` of this path as last read (None when it is not an endpoint)."""
        return self._api._endpoints().get(self._path)

    @property
    def description(self):
        view = self.view
        return None if view is None else view.description

    @property
    def signature(self):
        view = self.view
        return None if view is None else view.signature

    def _call(self, side, args, kwargs):
        view = self.view
        return call_endpoint(
            self._api._client,
            self._path,
            side,
            args,
            kwargs,
            params=None if view is None else view.params,
            timeout_seconds=None if view is None else view.timeout_seconds,
        )

    def __call__(self, *args, **kwargs):
        return self._call("auto", args, kwargs)

    def mock(self, *args, **kwargs):
        """Calls the mock function."""
        return self._call("mock", args, kwargs)

    def private(self, *args, **kwargs):
        """Calls the private function (data owners only)."""
        return self._call("private", args, kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        child = self._api._custom_child(self._path, name)
        if child is None:
            raise AttributeError("no API endpoint {}.{}".format(self._path, name))
        return child

    def __setattr__(self, name, value):
        raise AttributeError("client.api.services is read-only")

    def __dir__(self):
        prefix = self._path + "."
        names = {p[len(prefix):].split(".")[0] for p in self._api._endpoints() if
                 p.startswith(prefix)}
        return sorted(names | {"mock", "private", "path", "signature", "description", "view"})

    def __eq__(self, other):
        if isinstance(other, CustomEndpoint):
            return self._path == other._path
        return NotImplemented

    def __hash__(self):
        return hash(("endpoint", self._path))

    def __repr__(self):
        view = self.view
        if view is None:
            return "<API endpoint path {}>".format(self._path)
        return "<API endpoint {}{}{}>".format(
            view.path, view.signature or "()",
            ": " + view.description if view.description else "",
        )

    def _repr_html_(self):
        view = self.view
        return view._repr_html_() if view is not None else _display.esc(repr(self))


def endpoint_path_of(value):
    """The path of an endpoint given as an input of code (a ``CustomEndpoint``), else None."""
    if isinstance(value, CustomEndpoint):
        return value.path
    return None


# The service -----------------------------------------------------------------------------------


class APIEndpointService:
    """``client.api.services.api`` and ``client.custom_api``: ``add``, ``update``, ``delete``
    (data owners and admins), ``api_endpoints`` and ``view`` (everyone). After a change this
    client's ``client.api.services`` shows the new endpoints; on ``client.custom_api`` the
    endpoints are attributes too (``client.custom_api.bigquery.query``).
    """

    def __init__(self, client):
        self._client = client

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, **kwargs)

    def _changed(self):
        api = self._client._api
        if api is not None:
            api._forget_endpoints()

    def add(self, endpoint, output_checks=None):
        """Adds a ``sy.TwinAPIEndpoint`` (or what ``@sy.api_endpoint`` made); SyftSuccess whose
        ``value`` is the ``EndpointView``. ``AlreadyExistsError`` when the path is taken."""
        if not isinstance(endpoint, TwinAPIEndpoint):
            raise TypeError(
                "add takes a sy.TwinAPIEndpoint or a function decorated with "
                "@sy.api_endpoint(path=...), got {!r}".format(endpoint)
            )
        data = self._call("api_endpoints_create", body=endpoint.to_wire(output_checks))
        self._changed()
        view = EndpointView(data, self._client)
        return SyftSuccess("Endpoint successfully created: {}".format(view.path), value=view)

    def update(
        self,
        endpoint_path,
        mock_function=None,
        private_function=None,
        hide_mock_definition=None,
        endpoint_timeout=None,
        description=None,
        output_checks=None,
    ):
        """Changes what is given of endpoint ``endpoint_path``: a side (``Endpoint``s whose
        parameters must be the other side's), ``hide_mock_definition``, ``endpoint_timeout``,
        ``description``, ``output_checks``. Nothing given, or other parameters, raise
        ``InvalidArgumentError``."""
        check_path(endpoint_path)
        body = {}
        mock = Endpoint.of(mock_function, "mock_function")
        private = Endpoint.of(private_function, "private_function")
        if mock is not None and private is not None:
            _check_same_params(mock, private)
        if mock is not None:
            body["mock"] = mock.to_wire()
        if private is not None:
            body["private"] = private.to_wire()
        if hide_mock_definition is not None:
            if not isinstance(hide_mock_definition, bool):
                raise TypeError("hide_mock_definition must be True or False")
            body["hide_mock_definition"] = hide_mock_definition
        if endpoint_timeout is not None:
            body["timeout_seconds"] = _check_timeout(endpoint_timeout)
        if description is not None:
            body["description"] = description
        if output_checks is not None:
            body["output_checks"] = _output_checks_wire(output_checks)
        data = self._call("api_endpoint_update", path_params={"path": endpoint_path}, body=body)
        self._changed()
        view = EndpointView(data, self._client)
        return SyftSuccess("Endpoint successfully updated: {}".format(view.path), value=view)

    def delete(self, endpoint_path):
        """Deletes endpoint ``endpoint_path``; ``NotFoundError`` when there is none."""
        check_path(endpoint_path)
        data = self._call("api_endpoint_delete", path_params={"path": endpoint_path}) or {}
        self._changed()
        return SyftSuccess(
            "Endpoint successfully deleted: {}".format(data.get("deleted") or endpoint_path)
        )

    def api_endpoints(self):
        """Every endpoint, oldest first (``EndpointViewList``)."""
        data = self._call("api_endpoints_list") or {}
        return EndpointViewList(EndpointView(i, self._client) for i in data.get("items") or [])

    get_all = api_endpoints

    def view(self, path):
        """One endpoint's ``EndpointView``; ``NotFoundError`` when there is none."""
        check_path(path)
        return EndpointView(self._call("api_endpoint_get", path_params={"path": path}),
                            self._client)

    get = view

    def call(self, path, *args, side="auto", **kwargs):
        """Calls endpoint ``path`` (``side``: "auto", "mock" or "private")."""
        check_path(path)
        return call_endpoint(self._client, path, side, args, kwargs)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        child = self._client.api._custom_child(None, name)
        if child is None:
            raise AttributeError("no API endpoint or operation {!r}".format(name))
        return child

    def __repr__(self):
        return repr(self.api_endpoints())

    def _repr_html_(self):
        return self.api_endpoints()._repr_html_()


__all__ = [
    "APIEndpointService",
    "CustomEndpoint",
    "Endpoint",
    "EndpointView",
    "EndpointViewList",
    "TwinAPIEndpoint",
    "api_endpoint",
    "api_endpoint_method",
]
