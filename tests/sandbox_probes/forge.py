# forge(report): sends `report` (a dict, or raw bytes) as a framed report on every socket the job
# holds; its channel back to the host is one of them. Returns how many sockets took it. Prepended to
# attacking jobs by src/sandbox/sandbox_test.cc and tests/integration/test_cross_job_leaks.py.
import json, os, stat, struct
def forge(report):
    body = json.dumps(report).encode() if not isinstance(report, bytes) else report
    sent = 0
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.write(fd, struct.pack('<I', len(body)) + body)
                sent += 1
        except OSError:
            pass
    return sent
