#!/usr/bin/env python3
"""1 GiB through the S3 blob store against the same bytes sent straight to the S3 server with curl, in
one run (issue 16's goal: upload and download through the store at >= 50% of curl's throughput, the
server's RSS growth <= 64 MiB).

- S3 server: the tests' (tests/s3/servers.sh): s3rver (npm) behind tests/s3/sigv4_proxy.py, which checks
  every signature and each signed payload's SHA-256, and answers the multipart calls s3rver lacks (s3rver
  alone refuses the store's start-up listing of unfinished uploads), on loopback, fresh for each run.
- reference: `curl --aws-sigv4` PUT of the file as one object (the payload unsigned, as curl sends it),
  then GET of it to /dev/null; and, for the upload, the same bytes as a multipart upload of 8 MiB parts
  sent one at a time by botocore (the operation the store does, by an independent client: s3rver
  writes each part and copies them all again into the object at completion, work a single PUT saves).
- datasite: `datasite launch --blob s3://bench/PREFIX?endpoint=...` on the same s3rver; the file uploaded
  by the Python client's own upload call (POST /api/v1/blobs with a Content-Length, sendfile in 1 MiB
  pieces: the server hashes it and streams it on as one PUT, payload unsigned, its last byte held back
  until the whole upload is in), then
  GET /api/v1/blobs/{id} read to nowhere in 1 MiB pieces (the server reads it from S3 in ranged GETs).
  The server's VmRSS is sampled every 20 ms; the figure is the peak minus the value just before.

Usage: /usr/bin/python3 bench/s3.py [--runs 3] [--size-mib 1024] [--json OUT]
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
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_wrk import source_commit  # noqa: E402
from launch_login import datasite_launch, stop  # noqa: E402
from render import machine  # noqa: E402
from upload_list import login, rss_kib, upload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVERS = os.path.join(ROOT, "tests", "s3", "servers.sh")
REGION = "us-east-1"


def start_s3(tmp):
    """s3rver behind the SigV4-checking proxy (tests/s3/servers.sh): {url, key, secret}."""
    out = subprocess.run(["bash", SERVERS, "start", tmp], check=True, capture_output=True, text=True,
                         timeout=60).stdout
    env = dict(re.findall(r"export (\w+)=(\S+)", out))
    env = {k: v.strip("'\"") for k, v in env.items()}
    return {"url": env["DATASITE_TEST_S3_URL"], "key": env["DATASITE_TEST_S3_ACCESS_KEY_ID"],
            "secret": env["DATASITE_TEST_S3_SECRET_ACCESS_KEY"]}


def botocore_multipart(s3, path, key, part_size=8 << 20):
    """The same bytes as one multipart upload of 8 MiB parts, one at a time, each part's SHA-256
    signed, sent by botocore (Debian's python3-botocore): the operation the store does, by an
    independent client. Seconds."""
    import botocore.config
    import botocore.session
    endpoint, bucket = s3["url"].rstrip("/").rsplit("/", 1)
    c = botocore.session.get_session().create_client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=s3["key"],
        aws_secret_access_key=s3["secret"], config=botocore.config.Config(s3={"addressing_style": "path"}))
    start = time.perf_counter()
    upload = c.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    with open(path, "rb") as f:
        while True:
            body = f.read(part_size)
            if not body:
                break
            r = c.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=len(parts) + 1, Body=body)
            parts.append({"PartNumber": len(parts) + 1, "ETag": r["ETag"]})
    c.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts})
    elapsed = time.perf_counter() - start
    c.delete_object(Bucket=bucket, Key=key)
    return elapsed


def curl(s3, *args):
    start = time.perf_counter()
    subprocess.run(["curl", "-sSf", "--aws-sigv4", "aws:amz:%s:s3" % REGION, "--user", "%s:%s" % (s3["key"], s3["secret"]),
                    "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                    *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


class Peak:
    """Peak VmRSS of `pid` above its value at the start, sampled every 20 ms while in the block."""

    def __init__(self, pid):
        self.pid, self.mib = pid, 0.0

    def __enter__(self):
        self.base = rss_kib(self.pid)
        self.peak = self.base
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample)
        self.thread.start()
        return self

    def _sample(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()
        self.mib = (self.peak - self.base) / 1024.0


def download(port, token, blob_id, size):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    conn.request("GET", "/api/v1/blobs/" + blob_id, headers={"Authorization": "Bearer " + token})
    r = conn.getresponse()
    assert r.status == 200, (r.status, r.read(300))
    got, buf = 0, bytearray(1 << 20)
    while True:
        n = r.readinto(buf)
        if not n:
            break
        got += n
    elapsed = time.perf_counter() - start
    conn.close()
    assert got == size, (got, size)
    return elapsed


def one_run(tmp, path, size, run):
    s3dir = os.path.join(tmp, "s3-%d" % run)
    s3 = start_s3(s3dir)
    url = s3["url"]
    bucket = url.rstrip("/").rsplit("/", 1)[1]
    endpoint = url.rstrip("/").rsplit("/", 1)[0]
    env_before = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=s3["key"], AWS_SECRET_ACCESS_KEY=s3["secret"])
    proc = None
    try:
        r = {"curl_put_s": curl(s3, "-T", path, url + "/ref-%d" % run)}
        r["curl_get_s"] = curl(s3, "-o", "/dev/null", url + "/ref-%d" % run)
        curl(s3, "-X", "DELETE", url + "/ref-%d" % run)
        r["botocore_multipart_s"] = botocore_multipart(s3, path, "boto-%d" % run)
        blob = "s3://%s/site-%d?endpoint=%s&region=%s" % (bucket, run, endpoint, REGION)
        _, proc, dport = datasite_launch(os.path.join(tmp, "ds-%d" % run), True,
                                         ["--workers", "0", "--blob", blob, "--max-blob-bytes", str(size + 1)])
        token = login(dport)
        with Peak(proc.pid) as up:
            start = time.perf_counter()
            info = upload(dport, token, path)
            r["datasite_upload_s"] = time.perf_counter() - start
        r["upload_rss_mib"] = up.mib
        with Peak(proc.pid) as down:
            r["datasite_download_s"] = download(dport, token, info["id"], size)
        r["download_rss_mib"] = down.mib
        r["upload_ratio"] = r["curl_put_s"] / r["datasite_upload_s"]
        r["download_ratio"] = r["curl_get_s"] / r["datasite_download_s"]
        r["upload_vs_botocore"] = r["botocore_multipart_s"] / r["datasite_upload_s"]
        return r
    finally:
        if proc:
            stop(proc)
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        subprocess.run(["bash", SERVERS, "stop", s3dir], capture_output=True, timeout=60)
        shutil.rmtree(os.path.join(tmp, "ds-%d" % run), ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--json")
    args = ap.parse_args()
    size = args.size_mib << 20
    tmp = tempfile.mkdtemp(prefix="datasite-bench-s3.", dir=os.environ.get("BENCH_TMP", "/var/tmp"))
    res = {"kind": "s3", "commit": source_commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": machine(), "runs": [], "size_mib": args.size_mib, "load": []}
    try:
        path = os.path.join(tmp, "payload.bin")
        with open(path, "wb") as f:
            for _ in range(args.size_mib):
                f.write(os.urandom(1 << 20))
        for run in range(args.runs):
            res["load"].append(open("/proc/loadavg").read().split()[0])
            r = one_run(tmp, path, size, run)
            res["runs"].append(r)
            mib = size / (1 << 20)
            print("run %d: upload datasite %.0f MiB/s, curl PUT %.0f MiB/s (%.2fx), RSS +%.1f MiB; download datasite "
                  "%.0f MiB/s, curl GET %.0f MiB/s (%.2fx), RSS +%.1f MiB; botocore multipart upload %.0f MiB/s" % (
                      run + 1, mib / r["datasite_upload_s"], mib / r["curl_put_s"], r["upload_ratio"],
                      r["upload_rss_mib"], mib / r["datasite_download_s"], mib / r["curl_get_s"],
                      r["download_ratio"], r["download_rss_mib"], mib / r["botocore_multipart_s"]),
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = statistics.median
    runs = res["runs"]
    mib = size / (1 << 20)
    res["summary"] = {k: med(r[k] for r in runs) for k in runs[0]}
    res["summary"].update({
        "datasite_upload_mib_s": med(mib / r["datasite_upload_s"] for r in runs),
        "curl_put_mib_s": med(mib / r["curl_put_s"] for r in runs),
        "datasite_download_mib_s": med(mib / r["datasite_download_s"] for r in runs),
        "curl_get_mib_s": med(mib / r["curl_get_s"] for r in runs),
        "botocore_multipart_mib_s": med(mib / r["botocore_multipart_s"] for r in runs)})
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
