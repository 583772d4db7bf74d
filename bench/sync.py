#!/usr/bin/env python3
"""Sync between a low side and a high side (issue 14): many objects, and one big mock.

Each run launches two real servers ($DATASITE_BINARY), one `--side low` and one `--side high`, in
temporary directories on the disk of the reference copy, and drives them with the datasite Python
client's own sync calls (python/datasite/syncing.py), as an owner who is admin on both.

- objects: a low side holding N data scientists, each with one code and one request (3N objects in N
  batches, all new to the high side). Creating N users through the API would cost N argon2 hashes, so
  one scientist, code and request are made through the API, the server is stopped, and the other N-1 of
  each are cloned from those rows with sqlite3 (new ids, emails, names and sources, each source's
  code_hash recomputed); the change log is written by the schema's own triggers, as for the server's
  writes. The seeded storage is copied for every run. Timed separately: the export from low to a file;
  the load into high (streamed upload, verification, diff) until the diff is in hand; the client's
  rendering of that diff (`_repr_html_`, and the text summary); the apply of every batch in one call
  (`widget.sync_all()`, until its answer, the batches written and the new summary, is taken in).
- big: a high side holding a dataset whose mock is a raw asset of SIZE MiB of random bytes (the private
  data is a small raw blob). Timed: the export from high to a file (the client streams it to disk and
  fsyncs), the import into low (streamed upload until the diff), and the apply there, separately. The
  reference, in the same run and alternating before/after: `cp BUNDLE COPY && sync` of the bundle's own
  bytes, its source read into the page cache first (untimed), so that the reference is at its fastest;
  every timed transfer and every reference starts after a global `sync` (no dirty pages of the uploads
  being written back meanwhile). Each server's VmRSS is sampled every 20 ms during its transfer; the
  figure is the peak minus the value just before, with VmHWM read before and after.

Usage: /usr/bin/python3 bench/sync.py [--runs 3] [--objects 10000] [--size-mib 1024] [--json OUT]
"""
import argparse
import contextlib
import hashlib
import http.client
import io
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from launch_login import BINARY, ROOT, free_port, post_json, stop, wait_ready  # noqa: E402
from render import load, machine  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "python"))
import datasite  # noqa: E402
from datasite import _http, _transfer, syncing  # noqa: E402

ADMIN = {"email": "info@example.org", "password": "changethis"}


def launch(name, side, data_dir, reset):
    port = free_port()
    args = [BINARY, "launch", "--name", name, "--side", side, "--port", str(port), "--host", "127.0.0.1",
            "--data-dir", data_dir, "--workers", "1", "--login-attempts-per-minute", "1000000"]
    if reset:
        args.append("--reset")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc, timeout=60)
    return proc, port


def client(port):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the default root password's warning
        return datasite.login(url="http://127.0.0.1:%d" % port, **ADMIN)


def pair(low, high):
    """Each side registered as the other's peer (the out-of-band key exchange)."""
    lid, hid = low.sync.identity, high.sync.identity
    low.sync.add_peer(name="high", verify_key=hid["verify_key"])
    high.sync.add_peer(name="low", verify_key=lid["verify_key"])


def status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Peak VmRSS growth of a process over a `with` block, sampled every 20 ms; VmHWM before and after."""

    def __init__(self, pid):
        self.pid = pid

    def __enter__(self):
        self.base = status_kib(self.pid, "VmRSS")
        self.hwm_before = status_kib(self.pid, "VmHWM")
        self.peak = self.base
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, status_kib(self.pid, "VmRSS"))
        self.hwm_after = status_kib(self.pid, "VmHWM")
        self.growth_mib = (self.peak - self.base) / 1024.0
        return False


# ---- objects ----------------------------------------------------------------------------------


def seed_low(data_dir, n):
    """A stopped low side's storage with n scientists, each with one code and one request."""
    proc, port = launch("syncbench-low", "low", data_dir, reset=True)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        status, body = post_json(conn, "/api/v1/auth/login", ADMIN)
        token = json.loads(body)["token"]
        status, body = post_json(conn, "/api/v1/users", {"name": "Scientist 0", "email": "sci0@example.org",
                                                         "password": "Bench-Passw0rd", "institution": "Bench U"},
                                 token)
        assert status == 201, body
        status, body = post_json(conn, "/api/v1/auth/login", {"email": "sci0@example.org",
                                                              "password": "Bench-Passw0rd"})
        sci = json.loads(body)["token"]
        status, body = post_json(conn, "/api/v1/code", {
            "name": "total", "source": "def total(k):\n    return k + 0\n", "inputs": {"k": {"value": 1}},
            "output_policy": {"kind": "execute_count", "limit": 1}}, sci)
        assert status == 201, body
        code_id = json.loads(body)["id"]
        status, body = post_json(conn, "/api/v1/requests", {"code_id": code_id, "reason": "bench"}, sci)
        assert status == 201, body
        conn.close()
    finally:
        stop(proc)
    db = sqlite3.connect(os.path.join(data_dir, "datasite.db"))
    db.row_factory = sqlite3.Row
    user = dict(db.execute("SELECT * FROM users WHERE email = 'sci0@example.org'").fetchone())
    code = dict(db.execute("SELECT * FROM user_code WHERE id = ?", (code_id,)).fetchone())
    req = dict(db.execute("SELECT * FROM code_requests WHERE code_id = ?", (code_id,)).fetchone())

    def insert(table, row):
        cols = list(row)
        return "INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(cols), ", ".join("?" * len(cols))), cols

    users, codes, reqs = [], [], []
    for i in range(1, n):
        uid, cid, rid = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        u = dict(user, id=uid, email="sci%d@example.org" % i, name="Scientist %d" % i)
        source = "def total(k):\n    return k + %d\n" % i
        c = dict(code, id=cid, user_id=uid, source=source, code_hash=hashlib.sha256(source.encode()).hexdigest())
        r = dict(req, id=rid, code_id=cid, user_id=uid, reason="bench %d" % i)
        users.append(u)
        codes.append(c)
        reqs.append(r)
    with db:
        for table, rows in (("users", users), ("user_code", codes), ("code_requests", reqs)):
            if rows:
                sql, cols = insert(table, rows[0])
                db.executemany(sql, [[row[c] for c in cols] for row in rows])
    counts = {t: db.execute("SELECT count(*) FROM %s" % t).fetchone()[0]
              for t in ("users", "user_code", "code_requests", "change_log")}
    db.close()
    return counts


def objects_run(tmp, seed_dir, run, n):
    low_dir = os.path.join(tmp, "low%d" % run)
    shutil.copytree(seed_dir, low_dir)
    bundle = os.path.join(tmp, "objects%d.dsync" % run)
    lproc, lport = launch("syncbench-low", "low", low_dir, reset=False)
    hproc, hport = launch("syncbench-high", "high", os.path.join(tmp, "high%d" % run), reset=True)
    out = {}
    try:
        low, high = client(lport), client(hport)
        pair(low, high)
        t0 = time.perf_counter()
        exported = low.sync.export(bundle, peer="high")
        out["export_s"] = time.perf_counter() - t0
        out["bundle_bytes"] = exported.size
        t0 = time.perf_counter()
        diff = syncing.load_bundle(high, bundle)
        out["load_s"] = time.perf_counter() - t0
        s = diff.summary
        assert s["batches"] == n and s["new"] == 3 * n and s["objects"] == 3 * n, s
        out["objects"], out["batches"] = s["objects"], s["batches"]
        t0 = time.perf_counter()
        html = diff._repr_html_()
        out["render_html_s"] = time.perf_counter() - t0
        out["html_bytes"] = len(html)
        t0 = time.perf_counter()
        text = repr(diff)
        out["render_text_s"] = time.perf_counter() - t0
        assert text.count("\n") >= n, "the text summary lists every batch"
        widget = diff.resolve()
        t0 = time.perf_counter()
        widget.sync_all()
        out["apply_s"] = time.perf_counter() - t0
        states = {b.state for b in widget.diff.all_batches}
        assert states == {"applied"} and len(widget.diff.all_batches) == n, (states, len(widget.diff.all_batches))
    finally:
        stop(lproc)
        stop(hproc)
        for d in (low_dir, os.path.join(tmp, "high%d" % run)):
            shutil.rmtree(d, ignore_errors=True)
        if os.path.exists(bundle):
            os.unlink(bundle)
    return out


# ---- big mock ---------------------------------------------------------------------------------


_WARM_BUFFER = bytearray(1 << 20)


def cp_sync(src, dst):
    # The reference at its fastest: its source read into the page cache first (a bundle the client
    # just wrote past the page cache would otherwise be read from disk, slowing the reference).
    with open(src, "rb") as f:
        while f.readinto(_WARM_BUFFER):
            pass
    os.sync()  # the same writeback state as the transfer it is compared with
    t0 = time.perf_counter()
    subprocess.check_call(["cp", src, dst])
    subprocess.check_call(["sync", dst])
    elapsed = time.perf_counter() - t0
    os.unlink(dst)
    return elapsed


def upload(port, token, path, fmt="raw"):
    transport = _http.Transport("http://127.0.0.1:%d" % port, token=token, timeout=600)
    return _transfer.upload(transport, _transfer.Payload(fmt, path=path), progress_stream=io.StringIO())


def big_run(tmp, run, big, small):
    high_dir, low_dir = os.path.join(tmp, "bhigh%d" % run), os.path.join(tmp, "blow%d" % run)
    bundle = os.path.join(tmp, "big%d.dsync" % run)
    hproc, hport = launch("syncbench-high", "high", high_dir, reset=True)
    lproc, lport = launch("syncbench-low", "low", low_dir, reset=True)
    out = {}
    try:
        high, low = client(hport), client(lport)
        token = high._transport.token
        private = upload(hport, token, small)
        mock = upload(hport, token, big)
        conn = http.client.HTTPConnection("127.0.0.1", hport)
        status, body = post_json(conn, "/api/v1/datasets", {
            "name": "big", "summary": "a 1 GiB mock", "assets": [
                {"name": "bytes", "data": private["id"], "mock": mock["id"]}]}, token)
        conn.close()
        assert status == 201, body
        pair(low, high)
        ref_first = run % 2 == 0
        if ref_first:
            out["ref_export_s"] = cp_sync(big, bundle + ".ref")
        os.sync()  # the uploads' dirty pages written back before the timed export, as before `cp`
        with RssSampler(hproc.pid) as rss, contextlib.redirect_stderr(io.StringIO()):  # its progress bar
            t0 = time.perf_counter()
            exported = high.sync.export(bundle, peer="low")
            out["export_s"] = time.perf_counter() - t0
        out["export_rss_growth_mib"] = rss.growth_mib
        out["export_hwm_kib"] = [rss.hwm_before, rss.hwm_after]
        out["bundle_bytes"] = exported.size
        if not ref_first:
            out["ref_export_s"] = cp_sync(bundle, bundle + ".ref")
        if ref_first:
            out["ref_import_s"] = cp_sync(bundle, bundle + ".ref")
        os.sync()
        with RssSampler(lproc.pid) as rss, contextlib.redirect_stderr(io.StringIO()):  # its progress bar
            t0 = time.perf_counter()
            diff = syncing.load_bundle(low, bundle)
            out["import_s"] = time.perf_counter() - t0
        out["import_rss_growth_mib"] = rss.growth_mib
        out["import_hwm_kib"] = [rss.hwm_before, rss.hwm_after]
        assert diff.summary["new"] == 2 and diff.summary["batches"] == 1, diff.summary
        if not ref_first:
            out["ref_import_s"] = cp_sync(bundle, bundle + ".ref")
        with RssSampler(lproc.pid) as rss:
            t0 = time.perf_counter()
            diff.resolve().sync_all()
            out["apply_s"] = time.perf_counter() - t0
        out["apply_rss_growth_mib"] = rss.growth_mib
    finally:
        stop(hproc)
        stop(lproc)
        for p in (high_dir, low_dir):
            shutil.rmtree(p, ignore_errors=True)
        for p in (bundle, bundle + ".ref"):
            if os.path.exists(p):
                os.unlink(p)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--objects", type=int, default=10000, help="scientists (each with a code and a request)")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--skip", choices=("objects", "big"), help="leave one part out")
    ap.add_argument("--json")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="datasite-syncbench-", dir=os.environ.get("BENCH_DIR", ROOT + "/build"))
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    res = {"kind": "sync", "runs": a.runs, "scientists": a.objects, "size_mib": a.size_mib,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": commit, "machine": machine(),
           "load_start": load()}
    med = statistics.median
    try:
        if a.skip != "objects":
            seed = os.path.join(tmp, "seed")
            t0 = time.perf_counter()
            res["seed_counts"] = seed_low(seed, a.objects)
            res["seed_s"] = time.perf_counter() - t0
            runs = []
            for run in range(a.runs):
                r = objects_run(tmp, seed, run, a.objects)
                runs.append(r)
                print("objects run %d: %s" % (run + 1, json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                                                  for k, v in r.items()})), file=sys.stderr)
            res["objects"] = runs[0]["objects"]
            res["batches"] = runs[0]["batches"]
            res["bundle_objects_bytes"] = runs[0]["bundle_bytes"]
            for key in ("export_s", "load_s", "render_html_s", "render_text_s", "apply_s"):
                res["objects_" + key] = med(r[key] for r in runs)
                res["objects_" + key + "_all"] = [r[key] for r in runs]
        if a.skip != "big":
            big, small = os.path.join(tmp, "mock.bin"), os.path.join(tmp, "private.bin")
            with open(big, "wb") as f:
                block = os.urandom(1 << 20)
                for _ in range(a.size_mib):
                    f.write(block)
            with open(small, "wb") as f:
                f.write(os.urandom(4096))
            runs = []
            for run in range(a.runs):
                r = big_run(tmp, run, big, small)
                runs.append(r)
                print("big run %d: %s" % (run + 1, json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                                              for k, v in r.items()})), file=sys.stderr)
            mib = a.size_mib
            res["bundle_big_bytes"] = runs[0]["bundle_bytes"]
            for key in ("export_s", "ref_export_s", "import_s", "ref_import_s", "apply_s"):
                res["big_" + key] = med(r[key] for r in runs)
                res["big_" + key + "_all"] = [r[key] for r in runs]
            res["big_export_mib_s"] = mib / res["big_export_s"]
            res["big_import_mib_s"] = mib / res["big_import_s"]
            res["big_ref_export_mib_s"] = mib / res["big_ref_export_s"]
            res["big_ref_import_mib_s"] = mib / res["big_ref_import_s"]
            # Each run's ratio against the reference copy of the same run (they share that moment's disk).
            res["big_export_ratio_all"] = [r["ref_export_s"] / r["export_s"] for r in runs]
            res["big_import_ratio_all"] = [r["ref_import_s"] / r["import_s"] for r in runs]
            # The import stages the mock and the apply adopts it: both, against the one reference copy.
            res["big_import_apply_ratio_all"] = [r["ref_import_s"] / (r["import_s"] + r["apply_s"]) for r in runs]
            for key in ("export_rss_growth_mib", "import_rss_growth_mib", "apply_rss_growth_mib"):
                res["big_" + key] = max(r[key] for r in runs)
                res["big_" + key + "_all"] = [r[key] for r in runs]
            res["big_hwm_kib_all"] = [{"export": r["export_hwm_kib"], "import": r["import_hwm_kib"]} for r in runs]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["load_end"] = load()
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
