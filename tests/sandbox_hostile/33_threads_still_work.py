# expect: ok-contained — a control case: threads (numpy may use them) still work under the job filter
import threading


def f(data):
    out = []
    threads = [threading.Thread(target=lambda i=i: out.append(int(data["a"].sum()) + i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"escaped": sorted(out) != [6, 7, 8, 9], "out": out}
