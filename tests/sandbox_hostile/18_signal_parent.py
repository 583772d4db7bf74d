# expect: ok-contained — signals every process it can name (its parent, pid 1, -1, the other pids of its namespace), pidfd_open and prlimit on them
import ctypes
import os
import signal


def f(data):
    me, parent = os.getpid(), os.getppid()
    reached = []
    # Alone in its pid namespace: no parent it can name, and no pid but its own answers.
    if parent != 0:
        reached.append(("parent", parent))
    for pid in [1, parent] + list(range(2, 66)):
        if pid in (0, me):
            continue
        for sig in (0, signal.SIGKILL, signal.SIGSTOP):
            try:
                os.kill(pid, sig)
                reached.append((pid, int(sig)))
            except OSError:
                pass
        try:
            os.close(os.pidfd_open(pid))
            reached.append(("pidfd_open", pid))
        except OSError:
            pass
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syscall(302, pid, 7, 0, 0) == 0:  # prlimit64(pid, RLIMIT_NOFILE, get)
            reached.append(("prlimit", pid))
    for target in (-1, -parent if parent else -2):
        try:
            os.kill(target, signal.SIGKILL)  # -1: every process it may signal, but itself
        except OSError:
            pass
    return {"escaped": bool(reached), "reached": reached, "pid": me, "ppid": parent}
