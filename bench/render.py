#!/usr/bin/env python3
"""Writes docs/BENCHMARKS.md (to stdout) from the JSON figures of bench/launch_login.py."""
import json
import os
import platform
import subprocess
import sys
import time


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%s, %d cores, Linux %s" % (cpu, os.cpu_count() or 0, platform.release())


def main():
    r = json.load(open(sys.argv[1]))
    u = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else None
    f = lambda v: "%.1f ms" % v
    rows = [
        ("Launch to ready, first start (makes identity, settings, hashes the root password)",
         f(r["launch_first_ms"]), "FastAPI + uvicorn minimal app, launch to ready: " + f(r["launch_fastapi_ms"]),
         "%.2fx faster" % (r["launch_fastapi_ms"] / r["launch_first_ms"]), "<= 100 ms",
         "met" if r["launch_first_ms"] <= 100 else "not met"),
        ("Launch to ready, relaunch of existing storage", f(r["launch_relaunch_ms"]),
         "FastAPI + uvicorn: " + f(r["launch_fastapi_ms"]),
         "%.1fx faster" % (r["launch_fastapi_ms"] / r["launch_relaunch_ms"]), "<= 100 ms",
         "met" if r["launch_relaunch_ms"] <= 100 else "not met"),
        ("Login p50 (argon2id, libsodium interactive limits)", f(r["login_p50_ms"]),
         "one argon2id verify alone: " + f(r["argon2id_verify_ms"]),
         "%.2fx the hash alone" % (r["login_p50_ms"] / r["argon2id_verify_ms"]), "<= 100 ms",
         "met" if r["login_p50_ms"] <= 100 else "not met"),
        ("Login p50, beside PySyft's way", f(r["login_p50_ms"]),
         "FastAPI login with bcrypt cost 12: " + f(r["login_fastapi_bcrypt12_p50_ms"]),
         "%.2fx faster" % (r["login_fastapi_bcrypt12_p50_ms"] / r["login_p50_ms"]), "", ""),
        ("GET /api/v1/settings p50 while 2 clients log in non-stop", f(r["settings_p50_during_logins_ms"]),
         "the same with no logins: " + f(r["settings_p50_alone_ms"]),
         "%.2fx" % (r["settings_p50_during_logins_ms"] / r["settings_p50_alone_ms"]), "logins never stall others",
         "p99 during logins: " + f(r["settings_p99_during_logins_ms"])),
    ]
    if u:
        rows.append(("Upload of a %d MiB file over loopback (SHA-256, fsync before the answer)" % u["size_mib"],
                     "%.0f MiB/s" % u["upload_mib_s"], "`cp` of the same file + `sync`: %.0f MiB/s" % u["cp_sync_mib_s"],
                     "%.0f%% of cp" % (100 * u["upload_mib_s"] / u["cp_sync_mib_s"]), ">= 70% of cp",
                     "met" if u["upload_mib_s"] >= 0.7 * u["cp_sync_mib_s"] else "not met"))
        rows.append(("Server resident memory growth during that upload", "%.1f MiB" % u["upload_rss_growth_mib"],
                     "", "", "<= 64 MiB", "met" if u["upload_rss_growth_mib"] <= 64 else "not met"))
        rows.append(("List %d datasets, 50 a page: p50 per page" % u["datasets"], f(u["list_page_p50_ms"]),
                     "FastAPI + SQLite, same page size: " + f(u["list_page_fastapi_p50_ms"]),
                     "%.1fx faster" % (u["list_page_fastapi_p50_ms"] / u["list_page_p50_ms"]), "<= 2 ms",
                     "met" if u["list_page_p50_ms"] <= 2 else "not met"))
    out = []
    out.append("# Benchmarks\n")
    out.append("Written by `bash bench/run.sh` on %s (%s). Every figure is the median of %d runs, measured in "
               "the same run as its reference on the same machine; the machines here are shared and noisy, so "
               "read the ratios first.\n" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), machine(),
                                             r["runs"]))
    out.append("| measure | datasite | reference | ratio | goal | |")
    out.append("|---|---|---|---|---|---|")
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("""## How each is measured (bench/launch_login.py)

- **Launch to ready**: from spawning `datasite launch --port P` to the first 200 from `GET /readyz`, polled
  every 2 ms over loopback; first start uses `--reset` (empty storage), relaunch reuses it. The reference
  spawns `python3 -m uvicorn` on a minimal FastAPI app (`bench/reference/fastapi_app.py`, the stack PySyft
  0.9 serves with) and polls it the same way. PySyft itself can't be installed here (no PyPI).
- **Login**: sequential `POST /api/v1/auth/login` over one keep-alive connection, p50 and p90 of 30 per run.
  The floor is one argon2id verify at libsodium's interactive limits (`build/bench/argon2_reference`, the
  same call the server makes); the rest is HTTP, JSON, and the session's durable insert. The PySyft-like
  reference checks a bcrypt cost-12 hash, as PySyft 0.9 does per login.
- **No stall**: p50 of 300 sequential `GET /api/v1/settings` with a token, alone, then while two other
  clients log in back to back. Password hashing runs on its own thread pool, so the settings requests do not
  queue behind logins; on this 2-core machine they still share the CPU with two hashing threads.

- **Upload** (bench/upload_list.py): a file of random bytes (format `raw`, so no parsing) streamed in 1 MiB
  chunks over one connection to `POST /api/v1/blobs`, timed until the server's 201, which it sends after
  SHA-256, fsync of file and directory, and the database insert. The reference copies the same file on the
  same disk with `cp` and then `sync`s the copy. Both read the source from the page cache. Resident memory
  is the server's VmRSS sampled every 20 ms; the figure is the largest growth over all runs.
- **Listing**: 1,000 datasets (one CSV asset each) paged 50 at a time over a keep-alive connection, as an
  admin; p50 of the 20 pages, median over runs. The reference serves the same page size of stored JSON
  documents (of similar size) from SQLite with FastAPI + uvicorn.

Raw figures: `bench/out/*.json` (not committed; rerun to get them).
""")
    out.append("""## Reading the goals

- The first start hashes the root password with argon2id (about 100 ms by itself on this machine); start-up
  does it in parallel with opening storage and binding, so first start costs about one hash. A 100 ms goal
  for the first start would need a weaker hash; we keep the hash.
- Login p50 is bounded below by one argon2id verify at the interactive limits. Where that verify alone takes
  about 100 ms, the 100 ms goal can't be met without lowering the hash cost, which we do not do.
""")
    print("\n".join(out))


if __name__ == "__main__":
    main()
