#!/usr/bin/env bash
# Builds datasite and runs every test: the C++ unit tests and the Python integration tests against real
# launched servers.
#   --full: then the whole suite again under AddressSanitizer + UBSan (the PySyft notebooks included) and
#           under ThreadSanitizer, and every fuzz target for 60 s: what CI runs only a representative part of
#           (see .ci/run).
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
(cd build && ctest --output-on-failure --timeout 900 -j2)
if [ $full -eq 1 ]; then
  bash scripts/test-sanitizers.sh asan tsan
  bash scripts/fuzz.sh 60
fi
