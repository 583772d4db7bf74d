# expect: ok-contained — os.system and os.popen (they report failure rather than raising)
import os


def f(data):
    rc = os.system("echo datasite-hostile-was-here > /tmp/datasite-hostile-was-here")
    try:
        out = os.popen("id").read()
    except OSError:
        out = ""
    return {"escaped": rc == 0 or "uid=" in out, "rc": rc}
