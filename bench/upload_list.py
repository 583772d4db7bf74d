#!/usr/bin/env python3
"""Upload throughput and memory, and dataset listing latency, each beside its reference in the same run.

- upload: a 1 GiB file (random bytes, format raw) streamed over loopback to POST /api/v1/blobs by the
  datasite client's upload call (sendfile in 1 MiB pieces, after Expect: 100-continue), until the server's 201 (which it sends after SHA-256 and fsync). Reference: `cp` of the same file
  to the same disk followed by `sync` of the copy. The server's resident memory (VmRSS) is sampled every
  20 ms during the upload; the figure is the peak minus the value just before.
  For context, each run also times the transport alone: the same file sent by sendfile over loopback
  to a reader that drops it.
- listing: 1,000 datasets, paged 50 at a time (20 pages); p50 per page, cold (a dataset changed just before
  the pass, so every page is read from SQLite anew; the kept renderings of the unchanged datasets are
  reused, and only the changed one's assets are read and rendered) and warm (the same pass again: pages come from
  the server's page cache). Reference: a FastAPI + uvicorn app (PySyft's stack) serving the same page size
  of stored JSON documents from SQLite.

Usage: /usr/bin/python3 bench/upload_list.py [--runs 5] [--size-mib 1024] [--json OUT]
"""
import argparse
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from launch_login import ROOT, datasite_launch, fastapi_launch, pct, post_json, stop  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "python"))
from datasite import _http, _transfer  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def login(port):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    status, data = post_json(conn, "/api/v1/auth/login", {"email": "info@example.org", "password": "changethis"})
    conn.close()
    assert status == 200, data
    return json.loads(data)["token"]


def upload(port, token, path, fmt="raw"):
    """Uploads the file at `path` with the datasite client's own upload call (the one behind
    `client.upload_dataset`), its progress bar drawn into a string."""
    transport = _http.Transport("http://127.0.0.1:%d" % port, token=token, timeout=600)
    return _transfer.upload(transport, _transfer.Payload(fmt, path=path), progress_stream=io.StringIO())


def measure_upload(proc, port, token, path):
    base = rss_kib(proc.pid)
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(proc.pid))
            time.sleep(0.02)

    t = threading.Thread(target=sample)
    t.start()
    start = time.perf_counter()
    blob = upload(port, token, path)
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("DELETE", "/api/v1/blobs/" + blob["id"], headers={"Authorization": "Bearer " + token})
    conn.getresponse().read()
    conn.close()
    return elapsed, (peak[0] - base) / 1024.0


def measure_cp(src, dst_dir):
    dst = os.path.join(dst_dir, "copy.bin")
    start = time.perf_counter()
    subprocess.check_call(["cp", src, dst])
    subprocess.check_call(["sync", dst])
    elapsed = time.perf_counter() - start
    os.unlink(dst)
    return elapsed


def measure_loopback(src):
    """The transport alone: the same file sent over loopback by sendfile in 1 MiB pieces, as the
    client does, to a reader that takes it into a 1 MiB buffer and drops it (no HTTP, hash or disk).
    """
    size = os.path.getsize(src)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got = [0]

    def read():
        conn, _ = listener.accept()
        view = memoryview(bytearray(1 << 20))
        while got[0] < size:
            n = conn.recv_into(view)
            if n == 0:
                break
            got[0] += n
        conn.close()

    listener.settimeout(60)  # the reader never waits forever for a sender that failed
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    start = time.perf_counter()
    with socket.create_connection(listener.getsockname()) as sock, open(src, "rb") as f:
        sent = 0
        while sent < size:
            sent += os.sendfile(sock.fileno(), f.fileno(), sent, 1 << 20)
    reader.join()
    elapsed = time.perf_counter() - start
    listener.close()
    if got[0] != size:
        raise RuntimeError("loopback reader got %d of %d bytes" % (got[0], size))
    return elapsed


def page_latencies(port, token, pages, page_size):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    out = []
    for page in range(1, pages + 1):
        t = time.perf_counter()
        conn.request("GET", "/api/v1/datasets?page=%d&page_size=%d" % (page, page_size),
                     headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        body = r.read()
        out.append((time.perf_counter() - t) * 1000)
        if r.status != 200:
            raise RuntimeError("list failed: %s %s" % (r.status, body[:200]))
        if len(json.loads(body)["items"]) != page_size:
            raise RuntimeError("short page %d" % page)
    conn.close()
    return out


def get(conn, path, token):
    conn.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    return r.read()


def patch_json(conn, path, body, token):
    conn.request("PATCH", path, body=json.dumps(body),
                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


def seed_datasets(port, token, n, tmp):
    small = os.path.join(tmp, "small.csv")
    with open(small, "w") as f:
        f.write("age,score\n" + "".join("%d,%d.5\n" % (20 + i % 50, i) for i in range(100)))
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(n):
        data = upload(port, token, small, "csv")
        mock = upload(port, token, small, "csv")
        status, body = post_json(conn, "/api/v1/datasets", {
            "name": "dataset-%05d" % i, "summary": "s", "description": "d" * 200,
            "assets": [{"name": "table", "data": data["id"], "mock": mock["id"]}]}, token)
        if status != 201:
            raise RuntimeError("create failed: %s %s" % (status, body[:200]))
    conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--datasets", type=int, default=1000)
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="datasite-bench-", dir=os.environ.get("BENCH_DIR", ROOT + "/build"))
    res = {"runs": a.runs, "size_mib": a.size_mib, "datasets": a.datasets}
    try:
        src = os.path.join(tmp, "big.bin")
        with open(src, "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(a.size_mib):
                f.write(block)
        _, proc, port = datasite_launch(os.path.join(tmp, "up"), reset=True)
        try:
            token = login(port)
            ours, cps, wires, rss = [], [], [], []
            for _ in range(a.runs):
                cps.append(measure_cp(src, tmp))
                t, grow = measure_upload(proc, port, token, src)
                ours.append(t)
                rss.append(grow)
                wires.append(measure_loopback(src))
            mib = float(a.size_mib)
            res["upload_mib_s"] = mib / statistics.median(ours)
            res["cp_sync_mib_s"] = mib / statistics.median(cps)
            res["loopback_mib_s"] = mib / statistics.median(wires)
            res["upload_runs_mib_s"] = [round(mib / t) for t in ours]
            res["cp_sync_runs_mib_s"] = [round(mib / t) for t in cps]
            res["loopback_runs_mib_s"] = [round(mib / t) for t in wires]
            res["upload_rss_growth_mib"] = max(rss)

            seed_datasets(port, token, a.datasets, tmp)
            pages = a.datasets // 50
            # Pages are cached per catalogue version. Cold: a dataset is changed before each pass,
            # so every page is read from the database anew (the renderings of unchanged datasets
            # are kept); warm: the same pass again.
            ours_p50, cold_p50 = [], []
            conn = http.client.HTTPConnection("127.0.0.1", port)
            first = json.loads(get(conn, "/api/v1/datasets?page=1&page_size=1", token))["items"][0]["id"]
            for run in range(a.runs):
                status, _ = patch_json(conn, "/api/v1/datasets/" + first, {"summary": "s%d" % run}, token)
                if status != 200:
                    raise RuntimeError("patch failed: %s" % status)
                cold_p50.append(pct(page_latencies(port, token, pages, 50), 50))
                ours_p50.append(pct(page_latencies(port, token, pages, 50), 50))
            conn.close()
        finally:
            stop(proc)
        env_n = str(a.datasets)
        os.environ["REF_DATASETS"] = env_n
        _, rproc, rport = fastapi_launch(os.path.join(tmp, "ref.db"))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", rport)
            status, body = post_json(conn, "/api/v1/auth/login", {"email": "info@example.org", "password": "changethis"})
            rtoken = json.loads(body)["token"]
            ref_p50 = [pct(page_latencies(rport, rtoken, pages, 50), 50) for _ in range(a.runs)]
        finally:
            stop(rproc)
        res["list_page_p50_ms"] = statistics.median(ours_p50)
        res["list_page_cold_p50_ms"] = statistics.median(cold_p50)
        res["list_page_fastapi_p50_ms"] = statistics.median(ref_p50)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(res, indent=2)
    print(text)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
