# expect: ok-contained — leaves files in scratch and /tmp, and tries /dev/shm, for the next job (28 looks for them)
import os


def f(data):
    refused = []
    for d in (".", "/tmp", "/dev/shm"):
        try:
            with open(os.path.join(d, "left-by-27.txt"), "w") as fh:
                fh.write("from job 27")
        except OSError as e:
            refused.append([d, e.errno])
    os.makedirs("locked/inner", exist_ok=True)
    open("locked/inner/file", "w").write("x")
    os.chmod("locked/inner", 0)
    os.chmod("locked", 0)
    # Contained as long as scratch and /tmp took the files (28 checks they are gone for the next job).
    return {"escaped": any(d in (".", "/tmp") for d, _ in refused), "refused": refused}
