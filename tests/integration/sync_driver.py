"""Runs one step of a sync test inside the high side's network namespace.

Reads ``{"port", "snippet", "args", "python"}`` as JSON from standard input, logs in as the root
admin of the server on ``port`` (the namespace's own loopback), runs ``snippet`` with ``sy``,
``high`` and ``args`` bound, and prints ``{"ok": true, "result": <result>}`` or
``{"ok": false, "error": <class name>, "message": <text>}`` as the last line.
"""

import json
import sys


def main():
    request = json.loads(sys.stdin.read())
    sys.path.insert(0, request["python"])
    import datasite as sy

    scope = {"sy": sy, "args": request["args"], "result": None}
    try:
        scope["high"] = sy.login(url="localhost", port=request["port"],
                                 email="info@example.org", password="changethis")
        exec(request["snippet"], scope)  # the test's own code, run where the high side lives
        answer = {"ok": True, "result": scope.get("result")}
    except Exception as err:  # reported to the test, which checks it
        answer = {"ok": False, "error": type(err).__name__, "message": str(err)}
    sys.stdout.write("\n" + json.dumps(answer, default=str) + "\n")


if __name__ == "__main__":
    main()
