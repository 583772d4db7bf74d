#!/usr/bin/env python3
"""What Prometheus metrics cost (issue 16, "Observability"): server CPU per request of an authenticated
read route with wrk, the server launched without metrics and with --metrics-address while a scraper reads
/metrics once a second. Goal: CPU per request with metrics within +3% of without.

Runs come in pairs on one data directory, a fresh server each run, the order flipping from pair to pair (off
then on, on then off, ...) so that the machine's noise and any first-of-a-pair cost fall on both alike; the figures are medians over runs, the ratio the median of each pair's ratio.
Every wrk run must end with no socket error and no non-2xx answer (api_wrk.check).

Usage: /usr/bin/python3 bench/metrics.py [--runs 5] [--duration 10] [--threads 2] [--connections 64]
                                         [--json OUT]
"""
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_wrk import check, get, source_commit, write_wrk_script, wrk, wrk_argument_parser  # noqa: E402
from launch_login import datasite_launch, free_port, stop  # noqa: E402
from upload_list import login  # noqa: E402

ROUTE = "/api/v1/settings"


def launch(data_dir, metrics_port):
    args = ["--workers", "0"]
    if metrics_port:
        args += ["--metrics-address", "127.0.0.1:%d" % metrics_port]
    _, proc, port = datasite_launch(data_dir, reset=False, extra_args=args)
    return proc, port


class Scraper(threading.Thread):
    """GET /metrics once a second, as Prometheus at scrape_interval 1s would."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.done, self.scrapes, self.bytes = port, threading.Event(), 0, 0

    def run(self):
        while not self.done.wait(1.0):
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.port, timeout=5) as r:
                self.bytes = len(r.read())
                self.scrapes += 1


def one_run(a, tmp, script, with_metrics):
    metrics_port = free_port() if with_metrics else 0
    proc, port = launch(os.path.join(tmp, "ds"), metrics_port)
    scraper = None
    try:
        token = login(port)
        body = get(port, ROUTE, token)
        if with_metrics:
            scraper = Scraper(metrics_port)
            scraper.start()
        r = wrk(port, ROUTE, token, a, script, proc.pid)
        check(r, "metrics %s" % ("on" if with_metrics else "off"), len(body))
        if scraper:
            scraper.done.set()
            scraper.join()
            r["scrapes"], r["scrape_bytes"] = scraper.scrapes, scraper.bytes
            if scraper.scrapes < a.duration - 2:
                raise RuntimeError("only %d scrapes in %d s" % (scraper.scrapes, a.duration))
        r.pop("report")
        return r
    finally:
        if scraper:
            scraper.done.set()
        stop(proc)


def main():
    a = wrk_argument_parser().parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("metrics.py needs wrk (Debian package wrk)")
    tmp = tempfile.mkdtemp(prefix="datasite-metrics-", dir=os.environ.get("BENCH_DIR"))
    script = write_wrk_script(tmp)
    res = {"kind": "metrics", "commit": source_commit(), "route": ROUTE,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": a.runs, "duration_s": a.duration,
           "threads": a.threads, "connections": a.connections, "off": [], "on": []}
    try:
        for i in range(a.runs):
            for on in ((False, True) if i % 2 == 0 else (True, False)):
                r = one_run(a, tmp, script, on)
                res["on" if on else "off"].append(r)
                print("run %d metrics %-3s: %6.0f req/s, %.1f us CPU/request%s" % (
                    i + 1, "on" if on else "off", r["requests"] / (r["duration_us"] / 1e6),
                    r["cpu_us_per_request"], ", %d scrapes" % r["scrapes"] if on else ""), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = {k: [r["cpu_us_per_request"] for r in res[k]] for k in ("off", "on")}
    ratios = [on / off for off, on in zip(cpu["off"], cpu["on"])]
    res["cpu_us_per_request_median"] = {k: statistics.median(v) for k, v in cpu.items()}
    res["rps_median"] = {k: statistics.median(r["requests"] / (r["duration_us"] / 1e6) for r in res[k])
                         for k in ("off", "on")}
    res["cpu_ratio_median"] = statistics.median(ratios)
    res["goal_met"] = res["cpu_ratio_median"] <= 1.03
    print("CPU per request: off %.1f us, on %.1f us (medians); on/off %+.1f%% (median of %d pairs; goal "
          "<= +3%%: %s)" % (res["cpu_us_per_request_median"]["off"], res["cpu_us_per_request_median"]["on"],
                            (res["cpu_ratio_median"] - 1) * 100, len(ratios),
                            "met" if res["goal_met"] else "not met"))
    print("per-pair on/off: " + ", ".join("%+.1f%%" % ((x - 1) * 100) for x in ratios))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
