#!/usr/bin/env python3
"""Worker pools (issue 19): a job in a pool whose environment imports scikit-learn beside the default pool's
trivial job, and the time to scale a pool from 1 to 4 warm slots.

Per run, one fresh server (`datasite launch --workers 1`, SQLite), an owner and a data scientist on kept-alive
connections, a private 2-row CSV asset:
- an image of the system Python whose warm-up imports scikit-learn
  (`worker_config: {"python": "/usr/bin/python3", "imports": ["sklearn", "sklearn.linear_model"]}`) and a pool
  "ml" of 1 slot running it (the POST that launches it is timed: one cold start);
- blocking private runs of approved code (`execute_count` policy), result inline (one round trip): `def f(data):
  return 1` in the default pool; a function fitting a 2-point LinearRegression (`from sklearn.linear_model
  import LinearRegression` at the top of its source) in "ml"; and, for context, the same trivial function in
  "ml" (the pool's own cost without scikit-learn's work) and the scikit-learn function in the default pool
  (where scikit-learn, installed system-wide, is imported by each job: what the warm template saves). The
  first three take turns in blocks of 20, N calls each; the last, 5 calls after them; p50 and p90 per kind;
- reference, in the same run: a cold `/usr/bin/python3 -c "import sklearn.linear_model"`, median of 5;
- scaling: POST /api/v1/worker_pools/ml/scale {"num_workers": 4} timed until it answers (it answers once the
  new slots are warm), then back to 1, three times; the server's bubblewrap processes are counted before and
  after each scale-up (a slot forked from the pool's warm template has none of its own, a fresh start has one);
  a job then runs in "ml" to show the scaled pool works;
- beside it: POST /api/v1/worker_pools launching a fresh pool "ml4" of the same image with num_workers=4
  (four cold starts).

Goals (issue 19): scikit-learn pool p50 <= 1.5x the default pool's trivial p50; scaling 1 -> 4 <= 2 s.

Usage: /usr/bin/python3 bench/pools.py [--runs 5] [--calls 100] [--json OUT]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from api_wrk import source_commit
from jobs import Conn, children, launch, setup, stop

PY = "/usr/bin/python3"
BLOCK = 20
SCALES = 3
MEASURED = ("default_trivial", "ml_sklearn", "ml_trivial")  # taking turns in blocks of BLOCK
CONTEXT_CALLS = 5  # the scikit-learn function in the default pool (imports it per job)
TRIVIAL = "def f(data):\n    return 1\n"
SKLEARN = ("from sklearn.linear_model import LinearRegression\n\n\n"
           "def g(data):\n"
           "    m = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0])\n"
           "    return float(m.coef_[0])\n")
WORKER_CONFIG = {"python": PY, "imports": ["sklearn", "sklearn.linear_model"]}


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def submit(admin, sci, name, source, asset_id, pool):
    body = {"name": name, "source": source, "inputs": {"data": {"asset_id": asset_id}},
            "output_policy": {"kind": "execute_count", "limit": 1000000}}
    if pool is not None:
        body["worker_pool_name"] = pool
    code = sci.call("POST", "/api/v1/code", body)
    req = sci.call("POST", "/api/v1/requests", {"code_id": code["id"], "reason": "bench"})
    admin.call("POST", "/api/v1/requests/%s/approve" % req["id"], {})
    return code["id"]


def bwraps(server_pid):
    """The server's bubblewrap children: one per freshly started slot (a cloned slot has none)."""
    n = 0
    for pid in children(server_pid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                n += f.read().strip() == "bwrap"
        except OSError:
            pass
    return n


def cold_import(n=5):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "import sklearn.linear_model"], check=True)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def one_run(calls):
    data_dir = tempfile.mkdtemp(prefix="poolbench-")
    proc, port = launch(data_dir, workers=1)
    try:
        admin, sci, asset_id = setup(port, b"a\n1\n2\n")
        image = admin.call("POST", "/api/v1/worker_images", {"name": "sklearn", "worker_config": WORKER_CONFIG})
        assert image["status"] == "ready", image
        launch1_ms, pool = timed(lambda: admin.call("POST", "/api/v1/worker_pools",
                                                    {"name": "ml", "image_id": image["id"], "num_workers": 1}))
        assert pool["status"] == "ready" and pool["workers_ready"] == 1, pool
        codes = {
            "default_trivial": (submit(admin, sci, "f", TRIVIAL, asset_id, None), 1),
            "ml_sklearn": (submit(admin, sci, "g", SKLEARN, asset_id, "ml"), 2.0),
            "ml_trivial": (submit(admin, sci, "f2", TRIVIAL.replace("def f", "def f2"), asset_id, "ml"), 1),
            "default_sklearn": (submit(admin, sci, "g2", SKLEARN.replace("def g", "def g2"), asset_id, None), 2.0),
        }

        def run(kind):
            code_id, expect = codes[kind]
            j = sci.call("POST", "/api/v1/code/%s/run" % code_id, {})
            assert j["status"] == "completed" and abs(j["result"]["inline"] - expect) < 1e-9, j

        for kind in codes:  # warm-up: the default pool's slot started, statements prepared
            for _ in range(1 if kind == "default_sklearn" else 3):
                run(kind)
        times = {k: [] for k in codes}
        for _ in range(max(1, calls // BLOCK)):
            for kind in MEASURED:
                for _ in range(BLOCK):
                    ms, _ = timed(lambda: run(kind))
                    times[kind].append(ms)
        for _ in range(CONTEXT_CALLS):  # scikit-learn imported by each job: seconds a call, a few suffice
            ms, _ = timed(lambda: run("default_sklearn"))
            times["default_sklearn"].append(ms)
        out = {}
        for kind, t in times.items():
            out[kind + "_p50_ms"] = statistics.median(t)
            out[kind + "_p90_ms"] = pct(t, 0.9)
        out["ratio"] = out["ml_sklearn_p50_ms"] / out["default_trivial_p50_ms"]
        out["ml_trivial_ratio"] = out["ml_trivial_p50_ms"] / out["default_trivial_p50_ms"]
        out["cold_import_ms"] = cold_import()

        # Scaling 1 -> 4 (and back to 1 between), timed until the answer, which comes once the slots are warm.
        # The owner's connection sat idle through the latency runs (the server closes idle ones): a new one.
        admin = Conn(port, admin.token)
        scale_ms, bwrap_added = [], []
        for _ in range(SCALES):
            before = bwraps(proc.pid)
            ms, pool = timed(lambda: admin.call("POST", "/api/v1/worker_pools/ml/scale", {"num_workers": 4}))
            assert pool["workers_ready"] == 4, pool
            scale_ms.append(ms)
            bwrap_added.append(bwraps(proc.pid) - before)
            run("ml_sklearn")  # the scaled pool runs jobs
            down = admin.call("POST", "/api/v1/worker_pools/ml/scale", {"num_workers": 1})
            assert down["num_workers"] == 1, down
            time.sleep(0.5)
        out["scale_first_ms"] = scale_ms[0]
        out["scale_ms_all"] = scale_ms
        out["scale_bwraps_added"] = bwrap_added

        # Beside it: a fresh pool of 4 slots, each a cold start of the image.
        before = bwraps(proc.pid)
        ms, pool = timed(lambda: admin.call("POST", "/api/v1/worker_pools",
                                            {"name": "ml4", "image_id": image["id"], "num_workers": 4}))
        assert pool["workers_ready"] == 4, pool
        out["launch4_ms"] = ms
        out["launch4_bwraps_added"] = bwraps(proc.pid) - before
        out["launch1_ms"] = launch1_ms
        out["load"] = " ".join(open("/proc/loadavg").read().split()[:3])
        return out
    finally:
        stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--json")
    a = ap.parse_args()
    runs = []
    for i in range(a.runs):
        r = one_run(a.calls)
        runs.append(r)
        print("run %d: default trivial p50 %.1f ms (p90 %.1f); ml sklearn p50 %.1f ms (p90 %.1f), %.2fx; ml trivial "
              "%.1f ms; default sklearn %.1f ms; cold import %.0f ms; scale 1->4 %s ms (bwraps added %s); "
              "launch 4 %.0f ms (bwraps %d); launch 1 %.0f ms; load %s" % (
                  i + 1, r["default_trivial_p50_ms"], r["default_trivial_p90_ms"], r["ml_sklearn_p50_ms"],
                  r["ml_sklearn_p90_ms"], r["ratio"], r["ml_trivial_p50_ms"], r["default_sklearn_p50_ms"],
                  r["cold_import_ms"], ", ".join("%.0f" % v for v in r["scale_ms_all"]),
                  r["scale_bwraps_added"], r["launch4_ms"], r["launch4_bwraps_added"], r["launch1_ms"], r["load"]),
              flush=True)
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    res = {"kind": "pools", "commit": source_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "runs": a.runs, "calls": a.calls, "scales_per_run": SCALES, "per_run": runs,
           "load": [r["load"] for r in runs]}
    res.update({k: statistics.median(r[k] for r in runs) for k in keys})
    res["scale_all_median_ms"] = statistics.median(v for r in runs for v in r["scale_ms_all"])
    res["scale_max_ms"] = max(v for r in runs for v in r["scale_ms_all"])
    res["scale_vs_launch4"] = statistics.median(r["scale_first_ms"] / r["launch4_ms"] for r in runs)
    res["cold_vs_sklearn"] = res["cold_import_ms"] / res["ml_sklearn_p50_ms"]
    res["ratio_met"] = res["ratio"] <= 1.5
    res["scale_met"] = res["scale_first_ms"] <= 2000
    print(json.dumps(res, indent=1))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
