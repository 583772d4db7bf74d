"""``sy.orchestra.launch``: start a local server with the ``datasite`` binary; get a handle."""

import os
import re
import subprocess
import sys
import tempfile

from . import _warn, client as _client
from ._binary import find_binary
from .enums import DeploymentType, ServerSideType, ServerType

LAUNCH_TIMEOUT_SECONDS = 120
LAND_TIMEOUT_SECONDS = 60

_SERVER_TYPES = {
    "datasite": "datasite",
    "domain": "datasite",
    "gateway": "gateway",
    "network": "gateway",
    "enclave": "enclave",
}
_SIDES = {"high": "high", "low": "low"}
_STARTING = re.compile(
    r"^Starting (?P<name>.+) server on (?P<host>.+):(?P<port>\d+)\s*$", re.MULTILINE
)
_LAUNCHED = re.compile(r"server at https?://(?P<host>[^\s/]+?):(?P<port>\d+)")


def _enum_value(value):
    return getattr(value, "value", value)


def default_data_dir(name, environ=None):
    """Where the server keeps ``name``'s storage when no data_dir is given (docs/API.md)."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_DATA_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "datasite", name)


def launch_args(
    name,
    port=None,
    host=None,
    reset=False,
    dev_mode=False,
    server_type="datasite",
    server_side_type="high",
    n_consumers=None,
    create_producer=None,
    thread_workers=False,
    association_request_auto_approval=False,
    data_dir=None,
    allowed_hosts=None,
):
    """The ``datasite launch`` arguments (after the binary) for the given launch() parameters.

    ``host`` None binds the server's default, loopback (127.0.0.1); any other address is refused
    by the server while the root password is the default. ``allowed_hosts``: host names clients
    use to reach the server besides localhost and IP addresses (``--allowed-host``).
    """
    if not name or not isinstance(name, str):
        raise ValueError("launch needs a server name, e.g. name='my_special_server'")
    if port is None or port == "auto":
        port_arg = "auto"
    elif isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
        port_arg = str(port)
    else:
        raise ValueError("port must be an int in 1..65535, 'auto' or None, got {!r}".format(port))
    kind = _SERVER_TYPES.get(str(_enum_value(server_type)).lower())
    if kind is None:
        raise ValueError(
            "server_type must be one of datasite, gateway, enclave; got {!r}".format(server_type)
        )
    side = _SIDES.get(str(_enum_value(server_side_type or "high")).lower())
    if side is None:
        raise ValueError(
            "server_side_type must be 'high' or 'low', got {!r}".format(server_side_type)
        )
    args = [
        "launch",
        "--name",
        name,
        "--port",
        port_arg,
        "--server-type",
        kind,
        "--side",
        side,
    ]
    if host is not None:
        args += ["--host", host]
    if isinstance(allowed_hosts, str):
        allowed_hosts = [allowed_hosts]
    for allowed in allowed_hosts or ():
        args += ["--allowed-host", allowed]
    if reset:
        args.append("--reset")
    if dev_mode:
        args.append("--dev-mode")
    if create_producer is False:
        if n_consumers:
            raise ValueError(
                "n_consumers={} needs create_producer=True (or left unset)".format(n_consumers)
            )
        args += ["--workers", "0"]
    elif n_consumers is not None:
        if not isinstance(n_consumers, int) or isinstance(n_consumers, bool) or n_consumers < 0:
            raise ValueError(
                "n_consumers must be a non-negative int, got {!r}".format(n_consumers)
            )
        args += ["--workers", str(n_consumers)]
    if association_request_auto_approval:
        args.append("--association-request-auto-approval")
    if data_dir is not None:
        args += ["--data-dir", os.fspath(data_dir)]
    args.append("--detach")
    return args


# Hosts that bind loopback only: launch() makes a development server of them unless told not to.
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


# PySyft's launch() arguments that change nothing here, and why; given a value other than their
# default they cause one warning naming the reason.
_NO_EFFECT = {
    "thread_workers": "datasite runs every job in a sandboxed worker process, never in a thread "
    "of the server (n_consumers=N sets the number of workers)",
    "log_level": "the server writes its log to its data directory; dev_mode=True makes it verbose",
    "tail": "the server runs in the background and logs to its data directory",
    "migrate": "the server migrates its store itself when it starts",
    "local_db": "the server always keeps its store (SQLite) in its data directory",
    "processes": "jobs run in sandboxed worker processes; n_consumers=N sets their number",
    "enable_warnings": "the client always shows its warnings",
    "queue_port": "jobs are queued inside the server, with no queue port",
    "background_tasks": "the server runs its background work itself",
    "debug": "dev_mode=True makes the server log verbosely",
    "consumer_type": "jobs run in sandboxed worker processes",
}


_NO_EFFECT_DEFAULTS = {"processes": 1}


def _note_no_effect(given):
    for name, value in given.items():
        default = _NO_EFFECT_DEFAULTS.get(name)
        if value is None or value is False or value == default:
            continue
        _warn.warn("launch({}={!r}) has no effect here: {}".format(name, value, _NO_EFFECT[name]))


def _local_url(host):
    if host in ("0.0.0.0", "::", "", None, "localhost", "127.0.0.1"):
        return "http://localhost"
    if ":" in host and not host.startswith("["):
        return "http://[" + host + "]"
    return "http://" + host


class ServerHandle:
    """A launched (or remote) server: where it is, and login/register/land."""

    def __init__(
        self,
        name,
        port,
        url="http://localhost",
        server_type=ServerType.DATASITE,
        server_side_type=ServerSideType.HIGH_SIDE,
        deployment_type=DeploymentType.PYTHON,
        data_dir=None,
        binary=None,
        explicit_data_dir=None,
        environ=None,
    ):
        self.name = name
        self.port = port
        self.url = url
        self.server_type = server_type
        self.server_side_type = server_side_type
        self.deployment_type = deployment_type
        self.data_dir = data_dir
        self._binary = binary
        self._explicit_data_dir = explicit_data_dir
        # The launch-time environment: land() must look for the server where launch() put it.
        self._environ = dict(environ) if environ is not None else None
        self._guest = None

    def __repr__(self):
        return "<ServerHandle {} {}:{} ({}, {} side, {})>".format(
            self.name,
            self.url,
            self.port,
            _enum_value(self.server_type),
            _enum_value(self.server_side_type),
            self.deployment_type.value,
        )

    @property
    def client(self):
        """A guest client of this server."""
        if self._guest is None:
            self._guest = self.login_as_guest()
        return self._guest

    def login(self, email, password=None):
        return _client.login(url=self.url, port=self.port, email=email, password=password)

    def login_as_guest(self):
        return _client.login_as_guest(url=self.url, port=self.port)

    def register(
        self, name, email, password, password_verify=None, institution=None, website=None
    ):
        return _client.register(
            url=self.url,
            port=self.port,
            name=name,
            email=email,
            password=password,
            password_verify=password_verify,
            institution=institution,
            website=website,
        )

    def land(self):
        """Stops the server (``datasite land NAME``) and prints what the command printed."""
        if self.deployment_type is not DeploymentType.PYTHON:
            print("Shutdown is not implemented for a remote server: stop it where it runs")
            return
        args = [self._binary, "land", self.name]
        if self._explicit_data_dir is not None:
            args += ["--data-dir", os.fspath(self._explicit_data_dir)]
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            env=self._environ,
            timeout=LAND_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
        if proc.stdout:
            print(proc.stdout, end="" if proc.stdout.endswith("\n") else "\n")
        if proc.returncode != 0:
            raise RuntimeError(
                "datasite land {} failed (exit {}): {}".format(
                    self.name, proc.returncode, proc.stderr.strip()
                )
            )


def _run_launch(binary, args, environ, name):
    """Runs ``datasite launch ...``; returns (exit code, stdout, stderr)."""
    # Files, not pipes: the detached server may keep inherited descriptors open, and a pipe
    # would then never reach end-of-file.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [binary] + args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=environ
        )
        try:
            code = proc.wait(timeout=LAUNCH_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(
                "datasite launch {} did not finish within {} s".format(
                    name, LAUNCH_TIMEOUT_SECONDS
                )
            ) from None
        out.seek(0)
        err.seek(0)
        return (
            code,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def _land_by_name(binary, name, data_dir, environ):
    """Stops the local server ``name`` (``datasite land``); RuntimeError when that fails."""
    args = [binary, "land", name]
    if data_dir is not None:
        args += ["--data-dir", os.fspath(data_dir)]
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=environ,
        timeout=LAND_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            "the running {} server could not be stopped (exit {}): {}".format(
                name, proc.returncode, proc.stderr.strip()
            )
        )


def launch(
    name=None,
    port=None,
    host=None,
    reset=False,
    dev_mode=None,
    server_type="datasite",
    server_side_type="high",
    n_consumers=None,
    create_producer=None,
    thread_workers=False,
    association_request_auto_approval=False,
    data_dir=None,
    deploy_to="python",
    allowed_hosts=None,
    log_level=None,
    tail=False,
    migrate=False,
    local_db=None,
    processes=1,
    enable_warnings=False,
    queue_port=None,
    background_tasks=False,
    debug=False,
    consumer_type=None,
    db_url=None,
    from_state_folder=None,
):
    """Starts a local server (``datasite launch ... --detach``) and returns its ``ServerHandle``.

    ``reset=True`` wipes the server's storage first, and replaces a server of that name that
    still runs (e.g. launched before a kernel restart). PySyft's ``log_level``, ``tail``,
    ``migrate``, ``local_db``, ``processes``, ``thread_workers``, ``enable_warnings``,
    ``queue_port``, ``background_tasks``, ``debug`` and ``consumer_type`` are accepted and change
    nothing (a warning says why when one is set); ``db_url`` and ``from_state_folder`` are
    refused.

    ``dev_mode`` None (the default) makes a server that listens on loopback only a development
    server, as PySyft's tutorials expect of ``launch``: it logs verbosely and accepts short and
    common passwords (``abc123``) with a warning, and accounts given one keep it on loopback.
    ``dev_mode=False`` holds every password to the standard rules; a server beyond loopback always
    does.

    ``port`` None or "auto" picks a free port. ``deploy_to="remote"`` starts nothing and returns a
    handle to a server already running at ``host``:``port`` (default localhost:8080). ``host``
    None binds loopback (127.0.0.1); see ``launch_args`` for ``host`` and ``allowed_hosts``. Raises
    RuntimeError carrying the binary's stderr when it fails.
    """
    if db_url is not None:
        raise ValueError(
            "db_url is not supported: the server keeps its store (SQLite) in its data directory "
            "(data_dir=...)"
        )
    if from_state_folder is not None:
        raise ValueError(
            "from_state_folder is not supported: datasite has no migration blobs; a server keeps "
            "its state in its data directory across launches (reset=False)"
        )
    _note_no_effect(
        {
            "thread_workers": thread_workers,
            "log_level": log_level,
            "tail": tail,
            "migrate": migrate,
            "local_db": local_db,
            "processes": processes,
            "enable_warnings": enable_warnings,
            "queue_port": queue_port,
            "background_tasks": background_tasks,
            "debug": debug,
            "consumer_type": consumer_type,
        }
    )
    kind = _SERVER_TYPES.get(str(_enum_value(server_type)).lower(), _enum_value(server_type))
    side = _SIDES.get(str(_enum_value(server_side_type or "high")).lower(), server_side_type)
    deploy = str(_enum_value(deploy_to)).lower()
    if deploy == "remote":
        remote_port = port if isinstance(port, int) and not isinstance(port, bool) else 8080
        return ServerHandle(
            name,
            remote_port,
            url=_local_url(host),
            server_type=ServerType(kind),
            server_side_type=ServerSideType(side),
            deployment_type=DeploymentType.REMOTE,
        )
    if deploy != "python":
        raise ValueError("deploy_to must be 'python' or 'remote', got {!r}".format(deploy_to))
    if dev_mode is None:
        dev_mode = host is None or str(host) in _LOOPBACK_HOSTS
    args = launch_args(
        name,
        port=port,
        host=host,
        reset=reset,
        dev_mode=dev_mode,
        server_type=server_type,
        server_side_type=server_side_type,
        n_consumers=n_consumers,
        create_producer=create_producer,
        thread_workers=thread_workers,
        association_request_auto_approval=association_request_auto_approval,
        data_dir=data_dir,
        allowed_hosts=allowed_hosts,
    )
    binary = find_binary()
    environ = dict(os.environ)
    code, stdout, stderr = _run_launch(binary, args, environ, name)
    if code != 0 and reset and "is already running" in stderr:
        # After a kernel restart the old server still runs; reset=True asks for a fresh one.
        print("Stopping the running {} server: reset=True replaces it".format(name))
        _land_by_name(binary, name, data_dir, environ)
        code, stdout, stderr = _run_launch(binary, args, environ, name)
    if code != 0:
        raise RuntimeError(
            "datasite launch {} failed (exit {}): {}".format(name, code, stderr.strip())
        )
    if stdout:
        print(stdout, end="" if stdout.endswith("\n") else "\n")
        sys.stdout.flush()
    match = _STARTING.search(stdout) or _LAUNCHED.search(stdout)
    if not match:
        raise RuntimeError("datasite launch {} printed no port: {!r}".format(name, stdout.strip()))
    return ServerHandle(
        name,
        int(match.group("port")),
        url=_local_url(host),
        server_type=ServerType(kind),
        server_side_type=ServerSideType(side),
        deployment_type=DeploymentType.PYTHON,
        data_dir=os.fspath(data_dir) if data_dir is not None else default_data_dir(name, environ),
        binary=binary,
        explicit_data_dir=data_dir,
        environ=environ,
    )
