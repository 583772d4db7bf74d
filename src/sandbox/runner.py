# The Python side of the datasite sandbox: the warm process of one slot, run inside bubblewrap.
#
# It imports pandas and numpy once, then serves jobs from the host over the socket on fd 3. For each
# job it uses a "spare" child forked before the job arrived (so fork's cost is off the job's path):
# the spare receives the job, applies the job's resource limits and seccomp filter, loads the inputs,
# runs the user's function in a fresh namespace and sends back a status. The warm process reaps it,
# wipes /tmp and /dev/shm, and forks the next spare.
#
# Messages, both ways: 4-byte little-endian length + UTF-8 JSON. The job message carries its file
# descriptors (SCM_RIGHTS): stdout, stderr and result pipes (write ends), then one per input.
import array
import builtins
import ctypes
import gc
import io
import json
import math
import os
import resource
import select
import signal
import socket
import struct
import sys
import traceback

import numpy
import pandas

CTRL_FD = 3
SCRATCH = "/tmp/job"
MAX_HOST_MESSAGE = 256 << 20
MAX_STATUS = 64 << 10
MAX_FDS = 256
WARM_UP_AFTER_IDLE_SECONDS = 0.003
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


LIBC = ctypes.CDLL(None, use_errno=True)


def send_message(sock, obj):
    body = json.dumps(obj, separators=(",", ":")).encode()
    sock.sendall(struct.pack("<I", len(body)) + body)


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


def has_default_index(frame):
    index = frame.index
    return (
        isinstance(index, pandas.RangeIndex)
        and index.start == 0
        and index.step == 1
        and index.name is None
    )


def encode_result(value):
    """Returns (format, bytes). Never pickles."""
    if isinstance(value, pandas.DataFrame):
        return "csv", value.to_csv(index=not has_default_index(value)).encode()
    if isinstance(value, pandas.Series):
        return "csv", value.to_csv(index=not has_default_index(value), header=True).encode()
    if isinstance(value, numpy.ndarray):
        if value.dtype.hasobject:
            raise Unencodable(
                "can't return an ndarray of Python objects: return a numeric ndarray, "
                "a DataFrame, Series, bytes or a JSON value"
            )
        buffer = io.BytesIO()
        numpy.save(buffer, value, allow_pickle=False)
        return "npy", buffer.getvalue()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes", bytes(value)
    return "json", json.dumps(to_json_value(value), allow_nan=False, ensure_ascii=False).encode()


def load_input(fmt, fd):
    with os.fdopen(fd, "rb") as f:
        if fmt == "csv":
            return pandas.read_csv(f)
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
    while tb is not None and tb.tb_frame.f_code.co_filename != "<job>":
        tb = tb.tb_next
    if tb is None and not isinstance(error, SyntaxError):
        tb = error.__traceback__
    sys.stderr.write("".join(traceback.format_exception(type(error), error, tb)))


def set_limits(limits):
    memory = int(limits["memory_bytes"])
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limits["file_bytes"]),) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(limits["open_files"]),) * 2)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))


def install_filter(program):
    """Adds the job's seccomp filter (no exec, no new processes, no signals to the warm process)."""
    if LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if LIBC.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[: 1 << 20]) :]


def run_job(job, fds, program):
    """Runs one job in this (child) process; returns the status to send to the warm process."""
    stdout_fd, stderr_fd, result_fd = fds[:3]
    input_fds = fds[3:]
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    os.close(stdout_fd)
    os.close(stderr_fd)
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
        line_buffering=True)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
        line_buffering=True)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    os.chdir(SCRATCH)
    os.environ["HOME"] = SCRATCH
    os.environ["TMPDIR"] = SCRATCH
    limits = job["limits"]
    try:
        set_limits(limits)
        install_filter(program)
    except BaseException as error:
        return {"status": "sandbox", "error": one_line(f"setting up the job failed: {error!r}")}

    pending = list(zip(job["inputs"], input_fds))
    try:
        kwargs = {}
        while pending:
            spec, fd = pending.pop(0)
            kwargs[spec["name"]] = load_input(spec["format"], fd)  # closes fd
        kwargs.update(job["constants"])
        namespace = {"__name__": "__datasite_job__", "__builtins__": builtins}
        exec(compile(job["source"], "<job>", "exec"), namespace)
        function = namespace.get(job["function"])
        if not callable(function):
            return {"status": "error",
                    "error": f"NameError: the source defines no function '{job['function']}'"}
        value = function(**kwargs)
        del kwargs, namespace
        fmt, data = encode_result(value)
        del value
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
    if len(data) > int(limits["max_result_bytes"]):
        return {"status": "result_limit", "bytes": len(data)}
    try:
        write_all(result_fd, data)
    except OSError as error:
        return {"status": "sandbox", "error": one_line(f"sending the result failed: {error}")}
    return {"status": "ok", "format": fmt, "bytes": len(data)}


def warm_up():
    """Touches the common paths once, so that their copy-on-write page faults are taken while an idle
    spare waits rather than during a job; leaves ~1 MiB of faulted-in heap for the job's data."""
    frame = pandas.read_csv(io.BytesIO(b"a,b,c\n1,0.5,x\n2,1.5,y\n"))
    json.dumps(to_json_value(frame["a"].sum()))
    numpy.ones(1 << 17).sum()


def spare_main(sock, program):
    """The spare child: waits for its one job, runs it, reports, exits."""
    # Warm up only when no job is waiting. Under load the next job is already on its way, and warming
    # up first would spend ~10 ms of CPU per job on faults a trivial job never needs (measured: 60 jobs/s
    # with 2 slots when every spare warmed up, 110-135 with this wait; a 10,000-row read_csv job is
    # ~7 ms faster after a warm-up).
    ready, _, _ = select.select([sock], [], [], WARM_UP_AFTER_IDLE_SECONDS)
    if not ready:
        try:
            warm_up()
        except Exception:
            pass
    job, fds = recv_message(sock, MAX_HOST_MESSAGE)
    if job is None:
        os._exit(0)
    os.setpgid(0, 0)
    status = run_job(job, fds, program)
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
    send_message(sock, status)
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# The warm process.


def remove_tree(path):
    """Removes a directory tree a job left, whatever modes it set on it (it owns all of it)."""
    try:
        os.chmod(path, 0o700)
    except OSError:
        pass
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                remove_tree(entry.path)
            else:
                os.unlink(entry.path)
    os.rmdir(path)


def wipe_tmp():
    """Removes everything jobs could have left behind; returns False when something stays."""
    try:
        for top in ("/tmp", "/dev/shm"):
            for entry in os.scandir(top):
                if entry.is_dir(follow_symlinks=False):
                    remove_tree(entry.path)
                else:
                    os.unlink(entry.path)
        os.mkdir(SCRATCH, 0o700)
        return True
    except (OSError, RecursionError):
        return False


class Spare:
    def __init__(self, ctrl, program):
        here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                here.close()
                ctrl.close()
                spare_main(there, program)
            finally:
                os._exit(70)
        there.close()
        self.pid = pid
        self.sock = here
        self.pidfd = os.pidfd_open(pid)

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def serve_job(ctrl, spare, job, fds):
    """Hands `job` to `spare`, relays a kill, and reports exactly one "done" message for it."""
    job_id = job.get("id")
    done = False
    status = b""
    reaped = False
    try:
        header = json.dumps(job, separators=(",", ":")).encode()
        spare.sock.sendmsg(
            [struct.pack("<I", len(header)) + header],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
    except OSError:
        spare.kill()
    finally:
        close_all(fds)
    watched = [ctrl, spare.pidfd, spare.sock]
    while not reaped:
        ready, _, _ = select.select(watched, [], [])
        if ctrl in ready:
            message, extra = recv_message(ctrl, MAX_HOST_MESSAGE)
            close_all(extra)
            if message is None:
                spare.kill()
                os._exit(0)
            if message.get("type") == "kill" and message.get("id") == job_id:
                spare.kill()
        if spare.sock in ready:
            chunk = spare.sock.recv(MAX_STATUS)
            if not chunk:
                watched.remove(spare.sock)
            elif not done:
                status += chunk
                if len(status) > MAX_STATUS:
                    watched.remove(spare.sock)
                    spare.kill()
                elif len(status) >= 4:
                    (length,) = struct.unpack("<I", status[:4])
                    if len(status) >= 4 + length:
                        try:
                            report = json.loads(status[4 : 4 + length])
                        except ValueError:
                            report = None
                        if isinstance(report, dict):
                            report["type"] = "done"
                            report["id"] = job_id
                            send_message(ctrl, report)
                            done = True
                            # The host's next message is its next job: leave it for main().
                            watched.remove(ctrl)
                        spare.kill()
        if spare.pidfd in ready:
            _, wait_status, usage = os.wait4(spare.pid, 0)
            reaped = True
            if not done:
                report = {"type": "done", "id": job_id, "status": "died",
                          "cpu_seconds": usage.ru_utime + usage.ru_stime}
                if os.WIFSIGNALED(wait_status):
                    report["signal"] = os.WTERMSIG(wait_status)
                else:
                    report["exit_code"] = os.WEXITSTATUS(wait_status)
                send_message(ctrl, report)
    os.close(spare.pidfd)
    spare.sock.close()


def main():
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # jobs can't read or write this process via /proc
    # Keep freed heap mapped (no trim, no mmap for mid-sized blocks): a job's allocations then reuse
    # pages its spare already faulted in.
    LIBC.mallopt(M_TRIM_THRESHOLD, 256 << 20)
    LIBC.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctrl = socket.socket(fileno=CTRL_FD)
    send_message(ctrl, {"type": "hello", "pid": os.getpid(),
                        "python": sys.version.split()[0],
                        "pandas": pandas.__version__, "numpy": numpy.__version__})
    init, fds = recv_message(ctrl, MAX_HOST_MESSAGE)
    close_all(fds)
    if init is None or init.get("type") != "init":
        os._exit(0)
    program = bytes.fromhex(init["job_filter"])
    gc.collect()
    gc.freeze()  # the collector in a job child then leaves these pages shared
    spare = None
    while True:
        if spare is None:
            if not wipe_tmp():
                os._exit(75)  # the host starts a fresh sandbox (a fresh /tmp)
            spare = Spare(ctrl, program)
        message, fds = recv_message(ctrl, MAX_HOST_MESSAGE)
        if message is None:
            spare.kill()
            os._exit(0)
        if message.get("type") != "job":
            close_all(fds)
            continue
        serve_job(ctrl, spare, message, fds)
        spare = None


main()
