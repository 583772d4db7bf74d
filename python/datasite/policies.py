"""Input and output policies of code, with PySyft 0.9's names.

An input policy binds each argument of a function to exactly one asset on the server, to a
custom API endpoint (``endpoint=client.api.services.bigquery.query``) or to a constant JSON value
(``sy.ExactMatch(data=asset, bins=10)``); an output policy says how many runs
on private data an approval allows (``sy.SingleExecutionExactOutput()``,
``sy.OutputPolicyExecuteCount(limit=3)``).
"""

import ast
import inspect
import json
import linecache
import math
import textwrap

from . import _display
from .datasets import Asset

_JSON_HINT = (
    "an input is an asset from client.datasets[...].assets[...] or a constant JSON value (None, "
    "bool, int, float, str, or lists and dicts with string keys of those)"
)


def _check_constant(value, where):
    """Raises TypeError (ValueError for NaN and infinities) unless ``value`` is plain JSON."""
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("{} is {!r}, which JSON cannot carry".format(where, value))
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_constant(item, "{}[{}]".format(where, i))
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    "{} has the key {!r}: keys of a JSON object are strings".format(where, key)
                )
            _check_constant(item, "{}[{!r}]".format(where, key))
        return
    if isinstance(value, Asset):
        raise TypeError(
            "{} is an asset inside a list or dict: an asset can only be a whole argument".format(
                where
            )
        )
    hint = ""
    kind = type(value).__name__
    module = type(value).__module__ or ""
    if isinstance(value, tuple):
        hint = " (use a list instead of a tuple)"
    elif module.startswith(("pandas", "numpy")):
        hint = (
            " (to run on data that lives on the server, pass its asset, e.g. "
            "data=client.datasets['name'].assets['table']; a numpy number becomes JSON with "
            ".item())"
        )
    raise TypeError("{} is a {}{}: {}".format(where, kind, hint, _JSON_HINT))


class Binding:
    """One argument of an input policy: an asset (``asset_id``), a custom API endpoint
    (``endpoint``, its path) or a constant (``value``)."""

    def __init__(self, asset=None, value=None, is_asset=False, server=None, endpoint=None):
        self.asset = asset
        self.value = value
        self.is_asset = is_asset
        # The endpoint's path, and the CustomEndpoint it was bound from (for local runs).
        self.endpoint = endpoint
        self.is_endpoint = endpoint is not None
        # What the server said about this binding (asset_id, dataset_id, dataset, asset names).
        self.server = dict(server or {})

    @classmethod
    def of(cls, name, value):
        """The binding of argument ``name`` to ``value``; TypeError for anything else."""
        if isinstance(value, Binding):
            return value
        if isinstance(value, Asset):
            if not value.on_server:
                raise TypeError(
                    "argument {!r} is an asset you are building; upload its dataset with "
                    "client.upload_dataset and pass the asset from client.datasets[...]"
                    ".assets[...]".format(name)
                )
            if not value.id:
                raise TypeError(
                    "argument {!r}: the server sent no id for asset {!r}, so code cannot be "
                    "bound to it".format(name, value.name)
                )
            return cls(asset=value, is_asset=True)
        from .api_endpoints import endpoint_path_of

        path = endpoint_path_of(value)
        if path is not None:
            return cls(value=value, endpoint=path)
        _check_constant(value, "argument {!r}".format(name))
        return cls(value=value)

    @classmethod
    def _from_server(cls, data):
        data = dict(data or {})
        if "asset_id" in data:
            return cls(is_asset=True, server=data)
        if isinstance(data.get("endpoint"), str):
            return cls(endpoint=data["endpoint"], server=data)
        return cls(value=data.get("value"), server=data)

    @property
    def asset_id(self):
        if not self.is_asset:
            return None
        return self.asset.id if self.asset is not None else self.server.get("asset_id")

    def to_wire(self):
        if self.is_asset:
            return {"asset_id": self.asset_id}
        if self.is_endpoint:
            return {"endpoint": self.endpoint}
        return {"value": self.value}

    def describe(self):
        """One line for displays: ``asset census/table``, ``API endpoint bigquery.query`` or
        ``constant 10``."""
        if self.is_endpoint:
            return "API endpoint " + _display.show(self.endpoint)
        if not self.is_asset:
            return "constant " + json.dumps(self.value, ensure_ascii=False)
        if self.asset is not None:
            dataset, asset = self.asset.dataset_name, self.asset.name
        else:
            dataset, asset = self.server.get("dataset"), self.server.get("asset")
        if dataset or asset:
            return "asset {}/{} ({})".format(
                _display.show(dataset), _display.show(asset), self.asset_id
            )
        return "asset " + _display.show(self.asset_id)

    def __eq__(self, other):
        if isinstance(other, Binding):
            return self.to_wire() == other.to_wire()
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return "<{}>".format(self.describe())


# Input policies ----------------------------------------------------------------------------------


class InputPolicy:
    """Which data a function may run on: one binding per argument."""

    def __init__(self, **kwargs):
        self.bindings = {name: Binding.of(name, value) for name, value in kwargs.items()}

    @classmethod
    def _from_server(cls, inputs):
        policy = cls.__new__(cls)
        policy.bindings = {
            name: Binding._from_server(value) for name, value in (inputs or {}).items()
        }
        return policy

    @property
    def inputs(self):
        """The bound values: the asset objects and the constants, by argument name."""
        return {name: (b.asset if b.is_asset else b.value) for name, b in self.bindings.items()}

    def to_wire(self):
        return {name: b.to_wire() for name, b in self.bindings.items()}

    def _rows(self):
        return [(name, b.describe()) for name, b in self.bindings.items()]

    def __repr__(self):
        inner = ", ".join("{}={}".format(n, b.describe()) for n, b in self.bindings.items())
        return "{}({})".format(type(self).__name__, inner)

    def _repr_html_(self):
        return _display.html_fields(type(self).__name__, self._rows())


class ExactMatch(InputPolicy):
    """Each keyword binds an argument to exactly that asset (by its id) or constant value; a run
    must use exactly these inputs.
    """


class EmpyInputPolicy(InputPolicy):
    """No inputs (PySyft's default input policy, with PySyft's spelling)."""

    def __init__(self):
        super().__init__()


EmptyInputPolicy = EmpyInputPolicy



# Output policies ---------------------------------------------------------------------------------


def _check_limit(limit):
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError("limit must be a positive int, got {!r}".format(limit))
    if limit < 1:
        raise ValueError("limit must be at least 1, got {}".format(limit))


class OutputPolicy:
    """How many runs on private data an approval allows. ``used`` is known for code read from
    the server (runs by the requester that completed).
    """

    kind = None

    def __init__(self, limit):
        _check_limit(limit)
        self.limit = limit
        self.used = None

    def to_wire(self):
        return {"kind": self.kind, "limit": self.limit}

    @property
    def remaining(self):
        if self.used is None:
            return None
        return max(self.limit - self.used, 0)

    @property
    def is_valid(self):
        """True while runs remain (PySyft's ``is_valid``); None when not known."""
        remaining = self.remaining
        return None if remaining is None else remaining > 0

    def describe(self):
        text = "{} (limit {})".format(type(self).__name__, self.limit)
        if self.used is not None:
            text += ", used {}".format(self.used)
        return text

    def __eq__(self, other):
        if isinstance(other, OutputPolicy):
            return self.to_wire() == other.to_wire()
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        if self.used is None:
            return "{}(limit={})".format(type(self).__name__, self.limit)
        return "{}(limit={}, used={})".format(type(self).__name__, self.limit, self.used)


class OutputPolicyExecuteCount(OutputPolicy):
    """At most ``limit`` runs on private data."""

    kind = "execute_count"

    def __init__(self, limit):
        super().__init__(limit)


class OutputPolicyExecuteOnce(OutputPolicyExecuteCount):
    """One run on private data."""

    kind = "single_execution"

    def __init__(self, limit=1):
        if limit != 1:
            raise ValueError(
                "OutputPolicyExecuteOnce allows one run; for more use "
                "sy.OutputPolicyExecuteCount(limit={!r})".format(limit)
            )
        super().__init__(1)


SingleExecutionExactOutput = OutputPolicyExecuteOnce


class _RecordsInit:
    """Records the arguments a policy was made with (PySyft's ``init_kwargs``), whatever the
    subclass's ``__init__`` does."""

    def __new__(cls, *args, **kwargs):
        policy = super().__new__(cls)
        policy._init_args = args
        policy._init_kwargs = dict(kwargs)
        return policy

    @property
    def init_kwargs(self):
        return dict(self._init_kwargs)


class CustomInputPolicy(_RecordsInit, InputPolicy):
    """Base class of a user-written input policy (PySyft's ``sy.CustomInputPolicy``).

    Its keyword arguments bind the function's arguments as ``sy.ExactMatch`` does (assets or
    JSON constants), and the server checks them so. Override ``is_valid(context,
    usr_input_kwargs)`` (True lets a private run go on; anything else refuses it) and
    ``filter_kwargs(kwargs, context)`` (the arguments the function gets). The class's source goes
    to the server with the function, the data owner reviews both, and its methods run only in the
    server's sandbox, beside the function, on each run on private data; inside, ``self.inputs``
    is the bindings (constants as values, assets as their ids).
    """

    def __new__(cls, *args, **kwargs):
        policy = super().__new__(cls, *args, **kwargs)
        policy.bindings = {name: Binding.of(name, value) for name, value in kwargs.items()}
        return policy

    def __init__(self, *args, **kwargs):
        pass

    def is_valid(self, context, usr_input_kwargs):
        return True

    def filter_kwargs(self, kwargs, context):
        return kwargs

    def __repr__(self):
        return "{}(custom input policy)".format(type(self).__name__)


class CustomOutputPolicy(_RecordsInit, OutputPolicy):
    """Base class of a user-written output policy (PySyft's ``sy.CustomOutputPolicy``): override
    ``is_valid(context)`` (checked before each run on private data: anything but True refuses it)
    and ``apply_to_output(context, outputs, update_policy=True)`` (what is released; None
    refuses the result). Its keyword arguments must be JSON values. The class's source goes to
    the server with the function, the data owner reviews both, and its methods run only in the
    server's sandbox, beside the function; its attributes (``self.state`` ...) are kept by the
    server between runs as JSON (at most 16 KiB), visible to data owners only.
    """

    limit = None
    used = None

    def __init__(self, *args, **kwargs):
        pass

    def apply_to_output(self, context, outputs, update_policy=True):
        return outputs

    def is_valid(self, context=None):
        return True

    def public_state(self):
        return None

    def to_wire(self):
        return {"kind": "custom"}

    def describe(self):
        text = "{} (custom output policy)".format(type(self).__name__)
        kwargs = getattr(self, "init_kwargs", None)
        if kwargs:
            text += ", made with " + _made_with(kwargs)
        return text

    def __repr__(self):
        return self.describe()


def output_policy_from_server(data):
    """The output policy object for the server's ``output_policy`` JSON."""
    data = dict(data or {})
    limit = data.get("limit")
    if data.get("kind") == "single_execution":
        policy = OutputPolicyExecuteOnce()
    else:
        policy = OutputPolicyExecuteCount.__new__(OutputPolicyExecuteCount)
        policy.limit = limit
        policy.used = None
    if data.get("used") is not None:
        policy.used = data.get("used")
    return policy


def input_policy_of(policy):
    """An input policy instance for what a user gave (None, a policy, or a policy class)."""
    if policy is None:
        return EmpyInputPolicy()
    if isinstance(policy, type) and issubclass(policy, InputPolicy):
        return EmpyInputPolicy() if policy in (EmpyInputPolicy, InputPolicy) else policy()
    if isinstance(policy, InputPolicy):
        return policy
    if isinstance(policy, dict):
        return ExactMatch(**policy)
    raise TypeError(
        "input_policy must be sy.ExactMatch(arg=asset_or_value, ...), got {!r}".format(policy)
    )


def output_policy_of(policy):
    """An output policy instance for what a user gave (None, a policy, or a policy class)."""
    if policy is None:
        return SingleExecutionExactOutput()
    if isinstance(policy, type) and issubclass(policy, OutputPolicy):
        if policy is OutputPolicyExecuteOnce or issubclass(policy, CustomOutputPolicy):
            return policy()
        raise TypeError("{} needs its limit: {}(limit=N)".format(policy.__name__, policy.__name__))
    if isinstance(policy, OutputPolicy):
        return policy
    raise TypeError(
        "output_policy must be sy.SingleExecutionExactOutput() or "
        "sy.OutputPolicyExecuteCount(limit=N), got {!r}".format(policy)
    )


# Custom policies on the wire -------------------------------------------------------------------


def _find_class_def(cls):
    """The ``class`` statement of ``cls`` from the file (or notebook cell) one of its methods was
    compiled from: inspect.getsource can't find classes defined in a notebook."""
    for value in vars(cls).values():
        func = getattr(value, "fget", value)
        func = getattr(func, "__func__", func)
        code = getattr(func, "__code__", None)
        if code is None:
            continue
        lines = linecache.getlines(code.co_filename)
        if not lines:
            continue
        try:
            tree = ast.parse("".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ClassDef)
                and node.name == cls.__name__
                and node.lineno <= code.co_firstlineno <= node.end_lineno
            ):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                return "".join(lines[start - 1 : node.end_lineno])
    return None


def class_source(cls):
    """The source of ``cls`` (a class statement), dedented; TypeError when it can't be found."""
    try:
        source = inspect.getsource(cls)
    except (TypeError, OSError):
        source = _find_class_def(cls)
    if not source:
        raise TypeError(
            "the source of policy class {} can't be found: define it in a file or a notebook "
            "cell (the server runs its source, which the data owner reviews)".format(cls.__name__)
        )
    return textwrap.dedent(source)


def _policy_classes(policy, base):
    """The user's classes ``policy`` is made of, bases first (up to datasite's own base)."""
    classes = []
    for cls in reversed(type(policy).__mro__):
        if cls.__module__.split(".")[0] == __name__.split(".")[0] or cls is object:
            continue
        if not issubclass(cls, base):
            raise TypeError(
                "policy class {} also derives from {}: a custom policy derives from "
                "sy.{} (and classes of yours that do) only".format(
                    type(policy).__name__, cls.__name__, base.__name__
                )
            )
        classes.append(cls)
    return classes


def policy_code_of(input_policy, output_policy):
    """The ``policy_code`` of a submission (None without custom policies): the source of the
    custom policy classes, and their classes and init kwargs."""
    parts = {}
    sources = []
    for which, policy, base in (
        ("input", input_policy, CustomInputPolicy),
        ("output", output_policy, CustomOutputPolicy),
    ):
        if not isinstance(policy, base):
            continue
        for cls in _policy_classes(policy, base):
            source = class_source(cls)
            if source not in sources:
                sources.append(source)
        entry = {"class": type(policy).__name__}
        if which == "output":
            kwargs = policy.init_kwargs
            for name, value in kwargs.items():
                _check_constant(value, "{}(...) argument {!r}".format(type(policy).__name__, name))
            if policy._init_args:
                raise TypeError(
                    "make {} with keyword arguments only: the server makes it again from "
                    "them".format(type(policy).__name__)
                )
            entry["init_kwargs"] = kwargs
        parts[which] = entry
    if not parts:
        return None
    return dict(parts, source="\n\n".join(sources))


def _made_with(kwargs):
    """A custom policy's constructor arguments for a display, as JSON (the display escapes it)."""
    try:
        return json.dumps(kwargs, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(kwargs)


class ServerCustomPolicy:
    """A custom policy as the server describes it: ``class_name``, ``init_kwargs``,
    ``policy_code`` (the source the data owner reviews) and, for data owners, what it kept after
    the last run on private data (``state``; each kept attribute reads as one: ``policy.counts``).
    """

    def __init__(self, which, entry, source, state):
        self.which = which
        self.class_name = entry.get("class")
        self.init_kwargs = dict(entry.get("init_kwargs") or {})
        self.policy_code = source
        self.kept = dict(state) if isinstance(state, dict) else None
        self.limit = None
        self.used = None

    def __getattr__(self, name):
        kept = self.__dict__.get("kept")
        if kept is not None and name in kept:
            return kept[name]
        if name in self.__dict__.get("init_kwargs", {}):
            return self.__dict__["init_kwargs"][name]
        raise AttributeError(
            "{} has no {!r} (what a custom policy kept is shown to data owners only)".format(
                self.__dict__.get("class_name"), name
            )
        )

    def describe(self):
        # The scientist chose the constructor's arguments (``limit=1000000`` against a source
        # reading ``limit=1``): the data owner reviews them with the source.
        text = "{} (custom {} policy)".format(self.class_name, self.which)
        if self.init_kwargs:
            text += ", made with " + _made_with(self.init_kwargs)
        return text

    def __repr__(self):
        return self.describe()


def custom_policies_from_server(policy_code):
    """``(input, output)`` ServerCustomPolicy objects (or None) from the server's
    ``policy_code``."""
    if not isinstance(policy_code, dict):
        return None, None
    state = policy_code.get("state") or {}
    made = []
    for which in ("input", "output"):
        entry = policy_code.get(which)
        made.append(
            ServerCustomPolicy(which, entry, policy_code.get("source"), state.get(which))
            if isinstance(entry, dict)
            else None
        )
    return tuple(made)
