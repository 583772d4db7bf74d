#!/usr/bin/env python3
"""Job latency and throughput through the queue and the sandbox, beside the cold-start reference.

- latency: an approved trivial pandas function (`data["a"].sum()`) on a 10,000-row CSV asset, run on
  the private data with a blocking call; timed from the call to the decoded result (one HTTP round
  trip on a kept-alive connection, the result inline in the answer, as the Python client does it).
  Reference, in the same run: a cold `/usr/bin/python3 -c` that imports pandas, reads the same CSV
  and computes the same sum — what a server that starts a process per job pays at the least.
- throughput: N trivial jobs (`return k`) submitted non-blocking from 4 client threads to a server
  with 2 worker slots (`--workers 2`), timed from the first submission until the last job has ended;
  with the CPU time and minor page faults per job of the sandbox (each slot's template process and the
  children it reaped, read from /proc/<pid>/stat around the run) and of the server process.
  Reference, in the same run: a plain fork + exit of the same warm Python (pandas and numpy
  imported, the child exits at once), CPU of parent and child and the child's faults per fork.

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

# Every bench client connects from 127.0.0.1: the server's per-address connection limit
# (--max-connections-per-address, 64 by default) is for many addresses, not one load generator.
os.environ.setdefault("DATASITE_MAX_CONNECTIONS_PER_ADDRESS", "10000")

TICKS = os.sysconf("SC_CLK_TCK")

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


def proc_stat(pid):
    """(cpu seconds, minor faults) of `pid` and of the children it has reaped."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3): minflt 10, cminflt 11, utime 14, stime 15, cutime 16, cstime 17
    minflt, cminflt = int(fields[7]), int(fields[8])
    cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS
    return cpu, minflt + cminflt


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except OSError:
                pass
    return out


def templates(server_pid):
    """The sandbox's template processes: the children of the server's bwrap children."""
    return [t for b in children(server_pid) for t in children(b)]


def usage(server_pid):
    """CPU seconds and faults of the server, and of the sandbox (templates and their reaped children)."""
    server_cpu, server_faults = proc_stat(server_pid)
    sandbox_cpu, sandbox_faults = 0.0, 0
    for t in templates(server_pid):
        cpu, faults = proc_stat(t)
        sandbox_cpu += cpu
        sandbox_faults += faults
    return server_cpu, server_faults, sandbox_cpu, sandbox_faults


FORK_REFERENCE = r"""
import os, resource, sys, time
import numpy, pandas

n = int(sys.argv[1])
for _ in range(20):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
s0, c0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
s1, c1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime) + (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
print(cpu / n * 1000, (c1.ru_minflt - c0.ru_minflt) / n, (s1.ru_minflt - s0.ru_minflt) / n)
"""


def fork_reference(n):
    """CPU ms per plain fork + exit of a warm Python with pandas, child faults and parent faults per fork."""
    out = subprocess.run([PY, "-c", FORK_REFERENCE, str(n)], check=True, capture_output=True, text=True,
                         env={"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    cpu_ms, child_faults, parent_faults = (float(x) for x in out.stdout.split())
    return cpu_ms, child_faults + parent_faults


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
    done = c.call("GET", "/api/v1/jobs?code_id=%s&status=completed&page_size=1000" % code_id)["items"]
    assert len(done) >= len(ids), (len(done), len(ids))
    return len(ids) / elapsed


def table(rows=10_000):
    """The latency measure's CSV asset (columns a, b) and the sum of its column a."""
    csv = ("a,b\n" + "".join("%d,%d.5\n" % (i % 97, i) for i in range(rows))).encode()
    return csv, sum(i % 97 for i in range(rows))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="jobbench-")
    csv, expect = table()
    csv_path = os.path.join(tmp, "t.csv")
    with open(csv_path, "wb") as f:
        f.write(csv)
    lat, cold, tput = [], [], []
    cpu_sandbox, cpu_server, faults, fork_cpu, fork_faults = [], [], [], [], []
    n_jobs = 400
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
                wait_sandbox(sci, tp_code)
                before = usage(proc.pid)
                tput.append(throughput(port, sci.token, tp_code, n_jobs))
                after = usage(proc.pid)
                cpu_server.append((after[0] - before[0]) / n_jobs * 1000)
                cpu_sandbox.append((after[2] - before[2]) / n_jobs * 1000)
                faults.append((after[3] - before[3]) / n_jobs)
                ref = fork_reference(200)
                fork_cpu.append(ref[0])
                fork_faults.append(ref[1])
            finally:
                stop(proc)
            print("run %d: job p50 %.1f ms, cold python+pandas %.0f ms, %.0f jobs/s, CPU per job: sandbox %.1f ms "
                  "+ server %.1f ms (%.0f faults); plain fork+exit %.1f ms (%.0f faults)" % (
                      run + 1, lat[-1], cold[-1], tput[-1], cpu_sandbox[-1], cpu_server[-1], faults[-1],
                      fork_cpu[-1], fork_faults[-1]), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    out = {"kind": "jobs", "job_p50_ms": med(lat), "cold_python_pandas_ms": med(cold),
           "jobs_per_second": med(tput), "runs": args.runs,
           "cpu_ms_per_job_sandbox": med(cpu_sandbox), "cpu_ms_per_job_server": med(cpu_server),
           "faults_per_job": med(faults), "fork_exit_cpu_ms": med(fork_cpu), "fork_exit_faults": med(fork_faults),
           "cpu_ratio_all": [a / b for a, b in zip(cpu_sandbox, fork_cpu)],
           "job_p50_all": lat, "cold_all": cold, "jobs_per_second_all": tput,
           "cpu_ms_per_job_sandbox_all": cpu_sandbox, "cpu_ms_per_job_server_all": cpu_server,
           "faults_per_job_all": faults, "fork_exit_cpu_ms_all": fork_cpu}
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
