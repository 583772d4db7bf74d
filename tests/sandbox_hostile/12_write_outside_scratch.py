# expect: ok-contained — writes to /usr, /, /etc, /proc, /sys and chmods /usr files
import os

MARK = "datasite-hostile-was-here"


def f(data):
    written = []
    for d in ("/usr", "/usr/bin", "/usr/lib/python3/dist-packages", "/", "/etc", "/proc", "/sys",
              "/dev", "/bin"):
        try:
            with open(os.path.join(d, MARK), "w") as fh:
                fh.write("x")
            written.append(d)
        except OSError:
            pass
    try:
        os.chmod("/usr/bin/python3", 0o777)
        written.append("chmod")
    except OSError:
        pass
    # Inside the sandbox /tmp is its own tmpfs: this must not reach the host's /tmp.
    with open("/tmp/" + MARK, "w") as fh:
        fh.write("x")
    return {"escaped": bool(written), "written": written}
