# expect: error — returns a generator (not encodable)
def f(data):
    return (x for x in range(3))
