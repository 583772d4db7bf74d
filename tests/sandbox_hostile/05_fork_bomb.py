# expect: error — os.fork() in a loop (a fork bomb)
import os


def f(data):
    while True:
        os.fork()
