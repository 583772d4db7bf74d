# expect: ok-contained — holds memory in memfd files and /dev/shm, which no process maps, so the address-space limit does not count it
import mmap
import os


def f(data):
    held = {}
    try:
        fd = os.memfd_create("hoard")
        os.ftruncate(fd, 64 << 20)
        with mmap.mmap(fd, 64 << 20) as m:
            m[:: 4096] = b"x" * (16 << 10)
        held["memfd"] = 64
    except OSError as e:
        held["memfd_refused"] = e.errno
    try:
        with open("/dev/shm/hoard", "wb") as fh:
            fh.write(b"x" * (8 << 20))
        held["shm"] = 8
    except OSError as e:
        held["shm_refused"] = e.errno
    return {"escaped": "memfd" in held or "shm" in held, **held}
