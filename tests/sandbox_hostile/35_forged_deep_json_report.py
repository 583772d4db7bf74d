# expect: ok — writes a JSON result nested 200,000 deep straight into its result pipe and forges the "done" report for it (a server that copied or printed it recursively would overflow its stack)
import json
import os
import struct
import sys


def f(data):
    frame, fds, sock = sys._getframe(1), None, None
    while frame is not None:  # the runner's own frames hold the result pipe and the report socket
        fds = fds or frame.f_locals.get("fds")
        sock = sock or frame.f_locals.get("sock")
        frame = frame.f_back
    payload = b"[" * 200000 + b"]" * 200000
    view = memoryview(payload)
    while view:
        view = view[os.write(fds[2], view):]
    report = json.dumps({"type": "done", "status": "ok", "format": "json", "bytes": len(payload)}).encode()
    sock.sendall(struct.pack("<I", len(report)) + report)
    os._exit(0)
