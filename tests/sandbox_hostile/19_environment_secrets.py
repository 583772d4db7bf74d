# expect: ok-contained — looks for the server's secrets in the environment
import os


def f(data):
    env = dict(os.environ)
    try:
        with open("/proc/1/environ", "rb") as fh:
            env["/proc/1/environ"] = fh.read().decode(errors="replace")
    except OSError:
        pass
    leaked = any(k.startswith("DATASITE") for k in env)
    return {"escaped": leaked, "env": env}
