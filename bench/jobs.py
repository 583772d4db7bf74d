#!/usr/bin/env python3
"""Job latency and throughput through the queue and the sandbox, beside the cold-start reference.

- latency: an approved trivial pandas function (`data["a"].sum()`) on a 10,000-row CSV asset, run on
  the private data with a blocking call; timed from the call to the decoded result (one HTTP round
  trip on a kept-alive connection, the result inline in the answer, as the Python client does it).
  Reference, in the same run: a cold `/usr/bin/python3 -c` that imports pandas, reads the same CSV
  and computes the same sum — what a server that starts a process per job pays at the least.
- throughput: N trivial jobs (`return k`) submitted non-blocking from 4 client threads to a server
  with 2 worker slots (`--workers 2`), timed from the first submission until the last job has ended.

Usage: /usr/bin/python3 bench/jobs.py [--runs 5] [--json OUT]
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.environ.get("DATASITE_BINARY", os.path.join(ROOT, "build", "datasite"))
PY = "/usr/bin/python3"


class Conn:
    def __init__(self, port, token=None):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.token = token

    def call(self, method, path, body=None, raw=None, ctype="application/json"):
        headers = {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            headers["Content-Type"] = ctype
        self.c.request(method, path, body=data, headers=headers)
        r = self.c.getresponse()
        payload = r.read()
        if r.status >= 300:
            raise RuntimeError("{} {} -> {} {}".format(method, path, r.status, payload[:300]))
        return json.loads(payload) if payload and r.getheader("Content-Type", "").startswith("application/json") else payload


def launch(data_dir, workers=2):
    proc = subprocess.Popen([BINARY, "launch", "--name", "jobbench", "--port", "auto", "--data-dir", data_dir,
                             "--workers", str(workers),
                             # the throughput run queues 400 jobs at once as one data scientist
                             "--max-queued-jobs-per-user", "1000"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = None
    for line in proc.stdout:
        if "development server at" in line:
            port = int(line.rsplit(":", 1)[1].split(".")[0])
            break
    if port is None:
        raise RuntimeError("launch failed")
    return proc, port


def stop(proc):
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def setup(port, csv):
    root = Conn(port)
    token = root.call("POST", "/api/v1/auth/login", {"email": "info@example.org", "password": "changethis"})["token"]
    admin = Conn(port, token)
    blob = admin.call("POST", "/api/v1/blobs?format=csv", raw=csv, ctype="application/octet-stream")
    ds = admin.call("POST", "/api/v1/datasets", {"name": "bench", "assets": [{"name": "t", "data": blob["id"], "mock": blob["id"]}]}) \
        if False else admin.call("POST", "/api/v1/datasets", {"name": "bench", "assets": [{"name": "t", "data": blob["id"]}]})
    asset_id = ds["assets"][0]["id"]
    admin.call("POST", "/api/v1/users", {"name": "Sci", "email": "sci@example.org", "password": "Bench-Passw0rd"})
    sci = Conn(port, Conn(port).call("POST", "/api/v1/auth/login", {"email": "sci@example.org", "password": "Bench-Passw0rd"})["token"])
    return admin, sci, asset_id


def approved(admin, sci, name, source, inputs, limit):
    code = sci.call("POST", "/api/v1/code", {"name": name, "source": source, "inputs": inputs,
                                             "output_policy": {"kind": "execute_count", "limit": limit}})
    req = sci.call("POST", "/api/v1/requests", {"code_id": code["id"], "reason": "bench"})
    admin.call("POST", "/api/v1/requests/%s/approve" % req["id"], {})
    return code["id"]


def wait_sandbox(sci, code_id):
    # The warm processes start in the background after launch; the first run waits for them.
    job = sci.call("POST", "/api/v1/code/%s/run" % code_id, {})
    assert job["status"] == "completed", job


def latency(sci, code_id, n, expect):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        job = sci.call("POST", "/api/v1/code/%s/run" % code_id, {})
        value = job["result"]["inline"]
        times.append((time.perf_counter() - t0) * 1000)
        assert job["status"] == "completed" and value == expect, job
    return statistics.median(times)


def cold_reference(csv_path, n):
    code = "import pandas as pd; print(int(pd.read_csv(%r)['a'].sum()))" % csv_path
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", code], check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def throughput(port, token, code_id, n_jobs):
    ids = []
    lock = threading.Lock()

    def submit(count):
        c = Conn(port, token)
        for _ in range(count):
            j = c.call("POST", "/api/v1/code/%s/run" % code_id, {"blocking": False})
            with lock:
                ids.append(j["id"])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=submit, args=(n_jobs // 4,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Wait for each job in turn (workers lease the oldest first), polling one small answer at a time so
    # that the waiting costs the server next to nothing.
    c = Conn(port, token)
    for job_id in ids:
        while c.call("GET", "/api/v1/jobs/%s" % job_id)["status"] in ("queued", "running"):
            time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    done = c.call("GET", "/api/v1/jobs?code_id=%s&status=completed" % code_id)["items"]
    assert len(done) >= len(ids), (len(done), len(ids))
    return len(ids) / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="jobbench-")
    rows = 10_000
    csv = ("a,b\n" + "".join("%d,%d.5\n" % (i % 97, i) for i in range(rows))).encode()
    csv_path = os.path.join(tmp, "t.csv")
    with open(csv_path, "wb") as f:
        f.write(csv)
    expect = sum(i % 97 for i in range(rows))
    lat, cold, tput = [], [], []
    try:
        for run in range(args.runs):
            data_dir = os.path.join(tmp, "d%d" % run)
            proc, port = launch(data_dir)
            try:
                admin, sci, asset_id = setup(port, csv)
                lat_code = approved(admin, sci, "total", "def total(data):\n    return int(data['a'].sum())\n",
                                    {"data": {"asset_id": asset_id}}, 1_000_000)
                wait_sandbox(sci, lat_code)
                lat.append(latency(sci, lat_code, 60, expect))
                cold.append(cold_reference(csv_path, 5))
                tp_code = approved(admin, sci, "echo", "def echo(k):\n    return k\n", {"k": {"value": 1}}, 1_000_000)
                tput.append(throughput(port, sci.token, tp_code, 400))
            finally:
                stop(proc)
            print("run %d: job p50 %.1f ms, cold python+pandas %.0f ms, %.0f jobs/s" % (run + 1, lat[-1], cold[-1], tput[-1]),
                  file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"kind": "jobs", "job_p50_ms": statistics.median(lat), "cold_python_pandas_ms": statistics.median(cold),
           "jobs_per_second": statistics.median(tput), "runs": args.runs,
           "job_p50_all": lat, "cold_all": cold, "jobs_per_second_all": tput}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
