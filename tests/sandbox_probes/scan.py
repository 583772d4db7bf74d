# scan(needle): [the distinct rows "<needle>-<n>," in the job's own readable memory around its heap
# and live objects (what it inherited from the process it was forked from), whether a control row it
# keeps alive was found (so a 0 means something)]. Jobs see no /proc: regions are found by copying
# through a pipe, which stops at an unreadable page instead of faulting. Prepended to probing jobs by
# src/sandbox/sandbox_test.cc and tests/integration/test_cross_job_leaks.py.
import ctypes, gc, os, re
def scan(needle):
    """Distinct rows '<needle>-<n>,' in the readable memory around the heap and every live object
    (found without /proc, by copying through a pipe, which stops at an unreadable page instead of
    faulting), and whether a control row kept alive in the heap was found: proof that it could."""
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    control = ('CONTROL-' + needle + '-7,').encode() * 1000
    r, w = os.pipe()
    step = 1 << 16
    def readable(addr):  # bytes readable from addr, up to step
        n = libc.write(w, ctypes.c_void_p(addr), step)
        if n > 0:
            os.read(r, step)
        return max(n, 0)
    starts = {id(o) & ~(step - 1) for o in gc.get_objects()}
    starts.add(libc.malloc(1 << 16) & ~(step - 1))
    seen, regions = set(), []
    for start in sorted(starts):
        if start in seen or readable(start) < step:
            continue
        lo = hi = start
        while lo - step not in seen and start - lo < (1 << 30) and readable(lo - step) == step:
            lo -= step
        while hi - start < (1 << 30):
            n = readable(hi)
            hi += n
            if n < step or hi in seen:
                break
        seen.update(range(lo, hi, step))
        regions.append((lo, hi))
    found, controls = set(), 0
    pattern = re.compile(rb'(CONTROL-)?' + re.escape(needle.encode()) + rb'-([0-9]+),')
    for lo, hi in regions:
        for m in pattern.finditer(ctypes.string_at(lo, hi - lo)):
            if m.group(1):
                controls += 1
            else:
                found.add(int(m.group(2)))
    del control
    return [len(found), controls > 0]
