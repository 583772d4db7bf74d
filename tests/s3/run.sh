#!/usr/bin/env bash
# Runs the S3 client's tests against s3rver behind the SigV4-checking proxy, started for the run and
# stopped after it: bash tests/s3/run.sh [BUILD_DIR] (default build/; build datasite_net_test first).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
source scripts/test-s3.sh
ensure_test_s3
"$build/src/net/datasite_net_test" --gtest_filter='S3*:SigV4*'
