#!/usr/bin/env python3
"""API throughput with wrk: requests/s and p99 latency of two authenticated read routes, each beside two
references measured in the same run.

- routes: GET /api/v1/settings, and GET /api/v1/datasets?page=10&page_size=50 with 1,000 datasets stored
  (seeded as bench/upload_list.py does), both with a real session token in the Authorization header, as
  the Python client sends it.
- reference 1, the practical limit: nginx serving the very response bytes datasite sent, as static files,
  from a temporary config on a loopback port (nginx runs in the foreground and is stopped afterwards).
- reference 2, PySyft's stack: FastAPI + uvicorn (bench/reference/fastapi_app.py) serving the same JSON
  documents from SQLite, with the same kind of token check (a session lookup per request).

Every wrk run must end with no socket errors, no non-2xx answer and a byte count that matches the expected
response size; otherwise this script fails. Runs are interleaved (datasite, nginx, FastAPI; then again) so
that the machine's noise falls on all three alike; the figures are medians over runs.

Usage: /usr/bin/python3 bench/api_wrk.py [--runs 5] [--duration 10] [--threads 2] [--connections 64]
                                         [--json OUT]
"""
import argparse
import http.client
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
from launch_login import datasite_launch, fastapi_launch, free_port, post_json, stop  # noqa: E402
from upload_list import login, seed_datasets  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = 10
ROUTES = {"settings": "/api/v1/settings", "datasets": "/api/v1/datasets?page=%d&page_size=50" % PAGE}

# wrk prints its usual report, then this line from done(): exact counts, and latency in microseconds.
WRK_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"bytes":%d,"duration_us":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n', summary.requests, summary.bytes,
    summary.duration, e.connect, e.read, e.write, e.status, e.timeout, latency:percentile(50),
    latency:percentile(99)))
end
"""

NGINX_CONF = """
daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path {dir}/tmp;
  proxy_temp_path {dir}/tmp;
  fastcgi_temp_path {dir}/tmp;
  uwsgi_temp_path {dir}/tmp;
  scgi_temp_path {dir}/tmp;
  types {{ }}
  default_type application/json;
  server {{
    listen 127.0.0.1:{port};
    location = /api/v1/settings {{ alias {dir}/www/settings.json; }}
    location = /api/v1/datasets {{ alias {dir}/www/datasets.json; }}
  }}
}}
"""


def wrk_argument_parser():
    """The command line of every bench that runs wrk(): --runs, --duration, --threads, --connections,
    and --json (a file for the figures); a bench adds its own flags."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections")
    ap.add_argument("--json")
    return ap


def write_wrk_script(tmp):
    """Writes WRK_LUA into the folder tmp; returns its path, the `script` that wrk() takes."""
    script = os.path.join(tmp, "report.lua")
    with open(script, "w") as f:
        f.write(WRK_LUA)
    return script


def wrk_version():
    return subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]


def get(port, path, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError("GET %s on port %d: %d %s" % (path, port, r.status, body[:200]))
    return body


def nginx_start(tmp, bodies, workers):
    d = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(d, "www"))
    os.makedirs(os.path.join(d, "tmp"))
    for name, body in bodies.items():
        with open(os.path.join(d, "www", name + ".json"), "wb") as f:
            f.write(body)
    # The workers run as an unprivileged user when started by root: let them read the files.
    for root, dirs, files in os.walk(tmp):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    port = free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port, workers=workers))
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("nginx exited: %s" % proc.stderr.read().decode()[-500:])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", ROUTES["settings"])
            r = conn.getresponse()
            r.read()
            conn.close()
            if r.status == 200:
                return proc, port
        except OSError:
            time.sleep(0.02)
    stop(proc)
    raise RuntimeError("nginx not ready")


def cpu_seconds(pid):
    """CPU time (user + system) used so far by a process, its threads, and its direct children (nginx's
    workers)."""
    def ticks(stat):
        fields = stat[stat.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12]), int(fields[1])

    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                t, ppid = ticks(f.read())
        except OSError:
            continue
        if int(entry) == pid or ppid == pid:
            total += t
    return total / os.sysconf("SC_CLK_TCK")


def wrk(port, path, token, a, script, pid, scheme="http"):
    """One wrk run; returns its figures, or raises if any request failed or the bytes don't add up."""
    # --timeout: wrk leaves answers slower than this out of its latencies and counts them as errors; the
    # slowest reference takes over a second per answer at 64 connections.
    cmd = ["wrk", "-t%d" % a.threads, "-c%d" % a.connections, "-d%ds" % a.duration, "--timeout", "30s",
           "--latency", "-s", script, "-H", "Authorization: Bearer " + token, "%s://127.0.0.1:%d%s" % (scheme, port, path)]
    cpu = cpu_seconds(pid)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=a.duration + 60).stdout
    cpu = cpu_seconds(pid) - cpu
    m = re.search(r"^WRK_JSON (.*)$", out, re.M)
    if not m:
        raise RuntimeError("no summary from wrk:\n" + out)
    r = json.loads(m.group(1))
    r["report"] = out
    r["cpu_us_per_request"] = cpu * 1e6 / max(r["requests"], 1)
    return r


def check(r, what, body_len):
    """Fails loudly unless every request got a 2xx and the bytes read match the response size."""
    problems = []
    if "Non-2xx" in r["report"] or r["status"]:
        problems.append("non-2xx answers")
    for k in ("connect", "read", "write", "timeout"):
        if r[k]:
            problems.append("%d %s errors" % (r[k], k))
    if r["requests"] < 100:
        problems.append("only %d requests" % r["requests"])
    else:
        # Each response is the body plus headers (under 400 bytes for all three servers); reads cut short
        # when wrk stops add less than one response per connection.
        per = r["bytes"] / r["requests"]
        if not body_len <= per <= body_len + 400 + body_len * 0.01:
            problems.append("%.0f bytes per response for a %d-byte body" % (per, body_len))
    if problems:
        raise RuntimeError("%s: %s\n%s" % (what, "; ".join(problems), r["report"]))


def capture_mirror(port, token, tmp):
    """All datasets as datasite lists them (newest first), and the settings document, for the FastAPI app."""
    items, page = [], 1
    while True:
        body = json.loads(get(port, "/api/v1/datasets?page=%d&page_size=50" % page, token))
        items += body["items"]
        if len(items) >= body["total"] or not body["items"]:
            break
        page += 1
    path = os.path.join(tmp, "mirror.json")
    with open(path, "w") as f:
        json.dump({"settings": json.loads(get(port, ROUTES["settings"], token)), "datasets": items}, f)
    return path


def source_commit():
    """The commit measured: BENCH_COMMIT if set (a build of an exported tree), else the checkout's HEAD."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    try:
        return subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short",
                               "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main():
    ap = wrk_argument_parser()
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--nginx-workers", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    if not shutil.which("wrk") or not shutil.which("nginx"):
        raise SystemExit("api_wrk.py needs wrk and nginx (Debian packages wrk, nginx-light)")
    tmp = tempfile.mkdtemp(prefix="datasite-wrk-", dir=os.environ.get("BENCH_DIR"))
    script = write_wrk_script(tmp)
    res = {"kind": "api_wrk", "commit": source_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "runs": a.runs, "duration_s": a.duration,
           "threads": a.threads, "connections": a.connections, "datasets": a.datasets,
           "nginx_workers": a.nginx_workers, "page": PAGE}
    res["wrk_version"] = wrk_version()
    procs = []
    try:
        _, proc, port = datasite_launch(os.path.join(tmp, "ds"), reset=True)
        procs.append(proc)
        token = login(port)
        seed_datasets(port, token, a.datasets, tmp)
        bodies = {name: get(port, path, token) for name, path in ROUTES.items()}
        if len(json.loads(bodies["datasets"])["items"]) != 50:
            raise RuntimeError("page %d does not hold 50 datasets; seed more (--datasets)" % PAGE)
        mirror = capture_mirror(port, token, tmp)

        nproc, nport = nginx_start(tmp, bodies, a.nginx_workers)
        procs.append(nproc)
        os.environ["REF_MIRROR"] = mirror
        _, rproc, rport = fastapi_launch(os.path.join(tmp, "ref.db"))
        procs.append(rproc)
        conn = http.client.HTTPConnection("127.0.0.1", rport)
        status, body = post_json(conn, "/api/v1/auth/login", {"email": "info@example.org", "password": "changethis"})
        conn.close()
        if status != 200:
            raise RuntimeError("reference login failed: %s %s" % (status, body[:200]))
        rtoken = json.loads(body)["token"]

        servers = {"datasite": (port, token, proc.pid), "nginx": (nport, token, nproc.pid),
                   "fastapi": (rport, rtoken, rproc.pid)}
        for name, path in ROUTES.items():
            # Same documents everywhere: FastAPI's JSON equals datasite's, byte for byte or at least in value.
            ref = get(rport, path, rtoken)
            if json.loads(ref) != json.loads(bodies[name]):
                raise RuntimeError("FastAPI's %s differs from datasite's" % name)
            res["%s_bytes" % name] = len(bodies[name])
            res["%s_fastapi_bytes" % name] = len(ref)
            res["%s_fastapi_identical" % name] = ref == bodies[name]
        lens = {("fastapi", n): res["%s_fastapi_bytes" % n] for n in ROUTES}
        samples = {}
        for run in range(a.runs):
            for name, path in ROUTES.items():
                for server, (p, tok, pid) in servers.items():
                    r = wrk(p, path, tok, a, script, pid)
                    check(r, "%s %s run %d" % (server, name, run + 1), lens.get((server, name), len(bodies[name])))
                    samples.setdefault((server, name), []).append(r)
                    print("%-8s %-8s run %d: %8.0f req/s  p99 %6.2f ms  %6.0f us CPU/request" % (
                        server, name, run + 1, r["requests"] / (r["duration_us"] / 1e6), r["p99_us"] / 1000.0,
                        r["cpu_us_per_request"]), file=sys.stderr)
        for (server, name), rs in samples.items():
            key = "%s_%s" % (name, server)
            res[key + "_rps"] = statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in rs)
            res[key + "_p99_ms"] = statistics.median(r["p99_us"] / 1000.0 for r in rs)
            res[key + "_p50_ms"] = statistics.median(r["p50_us"] / 1000.0 for r in rs)
            res[key + "_cpu_us"] = statistics.median(r["cpu_us_per_request"] for r in rs)
            res[key + "_rps_all"] = [round(r["requests"] / (r["duration_us"] / 1e6)) for r in rs]
            res[key + "_requests_checked"] = sum(r["requests"] for r in rs)
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
