# expect: resource_limit — allocates until memory runs out
# limits: memory_mib=512
def f(data):
    hog = []
    while True:
        hog.append(bytearray(16 << 20))
