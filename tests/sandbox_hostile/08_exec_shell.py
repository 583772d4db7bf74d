# expect: error — replaces the process with a shell (os.execv)
import os


def f(data):
    os.execv("/bin/sh", ["sh", "-c", "id"])
