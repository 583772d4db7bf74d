"""Code that runs on private data: ``@sy.syft_function``, ``client.code`` and ``UserCode``.

``@sy.syft_function_single_use(data=asset)`` captures a function's source (without its decorators)
and binds its arguments: calling the result runs the function here, on the assets' mocks, to
prototype it. ``client.code.request_code_execution(f, reason=...)`` sends it to the server and asks
a data owner to approve it; ``client.code.<name>(data=asset)`` then runs it there on the private
data and answers a pointer whose ``get()`` is the result.
"""

import ast
import builtins
import hashlib
import html
import inspect
import keyword
import symtable
import textwrap
import time
import warnings

from . import _display, errors
from ._action import ActionObject
from ._listing import fetch_all_pages
from .enums import UserCodeStatus, status_from_server
from .errors import DatasiteWarning, RateLimitedError, SyftSuccess
from .jobs import Job, JobList, pointer_for
from .policies import (
    Binding,
    ExactMatch,
    InputPolicy,
    OutputPolicyExecuteOnce,
    custom_policies_from_server,
    input_policy_of,
    output_policy_from_server,
    output_policy_of,
    policy_code_of,
)

ALREADY_EXISTS_MESSAGE = "UserCode with this code already exists"
# How long a blocking run may take over HTTP beyond the job's own limit (queueing, result
# transfer); without a timeout_seconds the wait is bounded by DEFAULT_BLOCKING_SECONDS.
BLOCKING_MARGIN_SECONDS = 120
DEFAULT_BLOCKING_SECONDS = 3600


# The longest single wait asked of the server (GET /api/v1/jobs/{id}/wait grants up to 600 s): under
# the 60 s a proxy (nginx's proxy_read_timeout) commonly allows an answer.
_WAIT_SECONDS_PER_CALL = 50


def _server_waits(client):
    """Whether the server has GET /api/v1/jobs/{id}/wait (API 1.2 and later)."""
    version = str(client._metadata.get("api_version") or "1.0").split(".")
    try:
        return (int(version[0]), int(version[1])) >= (1, 2)
    except (ValueError, IndexError):
        return False


def _wait_for_job(transport, job, seconds):
    """The job (as JSON) once it has ended, or as it is after ``seconds``."""
    deadline = time.monotonic() + seconds
    reused = job.get("reused")  # what the start said: a wait answers the job alone
    while job.get("status") in ("queued", "running"):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        wait = max(1, min(int(left), _WAIT_SECONDS_PER_CALL))
        try:
            job = transport.call(
                "job_wait",
                path_params={"id": job["id"]},
                query={"timeout": wait},
                timeout=wait + transport.timeout,
            )
        except RateLimitedError as err:
            # This user already waits for as many jobs as the server lets one user wait for
            # (runs in several threads): wait here, and ask again.
            time.sleep(min(max(err.retry_after or 1, 0.2), max(left, 0.2)))
            job = transport.call("job_get", path_params={"id": job["id"]})
        if reused is not None:
            job["reused"] = reused
    return job


def source_hash(source):
    """The ``code_hash`` the server computes: SHA-256 of the source text exactly as sent."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


# Capturing a function ----------------------------------------------------------------------------


def _function_source(func, what="syft_function"):
    """The source of ``func``'s ``def`` without its decorators, dedented; refuses what the server
    could not run from the source alone. ``what`` names the decorator in messages.
    """
    if not inspect.isfunction(func):
        raise TypeError(
            "{} decorates a function (def ...), got {}".format(what, type(func).__name__)
        )
    name = func.__name__
    if name == "<lambda>":
        raise TypeError(
            "a lambda can't be sent to the server: write it as a function (def name(...): ...)"
        )
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError("{} is async: the server runs plain functions".format(name))
    if inspect.isgeneratorfunction(func):
        raise TypeError(
            "{} is a generator (it yields): the server sends back what a function returns; "
            "return a list instead".format(name)
        )
    free = func.__code__.co_freevars
    if free:
        raise TypeError(
            "{} uses {} from the function it is defined in; the server runs the function's "
            "source alone. Define it at the top level of a module or notebook cell and pass "
            "such values as inputs".format(name, ", ".join(repr(v) for v in free))
        )
    try:
        raw = inspect.getsource(func)
    except (OSError, TypeError) as err:
        raise ValueError(
            "cannot find the source of {} ({}): define it in a file or a notebook cell, not "
            "with exec() or at an interactive prompt without history".format(name, err)
        ) from None
    text = textwrap.dedent(raw)
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        raise ValueError("cannot parse the source of {}: {}".format(name, err)) from None
    node = next(
        (
            n
            for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
        ),
        None,
    )
    if node is None:
        raise ValueError("cannot find 'def {}' in its source".format(name))
    lines = text.splitlines()
    body = "\n".join(lines[node.lineno - 1 : node.end_lineno])
    return textwrap.dedent(body).rstrip() + "\n"


def _outside_names(source, name):
    """Names ``name``'s body reads that are neither its own nor builtins (the server won't have
    them: modules the function uses must be imported inside it).
    """
    try:
        table = symtable.symtable(source, "<code>", "exec")
    except SyntaxError:
        return []
    found = set()

    def visit(t):
        for sym in t.get_symbols():
            if sym.is_global() and sym.is_referenced() and not sym.is_assigned():
                found.add(sym.get_name())
        for child in t.get_children():
            visit(child)

    for child in table.get_children():
        if child.get_name() == name:
            visit(child)
    return sorted(n for n in found if n != name and not hasattr(builtins, n))


def _renamed(source, old, new):
    """``source`` with its ``def old`` named ``new`` (old stays usable inside, for recursion)."""
    tree = ast.parse(source)
    node = tree.body[0]
    lines = source.split("\n")
    line = lines[node.lineno - 1]
    at = line.index("def ") + len("def ")
    rest = line[at:].lstrip()
    assert rest.startswith(old), (line, old)
    lines[node.lineno - 1] = line[:at] + new + rest[len(old) :]
    text = "\n".join(lines)
    if old in _outside_names(text, new):
        text = text.rstrip("\n") + "\n\n\n{} = {}\n".format(old, new)
    return text


def _check_signature(func, name, policy):
    sig = inspect.signature(func)
    params = sig.parameters
    has_varkw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for p in params.values():
        if p.kind is p.POSITIONAL_ONLY:
            raise TypeError(
                "{}: argument {!r} is positional-only; the server passes inputs by name".format(
                    name, p.name
                )
            )
    for arg in policy.bindings:
        if arg not in params and not has_varkw:
            raise TypeError(
                "the input policy binds {!r}, but {}{} has no such argument".format(arg, name, sig)
            )
    for p in params.values():
        needed = p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        if needed and p.name not in policy.bindings:
            raise TypeError(
                "{}{} needs {!r}, which the input policy does not bind: add it, e.g. "
                "@sy.syft_function_single_use({}=asset)".format(name, sig, p.name, p.name)
            )


class SubmitUserCode:
    """A decorated function before it is on the server (PySyft's ``SubmitUserCode``).

    Calling it runs the original function here, with each asset argument replaced by the asset's
    mock and the constants of the input policy; arguments you pass override those. Send it with
    ``client.code.request_code_execution(f, reason=...)`` or ``client.code.submit(f)``.
    """

    def __init__(
        self, func, input_policy=None, output_policy=None, name=None, worker_pool_name=None
    ):
        source = _function_source(func)
        self.worker_pool_name = _pool_name_of(worker_pool_name)
        self.local_function = func
        self.func_name = func.__name__
        self.input_policy = input_policy_of(input_policy)
        self.output_policy = output_policy_of(output_policy)
        _check_signature(func, self.func_name, self.input_policy)
        if name is None:
            name = self.func_name
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError("name must be a Python identifier, got {!r}".format(name))
        if name != self.func_name:
            source = _renamed(source, self.func_name, name)
        self.service_func_name = name
        self.code = source
        self.signature = inspect.signature(func)
        self.__doc__ = func.__doc__
        self.__wrapped__ = func
        outside = [n for n in _outside_names(source, name) if n != self.func_name]
        if outside:
            warnings.warn(
                DatasiteWarning(
                    "{} uses {}, defined outside it; the server runs the function's source "
                    "alone, so import modules inside the function and pass values as "
                    "inputs".format(name, ", ".join(outside))
                ),
                stacklevel=3,
            )

    @property
    def name(self):
        return self.service_func_name

    @property
    def raw_code(self):
        return self.code

    @property
    def input_kwargs(self):
        return list(self.input_policy.bindings)

    @property
    def code_hash(self):
        return source_hash(self.code)

    def __call__(self, *args, **kwargs):
        """Runs the function here: on the mocks of the bound assets and the bound constants,
        with the arguments you give instead of those. Answers an ``sy.ActionObject`` around the
        return value (``.get()`` is the value; it also behaves as the value), as PySyft does.
        """
        bound = self.signature.bind_partial(*args, **kwargs)
        params = self.signature.parameters
        varkw = next((p.name for p in params.values() if p.kind is p.VAR_KEYWORD), None)
        given = set(bound.arguments)
        if varkw is not None:
            given |= set(bound.arguments.get(varkw, {}))
        for arg, binding in self.input_policy.bindings.items():
            if arg in given:
                continue
            value = _local_value(arg, binding.asset if binding.is_asset else binding.value)
            if arg in params:
                bound.arguments[arg] = value
            else:
                bound.arguments.setdefault(varkw, {})[arg] = value
        for arg, value in list(bound.arguments.items()):
            if arg == varkw:
                bound.arguments[arg] = {k: _local_value(k, v) for k, v in value.items()}
            else:
                bound.arguments[arg] = _local_value(arg, value)
        return ActionObject(self.local_function(*bound.args, **bound.kwargs))

    def to_wire(self):
        """The body of ``POST /api/v1/code``."""
        body = {
            "name": self.service_func_name,
            "source": self.code,
            "inputs": self.input_policy.to_wire(),
            "output_policy": self.output_policy.to_wire(),
        }
        policy_code = policy_code_of(self.input_policy, self.output_policy)
        if policy_code is not None:
            body["policy_code"] = policy_code
        if self.worker_pool_name is not None:
            body["worker_pool_name"] = self.worker_pool_name
        return body

    # Display --------------------------------------------------------------------------------

    def _rows(self):
        rows = [
            ("Name", self.service_func_name),
            ("Output policy", self.output_policy.describe()),
        ]
        if self.worker_pool_name is not None:
            rows.append(("Worker pool", self.worker_pool_name))
        rows.append(("Submitted", "not yet: client.code.request_code_execution(f, reason=...)"))
        return rows

    def __repr__(self):
        return "\n\n".join(
            [
                _display.text_fields("SubmitUserCode", self._rows()),
                _bindings_text(self.input_policy),
                "Code:\n" + _display.reveal_code(self.code),
            ]
        )

    def _repr_html_(self):
        return (
            _display.html_fields("SubmitUserCode: " + self.service_func_name, self._rows())
            + _bindings_html(self.input_policy)
            + _source_html(self.code)
        )

    def _repr_markdown_(self):
        return (
            _display.md_fields("SubmitUserCode: " + self.service_func_name, self._rows())
            + "\n"
            + _bindings_markdown(self.input_policy)
            + "\n"
            + _source_markdown(self.code)
        )


def _local_value(arg, value):
    """An asset's mock (for local runs); anything else as is."""
    from .datasets import Asset

    if not isinstance(value, Asset):
        return value
    if not value.has_mock:
        raise ValueError(
            "argument {!r}: asset {!r} has an empty mock, so there is nothing to run on here; "
            "pass data of the same shape yourself, e.g. f({}=my_frame)".format(
                arg, value.name, arg
            )
        )
    return value.mock


def syft_function(
    input_policy=None,
    output_policy=None,
    share_results_with_owners=False,
    worker_pool_name=None,
    name=None,
):
    """Decorator: ``@sy.syft_function(input_policy=sy.ExactMatch(data=asset),
    output_policy=sy.SingleExecutionExactOutput())``. Without an output policy the code may run
    once. ``name`` submits the function under another name.
    """
    if inspect.isfunction(input_policy):
        raise TypeError(
            "syft_function takes policies: write @sy.syft_function(input_policy=..., "
            "output_policy=...) with parentheses, or @sy.syft_function_single_use(data=asset)"
        )
    _refuse_unsupported(share_results_with_owners)
    pool = _pool_name_of(worker_pool_name)
    in_policy = input_policy_of(input_policy)
    out_policy = output_policy_of(output_policy)

    def decorator(func):
        return SubmitUserCode(func, in_policy, out_policy, name=name, worker_pool_name=pool)

    return decorator


def syft_function_single_use(
    *args, share_results_with_owners=False, worker_pool_name=None, name=None, **kwargs
):
    """Decorator: ``@sy.syft_function_single_use(data=asset, bins=10)`` binds the arguments
    (``sy.ExactMatch``) and allows one run on private data (``sy.SingleExecutionExactOutput``).
    """
    if len(args) == 1 and inspect.isfunction(args[0]) and not kwargs:
        raise TypeError(
            "syft_function_single_use binds inputs: write "
            "@sy.syft_function_single_use(data=asset, ...) with parentheses"
        )
    if args:
        raise TypeError(
            "syft_function_single_use takes inputs by name, e.g. "
            "@sy.syft_function_single_use(data=asset)"
        )
    return syft_function(
        input_policy=ExactMatch(**kwargs),
        output_policy=OutputPolicyExecuteOnce(),
        share_results_with_owners=share_results_with_owners,
        worker_pool_name=worker_pool_name,
        name=name,
    )


def _refuse_unsupported(share_results_with_owners):
    if share_results_with_owners:
        raise ValueError(
            "share_results_with_owners: results go to the code's author only; a data owner "
            "reads a review run's result (request.code.run()) instead"
        )


def _pool_name_of(worker_pool_name):
    """The pool code runs in, by name (a ``WorkerPool`` gives its name); None: "default"."""
    if worker_pool_name is None:
        return None
    name = getattr(worker_pool_name, "name", worker_pool_name)
    if not isinstance(name, str) or not name.strip():
        raise TypeError(
            "worker_pool_name must be a pool's name (see client.worker_pools), got {!r}".format(
                worker_pool_name
            )
        )
    return name.strip()


# Display helpers shared by SubmitUserCode and UserCode ----------------------------------------


def _bindings_text(policy):
    rows = [(arg, b.describe()) for arg, b in policy.bindings.items()]
    return _display.text_fields(
        "Inputs ({})".format(type(policy).__name__), rows or [("", "none")]
    )


def _bindings_html(policy):
    rows = [(arg, b.describe()) for arg, b in policy.bindings.items()]
    html = _display.html_fields("", rows or [("", "none")]).replace("<h3></h3>", "")
    return "<h4>Inputs ({})</h4>{}".format(_display.esc(type(policy).__name__), html)


def _bindings_markdown(policy):
    rows = [(arg, b.describe()) for arg, b in policy.bindings.items()]
    return _display.md_fields("Inputs ({})".format(type(policy).__name__), rows)


def _source_html(source):
    return '<h4>Code</h4><pre class="datasite-code"><code>{}</code></pre>'.format(
        html.escape(_display.reveal_code(source or ""), quote=True)
    )


def _source_markdown(source):
    source = _display.reveal_code(source or "")
    longest, run = 0, 0
    for ch in source:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return "{}python\n{}\n{}\n".format(fence, source.rstrip("\n"), fence)


class CodeText(str):
    """Source code that notebooks show highlighted; ``print`` it for the exact text. Displays
    show hidden characters (controls, bidi overrides) as escapes.
    """

    def __repr__(self):
        return _display.reveal_code(self)

    def __call__(self):
        """Itself: ``code.show_code`` (PySyft's property) and ``code.show_code()`` both work."""
        return self

    def _repr_markdown_(self):
        return _source_markdown(self)


# Code on the server ------------------------------------------------------------------------------


class BoundAssets(list):
    """The assets a piece of code is bound to: index by position, argument name or asset name."""

    def __init__(self, pairs):
        super().__init__(asset for _, asset in pairs)
        self._by_arg = dict(pairs)

    def __getitem__(self, key):
        if isinstance(key, str):
            if key in self._by_arg:
                return self._by_arg[key]
            for asset in self:
                if asset.name == key:
                    return asset
            raise KeyError(
                "no input or asset named {!r}; the inputs are: {}".format(
                    key, ", ".join(self._by_arg) or "none"
                )
            )
        return super().__getitem__(key)

    def items(self):
        return self._by_arg.items()

    def __repr__(self):
        return _display.text_table(
            ("input", "dataset", "asset", "format"),
            [(arg, a._dataset_name, a.name, a.format) for arg, a in self._by_arg.items()],
        )

    def _repr_html_(self):
        return _display.html_table(
            "Assets",
            ("input", "dataset", "asset", "format"),
            [(arg, a._dataset_name, a.name, a.format) for arg, a in self._by_arg.items()],
        )


class UserCode:
    """Code on the server (PySyft's ``UserCode``), as the server last described it.

    ``source``, ``inputs``/``input_policy``, ``output_policy``, ``status`` (a
    ``sy.UserCodeStatus``, None before a request), ``request``, ``assets``. Calling it runs it on
    the server: ``code(data=asset)`` on the private data (its author once approved, data owners
    any time as a review), ``code.mock(...)`` on the mocks.
    """

    def __init__(self, data, client):
        self._client = client
        self._assets = None
        self._load(data)

    def _load(self, data):
        data = dict(data or {})
        self._data = data
        self.id = data.get("id")
        self.name = data.get("name")
        self.version = data.get("version")
        self.source = data.get("source")
        self.code_hash = data.get("code_hash")
        self.user = data.get("user")
        self.created_at = data.get("created_at")
        self.input_policy = ExactMatch._from_server(data.get("inputs"))
        self.output_policy = output_policy_from_server(data.get("output_policy"))
        # Custom policies: their source is code the data owner reviews with the function.
        policy_code = data.get("policy_code")
        self.policy_code = dict(policy_code) if isinstance(policy_code, dict) else None
        custom_input, custom_output = custom_policies_from_server(self.policy_code)
        self.custom_input_policy = custom_input
        if custom_output is not None:
            self.output_policy = custom_output
        request = data.get("request")
        self.request_info = dict(request) if isinstance(request, dict) else None
        # The pool it runs in (servers before worker pools send none: "default").
        self.worker_pool_name = data.get("worker_pool_name")

    def to_dict(self):
        return dict(self._data)

    # PySyft's names.
    @property
    def service_func_name(self):
        return self.name

    func_name = service_func_name

    @property
    def raw_code(self):
        return self.source

    code = raw_code

    @property
    def user_email(self):
        return (self.user or {}).get("email")

    @property
    def user_name(self):
        return (self.user or {}).get("name")

    @property
    def submit_time(self):
        return self.created_at

    @property
    def inputs(self):
        """What the server says each argument is bound to: ``{"data": {"asset_id", "dataset_id",
        "dataset", "asset"}, "bins": {"value": 10}}``.
        """
        return {arg: dict(b.server) for arg, b in self.input_policy.bindings.items()}

    @property
    def input_kwargs(self):
        return list(self.input_policy.bindings)

    @property
    def status(self):
        """``sy.UserCodeStatus`` of its request (None when no request was made)."""
        if not self.request_info:
            return None
        return status_from_server(UserCodeStatus, self.request_info.get("status"))

    @property
    def request(self):
        """The ``Request`` for this code (None when none was made)."""
        from .requests import Request

        if not self.request_info or not self.request_info.get("id"):
            return None
        data = self._client._transport.call(
            "request_get", path_params={"id": self.request_info["id"]}
        )
        return Request(data, self._client)

    @property
    def assets(self):
        """The assets the inputs are bound to (read from the server once)."""
        if self._assets is None:
            datasets, pairs = {}, []
            for arg, binding in self.input_policy.bindings.items():
                if not binding.is_asset:
                    continue
                info = binding.server
                dataset_id = info.get("dataset_id")
                if dataset_id not in datasets:
                    datasets[dataset_id] = self._client.datasets.get(dataset_id)
                dataset = datasets[dataset_id]
                asset = next(
                    (a for a in dataset.assets if a.id and a.id == info.get("asset_id")), None
                )
                if asset is None:
                    asset = dataset.assets[info.get("asset")]
                pairs.append((arg, asset))
            self._assets = BoundAssets(pairs)
        return self._assets

    @property
    def jobs(self):
        """This code's jobs that you may see, oldest first."""
        return self._client.jobs.get_all(code_id=self.id)

    def history(self):
        """Every version of this function (same name), oldest first."""
        return self._client.code.history(self.name)

    def refresh(self):
        self._load(self._client._transport.call("code_get", path_params={"id": self.id}))
        self._assets = None
        return self

    @property
    def show_code(self):
        """The source, rendered with highlighting in notebooks (``show_code`` as in PySyft, or
        ``show_code()``).
        """
        return CodeText(self.source or "")

    def source_text(self):
        """The source for displays: hidden characters, and characters of names that Python reads
        as others, written as visible escapes.
        """
        return _display.reveal_code(self.source or "")

    @property
    def policy_source(self):
        """The source of the code's custom policies (None without): code that runs in the
        sandbox with the function, reviewed with it."""
        if not self.policy_code:
            return None
        return CodeText(self.policy_code.get("source") or "")

    # Running ---------------------------------------------------------------------------------

    def _reviewing(self, mock):
        """Whether a run by this client is a data owner's review run (someone else's code, or
        code not yet approved): it may take other data than the policy binds.
        """
        user = getattr(self._client, "_user", None) or {}
        if mock or user.get("role") not in ("data_owner", "admin"):
            return False
        author = user.get("id") == (self.user or {}).get("id")
        return not author or self.status != UserCodeStatus.APPROVED

    def _review_binding(self, arg, value, uploaded):
        """A data owner's review input: an asset, a constant, or data of theirs (a DataFrame, an
        array, bytes; say the asset's ``.data`` they downloaded), uploaded for the run.
        """
        from . import _transfer
        from .datasets import Asset

        if isinstance(value, (Asset, Binding)):
            return Binding.of(arg, value).to_wire()
        try:
            return Binding.of(arg, value).to_wire()
        except TypeError:
            pass
        with _transfer.payload_of(value) as payload:
            blob = _transfer.upload(
                self._client._transport, payload, label="Uploading {} for the review".format(arg)
            )
        uploaded.append(blob["id"])
        return {"blob_id": blob["id"]}

    def _run_inputs(self, kwargs, review=False, uploaded=None):
        """The ``inputs`` of a run: None when none are given (the policy's own), else the
        policy's bindings with the given ones in their place. In a data owner's review run they
        may differ from the policy's (see ``_review_binding``).
        """
        if not kwargs:
            return None
        unknown = [k for k in kwargs if k not in self.input_policy.bindings]
        if unknown:
            raise TypeError(
                "{} has no input {}; its inputs are: {}".format(
                    self.name,
                    ", ".join(repr(k) for k in unknown),
                    ", ".join(self.input_policy.bindings) or "none",
                )
            )
        inputs = {}
        for arg, binding in self.input_policy.bindings.items():
            if arg in kwargs and review:
                inputs[arg] = self._review_binding(arg, kwargs[arg], uploaded)
            elif arg in kwargs:
                value = kwargs[arg]
                _refuse_local_data(arg, binding, value)
                inputs[arg] = Binding.of(arg, value).to_wire()
            else:
                inputs[arg] = binding.to_wire()
        return inputs

    def _start(self, kwargs, mock, blocking, timeout_seconds, for_requester=False):
        # A blocking run is started without blocking and then waited for (job_wait), so that
        # the start is a plain change, sent again safely with its Idempotency-Key when its
        # answer is lost, and the wait is a read, sent again on any server.
        waits = _server_waits(self._client)
        body = {"mock": bool(mock), "blocking": bool(blocking) and not waits}
        if for_requester:
            body["for_requester"] = True
        review = not for_requester and self._reviewing(mock)
        if review:
            on = "the data you passed" if kwargs else "the private data"
            print(
                "datasite: {} runs in the server's sandbox on {} (never in this kernel, next to "
                "your admin token); its result is for you only and uses none of its output "
                "policy's runs.".format(self.name, on)
            )
        uploaded = []
        inputs = self._run_inputs(kwargs, review, uploaded)
        if inputs is not None:
            body["inputs"] = inputs
        http_timeout = None
        if timeout_seconds is not None:
            if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, (int, float)):
                raise TypeError(
                    "timeout_seconds must be a number, got {!r}".format(timeout_seconds)
                )
            body["timeout_seconds"] = timeout_seconds
        if blocking:
            http_timeout = (
                timeout_seconds + BLOCKING_MARGIN_SECONDS
                if timeout_seconds is not None
                else DEFAULT_BLOCKING_SECONDS
            )
        transport = self._client._transport
        data = transport.call(
            "code_run", path_params={"id": self.id}, body=body,
            timeout=None if body["blocking"] is False else http_timeout,
        )
        if blocking and waits:
            data = _wait_for_job(transport, data, http_timeout)
        job = Job(data, self._client)
        if job.status is not None and job.status.finished:
            # The run ended: the data uploaded for it goes (else the server's unused-blob TTL).
            for blob_id in uploaded:
                try:
                    self._client._transport.call("blob_delete", path_params={"id": blob_id})
                except errors.DatasiteError:
                    pass
        return job

    def __call__(self, *args, blocking=True, timeout_seconds=None, for_requester=False, **kwargs):
        """Runs the code on the server on the private data: its author once the request is
        approved (as often as the output policy allows; after that the last result is given
        again), a data owner or admin any time (a review run).

        ``for_requester=True`` (a data owner, approved code, the policy's own inputs) runs it for
        its author instead: a private run that is theirs, counted by the output policy and held
        for output review when that is on, as if they had run it; on a high side it is the run
        that sync carries back to them.

        ``blocking=True`` waits and answers a pointer whose ``get()`` is the value, raising
        ``JobFailedError`` when the code failed; ``blocking=False`` answers the ``Job`` at once.
        Inputs default to the policy's; the ones you give must be the same.
        """
        if args:
            raise TypeError(
                "pass inputs by name, e.g. client.code.{}({}=asset)".format(
                    self.name, next(iter(self.input_policy.bindings), "data")
                )
            )
        job = self._start(
            kwargs,
            mock=False,
            blocking=blocking,
            timeout_seconds=timeout_seconds,
            for_requester=for_requester,
        )
        return pointer_for(job) if blocking else job

    def mock(self, *args, blocking=True, timeout_seconds=None, **kwargs):
        """Runs the code on the server on the mocks of its assets; no approval needed and no run
        of the output policy used.
        """
        if args:
            raise TypeError("pass inputs by name, e.g. code.mock(data=asset)")
        job = self._start(kwargs, mock=True, blocking=blocking, timeout_seconds=timeout_seconds)
        return pointer_for(job) if blocking else job

    def run(self, *args, **kwargs):
        """Runs the code on the server on the private data and returns the value: for a data
        owner a review run (before or after deciding), for the author an approved run.

        A data owner may pass other data than the policy binds (``run(data=asset.data)``, a
        DataFrame of their own, another asset): unlike PySyft, the code still runs in the
        server's sandbox, never in the notebook's kernel.
        """
        return self(*args, **kwargs).get()

    @property
    def unsafe_function(self):
        """PySyft's way for a data owner to call the code in their own kernel. Here it is the
        same as ``run``: the code runs in the server's sandbox, on the private data or on what
        you pass, never next to your token; the function it gives returns the value.
        """
        return self.run

    # Display --------------------------------------------------------------------------------

    def _rows(self):
        policy = self.output_policy
        return [
            ("Id", self.id),
            ("Name", self.name),
            ("Version", self.version),
            ("Status", self.status if self.status is not None else "not requested"),
            ("Author", _display.person(self.user)),
            ("Submitted", self.created_at),
            ("Output policy", policy.describe() if policy else ""),
        ] + ([("Worker pool", self.worker_pool_name)] if self.worker_pool_name else []) + [
            ("Code hash", self.code_hash),
        ] + self._hidden_rows()

    def _hidden_rows(self):
        source = self.source or ""
        if _display.reveal_code(source) == _display.reveal(source) and not _display.has_hidden(
            source
        ):
            return []
        return [
            (
                "Warning",
                "the source holds hidden or direction-changing characters, or names Python reads "
                "as others, shown as \\x/\\u escapes: read it with care",
            )
        ]

    def _inputs_text(self):
        return _bindings_text(self.input_policy)

    def _inputs_html(self):
        return _bindings_html(self.input_policy)

    def _inputs_markdown(self):
        return _bindings_markdown(self.input_policy)

    def _source_html(self):
        shown = _source_html(self.source)
        if self.policy_source is not None:
            shown += _source_html(self.policy_source).replace(
                "<h4>Code</h4>", "<h4>Custom policies (run with the code)</h4>", 1
            )
        return shown

    def _source_markdown(self):
        shown = "#### Code\n\n" + _source_markdown(self.source)
        if self.policy_source is not None:
            shown += "\n#### Custom policies (run with the code)\n\n" + _source_markdown(
                self.policy_source
            )
        return shown

    def __repr__(self):
        return "\n\n".join(
            [
                _display.text_fields("UserCode", self._rows()),
                self._inputs_text(),
                "Code:\n" + self.source_text(),
            ]
            + (
                []
                if self.policy_source is None
                else [
                    "Custom policies (run with the code):\n"
                    + _display.reveal_code(self.policy_source)
                ]
            )
        )

    def _repr_html_(self):
        return (
            _display.html_fields("UserCode: " + _display.show(self.name), self._rows())
            + self._inputs_html()
            + self._source_html()
        )

    def _repr_markdown_(self):
        return (
            _display.md_fields("UserCode: " + _display.show(self.name), self._rows())
            + "\n"
            + self._inputs_markdown()
            + "\n"
            + self._source_markdown()
        )


def _refuse_local_data(arg, binding, value):
    """A DataFrame or array given where an asset is bound: the server has the data; the asset
    must be passed.
    """
    from .datasets import Asset

    if binding.is_asset and not isinstance(value, Asset):
        raise TypeError(
            "argument {!r} is bound to asset {}: pass that asset (e.g. "
            "client.datasets[...].assets[...]), not data; the server runs on its own "
            "copy".format(arg, binding.describe())
        )


_CODE_COLUMNS = ("name", "version", "status", "author", "inputs", "created_at", "id")


def _code_row(c):
    return [
        c.name,
        c.version,
        c.status if c.status is not None else "not requested",
        _display.person(c.user),
        ", ".join(c.input_kwargs),
        c.created_at,
        c.id,
    ]


class UserCodeList(list):
    """Code that renders as a table; index by position, by name (the newest of that name) or by
    id.
    """

    def __getitem__(self, key):
        if isinstance(key, str):
            for code in self:
                if code.id == key:
                    return code
            named = [c for c in self if c.name == key]
            if named:
                return max(named, key=lambda c: (c.created_at or "", c.version or 0))
            raise KeyError("no code named {!r}".format(key))
        result = super().__getitem__(key)
        return UserCodeList(result) if isinstance(key, slice) else result

    def names(self):
        seen = []
        for code in self:
            if code.name not in seen:
                seen.append(code.name)
        return seen

    def __repr__(self):
        return _display.text_table(_CODE_COLUMNS, [_code_row(c) for c in self])

    def _repr_html_(self):
        return _display.html_list("UserCode List", _CODE_COLUMNS, [_code_row(c) for c in self])


class CodeHistory(UserCodeList):
    """The versions of one function, oldest first (``[-1]`` is the newest)."""

    def __init__(self, name, items, absolute_only=False):
        super().__init__(sorted(items, key=lambda c: (c.version or 0, c.created_at or "")))
        self.name = name
        # A reviewer's view of someone's history: [-1] would pick whatever version is newest
        # when it runs, maybe one submitted after the review, so only absolute positions work.
        self._absolute_only = absolute_only

    def __getitem__(self, key):
        if self._absolute_only and isinstance(key, int) and key < 0:
            raise errors.InvalidArgumentError(
                None,
                "negative indexing is refused on another user's code history (a new version "
                "would change what [-1] is): use an absolute position, e.g. [{}]".format(
                    max(len(self) + key, 0)
                ),
                None,
            )
        return super().__getitem__(key)

    def _repr_html_(self):
        return _display.html_table(
            "History of " + _display.show(self.name), _CODE_COLUMNS, [_code_row(c) for c in self]
        )


class CodeHistories:
    """``client.code_history``: the versions of each of your functions, by name
    (``client.code_history["mean_age"]`` or ``client.code_history.mean_age``).
    """

    def __init__(self, client):
        self._client = client

    def __getitem__(self, name):
        return self._client.code.history(name)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        history = self._client.code.history(name)
        if not history:
            raise AttributeError("no code named {!r}".format(name))
        return history

    def _table(self):
        counts = {}
        for code in self._client.code.get_all():
            counts[code.name] = counts.get(code.name, 0) + 1
        return [(name, n) for name, n in counts.items()]

    def __repr__(self):
        return _display.text_table(("name", "versions"), self._table())

    def _repr_html_(self):
        return _display.html_table("Code history", ("name", "versions"), self._table())


class UserCodeHistories:
    """The versions of each function of one user, by name
    (``client.code_histories["janet@example.org"].mean_age``).
    """

    def __init__(self, client, email):
        self._client = client
        self.email = email

    def _code(self, name=None):
        items = self._client.code.get_all(name=name) if name else self._client.code.get_all()
        return [c for c in items if (c.user_email or "").lower() == self.email.lower()]

    def __getitem__(self, name):
        if not isinstance(name, str) or not name:
            raise TypeError("a function's history is reached by its name, e.g. ['mean_age']")
        reviewer = self._client._user.get("role") in ("data_owner", "admin")
        history = CodeHistory(name, self._code(name), absolute_only=reviewer)
        if not history:
            raise KeyError("{} has no code named {!r} that you may see".format(self.email, name))
        return history

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(err.args[0]) from None

    def _table(self):
        counts = {}
        for code in self._code():
            counts[code.name] = counts.get(code.name, 0) + 1
        return list(counts.items())

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | {name for name, _ in self._table()})

    def __repr__(self):
        return _display.text_table(("name", "versions"), self._table())

    def _repr_html_(self):
        return _display.html_table(
            "Code history of " + _display.show(self.email), ("name", "versions"), self._table()
        )


class AllCodeHistories(CodeHistories):
    """``client.code_histories``: every function's versions you may see (data owners and admins:
    everyone's), by user's email (``["janet@example.org"].mean_age``) or by function name.
    """

    def __getitem__(self, key):
        if isinstance(key, str) and "@" in key:
            return UserCodeHistories(self._client, key)
        return super().__getitem__(key)

    def _table(self):
        counts = {}
        for code in self._client.code.get_all():
            key = (code.user_email or "", code.name)
            counts[key] = counts.get(key, 0) + 1
        return [(email, name, n) for (email, name), n in counts.items()]

    def __repr__(self):
        return _display.text_table(("user", "name", "versions"), self._table())

    def _repr_html_(self):
        return _display.html_table("Code histories", ("user", "name", "versions"), self._table())


class CodeCollection:
    """``client.code``: your code (data owners and admins: everyone's), oldest first, fetched
    anew on each use.

    List-like (``[0]``, ``["mean_age"]`` for the newest of that name, iteration); ``submit``,
    ``request_code_execution``, ``history``, ``get``; ``client.code.mean_age`` is the newest
    version of ``mean_age``, callable to run it on the server. A function whose name is also a
    method here (``submit``, ``history``, ...) is reached with ``client.code["submit"]``.
    """

    def __init__(self, client):
        self._client = client

    def _call(self, route, **kwargs):
        return self._client._transport.call(route, **kwargs)

    def get_all(self, name=None):
        """Code, oldest first; only versions of ``name`` when given."""
        items = fetch_all_pages(self._client._transport, "code_list", {"name": name})
        # A page carries a few MiB of sources; a row past them comes without, and is read whole.
        items = [
            self._call("code_get", path_params={"id": item["id"]})
            if item.get("source_omitted")
            else item
            for item in items
        ]
        return UserCodeList(UserCode(item, self._client) for item in items)

    def get(self, code_id):
        """One piece of code by id; NotFoundError when there is none you may see."""
        return UserCode(self._call("code_get", path_params={"id": code_id}), self._client)

    get_by_id = get
    get_by_uid = get

    def history(self, name):
        """Every version of the function ``name``, oldest first."""
        if not isinstance(name, str) or not name:
            raise TypeError("history takes a function name, e.g. history('mean_age')")
        return CodeHistory(name, self.get_all(name=name))

    def get_by_name(self, name):
        """The newest version of the function ``name``; NotFoundError when there is none."""
        items = self.get_all(name=name)
        if not items:
            raise errors.NotFoundError(
                None, "no code named {!r} that you may see".format(name), None
            )
        return items[name]

    def _submit(self, code):
        if not isinstance(code, SubmitUserCode):
            if inspect.isfunction(code):
                raise TypeError(
                    "{} is a plain function: decorate it with "
                    "@sy.syft_function_single_use(data=asset) or @sy.syft_function(...) "
                    "first".format(code.__name__)
                )
            raise TypeError(
                "expected a function decorated with @sy.syft_function, got {}".format(
                    type(code).__name__
                )
            )
        data = self._call("code_submit", body=code.to_wire())
        return UserCode(data, self._client)

    def _existing(self, code):
        """The code already on the server with exactly this source (same name), or None."""
        digest = code.code_hash
        for item in self.get_all(name=code.service_func_name):
            if item.code_hash == digest or item.source == code.code:
                return item
        return None

    def _already_exists(self, err, existing):
        where = ""
        if existing is not None:
            where = " ({} version {}, id {}".format(existing.name, existing.version, existing.id)
            if existing.request_info:
                where += ", request {} {}".format(
                    existing.request_info.get("id"), existing.request_info.get("status")
                )
            where += ")"
        return errors.AlreadyExistsError(
            err.code,
            "{}{}: {}. Change the code to submit a new version, or run this one with "
            "client.code.{}(...)".format(
                ALREADY_EXISTS_MESSAGE,
                where,
                err.message,
                existing.name if existing is not None else "<name>",
            ),
            err.status,
        )

    def submit(self, code):
        """Sends decorated code to the server without asking for approval; returns SyftSuccess
        whose ``value`` is the ``UserCode``. The same source again is refused
        (``AlreadyExistsError``).
        """
        try:
            user_code = self._submit(code)
        except errors.AlreadyExistsError as err:
            raise self._already_exists(err, self._existing(code)) from None
        return SyftSuccess(
            "User Code Submitted: {} version {}.".format(user_code.name, user_code.version),
            value=user_code,
        )

    def request_code_execution(self, code, reason=""):
        """Submits decorated code and asks the data owners to approve it; returns the
        ``Request``. Code submitted earlier with ``submit`` and not yet requested is requested;
        the same code requested before is refused (``AlreadyExistsError`` naming it).
        """
        if reason is not None and not isinstance(reason, str):
            raise TypeError("reason must be text, got {!r}".format(reason))
        from .requests import Request

        try:
            user_code = self._submit(code)
        except errors.AlreadyExistsError as err:
            existing = self._existing(code)
            if existing is None or existing.request_info:
                raise self._already_exists(err, existing) from None
            user_code = existing
        body = {"code_id": user_code.id}
        if reason:
            body["reason"] = reason
        return Request(self._call("requests_create", body=body), self._client)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        items = self.get_all(name=name)
        if not items:
            mine = self.get_all().names()
            raise AttributeError(
                "no code named {!r}; {}".format(
                    name,
                    "the code you may see: " + ", ".join(mine)
                    if mine
                    else "submit some with client.code.request_code_execution(f)",
                )
            )
        return items[name]

    def __dir__(self):
        names = set(object.__dir__(self))
        try:
            names |= set(self.get_all().names())
        except errors.DatasiteError:  # Tab completion must not fail.
            pass
        return sorted(names)

    def __len__(self):
        return len(self.get_all())

    def __iter__(self):
        return iter(self.get_all())

    def __getitem__(self, key):
        if isinstance(key, str):
            items = self.get_all()
            try:
                return items[key]
            except KeyError:
                raise KeyError(
                    "no code named or with id {!r}; names: {}".format(
                        key, ", ".join(items.names()) or "none"
                    )
                ) from None
        return self.get_all()[key]

    def __repr__(self):
        return repr(self.get_all())

    def _repr_html_(self):
        return self.get_all()._repr_html_()


__all__ = [
    "BoundAssets",
    "CodeCollection",
    "CodeHistories",
    "CodeHistory",
    "CodeText",
    "InputPolicy",
    "JobList",
    "SubmitUserCode",
    "UserCode",
    "UserCodeList",
    "source_hash",
    "syft_function",
    "syft_function_single_use",
]
