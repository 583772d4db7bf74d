# expect: ok-contained — looks for files an earlier job left (27), anywhere writable
import os


def f(data):
    found = []
    for d in (".", "/tmp", "/tmp/job", "/dev/shm", os.environ.get("HOME", "/tmp")):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        found += [os.path.join(d, n) for n in names if n != "job"]
    return {"escaped": bool(found), "found": found}
