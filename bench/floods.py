#!/usr/bin/env python3
"""Admin login latency while a flood of password changes runs (issue 11, "Floods").

Launches the server at DATASITE_BINARY on loopback with `--workers 0`, makes 8 data scientists, then
measures the root admin's login latency (p50 of 12 sequential logins) alone, and again while 8 threads
each change their own user's password back and forth (right old password, so every request hashes
twice). Prints both and their ratio, plus how many password changes were answered and refused.

Usage: DATASITE_BINARY=build/src/server/datasite /usr/bin/python3 bench/accounts_flood.py
"""
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# Every bench client connects from 127.0.0.1: the server's per-address connection limit
# (--max-connections-per-address, 64 by default) is for many addresses, not one load generator.
os.environ.setdefault("DATASITE_MAX_CONNECTIONS_PER_ADDRESS", "10000")

BINARY = os.environ.get("DATASITE_BINARY", "build/src/server/datasite")
ROOT = ("info@example.org", "changethis")
PW = ["Passw0rd-One-1", "Passw0rd-Two-2"]
FLOODERS = 8


def call(port, method, path, body=None, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data or b"null")


def login_ms(port):
    t = time.perf_counter()
    status, body = call(port, "POST", "/api/v1/auth/login", {"email": ROOT[0], "password": ROOT[1]})
    assert status == 200, body
    return (time.perf_counter() - t) * 1000


def p50_login(port, n=12):
    return statistics.median(login_ms(port) for _ in range(n))


def launched(workers, run):
    data = tempfile.mkdtemp(prefix="flood-")
    proc = subprocess.Popen(
        [BINARY, "launch", "--name", "flood", "--data-dir", data, "--port", "auto", "--host",
         "127.0.0.1", "--workers", str(workers), "--login-attempts-per-minute", "100000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = None
        for _ in range(300):
            try:
                port = json.load(open(os.path.join(data, "server.json")))["port"]
                if call(port, "GET", "/readyz")[0] == 200:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        run(port)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def logs_bench(port, suffix=""):
    _, root = call(port, "POST", "/api/v1/auth/login", {"email": ROOT[0], "password": ROOT[1]})
    call(port, "POST", "/api/v1/users",
         {"name": "S", "email": "sci@example.org", "password": PW[0]}, root["token"])
    token = call(port, "POST", "/api/v1/auth/login",
                 {"email": "sci@example.org", "password": PW[0]})[1]["token"]
    source = "def noisy():\n    print('x' * (1 << 20))\n    return 1\n"
    _, code = call(port, "POST", "/api/v1/code", {"name": "noisy", "source": source}, token)
    status, job = call(port, "POST", "/api/v1/code/{}/run".format(code["id"]), {"mock": True},
                       token)
    assert job.get("status") == "completed", job
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def account_ms():
        t = time.perf_counter()
        conn.request("GET", "/api/v1/account", headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        r.read()
        assert r.status == 200
        return (time.perf_counter() - t) * 1000

    alone = [account_ms() for _ in range(200)]
    stop = threading.Event()
    polls = [0]

    def poll():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            c.request("GET", "/api/v1/jobs/" + job["id"] + suffix,
                      headers={"Authorization": "Bearer " + token})
            c.getresponse().read()
            polls[0] += 1

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    during = [account_ms() for _ in range(200)]
    stop.set()
    for t in threads:
        t.join()
    print("polling /api/v1/jobs/{id}" + suffix + ": GET /api/v1/account alone p50 {:.2f} ms p99 {:.2f} ms; while 8 threads poll the job "
          "p50 {:.2f} ms p99 {:.2f} ms; ratio p50 {:.1f} p99 {:.1f}; {} polls".format(
              percentile(alone, 0.5), percentile(alone, 0.99), percentile(during, 0.5),
              percentile(during, 0.99), percentile(during, 0.5) / percentile(alone, 0.5),
              percentile(during, 0.99) / percentile(alone, 0.99), polls[0]))


def login_bench(port):
    _, root = call(port, "POST", "/api/v1/auth/login", {"email": ROOT[0], "password": ROOT[1]})
    tokens = []
    for i in range(FLOODERS):
        email = "flood{}@example.org".format(i)
        status, body = call(port, "POST", "/api/v1/users",
                            {"name": "F", "email": email, "password": PW[0]}, root["token"])
        assert status == 201, body
        tokens.append(call(port, "POST", "/api/v1/auth/login",
                           {"email": email, "password": PW[0]})[1]["token"])
    alone = p50_login(port)
    stop = threading.Event()
    counts = {"ok": 0, "refused": 0}

    def flood(token):
        k = 0
        while not stop.is_set():
            status, _ = call(port, "POST", "/api/v1/account/password",
                             {"old_password": PW[k % 2], "new_password": PW[(k + 1) % 2]}, token)
            if status == 200:
                k += 1
                counts["ok"] += 1
            else:
                counts["refused"] += 1
                time.sleep(0.01)

    threads = [threading.Thread(target=flood, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    time.sleep(1.0)
    flooded = p50_login(port)
    stop.set()
    for t in threads:
        t.join()
    print("admin login p50 alone {:.1f} ms, during the flood {:.1f} ms, ratio {:.2f}; "
          "password changes done {}, refused {}".format(
              alone, flooded, flooded / alone, counts["ok"], counts["refused"]))


if __name__ == "__main__":
    if sys.argv[1:] == ["logs"]:
        launched(1, logs_bench)
        launched(1, lambda port: logs_bench(port, "/logs"))
    else:
        launched(0, login_bench)
