# expect: error — calls ptrace through the x32 syscall ABI to dodge the filter (killed by SIGSYS)
import ctypes
import os


def f(data):
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.syscall(0x40000000 | 101, 16, os.getppid(), 0, 0)
    return {"escaped": rc == 0, "rc": rc, "errno": ctypes.get_errno()}
