#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ in build-fuzz (clang-14, ASan + UBSan) and runs each one:
# first once over its committed corpus fuzz/corpus/<name>/ (the regression inputs), then for a fixed
# time on a copy of that corpus, so that the checkout stays clean. Exits non-zero when any target
# crashes, leaks, times out or fails to build; the input that did it is kept in
# build-fuzz/artifacts/. See fuzz/README.md.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 30 s, every target)
#   e.g. scripts/fuzz.sh 60 csv_file npy_file
# Environment: DATASITE_FUZZ_BUILD (build folder, default build-fuzz), JOBS (ninja -j, default 2),
# FUZZ_JOBS (targets run at once, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
  exit 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzzer.cc; do
    f=${f##*/}
    targets+=("${f%_fuzzer.cc}")
  done
fi

bash scripts/deps.sh
build=${DATASITE_FUZZ_BUILD:-build-fuzz}
# Only the fuzz targets are built here (the unit tests stay configured: src/jobs links its test
# unconditionally). In CI scripts/test-sanitizers.sh (asan-representative) has built the whole tree in
# the same folder, with the same configuration, and run the tests there: this finds it built.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DDATASITE_FUZZ=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" -j "${JOBS:-2}" "${targets[@]/%/_fuzzer}"

artifacts="$build/artifacts"
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Sanitizer findings end the run with a report; leaks count as findings.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Reads libFuzzer's final statistics from a log: "<executions> <seconds>".
stats() {
  local runs secs
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$1" | tail -1 | grep -o '[0-9]*$' || true)
  secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$1" | tail -1 | grep -o 'in [0-9]*' | grep -o '[0-9]*' || true)
  echo "${runs:-?} ${secs:-?}"
}

# run_target T: T's two runs (below). Its summary line goes to $work/T.summary and, when a run fails, the
# end of that run's log to $work/T.tail; its exit code says whether it passed.
run_target() {
  local t=$1 bin="$build/fuzz/${1}_fuzzer" corpus="fuzz/corpus/$1" log="$work/$1.log" runs secs start
  local opts=(-timeout=25 -rss_limit_mb=4096 -print_final_stats=1 "-artifact_prefix=$artifacts/$t-")
  # 1. Every committed input once: the regression inputs must still pass.
  if ! "$bin" "${opts[@]}" -runs=0 "$corpus" >"$log" 2>&1; then
    tail -n 40 "$log" >"$work/$t.tail"
    echo "$t: FAILED on its committed corpus $corpus (artifact in $artifacts/)" >"$work/$t.summary"
    return 1
  fi
  # 2. Fuzz for a fixed time on a copy of the corpus.
  cp -r "$corpus" "$work/$t"
  start=$(ls "$work/$t" | wc -l)
  if "$bin" "${opts[@]}" -max_total_time="$seconds" "$work/$t" >"$log" 2>&1; then
    read -r runs secs <<<"$(stats "$log")"
    echo "$t: ok, $runs executions in $secs s, corpus $start -> $(ls "$work/$t" | wc -l) inputs" >"$work/$t.summary"
  else
    tail -n 60 "$log" >"$work/$t.tail"
    read -r runs secs <<<"$(stats "$log")"
    echo "$t: CRASHED after $runs executions; input in $artifacts/ (reproduce: $bin <file>)" >"$work/$t.summary"
    return 1
  fi
}

# The targets run FUZZ_JOBS at a time (default 2): each libFuzzer process uses one core, and
# -max_total_time is wall time, so each target still gets its seconds on a core of its own (one at a
# time, 11 targets took about 140 s of CI for 10 s each).
lanes=${FUZZ_JOBS:-2}
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$lanes" ]; do wait -n || true; done
  run_target "$t" &
done
wait || true
failed=0
for t in "${targets[@]}"; do
  [ -s "$work/$t.tail" ] && { echo "===== $t"; cat "$work/$t.tail"; }
  if [ -s "$work/$t.summary" ]; then
    cat "$work/$t.summary"
    grep -q "^$t: ok," "$work/$t.summary" || failed=1
  else
    echo "$t: FAILED (no summary: the run ended early)"
    failed=1
  fi
done
exit $failed
