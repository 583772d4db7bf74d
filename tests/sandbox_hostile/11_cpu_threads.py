# expect: resource_limit — burns CPU on several threads (RLIMIT_CPU counts them all)
# limits: cpu_seconds=2 wall_ms=60000
import threading

import numpy


def spin():
    a = numpy.ones((300, 300))
    while True:
        a = a @ a / 300.0


def f(data):
    threads = [threading.Thread(target=spin, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
