# expect: ok-contained — SIGKILL/SIGSTOP to pid 1 and the parent, kill(-1), pidfd and prlimit on the parent
import ctypes
import os
import signal


def f(data):
    worked = []
    for pid, sig in ((1, signal.SIGKILL), (os.getppid(), signal.SIGKILL), (1, signal.SIGSTOP),
                     (os.getppid(), signal.SIGINT), (-1, signal.SIGKILL), (-os.getppid(), signal.SIGKILL)):
        try:
            os.kill(pid, sig)
            worked.append((pid, int(sig)))
        except OSError:
            pass
    try:
        os.pidfd_open(os.getppid())
        worked.append("pidfd_open")
    except OSError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(302, os.getppid(), 7, 0, 0) == 0:  # prlimit64(parent, RLIMIT_NOFILE, get)
        worked.append("prlimit")
    return {"escaped": bool(worked), "worked": worked}
