#!/usr/bin/env python3
"""How fast a run past its grant's limit is refused, beside what an admitted run and a plain read cost.

A grant (a request approved for repeated use, `request.approve(repeat=sy.RateLimit(...))`) lets a data
scientist run the same code again without review within per-minute/hour/day windows. Past a window the
run is refused with 429 before any job row is written, so no sandbox starts. Issue 17's goal: that
refusal in <= 2 ms.

Per run, on one server (`datasite launch --workers 2`, SQLite) and one kept-alive connection:
- refused: a scientist whose grant allows 1 run a day, after that run, sends N more
  `POST /api/v1/code/{id}/run` ({"blocking": false}); each answer must be 429 with Retry-After. The
  time is from sending the request to reading the whole answer. The server's CPU time per refusal comes
  from /proc/<pid>/stat around the N calls.
- reference, the floor of an authenticated call: `GET /api/v1/jobs/{id}` of the scientist's one job,
  N times on the same connection.
- reference, an admitted run: a trivial blocking private run (`return 1`) under a second grant with room
  (M runs): what a run costs when it is let through (queue, sandbox fork, result).
After the run the first grant must still count exactly 1 run: the refusals left nothing behind.

Usage: /usr/bin/python3 bench/grants.py [--runs 5] [--calls 300] [--json OUT]
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import tempfile
import time

from api_wrk import source_commit
from jobs import Conn, launch, proc_stat, setup, stop

GOAL_MS = 2.0
SOURCE_A = "def once(data):\n    return 1\n"
SOURCE_B = "def often(data):\n    return 1\n"


def granted(admin, sci, name, source, inputs, repeat):
    code = sci.call("POST", "/api/v1/code", {"name": name, "source": source, "inputs": inputs})
    req = sci.call("POST", "/api/v1/requests", {"code_id": code["id"], "reason": "bench"})
    answer = admin.call("POST", "/api/v1/requests/%s/approve" % req["id"], {"repeat": repeat})
    return code["id"], answer["grant"]["id"]


def timed_raw(conn, method, path, body, expect):
    """Milliseconds for one call on `conn` (a Conn), checking the status."""
    headers = {"Authorization": "Bearer " + conn.token, "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    t0 = time.perf_counter()
    conn.c.request(method, path, body=data, headers=headers)
    r = conn.c.getresponse()
    payload = r.read()
    ms = (time.perf_counter() - t0) * 1000
    if r.status != expect:
        raise RuntimeError("{} {} -> {} {}".format(method, path, r.status, payload[:300]))
    if expect == 429 and not r.getheader("Retry-After"):
        raise RuntimeError("a 429 without Retry-After")
    return ms


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def one_run(calls, admitted_runs):
    data_dir = tempfile.mkdtemp(prefix="grantbench-")
    proc, port = launch(data_dir)
    try:
        csv = b"a\n" + b"".join(b"%d\n" % i for i in range(100))
        admin, sci, asset_id = setup(port, csv)
        inputs = {"data": {"asset_id": asset_id}}
        code_a, grant_a = granted(admin, sci, "once", SOURCE_A, inputs, {"per_day": 1})
        code_b, _ = granted(admin, sci, "often", SOURCE_B, inputs, {"per_minute": 1000})
        # The one run grant A allows (it also waits for the sandbox to be up).
        job = sci.call("POST", "/api/v1/code/%s/run" % code_a, {})
        assert job["status"] == "completed", job
        run_path = "/api/v1/code/%s/run" % code_a
        for _ in range(20):  # warm-up: prepared statements, caches
            timed_raw(sci, "POST", run_path, {"blocking": False}, 429)
        cpu0, _ = proc_stat(proc.pid)
        refused = [timed_raw(sci, "POST", run_path, {"blocking": False}, 429) for _ in range(calls)]
        cpu1, _ = proc_stat(proc.pid)
        job_path = "/api/v1/jobs/%s" % job["id"]
        for _ in range(20):
            timed_raw(sci, "GET", job_path, None, 200)
        reads = [timed_raw(sci, "GET", job_path, None, 200) for _ in range(calls)]
        admitted = []
        for _ in range(admitted_runs):
            t0 = time.perf_counter()
            j = sci.call("POST", "/api/v1/code/%s/run" % code_b, {})
            admitted.append((time.perf_counter() - t0) * 1000)
            assert j["status"] == "completed" and j["result"]["inline"] == 1, j
        runs_a = admin.call("GET", "/api/v1/grants/%s" % grant_a)["runs"]
        assert runs_a == 1, "the refusals left jobs behind: grant A counts %d runs" % runs_a
        return {
            "refused_p50_ms": statistics.median(refused),
            "refused_p99_ms": percentile(refused, 0.99),
            "refused_cpu_us": (cpu1 - cpu0) / calls * 1e6,
            "read_p50_ms": statistics.median(reads),
            "admitted_p50_ms": statistics.median(admitted),
        }
    finally:
        stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--admitted", type=int, default=30)
    ap.add_argument("--json")
    a = ap.parse_args()
    runs = []
    for i in range(a.runs):
        r = one_run(a.calls, a.admitted)
        runs.append(r)
        print("run %d: refused p50 %.2f ms p99 %.2f ms (%.0f us CPU); read p50 %.2f ms; admitted run p50 %.2f ms" % (
            i + 1, r["refused_p50_ms"], r["refused_p99_ms"], r["refused_cpu_us"], r["read_p50_ms"],
            r["admitted_p50_ms"]), flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    res = {"kind": "grants", "commit": source_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "runs": a.runs, "calls": a.calls, "admitted_runs": a.admitted, "goal_ms": GOAL_MS,
           "met": med["refused_p50_ms"] <= GOAL_MS, "per_run": runs,
           "load": " ".join(open("/proc/loadavg").read().split()[:3])}
    res.update(med)
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
