# The Python side of the datasite sandbox, run inside bubblewrap: the template of one slot, and the
# job children it forks.
#
# The template imports pandas and numpy once and then only forks. It never receives, parses or
# allocates anything of a job: the host sends it `spawn` (a job number and one socket, passed by
# SCM_RIGHTS and closed by the template right after the fork) and `kill` (a job number), and it
# answers `exited` (the number, the wait status, the CPU time) when it has reaped a child. It forks
# on `spawn` at once: the host asks for the next job's child as soon as it has handed a job to the
# last one, so the fork runs beside that job, and kills a job's child once it has its report. A
# child may so overlap the one before (still ending) and the one after (waiting for its job): each
# takes mount, network and IPC namespaces of its own while it still has the template's
# capabilities, with a fresh tmpfs on /tmp capped in bytes and inodes, so no child reaches
# another's files or meets it on a socket, and the last job's files go with its child, read by
# nobody.
#
# The child ("spare" until its job arrives) drops every capability, and then reads its job from
# the host straight from its own socket: source, inputs and limits, with the stdout, stderr and result pipes and the input files as
# descriptors. It answers `started`, runs the function under its limits and the job's seccomp
# filter, and answers one `done`. Whatever the job writes to that socket the host validates (see
# sandbox.cc); nothing of it ever reaches the template.
#
# Messages, both ways: 4-byte little-endian length + UTF-8 JSON.
#
# A job may carry custom policies (the code's sy.CustomInputPolicy / sy.CustomOutputPolicy
# subclasses, user code the data owner approved with the function): `policy` names their source,
# classes, init kwargs and the state they kept after the last private run. The child loads them
# beside the function, asks the input policy (is_valid, filter_kwargs) before the call and the
# output policy (is_valid before, apply_to_output after), and reports their new state as JSON.
# A policy that refuses, raises, or keeps a state that is not small JSON ends the job with status
# `policy`: no result leaves.
#
# The build puts python/datasite/_sidecar.py in front of this file (embed_runner.cmake): CSV inputs
# with a sidecar are read with sidecar_read_csv, DataFrame and Series results written with
# sidecar_write_csv, so a job sees exactly what the owner uploaded and its user gets back exactly
# what it returned.
import array
import ast
import builtins
import collections
import ctypes
import errno
import gc
import importlib
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import pkgutil
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback
import types

import numpy
import pandas

CTRL_FD = 3
SCRATCH = "/tmp/job"
MAX_HOST_MESSAGE = 256 << 20
MAX_CTRL_MESSAGE = 64 << 10
MAX_FDS = 256
KILL_AFTER_NEXT_SPAWN_SECONDS = 0.2
MAX_CHILDREN = 3  # ending ones, the job's, and the next job's spare
MAX_WAITING = 4  # spawns waiting for children to end (the host sends one per job it starts)
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
MS_RDONLY = 0x1
MAX_POLICY_STATE = 16 << 10  # bytes of the JSON state custom policies keep between runs
MAX_THREADS = 256  # threads of one job (RLIMIT_NPROC, counted in the job's own user namespace)
MAX_PENDING_SIGNALS = 256  # queued signals of one job (RLIMIT_SIGPENDING)
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
MNT_DETACH = 2
MS_REC, MS_PRIVATE = 0x4000, 0x40000
MADV_COLLAPSE = 25
HUGE_PAGE = 1 << 21
MAX_MODULES_JSON = 32 << 10  # bytes of the module names hello lists (the message's cap is 64 KiB)
LINUX_CAPABILITY_VERSION_3 = 0x20080522


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


LIBC = ctypes.CDLL(None, use_errno=True)
PYLIB = ctypes.PyDLL(None, use_errno=True)  # calls that keep the interpreter lock (clone)
PYLIB.syscall.restype = ctypes.c_long
SYS_CLONE = {"x86_64": 56, "aarch64": 220}[os.uname().machine]


def frame(obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    return struct.pack("<I", len(body)) + body


def send_message(sock, obj):
    sock.sendall(frame(obj))


STARTED = frame({"type": "started"})


def recv_exact(sock, n):
    parts = []
    while n > 0:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError("peer closed mid-message")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def recv_message(sock, max_len):
    """Returns (message, fds), or (None, []) at end of stream."""
    fds = array.array("i")
    head, ancillary, flags, _ = sock.recvmsg(4, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    fds = list(fds)
    if not head:
        close_all(fds)
        return None, []
    if flags & socket.MSG_CTRUNC:
        close_all(fds)
        raise ValueError("too many file descriptors in one message")
    if len(head) < 4:
        head += recv_exact(sock, 4 - len(head))
    (length,) = struct.unpack("<I", head)
    if length > max_len:
        close_all(fds)
        raise ValueError("message too long")
    return json.loads(recv_exact(sock, length)), fds


def close_all(fds):
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# The job child.


class Unencodable(Exception):
    pass


def unencodable(value):
    return Unencodable(
        f"can't return a {type(value).__name__}: "
        "return a DataFrame, Series, ndarray, bytes or a JSON value"
    )


def to_json_value(value):
    """Plain JSON types from `value`: numpy scalars become Python numbers, NaN and infinities null."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, numpy.generic) and not isinstance(value, (numpy.object_, numpy.void)):
        return to_json_value(value.item())
    if isinstance(value, numpy.ndarray) and not value.dtype.hasobject:
        return to_json_value(value.tolist())
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(k, numpy.generic):
                k = k.item()
            if isinstance(k, bool) or k is None or isinstance(k, (int, float)):
                k = json.dumps(k)
            if not isinstance(k, str):
                raise unencodable(k)
            out[k] = to_json_value(v)
        return out
    raise unencodable(value)


def encode_result(value):
    """Returns (format, bytes, sidecar bytes or b""). Never pickles."""
    if isinstance(value, (pandas.DataFrame, pandas.Series)):
        buffer = io.BytesIO()
        try:
            meta = sidecar_write_csv(value, buffer)
        except SidecarError as error:
            raise Unencodable(f"can't return this {type(value).__name__} exactly: {error}")
        return "csv", buffer.getvalue(), sidecar_dumps(meta).encode()
    if isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:
            raise Unencodable(
                "can't return an ndarray of dtype object: its Python objects would need a pickle, "
                "and results never travel as pickles; return an array of numbers, booleans, "
                "strings (dtype 'U' or 'S'), datetimes, or a structured array of these, a "
                "DataFrame, Series, bytes or a JSON value"
            )
        buffer = io.BytesIO()
        numpy.save(buffer, value, allow_pickle=False)
        return "npy", buffer.getvalue(), b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes", bytes(value), b""
    data = json.dumps(to_json_value(value), allow_nan=False, ensure_ascii=False).encode()
    return "json", data, b""


def load_input(fmt, fd, meta=None):
    with os.fdopen(fd, "rb") as f:
        if fmt == "csv":
            if meta is not None:
                return sidecar_read_csv(f, meta)
            return sidecar_read_plain_csv(f)
        if fmt == "json":
            return json.load(f)
        if fmt == "npy":
            return numpy.load(f, allow_pickle=False)
        if fmt == "raw":
            return f.read()
    raise ValueError(f"unknown input format {fmt!r}")


def one_line(text, limit=2000):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def print_user_traceback(error):
    """The traceback from the first frame of the user's code on (the runner's frames are noise)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename not in ("<job>", "<policy>"):
        tb = tb.tb_next
    if tb is None and not isinstance(error, SyntaxError):
        tb = error.__traceback__
    sys.stderr.write("".join(traceback.format_exception(type(error), error, tb)))


# ---------------------------------------------------------------------------------------------
# Custom API endpoints.


class EndpointError(Exception):
    """An endpoint call the server refused or whose function failed, raised in the calling job."""


class Endpoint:
    """An API endpoint bound as an argument of the job's function: calling it asks the host, which
    runs the endpoint's function in another sandbox child (its settings never enter this process)
    and hands its result back as a file descriptor."""

    _lock = None  # one call at a time on the job's one channel, whichever thread makes it

    def __init__(self, sock, path, params):
        import threading
        if Endpoint._lock is None:
            Endpoint._lock = threading.Lock()
        self._sock = sock
        self._path = path
        self._params = list(params)

    def __call__(self, *args, **kwargs):
        return self._call("auto", args, kwargs)

    def mock(self, *args, **kwargs):
        return self._call("mock", args, kwargs)

    def private(self, *args, **kwargs):
        return self._call("private", args, kwargs)

    def __repr__(self):
        return f"<API endpoint {self._path}>"

    def _call(self, side, args, kwargs):
        if len(args) > len(self._params):
            raise TypeError(f"{self._path}() takes {len(self._params)} arguments")
        for name, value in zip(self._params, args):
            if name in kwargs:
                raise TypeError(f"{self._path}() got multiple values for argument '{name}'")
            kwargs[name] = value
        try:
            kwargs = to_json_value(kwargs)
        except Unencodable as error:
            raise TypeError(f"{self._path}(): arguments must be JSON values ({error})") from None
        body = frame({"type": "call", "endpoint": self._path, "side": side, "kwargs": kwargs})
        if len(body) - 4 > MAX_CTRL_MESSAGE:
            raise ValueError(f"{self._path}(): arguments over 64 KiB as JSON")
        with Endpoint._lock:
            for stream in (sys.stdout, sys.stderr):  # what was printed before shows first
                stream.flush()
            self._sock.sendall(body)
            answer, fds = recv_message(self._sock, MAX_CTRL_MESSAGE)
        if not isinstance(answer, dict) or answer.get("type") != "answer":
            close_all(fds)
            raise EndpointError(f"{self._path}: the server did not answer the call")
        if "error" in answer:
            close_all(fds)
            raise EndpointError(f"{self._path}: {answer['error']}")
        if len(fds) != 1:
            close_all(fds)
            raise EndpointError(f"{self._path}: the server sent no result")
        fmt = {"bytes": "raw"}.get(answer.get("format"), answer.get("format"))
        return load_input(fmt, fds[0], answer.get("meta"))


class RelayedSocket(socket.socket):
    """The function's end of a connection the host relays (a Unix socket the function made and
    sent with its request): TCP options, which clients set on what they take for a TCP socket,
    are the host's to set."""

    def setsockopt(self, level, option, *value):
        if level == socket.IPPROTO_TCP:
            return None
        return super().setsockopt(level, option, *value)


class Egress:
    """socket.create_connection in an API endpoint's private function under --endpoint-egress. The
    sandbox has no network: the function makes a Unix socket pair and sends one end with its
    request; the host connects to the HOST:PORT named, when the data owner listed it, and relays
    the connection's bytes to and from that end. urllib3 (requests) is patched alike when
    imported."""

    def __init__(self, sock):
        self._sock = sock

    def create_connection(self, address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT,
                          source_address=None, *args, **kwargs):
        host, port = address[0], address[1]
        if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
            raise TypeError("create_connection((host, port)): a host name and a port number")
        body = frame({"type": "connect", "host": host, "port": port})
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if Endpoint._lock is None:
            import threading
            Endpoint._lock = threading.Lock()
        try:
            with Endpoint._lock:  # one request at a time on the job's one channel
                sent = self._sock.sendmsg(
                    [body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                              array.array("i", [theirs.fileno()]))])
                if sent < len(body):
                    self._sock.sendall(body[sent:])
                theirs.close()
                answer, fds = recv_message(self._sock, MAX_CTRL_MESSAGE)
            close_all(fds)
        except BaseException:
            ours.close()
            theirs.close()
            raise
        if not isinstance(answer, dict) or answer.get("type") != "answer" or "error" in answer:
            ours.close()
            why = answer.get("error") if isinstance(answer, dict) else None
            raise ConnectionRefusedError(errno.ECONNREFUSED,
                                         f"{host}:{port}: {why or 'the server did not connect'}")
        connection = RelayedSocket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=ours.detach())
        if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
            connection.settimeout(timeout)
        for option in kwargs.get("socket_options") or ():  # urllib3's (TCP_NODELAY)
            connection.setsockopt(*option)
        return connection

    def install(self):
        socket.create_connection = self.create_connection
        egress = self

        class PatchUrllib3:  # urllib3 resolves and makes its sockets itself: give it ours
            def find_spec(self, name, path=None, target=None):
                if name != "urllib3.util.connection":
                    return None
                for finder in sys.meta_path:
                    if finder is self:
                        continue
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        run = spec.loader.exec_module

                        def exec_module(module):
                            run(module)
                            module.create_connection = egress.create_connection

                        spec.loader.exec_module = exec_module
                        return spec
                return None

        sys.meta_path.insert(0, PatchUrllib3())
        loaded = sys.modules.get("urllib3.util.connection")
        if loaded is not None:
            loaded.create_connection = self.create_connection


class EndpointUser:
    """context.user: who calls the endpoint."""

    def __init__(self, user):
        self.id = user.get("id")
        self.email = user.get("email")
        self.name = user.get("name")
        self.role = user.get("role")

    def __repr__(self):
        return f"<User {self.email} ({self.role})>"


class EndpointContext:
    """What an endpoint function gets as `context` (PySyft's TwinAPIContextView): its settings,
    the calling user, the state it keeps between calls, its helper functions as `code`, and the
    assets its side binds (`assets`: the private data on the private side, the mocks on the mock
    side)."""

    def __init__(self, spec, helpers, assets):
        self.assets = assets
        self.settings = spec.get("settings") or {}
        self.user = EndpointUser(spec.get("user") or {})
        self.state = spec.get("state") or {}
        self.code = types.SimpleNamespace(**helpers)


def endpoint_state(context):
    """context.state as the JSON object kept for the next call; PolicyFailure("error") when it is no
    small JSON object (the call then keeps nothing)."""
    state = context.state
    if not isinstance(state, dict):
        raise PolicyFailure("error", "context.state must stay a dict")
    try:
        state = to_json_value(state)
        text = json.dumps(state, allow_nan=False)
    except (Unencodable, ValueError) as error:
        raise PolicyFailure("error", f"context.state is not JSON: {error}") from None
    if len(text) > MAX_POLICY_STATE:
        raise PolicyFailure("error", f"context.state is over {MAX_POLICY_STATE} bytes as JSON")
    return state


# ---------------------------------------------------------------------------------------------
# Custom policies.


class PolicyFailure(Exception):
    """Ends a job with status `policy`: `refused` is "input", "output" or "error"."""

    def __init__(self, refused, text):
        super().__init__(text)
        self.refused = refused


class _PolicyMeta(type):
    """Records the keyword arguments a policy is made with as its init_kwargs."""

    def __call__(cls, *args, **kwargs):
        policy = super().__call__(*args, **kwargs)
        policy.init_kwargs = dict(kwargs)
        return policy


class CustomInputPolicy(metaclass=_PolicyMeta):
    """The base class a policy's source names as sy.CustomInputPolicy, inside the sandbox."""

    def __init__(self, *args, **kwargs):
        pass

    @property
    def inputs(self):
        return dict(getattr(self, "init_kwargs", {}))

    def is_valid(self, context, usr_input_kwargs):
        return True

    def filter_kwargs(self, kwargs, context):
        return kwargs


class CustomOutputPolicy(metaclass=_PolicyMeta):
    """The base class a policy's source names as sy.CustomOutputPolicy, inside the sandbox."""

    def __init__(self, *args, **kwargs):
        pass

    def is_valid(self, context):
        return True

    def apply_to_output(self, context, outputs, update_policy=True):
        return outputs

    def public_state(self):
        return None


POLICY_MODULE = types.ModuleType("datasite")
POLICY_MODULE.CustomInputPolicy = CustomInputPolicy
POLICY_MODULE.CustomOutputPolicy = CustomOutputPolicy


class PolicyContext:
    """What a policy's methods get as `context`: the kind of run, and whether it counts."""

    def __init__(self, kind, update):
        self.kind = kind
        self.update_policy = update


def policy_namespace():
    import typing
    namespace = {name: getattr(typing, name) for name in typing.__all__ if hasattr(typing, name)}
    namespace.update({"__name__": "__datasite_policy__", "__builtins__": builtins,
                      "sy": POLICY_MODULE, "syft": POLICY_MODULE, "datasite": POLICY_MODULE,
                      "np": numpy, "numpy": numpy, "pd": pandas, "pandas": pandas})
    return namespace


def load_policies(spec):
    """The input and output policy objects of `spec` (either may be None), made with their init
    kwargs and given the state they kept."""
    namespace = policy_namespace()
    try:
        exec(compile(spec["source"], "<policy>", "exec"), namespace)
    except BaseException as error:
        print_user_traceback(error)
        raise PolicyFailure("error", f"loading the policies failed: {type(error).__name__}: {error}")
    state = spec.get("state") or {}
    made = []
    for which, base in (("input", CustomInputPolicy), ("output", CustomOutputPolicy)):
        entry = spec.get(which)
        if entry is None:
            made.append(None)
            continue
        cls = namespace.get(entry["class"])
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PolicyFailure("error", f"the {which} policy's source defines no subclass "
                                         f"'{entry['class']}' of sy.{base.__name__}")
        try:
            policy = cls(**entry["init_kwargs"])
            kept = state.get(which)
            if kept is not None:
                policy.__dict__.update(kept)
        except BaseException as error:
            print_user_traceback(error)
            raise PolicyFailure("error", f"making the {which} policy {cls.__name__} failed: "
                                         f"{type(error).__name__}: {error}")
        made.append(policy)
    return made


def call_policy(policy, method, *args, **kwargs):
    """policy.method(...), any exception it raises a PolicyFailure (the run fails closed)."""
    try:
        return getattr(policy, method)(*args, **kwargs)
    except BaseException as error:
        print_user_traceback(error)
        raise PolicyFailure("error", f"{type(policy).__name__}.{method} raised "
                                     f"{type(error).__name__}: {error}")


def policy_state(policies):
    """The policies' attributes as JSON, at most MAX_POLICY_STATE bytes."""
    state = {}
    for which, policy in zip(("input", "output"), policies):
        if policy is None:
            state[which] = None
            continue
        attributes = {k: v for k, v in vars(policy).items() if k != "init_kwargs"}
        try:
            state[which] = to_json_value(attributes)
            size = len(json.dumps(state, allow_nan=False).encode())
        except (Unencodable, ValueError, TypeError, RecursionError) as error:
            raise PolicyFailure("error", f"the {which} policy {type(policy).__name__} keeps "
                                         f"a state that is not JSON: {error}")
        if size > MAX_POLICY_STATE:
            raise PolicyFailure("error", f"the policies' state is {size} bytes of JSON, more "
                                         f"than the {MAX_POLICY_STATE} they may keep")
    return state


def apply_input_policy(policy, context, kwargs, check):
    if check:
        valid = call_policy(policy, "is_valid", context, dict(kwargs))
        if valid is not True:
            raise PolicyFailure("input", f"the input policy {type(policy).__name__} refused the "
                                         f"run (is_valid returned {type(valid).__name__})")
    filtered = call_policy(policy, "filter_kwargs", dict(kwargs), context)
    if not (isinstance(filtered, dict) and all(k in kwargs for k in filtered)):
        raise PolicyFailure("error", f"{type(policy).__name__}.filter_kwargs must return a dict "
                                     "of some of the function's arguments")
    return filtered


def check_output_policy(policy, context):
    valid = call_policy(policy, "is_valid", context)
    if valid is not True:
        raise PolicyFailure("output", f"the output policy {type(policy).__name__} refused the "
                                      f"run (is_valid returned {type(valid).__name__})")


def apply_output_policy(policy, context, value, update):
    released = call_policy(policy, "apply_to_output", context, value, update_policy=update)
    if released is None and value is not None:
        raise PolicyFailure("output", f"the output policy {type(policy).__name__} refused the "
                                      "result (apply_to_output returned None)")
    return released


def set_limits(limits):
    memory = int(limits["memory_bytes"])
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["file_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["open_files"]),) * 2)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Counted per uid in the template's user namespace: the template, this process, its threads.
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_THREADS + 2,) * 2)
    # Queued signals are counted per user up to the host's: a job that queued the host's limit
    # made every other job's sigqueue fail.
    resource.setrlimit(resource.RLIMIT_SIGPENDING, (MAX_PENDING_SIGNALS,) * 2)


class JobFilter:
    """The job's seccomp program, made ready in the template (it is the same for every job), so
    that a child only makes the two prctl calls."""

    def __init__(self, program):
        self.buffer = ctypes.create_string_buffer(program, len(program))
        self.fprog = SockFprog(len(program) // 8, ctypes.cast(self.buffer, ctypes.c_void_p))
        self.pointer = ctypes.byref(self.fprog)

    def install(self):
        """Adds the filter (no exec, no new processes, no signals to the template) to this process."""
        if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self.pointer, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[: 1 << 20]) :]


def check(result, what):
    if result != 0:
        raise OSError(ctypes.get_errno(), what)


def own_namespace(more=0):
    """Puts the template in a user and mount namespace of its own (and those of `more`), so that
    each child can have namespaces of its own with a fresh /tmp (own_namespaces) and a pid namespace; then
    hides /proc, which would show children the template's pid numbering and the totals of the
    children it reaped.
    Before that it keeps a handle on the real /proc (PROC), for a clone's own maps (clone_main)."""
    global PROC
    uid, gid = os.getuid(), os.getgid()
    check(LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNS | more), "unshare")
    if PROC is None:
        PROC = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        fd = os.open(f"self/{name}", os.O_WRONLY | os.O_CLOEXEC, dir_fd=PROC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    check(LIBC.mount(b"none", b"/proc", b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                     b"size=4096,nr_inodes=16,mode=0555"), "mount over /proc")
    # bubblewrap's /dev/pts is a writable devpts every template forked from this one would share:
    # two slots' jobs, running at once, met on each other's terminals. Jobs need none.
    if os.path.isdir("/dev/pts"):
        check(LIBC.mount(b"none", b"/dev/pts", b"tmpfs",
                         MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                         b"size=4096,nr_inodes=16,mode=0555"), "mount over /dev/pts")


PROC = None  # the real /proc, opened before own_namespace covers it


def own_namespaces(options):
    """Gives this child mount, network and IPC namespaces of its own, with an empty tmpfs on /tmp
    capped in bytes and inodes (the first thing a child does, while it has the template's
    capabilities). Children of one template overlap: the next job's is forked while a job runs,
    and a job's child may still be ending when the next job starts. No child can reach another's
    /tmp or meet it on an abstract Unix socket; each one's /tmp goes with it, all at once and
    outside any job's time."""
    check(LIBC.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC), "unshare")
    check(LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    check(LIBC.mount(b"scratch", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options),
          "mount /tmp")
    os.mkdir(SCRATCH, 0o700)


def drop_capabilities():
    """Drops every capability the template's user namespace gave (the child's first act)."""
    header = CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (CapData * 2)()
    check(LIBC.capset(ctypes.byref(header), data), "capset")


def run_with_policies(spec, function, kwargs):
    """Calls the function between its policies' checks; returns (the value the output policy
    releases, the policies' new state). A refusal carries the state as it then was."""
    policies = load_policies(spec)
    context = PolicyContext(spec.get("kind", "private"), bool(spec.get("update")))
    check = bool(spec.get("check"))
    input_policy, output_policy = policies
    try:
        if input_policy is not None:
            kwargs = apply_input_policy(input_policy, context, kwargs, check)
        if output_policy is not None and check:
            check_output_policy(output_policy, context)
    except PolicyFailure as failure:
        if failure.refused != "error":
            failure.state = policy_state(policies)
        raise
    value = function(**kwargs)
    if output_policy is not None:
        try:
            value = apply_output_policy(output_policy, context, value, context.update_policy)
        except PolicyFailure as failure:
            if failure.refused != "error":
                failure.state = policy_state(policies)
            raise
    return value, policy_state(policies)


def run_job(sock, job, fds, job_filter):
    """Runs one job in this (child) process; returns the status to send to the host. The template
    set up what is the same for every job (see prepare_children)."""
    stdout_fd, stderr_fd, result_fd = fds[:3]
    input_fds = fds[3:]
    os.dup2(stdout_fd, 1)  # sys.stdout and sys.stderr write to fds 1 and 2
    os.dup2(stderr_fd, 2)
    os.close(stdout_fd)
    os.close(stderr_fd)
    limits = job["limits"]
    try:
        set_limits(limits)
        job_filter.install()
    except BaseException as error:
        return {"status": "sandbox", "error": one_line(f"setting up the job failed: {error!r}")}
    # A module the code imports that this environment lacks ends the job before any of it runs:
    # such a run is not the code's (its output policy does not count it).
    missing = missing_module(job["source"])
    if missing is not None:
        return {"status": "missing_module", "module": missing}
    # From here on the job's own code runs in this process: the host believes no "sandbox" status.
    sock.sendall(STARTED)

    pending = list(zip(job["inputs"], input_fds))
    try:
        kwargs = {}
        while pending:
            spec, fd = pending.pop(0)
            kwargs[spec["name"]] = load_input(spec["format"], fd, spec.get("meta"))  # closes fd
        kwargs.update(job["constants"])
        for bound in job.get("endpoints", ()):
            kwargs[bound["name"]] = Endpoint(sock, bound["path"], bound["params"])
        namespace = {"__name__": "__datasite_job__", "__builtins__": builtins}
        source, name, line = job["source"], job["function"], job.get("function_line", 0)
        spec = job.get("policy")
        endpoint = job.get("endpoint")
        del job
        helpers = {}
        if endpoint is not None and endpoint.get("egress"):
            Egress(sock).install()
        if endpoint is not None:
            # PySyft's helper_functions: defined beside the function, and as context.code.<name>.
            for helper, helper_source in endpoint.get("helpers", {}).items():
                exec(compile(helper_source, "<job>", "exec"), namespace)
                if callable(namespace.get(helper)):
                    helpers[helper] = namespace[helper]
        module = compile(source, "<job>", "exec")
        # The code object the reviewed def compiles to: the function called must still run it.
        reviewed = next((c for c in module.co_consts if isinstance(c, types.CodeType)
                         and c.co_name == name and c.co_firstlineno == line), None)
        exec(module, namespace)
        del module
        function = namespace.get(name)
        if not callable(function):
            return {"status": "error",
                    "error": f"NameError: the source defines no function '{name}'"}
        if line and not (type(function) is types.FunctionType
                         and function.__code__ is reviewed and function.__name__ == name):
            return {"status": "error",
                    "error": f"the source rebinds '{name}' after its definition on line {line}, "
                             "so what would run is not the function that was reviewed"}
        if endpoint is not None:
            # An endpoint's function: called with its context first; the state it keeps rides
            # back where custom policies' does.
            assets = {n: kwargs.pop(n) for n in endpoint.get("assets", ()) if n in kwargs}
            context = EndpointContext(endpoint, helpers, assets)
            value = function(context, **kwargs)
            state = endpoint_state(context)
            spec = {"update": True}
        elif spec is None:
            value = function(**kwargs)
        else:
            value, state = run_with_policies(spec, function, kwargs)
        del kwargs, namespace
        fmt, data, meta = encode_result(value)
        del value
    except PolicyFailure as failure:
        report = {"status": "policy", "refused": failure.refused, "error": one_line(failure)}
        counted = spec is not None and spec.get("update")  # spec is set: policies ran
        if counted and failure.refused != "error" and getattr(failure, "state", None) is not None:
            report["policy_state"] = failure.state
        return report
    except MemoryError:
        return {"status": "memory"}
    except Unencodable as error:
        return {"status": "error", "error": one_line(error)}
    except BaseException as error:
        try:
            print_user_traceback(error)
        except BaseException:
            pass
        return {"status": "error", "error": one_line(f"{type(error).__name__}: {error}")}
    finally:
        close_all(fd for _, fd in pending)
    if len(data) + len(meta) > int(limits["max_result_bytes"]):
        return {"status": "result_limit", "bytes": len(data) + len(meta)}
    try:
        write_all(result_fd, data)
        write_all(result_fd, meta)  # the host takes the sidecar off the end
    except OSError as error:
        return {"status": "error", "error": one_line(f"sending the result failed: {error}")}
    report = {"status": "ok", "format": fmt, "bytes": len(data)}
    if meta:
        report["meta_bytes"] = len(meta)
    if spec is not None and spec.get("update"):
        report["policy_state"] = state
    return report


def missing_module(source):
    """The first module (by line) that `source` imports and this environment does not have, or
    None. Only absolute imports outside a `try` statement count (an import a `try` guards may be
    meant to fail), and only their top-level names are looked up: importlib.util.find_spec of a
    top-level name runs no code of the module. Nothing of `source` is run here."""
    try:
        tree = ast.parse(source)
    except BaseException:
        return None  # compiling it fails in the job, as the code's own error
    found = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, TRY_NODES):
            continue
        names = ()
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.partition(".")[0]
            if not top.isidentifier() or top in sys.modules:
                continue
            try:
                if importlib.util.find_spec(top) is None:
                    found.append((node.lineno, top))
            except BaseException:
                pass
        stack.extend(ast.iter_child_nodes(node))
    return min(found)[1] if found else None


TRY_NODES = tuple(getattr(ast, name) for name in ("Try", "TryStar") if hasattr(ast, name))


def warm_up():
    """Touches the common paths once (the template runs it a dozen times before its first fork, see
    warm_template)."""
    frame = sidecar_read_plain_csv(io.BytesIO(b"a,b,c\n1,0.5,x\n2,1.5,y\n"))
    buffer = io.BytesIO()
    meta = sidecar_write_csv(frame, buffer)
    buffer.seek(0)
    sidecar_read_csv(buffer, sidecar_loads(sidecar_dumps(meta)))
    json.dumps(to_json_value(frame["a"].sum()))
    numpy.ones(1 << 17).sum()


def reseed_random_generators():
    """Every child is a copy of its template, random generators included: without a new seed each
    job would draw the numbers the one before drew, and noise added by approved code could be read
    off a free mock run and subtracted. Python's own `random` reseeds itself after a fork
    (os.register_at_fork); numpy's global generator, which pandas' and scikit-learn's defaults
    draw from, does not."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()  # from the kernel's entropy


def child_main(sock, setup):
    """The spare: isolates itself, waits for its one job, runs it, reports, exits."""
    # Nothing of the template's channels stays open: the log pipe is replaced by /dev/null until the
    # job's own pipes arrive.
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.setpgid(0, 0)
    try:
        # A user namespace of its own, made while its limits are still the template's: the
        # processes and signals the job counts against its RLIMIT_NPROC and RLIMIT_SIGPENDING are
        # then counted in it alone. (In its template's namespace they were counted with those of
        # every template forked from it, and of their jobs: one slot's job could starve another's.)
        own_namespaces(setup["scratch"])
        check(LIBC.unshare(CLONE_NEWUSER), "unshare")
        drop_capabilities()
        os.chdir(SCRATCH)
        reseed_random_generators()
    except BaseException as error:
        send_message(sock, {"type": "done", "status": "sandbox",
                            "error": one_line(f"setting up the child failed: {error!r}")})
        os._exit(0)
    # No warm-up here: a child is forked while the job before runs, so whether it had idled long
    # enough to warm up would tell its job (in its own page faults) how long that job ran.
    job, fds = recv_message(sock, MAX_HOST_MESSAGE)
    if job is None:
        os._exit(0)
    status = run_job(sock, job, fds, setup["filter"])
    # Close the result and log pipes before reporting, so the host sees their ends with the status.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    for fd in (1, 2, fds[2]):
        try:
            os.close(fd)
        except OSError:
            pass
    status["type"] = "done"
    send_message(sock, status)
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# The template.


def fork_child(channel, setup):
    """Forks the child for one job; returns its pid and pidfd. `channel` is closed here either way."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = fork_in_new_pid_namespace()
    if pid == 0:
        try:
            # Of the template's descriptors only the job's channel stays open (fds 0-2 become
            # /dev/null in child_main).
            os.closerange(3, channel)
            os.closerange(channel + 1, 1 << 16)
            child_main(socket.socket(fileno=channel), setup)
        finally:
            os._exit(70)
    os.close(channel)
    return pid, os.pidfd_open(pid)


def fork_in_new_pid_namespace():
    """os.fork(), but the child is pid 1 of a pid namespace of its own: its pid and its threads' ids
    are the same for every job, so no job learns from them how many processes earlier jobs made.
    (os.fork can't take clone flags; the interpreter's own before/after-fork steps are called around
    the raw clone as os.fork calls them. The child's cached thread id is the template's, 1, which is
    also its id in its namespace.)"""
    ctypes.pythonapi.PyOS_BeforeFork()
    pid = PYLIB.syscall(SYS_CLONE, ctypes.c_ulong(CLONE_NEWPID | signal.SIGCHLD), 0, 0, 0, 0)
    if pid == 0:
        ctypes.pythonapi.PyOS_AfterFork_Child()
        return 0
    error = ctypes.get_errno()
    ctypes.pythonapi.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(error, "clone")
    return pid


def prepare_children():
    """Sets up in the template what every child would otherwise do for itself (each object a child
    touches costs it a copy-on-write fault): the job's environment, stdout and stderr writing with
    the job's error handling to fds 1 and 2 (which each child points at its job's pipes), SIGXFSZ
    ignored (a file over RLIMIT_FSIZE is an OSError)."""
    os.environ["HOME"] = SCRATCH
    os.environ["TMPDIR"] = SCRATCH
    for fd, name in ((1, "stdout"), (2, "stderr")):
        setattr(sys, name, io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                            errors="backslashreplace", line_buffering=True))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def warm_template():
    """Runs the common paths of a child a dozen times before the first fork (pandas, the messages,
    compiling and calling a function, encoding results), so that the interpreter's specialised
    bytecode and caches are written once here rather than copied into every child."""
    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    source = "def f(k):\n    return {'k': k, 'n': [1, 2.5, None]}\n"
    for _ in range(12):
        warm_up()
        r, w = os.pipe()
        here.sendmsg([frame({"type": "job", "limits": {"memory_bytes": 1}})],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))])
        _, fds = recv_message(there, MAX_HOST_MESSAGE)
        close_all(fds + [r, w])
        namespace = {"__name__": "__datasite_job__", "__builtins__": builtins}
        exec(compile(source, "<job>", "exec"), namespace)
        for value in (namespace["f"](1), b"x", numpy.arange(3)):
            encode_result(value)
        one_line("warm up")
    here.close()
    there.close()


def collapse_huge_pages():
    """Backs the template's private writable memory by 2 MiB pages where whole ones fit
    (MADV_COLLAPSE, Linux 6.1 and later; elsewhere nothing changes). A fork then copies one entry
    per 2 MiB instead of 512, and a child's exit drops as few: with scikit-learn imported, about
    half the cost of each. A child's first write to such a page still copies only 4 KiB (the
    kernel splits the page's mapping in the child). Returns the bytes collapsed."""
    LIBC.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    collapsed = 0
    fd = os.open("self/maps", os.O_RDONLY | os.O_CLOEXEC, dir_fd=PROC)
    try:
        with os.fdopen(fd, "r") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        # Anonymous private writable mappings (the heap and the interpreter's arenas) only.
        if len(fields) < 5 or fields[4] != "0" or not fields[1].startswith("rw") or len(fields) > 5 \
                and fields[5] != "[heap]":
            continue
        low, high = (int(x, 16) for x in fields[0].split("-"))
        low = (low + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
        high &= ~(HUGE_PAGE - 1)
        if high > low and LIBC.madvise(low, high - low, MADV_COLLAPSE) == 0:
            collapsed += high - low
    return collapsed


def exited_message(number, status, usage):
    """The framed `exited` report, formatted directly (the template touches as few objects as it
    can between forks: each page it writes then costs it a copy-on-write fault)."""
    if os.WIFSIGNALED(status):
        end = b'"signal":%d}' % os.WTERMSIG(status)
    else:
        end = b'"exit_code":%d}' % os.WEXITSTATUS(status)
    body = b'{"type":"exited","id":%d,"cpu_seconds":%.6f,' % (
        number, usage.ru_utime + usage.ru_stime) + end
    return struct.pack("<I", len(body)) + body


def clone_main(ctrl_sock, channel, setup):
    """A new template for another slot of this pool, forked from this warm one (so it imports
    nothing anew): it takes a user and mount namespace of its own, as the first template did (its
    children's scratch mounts and process counts are its own), says hello on `channel` and serves
    there. It ends with this template (pid 1 of the sandbox) or when its channel closes."""
    try:
        ctrl_sock.detach()  # the first template's channel: closed below, never used here
        for low, high in sorted(((3, min(channel, PROC)), (max(channel, PROC) + 1, 1 << 16),
                                 (min(channel, PROC) + 1, max(channel, PROC)))):
            os.closerange(low, high)
        # Its own network and IPC namespaces too: jobs of two slots run at once, and must not
        # meet (abstract Unix sockets, System V IPC); the first template's are bubblewrap's.
        # Its maps are written through /proc/self, which a non-dumpable process may not open: it
        # is dumpable (the first template made itself not) until they are written.
        LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        own_namespace(CLONE_NEWNET | CLONE_NEWIPC)
        LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
        check(LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        sock = socket.socket(fileno=channel)
        send_message(sock, hello_message())
        serve(sock, setup)
    except BaseException as error:
        try:  # to the first template's log (the host reads it when a clone fails)
            os.write(2, f"datasite: cloning the template failed: {error!r}\n".encode())
        except BaseException:
            pass
    finally:
        os._exit(70)


def serve(ctrl_sock, setup):
    """The template's loop: fork on `spawn`, kill on `kill`, report `exited`.

    The host sends `spawn` for the next job's child as soon as it has handed a job to the last one,
    so the fork runs beside the job, and `kill` once a job has reported (its child is normally
    exiting by then). At most MAX_CHILDREN children are alive: spawns beyond them wait, in order,
    for children to end (all but the newest child have then been killed, and are ending), and while
    one waits the oldest child is killed every KILL_AFTER_NEXT_SPAWN."""
    children = {}     # pidfd: (job number, pid) of the living children, oldest first
    waiting = collections.deque()  # (job number, channel fd) of spawns waiting for a child to end
    kill_at = None    # when to kill the oldest child, for a waiting spawn
    clones = {}       # pidfd: pid of the templates forked from this one (`clone`), to reap
    ctrl = ctrl_sock.fileno()
    while True:
        timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic())
        ready, _, _ = select.select([ctrl] + list(children) + list(clones), [], [], timeout)
        if not ready and kill_at is not None:
            if children:
                os.kill(next(iter(children.values()))[1], signal.SIGKILL)
            kill_at = time.monotonic() + KILL_AFTER_NEXT_SPAWN_SECONDS
            continue
        for pidfd in [fd for fd in ready if fd in clones]:
            os.waitpid(clones.pop(pidfd), 0)
            os.close(pidfd)
        for pidfd in [fd for fd in ready if fd in children]:
            number, pid = children.pop(pidfd)
            _, status, usage = os.wait4(pid, 0)
            os.close(pidfd)
            ctrl_sock.sendall(exited_message(number, status, usage))
        while waiting and len(children) < MAX_CHILDREN:
            number, channel = waiting.popleft()
            pid, pidfd = fork_child(channel, setup)
            children[pidfd] = (number, pid)
        if not waiting:
            kill_at = None
        if ctrl in ready:
            message, fds = recv_message(ctrl_sock, MAX_CTRL_MESSAGE)
            if message is None:
                for _, pid in children.values():
                    os.kill(pid, signal.SIGKILL)
                os._exit(0)
            kind = message.get("type")
            if kind == "spawn" and len(fds) == 1 and len(waiting) < MAX_WAITING:
                if len(children) < MAX_CHILDREN and not waiting:
                    pid, pidfd = fork_child(fds[0], setup)
                    children[pidfd] = (message["id"], pid)
                else:
                    waiting.append((message["id"], fds[0]))
                    if kill_at is None:
                        kill_at = time.monotonic() + KILL_AFTER_NEXT_SPAWN_SECONDS
            elif kind == "clone" and len(fds) == 1:
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    clone_main(ctrl_sock, fds[0], setup)
                os.close(fds[0])
                clones[os.pidfd_open(pid)] = pid
            elif kind == "kill":
                close_all(fds)
                for number, pid in children.values():
                    if number == message.get("id"):
                        os.kill(pid, signal.SIGKILL)
                for spawn in [w for w in waiting if w[0] == message.get("id")]:
                    waiting.remove(spawn)
                    close_all([spawn[1]])
                if not waiting:
                    kill_at = None
            else:
                close_all(fds)
                os._exit(76)  # the host broke the protocol: it starts a fresh sandbox


def preload():
    """Imports the modules the pool's environment is checked for (DATASITE_PRELOAD, separated by
    commas), so that every job's fork has them loaded; says how the first that fails failed."""
    for name in filter(None, os.environ.pop("DATASITE_PRELOAD", "").split(",")):
        try:
            importlib.import_module(name)
        except BaseException as error:
            return one_line(f"{type(error).__name__}: {error}", 500)
    return None


def describe_environment():
    """What this Python holds, as the jobs see it: its distributions ("name==version", sorted), and
    the top-level modules of its site directories (not the standard library), for the host to say
    which pool has a module a job lacked."""
    packages = set()
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages.add(f"{name}=={dist.version}")
    sites = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    modules, size = [], 0
    for name in sorted({m.name for m in pkgutil.iter_modules(sites)}):
        size += len(name) + 4
        if size > MAX_MODULES_JSON:
            break
        modules.append(name)
    return sorted(packages), modules


HELLO = {}


def hello_message():
    return dict(HELLO, pid=os.getpid())


def main():
    own_namespace()
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # jobs can't read or write this process via /proc
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctrl_sock = socket.socket(fileno=CTRL_FD)
    failed = preload()
    packages, modules = describe_environment()
    HELLO.update({"type": "hello", "python": sys.version.split()[0],
                  "pandas": pandas.__version__, "numpy": numpy.__version__,
                  "packages": packages, "modules": modules})
    if failed is not None:
        HELLO["preload_error"] = failed
    send_message(ctrl_sock, hello_message())
    init, fds = recv_message(ctrl_sock, MAX_CTRL_MESSAGE)
    close_all(fds)
    if init is None or init.get("type") != "init":
        os._exit(0)
    setup = {"filter": JobFilter(bytes.fromhex(init["job_filter"])),
             "scratch": "size={},nr_inodes={},mode=0755".format(
                 int(init["scratch_bytes"]), int(init["scratch_files"])).encode()}
    del init
    prepare_children()
    warm_template()
    gc.collect()
    gc.freeze()  # the collector in a child then leaves these pages shared
    LIBC.malloc_trim(0)  # free heap pages go back: a child's new objects take fresh pages, not copies
    collapse_huge_pages()
    serve(ctrl_sock, setup)


main()
