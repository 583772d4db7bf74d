# expect: ok-contained — mount, unshare, setns, setuid(0), chroot, bpf, keyctl, io_uring via raw syscalls
import ctypes

CALLS = {
    "mount": (165, b"none", b"/tmp", b"tmpfs", 0, 0),
    "unshare_user": (272, 0x10000000),
    "unshare_mount": (272, 0x00020000),
    "setns": (308, 0, 0),
    "setuid0": (105, 0),
    "setgid0": (106, 0),
    "chroot": (161, b"/tmp"),
    "bpf": (321, 0, 0, 0),
    "keyctl": (250, 0, 0),
    "io_uring_setup": (425, 8, 0),
    "userfaultfd": (323, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "personality": (135, 0x0040000),
    "reboot": (169, 0xfee1dead, 672274793, 0x1234567),
}


def f(data):
    libc = ctypes.CDLL(None, use_errno=True)
    got = {}
    for name, (nr, *args) in CALLS.items():
        got[name] = (libc.syscall(nr, *args), ctypes.get_errno())
    return {"escaped": any(rc >= 0 for rc, _ in got.values()), "got": got}
