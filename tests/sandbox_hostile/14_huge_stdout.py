# expect: ok-contained — prints far more than the log limit (cut, not fatal)
import sys


def f(data):
    for _ in range(200):
        sys.stdout.write("y" * 65536)
        sys.stderr.write("z" * 65536)
    return {"escaped": False}
