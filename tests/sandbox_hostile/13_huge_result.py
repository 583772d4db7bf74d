# expect: resource_limit — returns bytes over the result limit (1 MiB in this suite)
def f(data):
    return b"x" * (3 << 20)
