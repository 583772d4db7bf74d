#!/usr/bin/env bash
# The benchmark command: builds datasite (the `release` preset, build/release), installs the reference stacks,
# measures every figure beside its reference in one run, and rewrites docs/BENCHMARKS.md. Takes about
# 45 minutes with the default 7 runs.
# Usage: bash bench/run.sh [RUNS] [--soak MINUTES]
#   RUNS: repetitions whose median is reported (default 7).
#   --soak MINUTES: also run the soak (bench/soak.py) for that long; its figures go to bench/soak.json
#   (committed), which every later run keeps rendering, with its date, until the next soak.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=7
soak=""
while [ $# -gt 0 ]; do
  case "$1" in
    --soak) soak=${2:?--soak needs MINUTES}; shift 2 ;;
    *) runs=$1; shift ;;
  esac
done
bash scripts/deps.sh >/dev/null
cmake --preset release -DDATASITE_WERROR=OFF >/dev/null
cmake --build --preset release >/dev/null
export DATASITE_BINARY="$PWD/build/release/datasite" BENCH_DIR="$PWD/build/release"
need=()
for p in python3-fastapi python3-uvicorn python3-uvloop python3-httptools python3-bcrypt wrk nginx-light; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  had_nginx=$(pgrep -x nginx >/dev/null && echo yes || echo no)
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Where the package's install script starts the system nginx (no policy-rc.d), stop it: the benchmark
  # runs its own nginx from a temporary config.
  if [ "$had_nginx" = no ] && [ -s /run/nginx.pid ]; then nginx -s quit 2>/dev/null || true; fi
fi
mkdir -p bench/out
/usr/bin/python3 bench/launch_login.py --runs "$runs" --json bench/out/launch_login.json
/usr/bin/python3 bench/upload_list.py --runs "$runs" --json bench/out/upload_list.json
/usr/bin/python3 bench/api_wrk.py --runs "$runs" --json bench/out/api_wrk.json
/usr/bin/python3 bench/jobs.py --runs "$runs" --json bench/out/jobs.json
/usr/bin/python3 bench/sync.py --runs "$runs" --json bench/out/sync.json
/usr/bin/python3 bench/tls.py --runs "$runs" --json bench/out/tls.json
/usr/bin/python3 bench/grants.py --runs "$runs" --json bench/out/grants.json
/usr/bin/python3 bench/endpoints.py --runs "$runs" --json bench/out/endpoints.json
/usr/bin/python3 bench/dp.py --runs "$runs" --json bench/out/dp.json
/usr/bin/python3 bench/pools.py --runs "$runs" --json bench/out/pools.json
# Issue 15's scale-out goals (a private PostgreSQL 15 each, from scripts/pg.sh). The scientists' set-up
# hashes 4,000 passwords (about 7 minutes on 2 cores) before its runs.
/usr/bin/python3 bench/jobs_queue.py --runs "$runs" --json bench/out/jobs_queue.json
/usr/bin/python3 bench/scientists.py --runs "$runs" --json bench/out/scientists.json
if [ -n "$soak" ]; then
  # Writes the JSON even when the soak saw errors, so they are rendered; then fails the command.
  soak_rc=0
  /usr/bin/python3 bench/soak.py --minutes "$soak" --json bench/soak.json || soak_rc=$?
fi
extra=(bench/out/api_wrk.json bench/out/jobs.json bench/out/sync.json bench/out/jobs_queue.json
       bench/out/scientists.json bench/out/tls.json bench/out/grants.json bench/out/endpoints.json
       bench/out/dp.json bench/out/pools.json)
[ -f bench/soak.json ] && extra+=(bench/soak.json)
/usr/bin/python3 bench/render.py bench/out/launch_login.json bench/out/upload_list.json "${extra[@]}" > docs/BENCHMARKS.md
echo "wrote docs/BENCHMARKS.md"
if [ -n "$soak" ] && [ "$soak_rc" -ne 0 ]; then
  echo "the soak saw errors: see bench/soak.json" >&2
  exit 1
fi
