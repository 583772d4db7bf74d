#!/usr/bin/env python3
"""Soak: N minutes of mixed load at about 80% of the measured capacity; records every 5xx and the server's
resident memory every 10 s. Not part of bench/run.sh's default run (too long): `bash bench/run.sh RUNS
--soak MINUTES`, or this script alone.

- server: a Release datasite launched with its production defaults (no flags beyond name, port, data dir;
  login attempts limited as in production), with 1,000 datasets seeded as bench/upload_list.py does.
- read mix, driven by wrk over 64 keep-alive connections (2 threads): half GET /api/v1/settings, 30% GET
  of a dataset page (50 a page, pages 1-20 in turn), 20% downloads of a dataset's mock; all with a session
  token. Capacity is that mix unpaced for 10 s; the soak then paces every connection (wrk's delay()) to 80%
  of it, in 30 s stretches, correcting the pace after each stretch.
- beside it, from this script: a small upload (4 KiB, format raw) and its deletion every 0.5 s, and a
  login every 6 s (10 a minute, under the limit of 60 a minute per address).

Writes a JSON summary; exits non-zero if any 5xx or socket error was seen.

Usage: /usr/bin/python3 bench/soak.py [--minutes 10] [--json OUT]
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from launch_login import BINARY, free_port, post_json, stop, wait_ready  # noqa: E402
from upload_list import login, rss_kib, seed_datasets, upload  # noqa: E402

CONNECTIONS = 64
THREADS = 2

# Each thread walks the same list of paths; when paced, waits delay_ms on average before each request.
LUA = r"""
local paths = {PATHS}
local pace = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
local i, owed = 0, 0
local counts = {}
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  i = (id or 1) * 7919 % #paths
  counts = {s2 = 0, s3 = 0, s4 = 0, s5 = 0}
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end

function delay()
  if pace <= 0 then return 0 end
  owed = owed + pace
  local whole = math.floor(owed)
  owed = owed - whole
  return whole
end

function response(status, headers, body)
  local k = "s" .. math.floor(status / 100)
  counts[k] = (counts[k] or 0) + 1
  s2, s3, s4, s5 = counts.s2, counts.s3, counts.s4, counts.s5
end

function done(summary, latency, requests)
  local t = {s2 = 0, s3 = 0, s4 = 0, s5 = 0}
  for _, th in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
  end
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"s2":%d,"s3":%d,"s4":%d,"s5":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"p99_us":%d}\n', summary.requests, summary.duration,
    t.s2, t.s3, t.s4, t.s5, e.connect, e.read, e.write, e.timeout, latency:percentile(99)))
end
"""


def launch(data_dir):
    port = free_port()
    proc = subprocess.Popen([BINARY, "launch", "--name", "soak", "--port", str(port), "--host", "127.0.0.1",
                             "--data-dir", data_dir, "--reset"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc, port


def all_dataset_ids(port, token):
    ids, page = [], 1
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/api/v1/datasets?page=%d&page_size=50" % page,
                     headers={"Authorization": "Bearer " + token})
        body = json.loads(conn.getresponse().read())
        conn.close()
        ids += [d["id"] for d in body["items"]]
        if len(ids) >= body["total"] or not body["items"]:
            return ids
        page += 1


def write_lua(path, ids):
    rnd = random.Random(5)
    paths = []
    for k in range(200):
        r = k % 10
        if r < 5:
            paths.append("/api/v1/settings")
        elif r < 8:
            paths.append("/api/v1/datasets?page=%d&page_size=50" % (k % 20 + 1))
        else:
            paths.append("/api/v1/datasets/%s/assets/table/mock" % rnd.choice(ids))
    with open(path, "w") as f:
        f.write(LUA.replace("{PATHS}", "{" + ",".join('"%s"' % p for p in paths) + "}"))


def run_wrk(port, token, script, seconds, delay_ms):
    env = dict(os.environ, SOAK_DELAY_MS="%.4f" % delay_ms)
    out = subprocess.run(["wrk", "-t%d" % THREADS, "-c%d" % CONNECTIONS, "-d%ds" % seconds, "--latency",
                          "-s", script, "-H", "Authorization: Bearer " + token,
                          "http://127.0.0.1:%d/" % port], env=env, check=True, capture_output=True,
                         text=True, timeout=seconds + 60).stdout
    m = re.search(r"^WRK_JSON (.*)$", out, re.M)
    if not m:
        raise RuntimeError("no summary from wrk:\n" + out)
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


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
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--load", type=float, default=0.8, help="fraction of measured capacity")
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="datasite-soak-", dir=os.environ.get("BENCH_DIR"))
    res = {"kind": "soak", "commit": source_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "minutes": a.minutes, "load": a.load, "connections": CONNECTIONS, "threads": THREADS, "datasets": a.datasets}
    proc = None
    try:
        proc, port = launch(os.path.join(tmp, "ds"))
        token = login(port)
        seed_datasets(port, token, a.datasets, tmp)
        ids = all_dataset_ids(port, token)
        script = os.path.join(tmp, "soak.lua")
        write_lua(script, ids)

        cap = run_wrk(port, token, script, 10, 0)
        if cap["s5"] or cap["s4"] or cap["connect"] or cap["read"] or cap["write"] or cap["timeout"]:
            raise RuntimeError("errors while measuring capacity: %s" % cap)
        target = a.load * cap["rps"]
        res["capacity_rps"] = cap["rps"]
        res["target_rps"] = target

        stop_flag = threading.Event()
        side = {"uploads": 0, "logins": 0, "side_5xx": 0, "side_other_errors": [], "login_429": 0}
        rss = []
        start = time.time()

        def sample_rss():
            while True:
                rss.append((round(time.time() - start, 1), rss_kib(proc.pid)))
                if stop_flag.wait(10):
                    rss.append((round(time.time() - start, 1), rss_kib(proc.pid)))
                    return

        def note(status, what, body):
            if status >= 500:
                side["side_5xx"] += 1
            if status >= 400 and len(side["side_other_errors"]) < 20:
                side["side_other_errors"].append("%s: %d %s" % (what, status, body[:120]))

        def uploads():
            small = os.path.join(tmp, "small.bin")
            with open(small, "wb") as f:
                f.write(os.urandom(4096))
            while not stop_flag.wait(0.5):
                try:
                    blob = upload(port, token, small)
                except RuntimeError as err:
                    m = re.search(r"upload failed: (\d+)", str(err))
                    note(int(m.group(1)) if m else 599, "upload", str(err))
                    continue
                conn = http.client.HTTPConnection("127.0.0.1", port)
                conn.request("DELETE", "/api/v1/blobs/" + blob["id"], headers={"Authorization": "Bearer " + token})
                r = conn.getresponse()
                body = r.read()
                conn.close()
                note(r.status, "delete", body)
                side["uploads"] += 1

        def logins():
            while not stop_flag.wait(6):
                conn = http.client.HTTPConnection("127.0.0.1", port)
                status, body = post_json(conn, "/api/v1/auth/login",
                                         {"email": "info@example.org", "password": "changethis"})
                conn.close()
                if status == 429:
                    side["login_429"] += 1
                else:
                    note(status, "login", body)
                side["logins"] += 1

        workers = [threading.Thread(target=f) for f in (sample_rss, uploads, logins)]
        for w in workers:
            w.start()
        stretches = []
        delay_ms = CONNECTIONS / target * 1000.0
        try:
            end = start + a.minutes * 60
            while time.time() < end - 5:
                seconds = int(min(30, end - time.time()))
                r = run_wrk(port, token, script, seconds, delay_ms)
                r["delay_ms"] = delay_ms
                r["t"] = round(time.time() - start, 1)
                stretches.append(r)
                print("t=%5.0fs  %6.0f req/s (target %.0f)  5xx %d  4xx %d  p99 %.1f ms  RSS %.1f MiB" % (
                    r["t"], r["rps"], target, r["s5"], r["s4"], r["p99_us"] / 1000.0, rss[-1][1] / 1024.0),
                    file=sys.stderr)
                # rate = C / (delay + service time): keep the measured service time, aim the delay at the target
                # (half a step at a time: the service time itself changes with the load and the machine's noise).
                step = (CONNECTIONS / target - CONNECTIONS / max(r["rps"], 1.0)) * 1000.0
                delay_ms = max(0.0, delay_ms + 0.5 * step)
        finally:
            stop_flag.set()
            for w in workers:
                w.join()
        elapsed = time.time() - start
        total = sum(r["requests"] for r in stretches)
        res.update({
            "elapsed_s": elapsed,
            "requests": total + side["uploads"] * 2 + side["logins"],
            "mix_rps": total / sum(r["duration_us"] / 1e6 for r in stretches),
            "mix_rps_by_stretch": [round(r["rps"]) for r in stretches],
            "p99_ms_by_stretch": [round(r["p99_us"] / 1000.0, 2) for r in stretches],
            "p99_ms_median": statistics.median(r["p99_us"] / 1000.0 for r in stretches),
            "status_2xx_mix": sum(r["s2"] for r in stretches),
            "status_5xx": sum(r["s5"] for r in stretches) + side["side_5xx"],
            "status_4xx_mix": sum(r["s4"] for r in stretches),
            "socket_errors": sum(r[k] for r in stretches for k in ("connect", "read", "write", "timeout")),
            "uploads": side["uploads"], "logins": side["logins"], "login_429": side["login_429"],
            "side_errors": side["side_other_errors"],
            "rss_mib": [[t, round(k / 1024.0, 1)] for t, k in rss],
            "rss_first_mib": rss[0][1] / 1024.0, "rss_last_mib": rss[-1][1] / 1024.0,
            "rss_max_mib": max(k for _, k in rss) / 1024.0,
        })
        if proc.poll() is not None:
            res["server_exited"] = proc.returncode
    finally:
        if proc:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            f.write(text + "\n")
    bad = res["status_5xx"] or res["socket_errors"] or res["status_4xx_mix"] or res.get("server_exited") is not None
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
