# expect: ok-contained — reads /etc/passwd and /etc/shadow (the sandbox has neither)
def f(data):
    got = {}
    for path in ("/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hostname"):
        try:
            with open(path) as fh:
                got[path] = fh.read()
        except OSError as e:
            got[path] = None
    return {"escaped": any(v is not None for v in got.values()), "got": got}
