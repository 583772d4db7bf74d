#!/usr/bin/env python3
"""1,000 logged-in data scientists listing datasets and polling their jobs at once (issue 15's goal: p99 <=
100 ms, bounded, over loopback), against (a) one datasite on SQLite and (b) two `datasite serve` replicas
sharing a private PostgreSQL 15 behind nginx, in the same run.

Set-up, once per side: the admin creates the scientists through the API (POST /api/v1/users, in parallel),
each logs in once (so both sides pay 2,000 argon2id hashes first), submits a small code (`return k`) and has
it approved, and runs it once, non-blocking: its job. 100 datasets are stored (bench/upload_list.py's seeding).

Load, a closed loop: one Python thread per scientist, each on its own kept-alive connection with its own
token, loops GET /api/v1/datasets?page=1&page_size=50, then GET /api/v1/jobs/{its job}, then thinks for
--think seconds (default 1, with a random start so they don't march in step), for --duration seconds. The
latency of each request is from sending it to having read the whole answer, in the client thread; every
answer must be a 200. Figures per side and run: p50 / p99 over all requests, requests/s, server CPU per
request (the datasite processes, and on PostgreSQL every process of the instance; nginx left out) and the
client's own CPU (this process, all threads; 2 cores shared by everyone). Sides alternate per run; figures
are medians of runs.

With --jobs-stay-queued the servers have no job slots, so the polled jobs stay queued and a poll reads no
result (a check of what reading an ended job's result costs; not what run.sh runs).

Usage: /usr/bin/python3 bench/scientists.py [--runs 3] [--users 1000] [--duration 20] [--think 1]
                                            [--jobs-stay-queued] [--json OUT]
"""
import argparse
import collections
import http.client
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_wrk import cpu_seconds, source_commit  # noqa: E402
from render import machine  # noqa: E402
from jobs import Conn, approved, stop  # noqa: E402
from jobs_queue import dump, log_statements, psql, transactions  # noqa: E402
from launch_login import BINARY, free_port, wait_ready  # noqa: E402
from replicas import NGINX_CONF, postmaster_pid  # noqa: E402
from upload_list import login, seed_datasets  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "Bench-Passw0rd"
LIST = "/api/v1/datasets?page=1&page_size=50"


def serve(data_dir, name, workers, database=None, storage=None):
    """One `datasite serve` with `workers` job slots of its own (the set-up runs one job per scientist; with none,
    and no `datasite worker`, the jobs stay queued)."""
    port = free_port()
    args = [BINARY, "serve", "--name", name, "--port", str(port), "--data-dir", data_dir, "--workers", str(workers),
            "--login-attempts-per-minute", "1000000"]
    if database:
        args += ["--database", database, "--storage-dir", storage]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc, port


def hashing(call):
    """`call()`, again while the server answers 429: its password-hashing lane is full (a few hashes at once)."""
    while True:
        try:
            return call()
        except RuntimeError as e:
            if " -> 429 " not in str(e):
                raise
            time.sleep(0.2)


def scientist(i, ports, admin_token, code_review):
    """Creates scientist i through one of `ports`, logs in, has a code approved and runs it: (token, job id)."""
    port = ports[i % len(ports)]
    email = "sci%d@example.org" % i
    hashing(lambda: Conn(port, admin_token).call("POST", "/api/v1/users", {"name": "Sci %d" % i, "email": email,
                                                                         "password": PASSWORD}))
    sci = Conn(port, hashing(lambda: Conn(port).call("POST", "/api/v1/auth/login",
                                                     {"email": email, "password": PASSWORD}))["token"])
    code_id = code_review(Conn(port, admin_token), sci, "echo%d" % i)
    job = sci.call("POST", "/api/v1/code/%s/run" % code_id, {"blocking": False})
    return sci.token, job["id"]


def make_scientists(n, ports, admin_token):
    def review(admin, sci, name):
        return approved(admin, sci, name, "def %s(k):\n    return k\n" % name, {"k": {"value": 1}}, 1_000_000)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda i: scientist(i, ports, admin_token, review), range(n)))


def load(ports, users, duration, think):
    """The closed loop, scientist k on ports[k % len(ports)]; returns (latencies in ms of the listings, of the
    job reads, client CPU seconds, wall seconds)."""
    start = threading.Barrier(len(users) + 1)
    results = [None] * len(users)
    errors = []

    def user(k, token, job_id):
        c = http.client.HTTPConnection("127.0.0.1", ports[k % len(ports)], timeout=60)
        headers = {"Authorization": "Bearer " + token}
        lat = ([], [])
        start.wait()
        time.sleep(random.uniform(0, think))
        end = t_end[0]
        try:
            while time.perf_counter() < end:
                for route, path in enumerate((LIST, "/api/v1/jobs/" + job_id)):
                    t0 = time.perf_counter()
                    c.request("GET", path, headers=headers)
                    r = c.getresponse()
                    body = r.read()
                    lat[route].append((time.perf_counter() - t0) * 1000)
                    if r.status != 200:
                        raise RuntimeError("GET %s: %d %s" % (path, r.status, body[:200]))
                time.sleep(think)
        except Exception as e:  # noqa: BLE001 - any failure fails the run, reported below
            errors.append(repr(e))
        results[k] = lat
        c.close()

    t_end = [0.0]
    threading.stack_size(256 << 10)
    threads = [threading.Thread(target=user, args=(k, tok, job)) for k, (tok, job) in enumerate(users)]
    for t in threads:
        t.start()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    t_end[0] = t0 + duration
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    if errors:
        raise RuntimeError("%d of %d scientists failed, e.g. %s" % (len(errors), len(users), errors[0]))
    return ([v for r in results for v in r[0]], [v for r in results for v in r[1]],
            (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), wall)


def statement_profile(url, pgdir, ports, users, a):
    """Statements and transactions per request the replicas send PostgreSQL under the same load (scientists
    straight to the replicas), counted with log_statement = 'all' for the count only."""
    log = os.path.join(pgdir, "postgres.log")
    psql(url, "ALTER SYSTEM SET log_statement = 'all'")
    psql(url, "SELECT pg_reload_conf()")
    time.sleep(1)
    try:
        start = os.path.getsize(log)
        lat_list, lat_job, _, _ = load(ports, users, a.duration, a.think)
        stmts = log_statements(log, start, os.path.getsize(log))
    finally:
        psql(url, "ALTER SYSTEM RESET log_statement")
        psql(url, "SELECT pg_reload_conf()")
    n = len(lat_list) + len(lat_job)
    out = {"requests": n, "statements_per_request": len(stmts) / n,
           "transactions_per_request": transactions(stmts) / n,
           "top": [[t[:110], c / n] for t, c in collections.Counter(t for _, _, t in stmts).most_common(15)]}
    print("profile: %.2f statements, %.2f transactions per request" % (
        out["statements_per_request"], out["transactions_per_request"]), file=sys.stderr)
    return out


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--think", type=float, default=1.0, help="seconds each scientist waits between loops")
    ap.add_argument("--datasets", type=int, default=100)
    ap.add_argument("--jobs-stay-queued", action="store_true",
                    help="no job slots: the polled jobs never run (a poll then reads no result)")
    ap.add_argument("--json")
    a = ap.parse_args()
    # 1,000 client sockets here, as many in each server and twice as many in nginx (which inherit it).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    tmp = tempfile.mkdtemp(prefix="datasite-bench-sci.")
    os.chmod(tmp, 0o755)
    pgdir = os.path.join(tmp, "pg")
    procs = []
    res = {"kind": "scientists", "commit": source_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": machine(), "runs": a.runs, "users": a.users, "duration_s": a.duration, "think_s": a.think, "datasets": a.datasets,
           "jobs_stay_queued": a.jobs_stay_queued}
    try:
        url = subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"), "start", pgdir], check=True,
                             capture_output=True, text=True, timeout=120).stdout.strip()
        storage = os.path.join(tmp, "storage")
        os.makedirs(storage)
        workers = 0 if a.jobs_stay_queued else 1
        sproc, sport = serve(os.path.join(tmp, "sqlite"), "sci-sqlite", workers)
        aproc, aport = serve(os.path.join(tmp, "a"), "sci-pg", workers, url, storage)
        bproc, bport = serve(os.path.join(tmp, "b"), "sci-pg", workers, url, storage)
        procs += [sproc, aproc, bproc]
        ndir = os.path.join(tmp, "nginx")
        os.makedirs(ndir)
        front = free_port()
        with open(os.path.join(ndir, "nginx.conf"), "w") as f:
            # 1,000 clients and their upstream connections per worker, not replicas.py's 64 clients.
            f.write(NGINX_CONF.replace("worker_connections 1024", "worker_connections 8192").format(
                dir=ndir, sqlite=sport, a=aport, b=bport, sqlite_front=free_port(), replicas_front=front))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(ndir, "nginx.conf"), "-p", ndir, "-g",
                                  "daemon off;"], stderr=subprocess.DEVNULL)
        procs.append(nginx)
        wait_ready(front, nginx)
        t = time.perf_counter()
        sides = {}  # side: (port, scientists, datasite pids)
        for side, ports, port, pids in (("sqlite", [sport], sport, [sproc.pid]),
                                        ("postgres", [aport, bport], front, [aproc.pid, bproc.pid])):
            token = login(ports[0])
            seed_datasets(ports[0], token, a.datasets, tmp)
            users = make_scientists(a.users, ports, token)
            sides[side] = (port, users, pids)
            print("%s: %d scientists set up (%.0f s since the start)" % (side, len(users), time.perf_counter() - t),
                  file=sys.stderr, flush=True)
        pg_pid = postmaster_pid(pgdir)
        res["setup_s"] = time.perf_counter() - t
        # The same PostgreSQL servers twice: through nginx (the goal's set-up), and with half the scientists
        # straight to each replica (what nginx adds).
        targets = {"sqlite": ([sides["sqlite"][0]], sides["sqlite"]),
                   "postgres": ([front], sides["postgres"]),
                   "postgres_direct": ([aport, bport], sides["postgres"])}
        res["results"] = {side: [] for side in targets}
        for run in range(a.runs):
            for side, (fronts, (_, users, pids)) in targets.items():
                pg = [pg_pid] if side != "sqlite" else []
                loadavg = open("/proc/loadavg").read().split()[0]
                c0 = [sum(cpu_seconds(p) for p in ps) for ps in (pids, pg, [nginx.pid])]
                lat_list, lat_job, client_cpu, wall = load(fronts, users, a.duration, a.think)
                c1 = [sum(cpu_seconds(p) for p in ps) for ps in (pids, pg, [nginx.pid])]
                datasite_cpu, pg_cpu, nginx_cpu = (y - x for x, y in zip(c0, c1))
                lat = lat_list + lat_job
                n = len(lat)
                r = {"p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": max(lat), "requests": n,
                     "list_p50_ms": pct(lat_list, 50), "list_p99_ms": pct(lat_list, 99),
                     "job_p50_ms": pct(lat_job, 50), "job_p99_ms": pct(lat_job, 99),
                     "rps": n / wall, "server_cpu_us_per_request": (datasite_cpu + pg_cpu) * 1e6 / n,
                     "server_cores": (datasite_cpu + pg_cpu) / wall, "datasite_cores": datasite_cpu / wall,
                     "postgres_cores": pg_cpu / wall, "nginx_cores": nginx_cpu / wall,
                     "client_cores": client_cpu / wall, "load": loadavg}
                res["results"][side].append(r)
                print("%-15s run %d: p50 %.1f ms, p99 %.1f ms (listing %.1f, job %.1f), %.0f req/s, server %.0f "
                      "us/request (datasite %.2f + PostgreSQL %.2f cores), nginx %.2f, client %.2f cores, load %s" % (
                          side, run + 1, r["p50_ms"], r["p99_ms"], r["list_p99_ms"], r["job_p99_ms"], r["rps"],
                          r["server_cpu_us_per_request"], r["datasite_cores"], r["postgres_cores"],
                          r["nginx_cores"], r["client_cores"], loadavg), file=sys.stderr, flush=True)
        med = statistics.median
        res["summary"] = {side: {k: med(r[k] for r in rs) for k in rs[0] if k != "load"}
                          for side, rs in res["results"].items()}
        res["profile"] = statement_profile(url, pgdir, [aport, bport], sides["postgres"][1], a)
    finally:
        for p in reversed(procs):
            stop(p)
        subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"), "stop", pgdir], timeout=120, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    dump(res, a.json)


if __name__ == "__main__":
    main()
