# expect: error — sends the host a report with extra fields carrying the data (and claims a sandbox failure), then exits without returning
import json
import os
import stat
import struct


def f(data):
    rows = data.to_csv()
    for report in ({"type": "done", "status": "error", "error": "x", "rows": rows},
                   {"type": "done", "status": "sandbox", "error": rows}):
        body = json.dumps(report).encode()
        for fd in range(3, 64):
            try:
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.write(fd, struct.pack("<I", len(body)) + body)
            except OSError:
                pass
    os._exit(0)
