#!/usr/bin/env bash
# Builds datasite and runs every test: the C++ unit tests and the Python integration tests against real
# launched servers.
# The PostgreSQL half (the store's conformance tests on PostgreSQL, integration_postgres) runs against a
# private PostgreSQL 15 started here (scripts/pg.sh), or the one DATASITE_TEST_POSTGRES_URL names.
# The S3 client's tests (S3ServerTest.*) run against s3rver behind a SigV4-checking proxy started here
# (tests/s3/servers.sh), or the S3 server DATASITE_TEST_S3_URL names.
# The integration suite is three ctest entries (integration, integration_2, integration_client: see
# CMakeLists.txt), which `ctest -j2` runs side by side; together they run every file once.
#   --full: then the whole integration suite on PostgreSQL, and the whole suite again under AddressSanitizer + UBSan (the PySyft notebooks,
#           integration_client and integration_postgres included) and under ThreadSanitizer, and every fuzz target for 60 s: what CI
#           runs only a representative part of (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
full=0
for arg in "$@"; do
  case "$arg" in
    --full) full=1 ;;
    *) echo "usage: bash scripts/test.sh [--full]" >&2; exit 2 ;;
  esac
done
bash scripts/build.sh -DDATASITE_WERROR=ON
# Every store test and a representative part of the integration suite run on PostgreSQL too.
source scripts/test-postgres.sh
ensure_test_postgres
source scripts/test-s3.sh
ensure_test_s3
if ! (cd build && ctest --output-on-failure --timeout 900 -j2); then
  # ctest's own summary names only the entry (`integration`); a CI log cut to its last lines would
  # not say which test in it failed. Say it last.
  echo "== what failed (pytest's FAILED/ERROR lines, the PySyft notebooks' mismatches and failing gtest cases, from build/Testing/Temporary/LastTest.log):"
  grep -hE '^(FAILED|ERROR) |^mismatch: |^\[  FAILED  \] [A-Za-z]' build/Testing/Temporary/LastTest.log |
    sed -E 's/ \([0-9]+ ms\)$//' | sort -u | tail -40 || true
  exit 1
fi
if [ $full -eq 1 ]; then
  # The whole integration suite on PostgreSQL (CI runs the part in integration_postgres).
  DATASITE_TEST_ENGINE=postgres DATASITE_BINARY="$PWD/build/datasite" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
  bash scripts/test-sanitizers.sh asan tsan
  bash scripts/fuzz.sh 60
fi
