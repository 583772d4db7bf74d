# expect: ok-contained — fills scratch with files until the tmpfs or file size limit says no
import os


def f(data):
    written = 0
    chunk = b"\0" * (8 << 20)
    try:
        for i in range(1000):
            with open(f"fill{i}", "wb") as fh:
                for _ in range(16):
                    fh.write(chunk)
                    written += len(chunk)
    except OSError as e:
        return {"escaped": False, "written_mib": written >> 20, "stopped_by": str(e)}
    return {"escaped": True, "written_mib": written >> 20}
