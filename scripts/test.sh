#!/usr/bin/env bash
# Builds datasite and runs every test: the C++ unit tests and the Python integration tests against real
# launched servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh -DDATASITE_WERROR=ON
cd build
ctest --output-on-failure --timeout 900 -j2
