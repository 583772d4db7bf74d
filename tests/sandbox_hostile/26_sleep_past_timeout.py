# expect: timeout — sleeps past the wall-clock timeout
# limits: wall_ms=1500
import time


def f(data):
    time.sleep(3600)
