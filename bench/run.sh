#!/usr/bin/env bash
# The benchmark command: builds datasite (Release), installs the reference stacks, measures every figure
# beside its reference in one run, and rewrites docs/BENCHMARKS.md. Takes a few minutes.
# Usage: bash bench/run.sh [RUNS]   (RUNS: repetitions whose median is reported; default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
bash scripts/build.sh >/dev/null
need=()
for p in python3-fastapi python3-uvicorn python3-bcrypt; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
mkdir -p bench/out
/usr/bin/python3 bench/launch_login.py --runs "$runs" --json bench/out/launch_login.json
/usr/bin/python3 bench/upload_list.py --runs "$runs" --json bench/out/upload_list.json
/usr/bin/python3 bench/render.py bench/out/launch_login.json bench/out/upload_list.json > docs/BENCHMARKS.md
echo "wrote docs/BENCHMARKS.md"
