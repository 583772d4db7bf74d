#!/usr/bin/env bash
# Runs the tests under the sanitizers:
#   asan: the `debug` preset (AddressSanitizer + UndefinedBehaviorSanitizer, build/debug) and the whole
#         suite, `ctest --preset debug`: the C++ unit tests and the Python integration tests, which launch
#         build/debug/datasite (CMake passes that path as DATASITE_BINARY).
#   tsan: the `tsan` preset (ThreadSanitizer, clang-14, build/tsan) and the same whole suite, so the
#         server's threads are exercised by the integration tests too.
# Any sanitizer report fails the run. Every instrumented process (unit tests, launched servers, CLI calls)
# stops at its first report (exit code non-zero). Because the integration tests see a server only from the
# client side, the reports are also looked for where they land: ASan, LSan and TSan write them under a log
# directory (log_path), and the servers' own logs (server.log in each data directory, kept under pytest's
# --basetemp) are searched for reports written to stderr (GCC's UBSan, next to ASan, ignores log_path).
# The run fails if any report is found, and prints it.
#   asan-representative: `asan` without the PySyft notebooks (they run in the regular build; under ASan they
#         add minutes and reach no server path the integration suite does not), without integration_client
#         (the integration files that launch no server: nothing they run is instrumented; about 60 s), the
#         integration suite on PostgreSQL and the discrete Gaussian's statistical tests (see below), and
#         built not on the `debug` preset but in the fuzz build (clang-14, AddressSanitizer + UBSan,
#         RelWithDebInfo, DATASITE_FUZZ_BUILD, default build-fuzz), which instruments every target, tests
#         and server included: scripts/fuzz.sh then finds its targets built. One build of the tree
#         instead of two: on the 2-core machine (2026-12-05) the GCC -O0 one took 1,213 s in a fresh
#         root, and this one, whole, 1,282 s from clean.
#         This is what CI runs; `bash scripts/test.sh --full` runs `asan` whole (on the `debug` preset).
#   tsan-concurrency: the `tsan` preset, but only the tests whose subject is concurrency: the job queue's
#         and the sandbox's unit tests (worker threads, leases, kills, concurrent runs), the store's, and
#         the blob store's (an upload's writer thread).
#         This is the part CI runs; it builds three test programs instead of the whole tree.
# Usage: bash scripts/test-sanitizers.sh [asan] [asan-representative] [tsan] [tsan-concurrency]    (default: asan tsan)
# Environment: SANITIZER_JOBS (build and test parallelism, default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(asan tsan)
jobs=${SANITIZER_JOBS:-2}

bash scripts/deps.sh
if [[ " ${parts[*]} " == *" tsan"* ]] && ! command -v clang++-14 >/dev/null; then
  echo "Installing: clang-14"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang-14 >/dev/null
fi

# What failed, printed again at the very end: CI shows only the tail of the output, which the parts
# run after a failing one would fill.
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
note() { echo "$*" >>"$summary"; }

# Prints the reports in $1 (log_path files) and in the server logs under $2, and returns non-zero if there
# are any.
check_logs() {
  local dir=$1 servers=$2 files
  files=$({ find "$dir" -type f -size +0
            find "$servers" -name server.log -type f -print0 2>/dev/null |
              xargs -0 -r grep -lE "runtime error:|(Address|Leak|Thread|UndefinedBehavior)Sanitizer" ||
              true; } | sort)
  if [ -n "$files" ]; then
    echo "FAILED: sanitizer reports:" >&2
    for f in $files; do
      note "sanitizer report in $f: $(grep -m1 -E "runtime error:|ERROR: |WARNING: ThreadSanitizer" "$f" | cut -c1-200)"

      echo "===== $f" >&2
      if [ "$(basename "$f")" = server.log ]; then
        grep -n -A60 -E "runtime error:|(Address|Leak|Thread|UndefinedBehavior)Sanitizer" "$f" | head -300 >&2
      else
        cat "$f" >&2
      fi
    done
    return 1
  fi
  echo "no sanitizer reports"
}

# run_preset NAME: configure, build, test; the sanitizer options are already exported.
# Warnings are not errors here: the sanitizers change what the compilers warn about, and the regular CI
# build (scripts/test.sh) already fails on warnings.
# Further arguments go to ctest (e.g. -E to leave a test out).
run_preset() {
  local name=$1 start=$SECONDS
  shift
  cmake --preset "$name" -DDATASITE_WERROR=OFF >/dev/null
  cmake --build --preset "$name" -j "$jobs"
  echo "== $name: built in $((SECONDS - start)) s"
  local tstart=$SECONDS rc=0
  # Each integration entry keeps its tests' temporary directories (the servers' data directories) under
  # build/$name/pytest-tmp/<entry> (its --basetemp, set in CMakeLists.txt), where check_logs looks.
  # The integration suite is split over three entries (integration, integration_2, integration_client),
  # which -j runs side by side; each gets 45 minutes under the sanitizers.
  ctest --preset "$name" -j "$jobs" --timeout 2700 "$@" || rc=$?
  echo "== $name: tests ran in $((SECONDS - tstart)) s (ctest exit $rc)"
  if [ $rc -ne 0 ]; then
    local log="build/$name/Testing/Temporary/LastTest.log"
    note "$name: ctest exit $rc; failed: $(tr '\n' ' ' <"build/$name/Testing/Temporary/LastTestsFailed.log" 2>/dev/null)"
    # pytest's one-line summary of each failed test (-ra), from the integration entries' output.
    grep -E "^(FAILED|ERROR) " "$log" 2>/dev/null | cut -c1-300 | head -40 >>"$summary" || true
  fi
  return $rc
}

# The unit test programs run by tsan-concurrency.
concurrency_tests=(datasite_jobs_test datasite_sandbox_test datasite_store_test datasite_blob_test datasite_http_test)

status=0
# The store's conformance tests on PostgreSQL (postgres.*) need a server.
source scripts/test-postgres.sh
ensure_test_postgres
# The S3 store's tests (src/blob, src/net, tests/integration/test_s3_blobs.py) run under the
# sanitizers too: its readers and writers use threads of their own.
source scripts/test-s3.sh
ensure_test_s3

for part in "${parts[@]}"; do
  case "$part" in
    asan | asan-representative)
      logs="$PWD/build/debug/sanitizer-logs"
      rm -rf "$logs" && mkdir -p "$logs"
      # halt_on_error: the first report ends the process with a non-zero exit code (UBSan's checks are
      # built with -fno-sanitize-recover=all, so they abort too); detect_leaks: LeakSanitizer at exit.
      export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:log_path=$logs/asan"
      export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/asan"
      export LSAN_OPTIONS="log_path=$logs/asan"
      rc=0
      # The deploy tests check packaging (an image built around the binary, rendered manifests), not
      # the server's memory: an image of the sanitized binary would test neither.
      if [ "$part" = asan ]; then
        run_preset debug -E '^deploy_' || rc=$?
        check_logs "$logs" "$PWD/build/debug/pytest-tmp" || rc=1
      else
        # The store's PostgreSQL tests run here; the integration suite on PostgreSQL does not, nor
        # integration_client (its files launch no server, so they run nothing instrumented). Nor do
        # the discrete Gaussian's statistical tests (about 50 s in Release, 10 minutes here, and they
        # test arithmetic, not memory: the regular build runs them; so do the other samplers' here).
        fuzz_build=${DATASITE_FUZZ_BUILD:-build-fuzz}
        [[ "$fuzz_build" == /* ]] || fuzz_build="$PWD/$fuzz_build"
        start=$SECONDS
        # The same configuration as scripts/fuzz.sh's (which then builds nothing more).
        CC=clang-14 CXX=clang++-14 cmake -S . -B "$fuzz_build" -G Ninja -DDATASITE_FUZZ=ON \
          -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDATASITE_WERROR=OFF >/dev/null
        ninja -C "$fuzz_build" -j "$jobs" || rc=$?
        echo "== asan-representative: built in $((SECONDS - start)) s ($fuzz_build)"
        if [ $rc -eq 0 ]; then
          tstart=$SECONDS
          ctest --test-dir "$fuzz_build" --output-on-failure -j "$jobs" --timeout 2700 \
            -E '^(pysyft_notebooks|integration_client|integration_postgres|deploy_.*|dp\.MechanismDpTest\.DiscreteGaussian.*|dp\.Sigmas/DiscreteGaussianDistributionTest\..*|dp\.NoiseTimingTest\..*)$' || rc=$?
          echo "== asan-representative: tests ran in $((SECONDS - tstart)) s (ctest exit $rc)"
          if [ $rc -ne 0 ]; then
            note "asan-representative: ctest exit $rc; failed: $(tr '\n' ' ' <"$fuzz_build/Testing/Temporary/LastTestsFailed.log" 2>/dev/null)"
            grep -E "^(FAILED|ERROR) " "$fuzz_build/Testing/Temporary/LastTest.log" 2>/dev/null | cut -c1-300 | head -40 >>"$summary" || true
          fi
        else
          note "asan-representative: the build failed"
        fi
        check_logs "$logs" "$fuzz_build/pytest-tmp" || rc=1
      fi
      unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
      [ $rc -eq 0 ] || status=1
      ;;
    tsan)
      logs="$PWD/build/tsan/sanitizer-logs"
      rm -rf "$logs" && mkdir -p "$logs"
      # halt_on_error: the first race or lock-order inversion ends the process with exit code 66.
      export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$logs/tsan"
      rc=0
      run_preset tsan -E '^deploy_' || rc=$?
      check_logs "$logs" "$PWD/build/tsan/pytest-tmp" || rc=1
      unset TSAN_OPTIONS
      [ $rc -eq 0 ] || status=1
      ;;
    tsan-concurrency)
      logs="$PWD/build/tsan/sanitizer-logs"
      rm -rf "$logs" && mkdir -p "$logs"
      export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$logs/tsan"
      rc=0
      start=$SECONDS
      cmake --preset tsan -DDATASITE_WERROR=OFF >/dev/null
      cmake --build --preset tsan -j "$jobs" --target "${concurrency_tests[@]}" || rc=$?
      echo "== tsan-concurrency: built in $((SECONDS - start)) s"
      if [ $rc -eq 0 ]; then
        for test in "${concurrency_tests[@]}"; do
          module=${test#datasite_}
          module=${module%_test}
          # Repeated: a race shows up only in some interleavings.
          "build/tsan/src/$module/$test" --gtest_repeat=3 --gtest_brief=1 || { rc=1; note "tsan-concurrency: $test failed"; }
        done
      fi
      check_logs "$logs" "$PWD/build/tsan/pytest-tmp" || rc=1
      unset TSAN_OPTIONS
      echo "== tsan-concurrency: $((SECONDS - start)) s in all (exit $rc)"
      [ $rc -eq 0 ] || status=1
      ;;
    *)
      echo "unknown part '$part' (asan, asan-representative, tsan or tsan-concurrency)" >&2
      exit 2
      ;;
  esac
done
if [ $status -ne 0 ]; then
  echo "== what failed:" >&2
  cat "$summary" >&2
  echo "sanitizer tests FAILED" >&2
else
  echo "sanitizer tests passed"
fi
exit $status
