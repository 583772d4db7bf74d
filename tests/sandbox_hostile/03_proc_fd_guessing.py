# expect: ok-contained — reads other files through /proc/<pid>/fd and /proc/self/fd, and reopens fds for writing
import os


def f(data):
    contents, writable = [], []
    pids = ["self", "1", str(os.getppid())] + [p for p in os.listdir("/proc") if p.isdigit()]
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            path = f"/proc/{pid}/fd/{fd}"
            try:
                with open(path, "rb") as fh:
                    contents.append(fh.read(4096).decode(errors="replace"))
            except OSError:
                pass
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
                target = os.readlink(path)
                if not target.startswith(("pipe:", "socket:", "/dev/")):
                    writable.append(target)
            except OSError:
                pass
    for fd in range(3, 256):
        try:
            contents.append(os.pread(fd, 4096, 0).decode(errors="replace"))
        except OSError:
            pass
    return {"escaped": bool(writable), "writable": writable, "contents": contents}
