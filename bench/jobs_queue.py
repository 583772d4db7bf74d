#!/usr/bin/env python3
"""Jobs through the PostgreSQL queue and a separate worker, beside the all-in-one SQLite server, in one run
(issue 15's goal: an approved trivial pandas job's p50 within 15 ms of the SQLite server's, and the CPU per
job within 1.2x of it).

- SQLite side: `datasite launch --workers 2`, as bench/jobs.py runs it: one process answers the API and runs
  the jobs in its own sandbox slots.
- PostgreSQL side: a private PostgreSQL 15 (scripts/pg.sh; stopped at the end), one `datasite serve
  --database URL --workers 0 --storage-dir DIR` and one `datasite worker --database URL --storage-dir DIR
  --workers 2` sharing it.
- latency: sequential runs of an approved `int(data['a'].sum())` on a 10,000-row CSV asset (bench/jobs.py's
  setup), timed from the call to the decoded result on one kept-alive connection, two ways: as the Python
  client runs a blocking call today (POST .../run `{"blocking": false}`, then GET /api/v1/jobs/{id}/wait
  until the job has ended; python/datasite/code.py) — the goal's figure — and as one blocking POST
  (`{}`, what bench/jobs.py times).
- CPU per job: bench/jobs.py's throughput run (400 trivial jobs from 4 client threads), the CPU of every
  process involved read from /proc/<pid>/stat (utime + stime + cutime + cstime) around it. SQLite: the
  server and its sandbox templates (with the children they reaped). PostgreSQL: the serve process, the worker
  and its sandbox templates, and every process of the PostgreSQL instance (postmaster, which reaps ended
  backends, and its children).
- profile (PostgreSQL side, once, after the measured runs, not timed): with log_statement = 'all', the SQL
  statements and transactions per job of both measures, split by the process that sent them, and what the
  two processes send while idle.

Runs alternate (SQLite, then PostgreSQL); figures are medians, each ratio the median of the runs' own ratios.

Usage: /usr/bin/python3 bench/jobs_queue.py [--runs 3] [--json OUT] [--socket]
"""
import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_wrk import source_commit  # noqa: E402
from render import machine  # noqa: E402
from jobs import (BINARY, approved, children, latency, launch, proc_stat, setup, stop, table,  # noqa: E402
                  templates, throughput, usage, wait_sandbox)
from launch_login import free_port, wait_ready  # noqa: E402
from replicas import postmaster_pid  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_JOBS = 400
N_LATENCY = 60
# The limits a worker must be given, the same as its servers' (`datasite worker --help`): the defaults.
LIMITS = ["--max-storage-bytes", str(1 << 40), "--user-quota-bytes", str(1 << 30),
          "--max-result-bytes", str(256 << 20), "--mock-results-kept", "10"]


def psql(url, sql):
    return subprocess.run(["psql", "-qtAX", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()


class Queue:
    """One `serve --workers 0` and one `worker --workers 2` on a PostgreSQL database."""

    def __init__(self, tmp, url):
        storage = os.path.join(tmp, "storage")
        os.makedirs(storage)
        self.port = free_port()
        self.serve = subprocess.Popen(
            [BINARY, "serve", "--name", "jobqueue", "--port", str(self.port), "--data-dir",
             os.path.join(tmp, "serve"), "--database", url, "--storage-dir", storage, "--workers", "0",
             "--max-queued-jobs-per-user", "1000", *LIMITS],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_ready(self.port, self.serve)
        self.url = url
        self.owners = {}  # backend pid -> "serve" | "worker", once both have connected
        self.worker = subprocess.Popen(
            [BINARY, "worker", "--name", "w1", "--database", url, "--storage-dir", storage, "--workers", "2",
             *LIMITS], stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "worker.log"), "wb"))

    def stop(self):
        stop(self.worker)
        stop(self.serve)


def client_latency(sci, code_id, n, expect):
    """p50 ms of blocking runs as the Python client makes them: a non-blocking start, then waits."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        job = sci.call("POST", "/api/v1/code/%s/run" % code_id, {"blocking": False})
        while job["status"] in ("queued", "running"):
            job = sci.call("GET", "/api/v1/jobs/%s/wait?timeout=50" % job["id"])
        value = job["result"]["inline"]
        times.append((time.perf_counter() - t0) * 1000)
        assert job["status"] == "completed" and value == expect, job
    return statistics.median(times)


def queue_usage(q, pgdir):
    """CPU seconds of serve, worker, sandbox (templates under the worker and, if any, under serve), and of
    the PostgreSQL instance: the backends of serve and of the worker, and the rest (the postmaster with the
    backends it reaped, its other children)."""
    sandbox = sum(proc_stat(t)[0] for pid in (q.serve.pid, q.worker.pid) for t in templates(pid))
    out = {"serve": proc_stat(q.serve.pid)[0], "worker": proc_stat(q.worker.pid)[0], "sandbox": sandbox,
           "pg_serve_backends": 0.0, "pg_worker_backends": 0.0, "pg_rest": 0.0}
    pm = postmaster_pid(pgdir)
    for pid in [pm] + children(pm):
        out["pg_%s" % {"serve": "serve_backends", "worker": "worker_backends"}.get(q.owners.get(pid), "rest")] += \
            proc_stat(pid)[0]
    return out


def prepare(port, csv, expect):
    """The scientist's connection and the two approved codes, the sandbox warm."""
    admin, sci, asset_id = setup(port, csv)
    total = approved(admin, sci, "total", "def total(data):\n    return int(data['a'].sum())\n",
                     {"data": {"asset_id": asset_id}}, 1_000_000)
    echo = approved(admin, sci, "echo", "def echo(k):\n    return k\n", {"k": {"value": 1}}, 1_000_000)
    # The worker's slots start in the background: wait until both codes have run once.
    deadline = time.time() + 60
    while True:
        try:
            wait_sandbox(sci, total)
            wait_sandbox(sci, echo)
            break
        except (AssertionError, RuntimeError):
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    return sci, total, echo


def measure(port, csv, expect, cpu, q=None):
    """Latency (client way, blocking POST), jobs/s, and CPU per job by process, of one server set."""
    sci, total, echo = prepare(port, csv, expect)
    if q:
        q.owners = backend_owners(q.url, {"serve": q.serve.pid, "worker": q.worker.pid})
    r = {"client_p50_ms": client_latency(sci, total, N_LATENCY, expect),
         "blocking_p50_ms": latency(sci, total, N_LATENCY, expect)}
    before = cpu()
    r["jobs_per_second"] = throughput(port, sci.token, echo, N_JOBS)
    after = cpu()
    r["cpu_ms_per_job"] = {k: (after[k] - before[k]) / N_JOBS * 1000 for k in after}
    r["cpu_ms_per_job_total"] = sum(r["cpu_ms_per_job"].values())
    return r, sci, total, echo


def sqlite_usage(pid):
    server, _, sandbox, _ = usage(pid)
    return {"server": server, "sandbox": sandbox}


# A statement in the server log (log_line_prefix '%m [%p] '): a simple query, or an extended-protocol
# execute of an unnamed statement (parsed and planned anew) or of a named, prepared one.
LOG_LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] (?:LOG|ERROR):  (statement|execute [^:]*): (.*)$")


def log_statements(log, start, end):
    """(backend pid, kind, statement text) of the statements logged in `log` between two byte offsets."""
    with open(log, "rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    out = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m:
            kind = "simple" if m.group(2) == "statement" else "unnamed" if "<unnamed>" in m.group(2) else "prepared"
            out.append((int(m.group(1)), kind, re.sub(r"\s+", " ", m.group(3))))
    return out


def transactions(stmts):
    """Transactions (so commits, each a WAL flush when it wrote) in a statement sequence: per backend, a
    BEGIN opens one until COMMIT or ROLLBACK; a statement outside one is a transaction of its own."""
    open_tx, count = set(), 0
    for pid, _, text in stmts:
        word = text.split(None, 1)[0].rstrip(";").upper() if text.strip() else ""
        if word in ("BEGIN", "START"):
            open_tx.add(pid)
            count += 1
        elif word in ("COMMIT", "ROLLBACK", "END"):
            open_tx.discard(pid)
        elif pid not in open_tx:
            count += 1
    return count


def backend_owners(url, pids):
    """{backend pid: "serve" | "worker"} from each backend's client port and the socket's owner (ss)."""
    ports = {}
    for line in psql(url, "SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL").split():
        pid, port = line.split("|")
        ports[int(port)] = int(pid)
    owners = {}
    for line in subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.search(r"127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:\d+\s+users:\(\(\"[^\"]*\",pid=(\d+)", line)
        if m and int(m.group(1)) in ports:
            for name, pid in pids.items():
                if int(m.group(2)) == pid:
                    owners[ports[int(m.group(1))]] = name
    return owners


def profile(q, pgdir, url, sci, total, echo, expect):
    """Statements and transactions per job (per second when idle), by process, with log_statement = 'all'
    (pg.sh makes role datasite a superuser, so it may ALTER SYSTEM); not timed."""
    log = os.path.join(pgdir, "postgres.log")
    psql(url, "ALTER SYSTEM SET log_statement = 'all'")
    psql(url, "SELECT pg_reload_conf()")
    time.sleep(1)
    owners = backend_owners(url, {"serve": q.serve.pid, "worker": q.worker.pid})
    out = {}
    phases = [("idle", None, lambda: time.sleep(5)),
              ("client_latency", 20, lambda: client_latency(sci, total, 20, expect)),
              ("throughput", 100, lambda: throughput(q.port, sci.token, echo, 100))]
    try:
        for name, n, run in phases:
            start, t0 = os.path.getsize(log), time.perf_counter()
            run()
            elapsed = time.perf_counter() - t0
            stmts = log_statements(log, start, os.path.getsize(log))
            n = n or elapsed  # idle: per second
            per = lambda c: {k: v / n for k, v in c.items()}  # noqa: E731
            out[name] = {
                "seconds": elapsed, "statements": len(stmts) / n, "transactions": transactions(stmts) / n,
                "by_process": per(collections.Counter(owners.get(pid, "other") for pid, _, _ in stmts)),
                "by_kind": per(collections.Counter(kind for _, kind, _ in stmts)),
                "top": [[p, t[:110], c / n] for (p, t), c in collections.Counter(
                    (owners.get(pid, "other"), t) for pid, _, t in stmts).most_common(30)]}
            print("profile %s: %.1f statements, %.1f transactions per %s in %.1f s; %s; %s" % (
                name, out[name]["statements"], out[name]["transactions"], "second" if name == "idle" else "job",
                elapsed, out[name]["by_process"], out[name]["by_kind"]), file=sys.stderr)
    finally:
        psql(url, "ALTER SYSTEM RESET log_statement")
        psql(url, "SELECT pg_reload_conf()")
    return out


def dump(res, path):
    """Prints the figures, and writes them to `path` if given (for bench/render.py)."""
    text = json.dumps(res, indent=1)
    print(text)
    if path:
        with open(path, "w") as f:
            f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser(description="Jobs through PostgreSQL and a worker, beside SQLite.")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--socket", action="store_true",
                    help="serve and worker reach PostgreSQL over its Unix socket, not loopback TCP (the "
                         "backends are then not told apart: their CPU is all under pg_rest)")
    args = ap.parse_args()
    csv, expect = table()
    tmp = tempfile.mkdtemp(prefix="datasite-bench-jobq.")
    pgdir = os.path.join(tmp, "pg")
    os.chmod(tmp, 0o755)  # user postgres runs the cluster under it when started by root
    res = {"kind": "jobs_queue", "commit": source_commit(),
           "transport": "unix socket" if args.socket else "tcp", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": machine(), "runs": args.runs, "jobs": N_JOBS, "latency_runs": N_LATENCY, "sqlite": [], "postgres": []}
    loads = []
    try:
        for run in range(args.runs):
            loads.append(open("/proc/loadavg").read().split()[0])
            proc, port = launch(os.path.join(tmp, "sqlite%d" % run))
            try:
                s = measure(port, csv, expect, lambda: sqlite_usage(proc.pid))[0]
            finally:
                stop(proc)
            rundir = os.path.join(tmp, "pg%d" % run)
            os.makedirs(rundir)
            url = subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"), "start", pgdir], check=True,
                                 capture_output=True, text=True, timeout=120).stdout.strip()
            if args.socket:
                port = url.rsplit(":", 1)[1].split("/")[0]
                url = "postgresql://datasite@/datasite?host=%s&port=%s" % (os.path.join(pgdir, "sock"), port)
            q = None
            try:
                q = Queue(rundir, url)
                p, sci, total, echo = measure(q.port, csv, expect, lambda: queue_usage(q, pgdir), q)
                if run == args.runs - 1:
                    res["profile"] = profile(q, pgdir, url, sci, total, echo, expect)
            finally:
                if q:
                    q.stop()
                subprocess.run(["bash", os.path.join(ROOT, "scripts/pg.sh"), "stop", pgdir], timeout=120,
                               capture_output=True)
            res["sqlite"].append(s)
            res["postgres"].append(p)
            print("run %d: p50 client way SQLite %.1f / PostgreSQL %.1f ms (blocking POST %.1f / %.1f); "
                  "%.0f / %.0f jobs/s; CPU per job %.1f %s / %.1f %s" % (
                      run + 1, s["client_p50_ms"], p["client_p50_ms"], s["blocking_p50_ms"], p["blocking_p50_ms"],
                      s["jobs_per_second"], p["jobs_per_second"], s["cpu_ms_per_job_total"],
                      {k: round(v, 1) for k, v in s["cpu_ms_per_job"].items()}, p["cpu_ms_per_job_total"],
                      {k: round(v, 1) for k, v in p["cpu_ms_per_job"].items()}), file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    sq, pg = res["sqlite"], res["postgres"]
    res["load"] = loads
    res["summary"] = {
        "sqlite_client_p50_ms": med(r["client_p50_ms"] for r in sq),
        "postgres_client_p50_ms": med(r["client_p50_ms"] for r in pg),
        "client_p50_delta_ms": med(b["client_p50_ms"] - a["client_p50_ms"] for a, b in zip(sq, pg)),
        "sqlite_blocking_p50_ms": med(r["blocking_p50_ms"] for r in sq),
        "postgres_blocking_p50_ms": med(r["blocking_p50_ms"] for r in pg),
        "blocking_p50_delta_ms": med(b["blocking_p50_ms"] - a["blocking_p50_ms"] for a, b in zip(sq, pg)),
        "sqlite_jobs_per_second": med(r["jobs_per_second"] for r in sq),
        "postgres_jobs_per_second": med(r["jobs_per_second"] for r in pg),
        "sqlite_cpu_ms_per_job": med(r["cpu_ms_per_job_total"] for r in sq),
        "postgres_cpu_ms_per_job": med(r["cpu_ms_per_job_total"] for r in pg),
        "cpu_ratio": med(b["cpu_ms_per_job_total"] / a["cpu_ms_per_job_total"] for a, b in zip(sq, pg)),
        "sqlite_cpu_split": {k: med(r["cpu_ms_per_job"][k] for r in sq) for k in sq[0]["cpu_ms_per_job"]},
        "postgres_cpu_split": {k: med(r["cpu_ms_per_job"][k] for r in pg) for k in pg[0]["cpu_ms_per_job"]},
    }
    dump(res, args.json)


if __name__ == "__main__":
    main()
