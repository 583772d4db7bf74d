# expect: ok-contained — writes the warm process's memory through /proc/<pid>/mem, reads its maps
import os


def f(data):
    got = []
    for pid in ("1", str(os.getppid())):
        for name, mode in (("mem", os.O_RDWR), ("maps", os.O_RDONLY), ("environ", os.O_RDONLY),
                           ("cwd", os.O_RDONLY)):
            try:
                os.close(os.open(f"/proc/{pid}/{name}", mode))
                got.append(f"{pid}/{name}")
            except OSError:
                pass
    return {"escaped": bool(got), "got": got}
