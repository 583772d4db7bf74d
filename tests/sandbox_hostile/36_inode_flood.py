# expect: ok-contained — creates empty files in /tmp as fast as it can (kernel memory outside every size cap, and work for whoever cleans up)
# limits: wall_ms=20000
import os


def f(data):
    n = 0
    try:
        for n in range(200000):
            open(f"/tmp/f{n}", "w").close()
    except OSError as e:
        return {"escaped": False, "files": n, "stopped_by": e.strerror}
    return {"escaped": True, "files": n}
