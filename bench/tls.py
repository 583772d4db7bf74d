#!/usr/bin/env python3
"""What TLS costs: requests/s of an authenticated read, plain HTTP against HTTPS, on the same server.

One data directory; each run launches datasite on it twice, once plain and once with --tls-cert/--tls-key
(a P-256 certificate made here with the openssl command; the order alternates from run to run), logs in
and runs wrk on GET /api/v1/settings with the session token in the Authorization header (wrk keeps its
connections alive, as clients do: the handshakes happen once per connection). Figures are medians over
runs; the ratio is the median of the runs' own HTTPS / HTTP ratios. Goal (issue 16): >= 0.7x.

Every wrk run must end with no socket errors, no non-2xx answer and bytes that match the response size
(api_wrk.check), or this script fails.

Usage: /usr/bin/python3 bench/tls.py [--runs 5] [--duration 10] [--threads 2] [--connections 64] [--json OUT]
"""
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_wrk import check, source_commit, write_wrk_script, wrk, wrk_argument_parser, wrk_version  # noqa: E402
from launch_login import connection, datasite_launch, stop  # noqa: E402

ROUTE = "/api/v1/settings"
GOAL = 0.7


def make_certificate(d):
    """A self-signed P-256 certificate for 127.0.0.1; (cert, key) paths, the key owner-only."""
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def launch(data_dir, tls_files, reset=False):
    args = ["--tls-cert", tls_files[0], "--tls-key", tls_files[1]] if tls_files else []
    _, proc, port = datasite_launch(data_dir, reset, extra_args=args, tls=bool(tls_files))
    return proc, port


def login(port, tls):
    c = connection(port, tls, timeout=5)
    c.request("POST", "/api/v1/auth/login",
              json.dumps({"email": "info@example.org", "password": "changethis"}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError("login failed: %d %s" % (r.status, body[:200]))
    return json.loads(body)["token"]


def body_length(port, tls, token):
    c = connection(port, tls, timeout=5)
    c.request("GET", ROUTE, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    n = len(r.read())
    c.close()
    return n


def measure(data_dir, tls_files, a, script):
    tls = bool(tls_files)
    proc, port = launch(data_dir, tls_files)
    try:
        token = login(port, tls)
        size = body_length(port, tls, token)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        r = wrk(port, ROUTE, token, a, script, proc.pid, scheme="https" if tls else "http")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # wrk is the only child that ends meanwhile: its own CPU, TLS included, on the same cores.
        wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        r["client_cpu_us_per_request"] = wrk_cpu * 1e6 / max(r["requests"], 1)
        check(r, ("https" if tls else "http") + " " + ROUTE, size)
        r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
        r["body_bytes"] = size
        return r
    finally:
        stop(proc)


def main():
    a = wrk_argument_parser().parse_args()
    if not shutil.which("wrk") or not shutil.which("openssl"):
        raise SystemExit("tls.py needs wrk and openssl (Debian packages wrk, openssl)")
    tmp = tempfile.mkdtemp(prefix="datasite-tls-", dir=os.environ.get("BENCH_DIR"))
    try:
        script = write_wrk_script(tmp)
        tls_files = make_certificate(tmp)
        data_dir = os.path.join(tmp, "data")
        proc, _ = launch(data_dir, None, reset=True)  # first start: identity, settings, root hash
        stop(proc)
        runs = []
        for i in range(a.runs):
            order = [None, tls_files] if i % 2 == 0 else [tls_files, None]
            got = {("https" if files else "http"): measure(data_dir, files, a, script) for files in order}
            got["ratio"] = got["https"]["rps"] / got["http"]["rps"]
            print("run %d: http %.0f req/s, https %.0f req/s, ratio %.2f" % (
                i + 1, got["http"]["rps"], got["https"]["rps"], got["ratio"]), flush=True)
            runs.append(got)

        def med(scheme, key):
            return statistics.median(r[scheme][key] for r in runs)

        res = {"kind": "tls", "commit": source_commit(), "route": ROUTE,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": a.runs,
               "duration_s": a.duration, "threads": a.threads, "connections": a.connections,
               "body_bytes": runs[0]["http"]["body_bytes"],
               "wrk_version": wrk_version()}
        for scheme in ("http", "https"):
            res[scheme] = {"rps": med(scheme, "rps"), "p50_ms": med(scheme, "p50_us") / 1000,
                           "p99_ms": med(scheme, "p99_us") / 1000,
                           "cpu_us_per_request": med(scheme, "cpu_us_per_request"),
                           "client_cpu_us_per_request": med(scheme, "client_cpu_us_per_request")}
        res["ratio"] = statistics.median(r["ratio"] for r in runs)
        res["ratios"] = [round(r["ratio"], 3) for r in runs]
        res["goal"] = GOAL
        res["met"] = res["ratio"] >= GOAL
        res["load"] = " ".join(open("/proc/loadavg").read().split()[:3])
        print(json.dumps(res, indent=2))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
