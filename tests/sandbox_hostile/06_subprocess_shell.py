# expect: error — runs a shell through subprocess
import subprocess


def f(data):
    return subprocess.run(["/bin/sh", "-c", "id; cat /etc/passwd"], capture_output=True).stdout
