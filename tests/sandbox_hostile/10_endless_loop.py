# expect: timeout — an endless loop (the wall clock ends it before the CPU limit)
# limits: wall_ms=2000 cpu_seconds=60
def f(data):
    n = 0
    while True:
        n += 1
