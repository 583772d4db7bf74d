# expect: error — unbounded recursion (RecursionError)
def f(data):
    def down(n):
        return down(n + 1) + 1
    return down(0)
