# expect: error — unbounded recursion with the recursion limit lifted (frames fill the memory limit; Python 3.11 reports a SystemError)
# limits: memory_mib=320 wall_ms=60000 cpu_seconds=60
import sys


def f(data):
    sys.setrecursionlimit(10 ** 9)

    def down(n):
        return down(n + 1) + 1
    return down(0)
