#!/usr/bin/env python3
"""A custom API endpoint's call beside a trivial job: latency and CPU per call, side by side.

Issue 17's goal: a call to an endpoint's mock function has a p50 within 5 ms of a trivial job's p50, and
costs no more CPU than a trivial job; the private function the same plus its own time.

Per run, on one server (`datasite launch --workers 2`, SQLite) and kept-alive connections:
- trivial job: a data scientist's blocking run of approved code `def t(k): return k` (k bound to a
  constant), result inline: `POST /api/v1/code/{id}/run`;
- mock call: the data scientist's `POST /api/v1/api_endpoints/bench.echo/call` of a mock function
  `def m(context, k): return k`;
- private call: a data owner's call of the private function `def p(context, k): return k`.
Each kind runs in blocks of 20, the three kinds taking turns, N calls each in all. CPU is what the server
process and every sandbox process (the jobs' and the endpoints' templates and the children they reaped)
used over a kind's blocks, divided by its calls (from /proc/<pid>/stat).

Usage: /usr/bin/python3 bench/endpoints.py [--runs 5] [--calls 200] [--json OUT]
"""
import argparse
import json
import shutil
import statistics
import tempfile
import time

from api_wrk import source_commit
from jobs import Conn, approved, launch, setup, stop, usage

GOAL_MS = 5.0
BLOCK = 20
MOCK = "def m(context, k):\n    return k\n"
PRIVATE = "def p(context, k):\n    return k\n"
JOB = "def t(k):\n    return k\n"


def one_run(calls):
    data_dir = tempfile.mkdtemp(prefix="endpointbench-")
    proc, port = launch(data_dir)
    try:
        admin, sci, _ = setup(port, b"a\n1\n")
        admin.call("POST", "/api/v1/api_endpoints", {
            "path": "bench.echo",
            "mock": {"name": "m", "source": MOCK, "params": ["k"]},
            "private": {"name": "p", "source": PRIVATE, "params": ["k"], "settings": {"secret": "x"}},
        })
        code_id = approved(admin, sci, "t", JOB, {"k": {"value": 7}}, 100000)
        call_path = "/api/v1/api_endpoints/bench.echo/call"

        def job():
            j = sci.call("POST", "/api/v1/code/%s/run" % code_id, {})
            assert j["status"] == "completed" and j["result"]["inline"] == 7, j

        def mock():
            r = sci.call("POST", call_path, {"kwargs": {"k": 7}})
            assert r["side"] == "mock" and r["result"] == 7, r

        def private():
            r = admin.call("POST", call_path, {"side": "private", "kwargs": {"k": 7}})
            assert r["side"] == "private" and r["result"] == 7, r

        kinds = {"job": job, "mock": mock, "private": private}
        for f in kinds.values():  # warm-up: both sandboxes started, statements prepared
            for _ in range(10):
                f()
        times = {k: [] for k in kinds}
        cpu = {k: 0.0 for k in kinds}
        for _ in range(max(1, calls // BLOCK)):
            for name, f in kinds.items():
                before = usage(proc.pid)
                for _ in range(BLOCK):
                    t0 = time.perf_counter()
                    f()
                    times[name].append((time.perf_counter() - t0) * 1000)
                after = usage(proc.pid)
                cpu[name] += (after[0] - before[0]) + (after[2] - before[2])
        out = {}
        for name in kinds:
            out[name + "_p50_ms"] = statistics.median(times[name])
            out[name + "_cpu_ms"] = cpu[name] / len(times[name]) * 1000
        return out
    finally:
        stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--json")
    a = ap.parse_args()
    runs = []
    for i in range(a.runs):
        r = one_run(a.calls)
        runs.append(r)
        print("run %d: job p50 %.2f ms (%.1f ms CPU); mock call p50 %.2f ms (%.1f ms CPU); private call "
              "p50 %.2f ms (%.1f ms CPU)" % (i + 1, r["job_p50_ms"], r["job_cpu_ms"], r["mock_p50_ms"],
                                             r["mock_cpu_ms"], r["private_p50_ms"], r["private_cpu_ms"]),
              flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    res = {"kind": "endpoints", "commit": source_commit(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": a.runs, "calls": a.calls,
           "goal_ms": GOAL_MS, "per_run": runs, "load": " ".join(open("/proc/loadavg").read().split()[:3])}
    res.update(med)
    res["met"] = (med["mock_p50_ms"] - med["job_p50_ms"] <= GOAL_MS and med["mock_cpu_ms"] <= med["job_cpu_ms"])
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
