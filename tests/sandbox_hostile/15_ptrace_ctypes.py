# expect: ok-contained — ptrace(PTRACE_ATTACH) on the warm process and pid 1 through ctypes
import ctypes
import os

PTRACE_ATTACH, PTRACE_TRACEME, SYS_ptrace = 16, 0, 101


def f(data):
    libc = ctypes.CDLL(None, use_errno=True)
    results = [libc.syscall(SYS_ptrace, PTRACE_ATTACH, pid, 0, 0) for pid in (1, os.getppid())]
    results.append(libc.syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0))
    return {"escaped": any(r == 0 for r in results), "results": results}
