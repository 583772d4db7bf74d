"""Authenticated API reads through nginx: two datasite replicas sharing one PostgreSQL database against
one datasite on SQLite, behind the same nginx in the same run (issue 15's goal: the replicas serve at
least 0.8x the requests a second, at a server CPU per request within 1.3x, the database's own CPU
counted on the PostgreSQL side).

    /usr/bin/python3 bench/replicas.py [--runs 5] [--duration 10] [--datasets 1000] [--json FILE]

A private PostgreSQL 15 is started with scripts/pg.sh (and stopped at the end); nginx (2 worker
processes) proxies one port to the SQLite server and another to the two replicas, with keep-alive
connections upstream. wrk (-t2 -c64) reads the routes of bench/api_wrk.py with the Authorization header
of a real session; every run must have no error, only 2xx answers and the expected bytes. Runs are
interleaved (SQLite, then PostgreSQL, per route and run); figures are medians, each ratio the median of
the runs' own ratios. wrk, nginx, the servers and PostgreSQL share the machine's cores.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_wrk import ROUTES, WRK_LUA, check, cpu_seconds, get, source_commit, wrk  # noqa: E402
from launch_login import BINARY, free_port, wait_ready  # noqa: E402
from upload_list import login, seed_datasets  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NGINX_CONF = """
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  upstream sqlite {{ server 127.0.0.1:{sqlite}; keepalive 64; }}
  upstream replicas {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{sqlite_front};
    location / {{ proxy_pass http://sqlite; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_set_header Host 127.0.0.1; }}
  }}
  server {{
    listen 127.0.0.1:{replicas_front};
    location / {{ proxy_pass http://replicas; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_set_header Host 127.0.0.1; }}
  }}
}}
"""


def launch(data_dir, name, database=None):
    port = free_port()
    args = [BINARY, "launch", "--name", name, "--port", str(port), "--host", "127.0.0.1",
            "--data-dir", data_dir, "--login-attempts-per-minute", "1000000"]
    if database:
        args += ["--database", database]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc, port


def postmaster_pid(pgdir):
    with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
        return int(f.readline())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections")
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--json")
    a = ap.parse_args()
    procs = []
    pgdir = tempfile.mkdtemp(prefix="datasite-bench-pg.")
    tmp = tempfile.mkdtemp(prefix="datasite-bench-replicas.")
    try:
        url = subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"), "start", pgdir], check=True,
                             capture_output=True, text=True, timeout=120).stdout.strip()
        sproc, sport = launch(os.path.join(tmp, "sqlite"), "bench-sqlite")
        aproc, aport = launch(os.path.join(tmp, "a"), "bench-a", url)
        procs += [sproc, aproc]
        stoken, ptoken = login(sport), login(aport)
        seed_datasets(sport, stoken, a.datasets, tmp)
        seed_datasets(aport, ptoken, a.datasets, tmp)
        bproc, bport = launch(os.path.join(tmp, "b"), "bench-b", url)
        procs.append(bproc)
        # Both sides answer the same documents but their own ids and times: compare sizes, not bytes.
        bodies = {}
        for route, path in ROUTES.items():
            s, pa, pb = (get(p, path, t) for p, t in ((sport, stoken), (aport, ptoken), (bport, ptoken)))
            if pa != pb:
                raise RuntimeError("the replicas answer %s differently" % path)
            bodies[route] = {"sqlite": len(s), "postgres": len(pa)}
        ndir = os.path.join(tmp, "nginx")
        os.makedirs(ndir)
        fronts = {"sqlite": free_port(), "postgres": free_port()}
        with open(os.path.join(ndir, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(dir=ndir, sqlite=sport, a=aport, b=bport,
                                      sqlite_front=fronts["sqlite"], replicas_front=fronts["postgres"]))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(ndir, "nginx.conf"), "-p", ndir, "-g",
                                  "daemon off;"], stderr=subprocess.PIPE)
        procs.append(nginx)
        for port in fronts.values():
            wait_ready(port, nginx)
        script = os.path.join(tmp, "summary.lua")
        with open(script, "w") as f:
            f.write(WRK_LUA)
        pg_pid = postmaster_pid(pgdir)
        sides = {"sqlite": (fronts["sqlite"], stoken, [sproc.pid]),
                 "postgres": (fronts["postgres"], ptoken, [aproc.pid, bproc.pid, pg_pid])}
        results = {route: {side: [] for side in sides} for route in ROUTES}
        for run in range(a.runs):
            for route, path in ROUTES.items():
                for side, (port, token, pids) in sides.items():
                    cpu = sum(cpu_seconds(p) for p in pids)
                    r = wrk(port, path, token, a, script, nginx.pid)
                    cpu = sum(cpu_seconds(p) for p in pids) - cpu
                    check(r, "%s %s run %d" % (side, route, run + 1), bodies[route][side])
                    r["server_cpu_us_per_request"] = cpu * 1e6 / r["requests"]
                    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
                    del r["report"]
                    results[route][side].append(r)
                    print("%s %-8s run %d: %.0f req/s, p99 %.1f ms, server CPU %.0f us/request" % (
                        side, route, run + 1, r["rps"], r["p99_us"] / 1000,
                        r["server_cpu_us_per_request"]), flush=True)
        summary = {}
        for route in ROUTES:
            s, p = results[route]["sqlite"], results[route]["postgres"]
            summary[route] = {
                "sqlite_rps": statistics.median(r["rps"] for r in s),
                "postgres_rps": statistics.median(r["rps"] for r in p),
                "rps_ratio": statistics.median(y["rps"] / x["rps"] for x, y in zip(s, p)),
                "sqlite_cpu_us": statistics.median(r["server_cpu_us_per_request"] for r in s),
                "postgres_cpu_us": statistics.median(r["server_cpu_us_per_request"] for r in p),
                "cpu_ratio": statistics.median(y["server_cpu_us_per_request"] / x["server_cpu_us_per_request"]
                                               for x, y in zip(s, p)),
                "sqlite_p99_ms": statistics.median(r["p99_us"] for r in s) / 1000,
                "postgres_p99_ms": statistics.median(r["p99_us"] for r in p) / 1000,
            }
        out = {"commit": source_commit(), "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "runs": a.runs, "duration": a.duration, "datasets": a.datasets, "summary": summary,
               "results": results}
        print(json.dumps(summary, indent=2))
        if a.json:
            with open(a.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"), "stop", pgdir], timeout=120)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
