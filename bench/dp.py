#!/usr/bin/env python3
"""Differential-privacy queries: the server's DP engine beside pandas, and the budget ledger.

Issue 18's goals, measured in one run on one server (`datasite launch`, SQLite):
- a DP mean of `income` grouped by `region` (8 listed regions) over a 10-million-row CSV asset, end to
  end (an HTTP call on a kept-alive connection to the decoded answer) against, in the same run,
  `/usr/bin/python3` with pandas reading the same file and computing the same non-private aggregate
  (`pd.read_csv(f).groupby("region")["income"].mean()`, in a fresh process, its time measured inside
  it): goal ratio <= 1. The server keeps a column-oriented copy of the asset, read when the policy is
  set (reported: the upload and policy set together), whose memory is the server's resident-set growth
  across them; its disk cost is none (it lives in memory only).
- a DP count over a 1-million-row asset: p50 end to end, goal <= 50 ms.
- the ledger on a small asset (100 rows): budget-checked queries a second from wrk (2 threads, 16
  connections; goal >= 1,000), with the server's CPU per query, and 64 client threads racing for the last of a budget that affords exactly M queries:
  how many landed (goal: M, so 0 overspends) and what the ledger says was spent (<= the budget).

Usage: /usr/bin/python3 bench/dp.py [--runs 5] [--rows 10000000] [--json OUT]
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import types

from api_wrk import WRK_LUA, source_commit, wrk
from jobs import Conn, launch, stop

PY = "/usr/bin/python3"
REGIONS = ["r%d" % i for i in range(8)]


def write_csv(path, rows, seed):
    rng = random.Random(seed)
    with open(path, "w") as f:
        f.write("age,income,region\n")
        block = []
        for i in range(rows):
            block.append("%d,%.2f,%s\n" % (rng.randint(18, 90), rng.uniform(0, 200000),
                                           REGIONS[rng.randrange(8)]))
            if len(block) == 100000:
                f.write("".join(block))
                block = []
        f.write("".join(block))


POLICY = {
    "columns": {"age": {"type": "int", "lower": 0, "upper": 100},
                "income": {"type": "float", "lower": 0, "upper": 200000},
                "region": {"type": "category", "categories": REGIONS}},
    "budget": {"per_scientist": {"epsilon": 100, "delta": 1e-6},
               "total": {"epsilon": 100, "delta": 1e-6}},
}


def login(port):
    root = Conn(port)
    token = root.call("POST", "/api/v1/auth/login",
                      {"email": "info@example.org", "password": "changethis"})["token"]
    admin = Conn(port, token)
    admin.call("POST", "/api/v1/users",
               {"name": "Sci", "email": "sci@example.org", "password": "Bench-Passw0rd"})
    sci_token = Conn(port).call("POST", "/api/v1/auth/login",
                                {"email": "sci@example.org", "password": "Bench-Passw0rd"})["token"]
    return admin, token, sci_token


def upload(admin, path, name, policy):
    with open(path, "rb") as f:
        blob = admin.call("POST", "/api/v1/blobs?format=csv", raw=f.read(),
                          ctype="application/octet-stream")
    ds = admin.call("POST", "/api/v1/datasets",
                    {"name": name, "assets": [{"name": "t", "data": blob["id"]}]})
    asset_id = ds["assets"][0]["id"]
    admin.call("PUT", "/api/v1/assets/%s/dp_policy" % asset_id, policy)
    return asset_id


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1000, out


def pandas_reference(path):
    code = ("import time, pandas as pd\nt = time.perf_counter()\n"
            "m = pd.read_csv(%r).groupby('region')['income'].mean()\n"
            "print((time.perf_counter() - t) * 1000)\nassert len(m) == 8\n" % path)
    return float(subprocess.run([PY, "-c", code], check=True, capture_output=True,
                                text=True).stdout.strip())


def ledger(port, sci_token, asset_id, pid, tmp, seconds=5, connections=16):
    """Budget-checked DP counts a second on a small asset, from wrk (2 threads, 16 connections):
    every answer a 200 (the budget, 100 epsilon, pays for every query of 0.001); and the server's CPU
    per query."""
    script = os.path.join(tmp, "dp_query.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'{"query": "count", "epsilon": 0.001}\'\n'
                'wrk.headers["Content-Type"] = "application/json"\n' + WRK_LUA)
    a = types.SimpleNamespace(threads=2, connections=connections, duration=seconds)
    r = wrk(port, "/api/v1/assets/%s/dp/query" % asset_id, sci_token, a, script, pid)
    if r["status"] or r["connect"] or r["read"] or r["write"] or r["timeout"]:
        raise RuntimeError("ledger run had errors:\n" + r["report"])
    return r["requests"] / (r["duration_us"] / 1e6), r["cpu_us_per_request"], r["p99_us"] / 1000


def race(port, admin, sci_token, csv_path, clients=64):
    """64 clients race for a budget that affords exactly `affordable` queries."""
    policy = json.loads(json.dumps(POLICY))
    policy["budget"] = {"per_scientist": {"epsilon": 1, "delta": 1e-6},
                        "total": {"epsilon": 1, "delta": 1e-6}}
    asset_id = upload(admin, csv_path, "race-%d" % random.randrange(1 << 30), policy)
    sci = Conn(port, sci_token)
    cost = sci.call("POST", "/api/v1/assets/%s/dp/cost" % asset_id,
                    {"query": "count", "epsilon": 0.1})
    affordable = int(cost["budget"]["rho_total"] / cost["rho"] + 1e-9)
    landed = [0] * clients
    errors = []

    def worker(i):
        c = Conn(port, sci_token)
        while True:
            try:
                c.call("POST", "/api/v1/assets/%s/dp/query" % asset_id,
                       {"query": "count", "epsilon": 0.1})
                landed[i] += 1
            except RuntimeError as e:
                if "-> 409" not in str(e):
                    errors.append(str(e)[:200])
                return

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    budget = sci.call("GET", "/api/v1/dp/budget?asset_id=%s" % asset_id)["items"]
    mine = [b for b in budget if b["scope"] == "scientist"][0]
    return {"affordable": affordable, "landed": sum(landed), "errors": errors[:3],
            "rho_spent": mine["rho_spent"], "rho_total": mine["rho_total"],
            "overspends": max(0, sum(landed) - affordable)}


def one_run(rows, big_csv, small_csv, million_csv):
    data_dir = tempfile.mkdtemp(prefix="dpbench-")
    proc, port = launch(data_dir, workers=0)
    try:
        admin, _, sci_token = login(port)
        sci = Conn(port, sci_token)
        # Setting the policy reads the asset into the column copy: its time, and the memory it took.
        before = rss_kib(proc.pid)
        t0 = time.perf_counter()
        big = upload(admin, big_csv, "big", POLICY)
        cold_ms = (time.perf_counter() - t0) * 1000  # upload and policy set, the copy read with it
        copy_kib = rss_kib(proc.pid) - before
        mean = {"query": "mean", "column": "income", "group_by": "region", "epsilon": 0.5}
        answer = sci.call("POST", "/api/v1/assets/%s/dp/query" % big, mean)
        assert len(answer["estimates"]) == 8, answer
        warm = [timed(lambda: sci.call("POST", "/api/v1/assets/%s/dp/query" % big, mean))[0]
                for _ in range(5)]
        pandas_ms = pandas_reference(big_csv)
        million = upload(admin, million_csv, "million", POLICY)
        count = {"query": "count", "epsilon": 0.01}
        sci.call("POST", "/api/v1/assets/%s/dp/query" % million, count)  # reads the copy
        counts = [timed(lambda: sci.call("POST", "/api/v1/assets/%s/dp/query" % million,
                                         count))[0] for _ in range(30)]
        small = upload(admin, small_csv, "small", POLICY)
        qps, cpu_us, p99_ms = ledger(port, sci_token, small, proc.pid, data_dir)
        raced = race(port, admin, sci_token, small_csv)
        return {"mean_cold_ms": cold_ms, "mean_warm_ms": statistics.median(warm),
                "pandas_ms": pandas_ms, "copy_mib": copy_kib / 1024,
                "count_1m_p50_ms": statistics.median(counts), "ledger_qps": qps,
                "ledger_cpu_us": cpu_us, "ledger_p99_ms": p99_ms, "race": raced}
    finally:
        stop(proc)
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dpbench-data-")
    try:
        big, small, million = (os.path.join(work, n) for n in ("big.csv", "small.csv", "m.csv"))
        write_csv(big, args.rows, 1)
        write_csv(million, min(args.rows, 1_000_000), 2)
        write_csv(small, 100, 3)
        runs = [one_run(args.rows, big, small, million) for _ in range(args.runs)]
        csv_bytes = os.path.getsize(big)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
    out = {"csv_bytes": csv_bytes, "kind": "dp", "commit": source_commit(), "runs": args.runs, "rows": args.rows,
           "mean_cold_ms": med("mean_cold_ms"), "mean_warm_ms": med("mean_warm_ms"),
           "pandas_ms": med("pandas_ms"), "ratio_warm": med("mean_warm_ms") / med("pandas_ms"),
           "ratio_cold": med("mean_cold_ms") / med("pandas_ms"), "copy_mib": med("copy_mib"),
           "count_1m_p50_ms": med("count_1m_p50_ms"), "ledger_qps": med("ledger_qps"),
           "ledger_cpu_us": med("ledger_cpu_us"), "ledger_p99_ms": med("ledger_p99_ms"),
           "race": [r["race"] for r in runs],
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "load": " ".join(open("/proc/loadavg").read().split()[:3])}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
