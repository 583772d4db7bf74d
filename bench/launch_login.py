#!/usr/bin/env python3
"""Launch-to-ready and login latency, each beside its reference in the same run.

- launch-to-ready: from spawning `datasite launch` to the first 200 from /readyz (polled every 2 ms), for a
  first start (empty storage: makes identity, settings, and hashes the root password) and a relaunch; the
  reference is the same measure for a minimal FastAPI + uvicorn app (PySyft's server stack).
- login: sequential logins over loopback (HTTP keep-alive); references: one argon2id verify alone (the
  floor: build/bench/argon2_reference), and a FastAPI login checking bcrypt cost 12 (what PySyft 0.9 does).
- no stall: p50 of GET /api/v1/settings alone, then while two clients log in without pause.

Usage: /usr/bin/python3 bench/launch_login.py [--runs 7] [--json OUT]
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# Every bench client connects from 127.0.0.1: the server's per-address connection limit
# (--max-connections-per-address, 64 by default) is for many addresses, not one load generator.
os.environ.setdefault("DATASITE_MAX_CONNECTIONS_PER_ADDRESS", "10000")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("DATASITE_BINARY", os.path.join(ROOT, "build", "datasite"))
ARGON2 = os.path.join(os.path.dirname(BINARY), "bench", "argon2_reference")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connection(port, tls=False, timeout=None):
    """A connection to a server on loopback; over TLS it accepts any certificate (the benches make a
    self-signed one, and only measure)."""
    if tls:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                           context=ssl._create_unverified_context())
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def wait_ready(port, proc, timeout=30.0, tls=False):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            c = connection(port, tls, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                c.close()
                return time.perf_counter()
            c.close()
        except OSError:
            pass
        if proc.poll() is not None:
            raise RuntimeError("server exited during start-up")
        time.sleep(0.002)
    raise RuntimeError("server not ready in time")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def datasite_launch(data_dir, reset, extra_args=(), tls=False):
    """Launches datasite on a free loopback port with `extra_args` added to `datasite launch`; tls says
    whether those make it serve HTTPS. Returns (ms to ready, proc, port); stops the server if it does not
    get ready."""
    port = free_port()
    args = [BINARY, "launch", "--name", "bench", "--port", str(port), "--host", "127.0.0.1", "--data-dir",
            data_dir, "--login-attempts-per-minute", "1000000"]
    if reset:
        args.append("--reset")
    args += extra_args
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = wait_ready(port, proc, tls=tls)
    except BaseException:
        stop(proc)
        raise
    return (ready - start) * 1000, proc, port


def fastapi_launch(db):
    port = free_port()
    env = dict(os.environ, REF_DB=db)
    start = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "uvicorn", "fastapi_app:app", "--port", str(port),
                             "--log-level", "warning"], cwd=os.path.join(ROOT, "bench", "reference"),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = wait_ready(port, proc)
    return (ready - start) * 1000, proc, port


def post_json(conn, path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request("POST", path, json.dumps(body), headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def login_latencies(port, n):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        status, data = post_json(conn, "/api/v1/auth/login",
                                 {"email": "info@example.org", "password": "changethis"})
        out.append((time.perf_counter() - t) * 1000)
        if status != 200:
            raise RuntimeError("login failed: %s %s" % (status, data[:200]))
    token = json.loads(data)["token"]
    conn.close()
    return out, token


def get_latencies(port, token, n):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        conn.request("GET", "/api/v1/settings", headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        r.read()
        out.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            raise RuntimeError("settings failed: %s" % r.status)
    conn.close()
    return out


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--logins", type=int, default=30)
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="datasite-bench-")
    res = {"runs": a.runs}
    try:
        first, relaunch, ref = [], [], []
        for i in range(a.runs):
            d = os.path.join(tmp, "ds%d" % i)
            ms, proc, _ = datasite_launch(d, reset=True)
            first.append(ms)
            stop(proc)
            ms, proc, _ = datasite_launch(d, reset=False)
            relaunch.append(ms)
            stop(proc)
            db = os.path.join(tmp, "ref%d.db" % i)
            ms, proc, _ = fastapi_launch(db)  # first start: seeds the DB and hashes with bcrypt
            stop(proc)
            ms, proc, _ = fastapi_launch(db)
            ref.append(ms)
            stop(proc)
        res["launch_first_ms"] = statistics.median(first)
        res["launch_relaunch_ms"] = statistics.median(relaunch)
        res["launch_fastapi_ms"] = statistics.median(ref)

        # Login, one server for all rounds; the median of per-round p50s.
        _, proc, port = datasite_launch(os.path.join(tmp, "login"), reset=True)
        _, rproc, rport = fastapi_launch(os.path.join(tmp, "login-ref.db"))
        try:
            p50s, p90s, ref_p50s, argon = [], [], [], []
            for _ in range(a.runs):
                lat, token = login_latencies(port, a.logins)
                p50s.append(pct(lat, 50))
                p90s.append(pct(lat, 90))
                rlat, _ = login_latencies(rport, max(5, a.logins // 3))
                ref_p50s.append(pct(rlat, 50))
                argon.append(float(subprocess.check_output([ARGON2, "9"]).decode()))
            res["login_p50_ms"] = statistics.median(p50s)
            res["login_p90_ms"] = statistics.median(p90s)
            res["login_fastapi_bcrypt12_p50_ms"] = statistics.median(ref_p50s)
            res["argon2id_verify_ms"] = statistics.median(argon)

            # No stall: settings latency alone, then during continuous logins from two clients.
            alone = []
            for _ in range(a.runs):
                alone.append(pct(get_latencies(port, token, 300), 50))
            stop_flag = threading.Event()

            def hammer():
                conn = http.client.HTTPConnection("127.0.0.1", port)
                while not stop_flag.is_set():
                    post_json(conn, "/api/v1/auth/login", {"email": "info@example.org", "password": "changethis"})
                conn.close()

            threads = [threading.Thread(target=hammer) for _ in range(2)]
            for t in threads:
                t.start()
            time.sleep(0.3)
            during = []
            for _ in range(a.runs):
                lat = get_latencies(port, token, 300)
                during.append((pct(lat, 50), pct(lat, 99)))
            stop_flag.set()
            for t in threads:
                t.join()
            res["settings_p50_alone_ms"] = statistics.median(alone)
            res["settings_p50_during_logins_ms"] = statistics.median([d[0] for d in during])
            res["settings_p99_during_logins_ms"] = statistics.median([d[1] for d in during])
        finally:
            stop(proc)
            stop(rproc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
