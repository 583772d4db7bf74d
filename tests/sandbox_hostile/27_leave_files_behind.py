# expect: ok-contained — leaves files in scratch, /tmp and /dev/shm for the next job (28 looks for them)
import os


def f(data):
    for d in (".", "/tmp", "/dev/shm"):
        with open(os.path.join(d, "left-by-27.txt"), "w") as fh:
            fh.write("from job 27")
    os.makedirs("locked/inner", exist_ok=True)
    open("locked/inner/file", "w").write("x")
    os.chmod("locked/inner", 0)
    os.chmod("locked", 0)
    return {"escaped": False}
