# expect: ok-contained — opens the server's database by its host path (given as a constant)
import os


def f(data, secret_path):
    tried = {}
    for path in (secret_path, os.path.dirname(secret_path), "/root", "/home", "/var/lib", "/work"):
        try:
            if os.path.isdir(path):
                tried[path] = os.listdir(path)
            else:
                with open(path, "rb") as fh:
                    tried[path] = fh.read().decode(errors="replace")
        except OSError as e:
            tried[path] = None
    return {"escaped": any(v is not None for v in tried.values()), "tried": tried}
