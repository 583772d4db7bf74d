# Sourced by the test scripts: makes sure an S3 server for the tests is up. When DATASITE_TEST_S3_URL
# is already set (an operator's or CI's own S3-compatible server, with DATASITE_TEST_S3_ACCESS_KEY_ID,
# DATASITE_TEST_S3_SECRET_ACCESS_KEY and DATASITE_TEST_S3_REGION) it is used as it is; otherwise s3rver
# behind the SigV4-checking proxy is started with tests/s3/servers.sh and stopped when the sourcing
# script exits (after whatever it had to do at exit before, a PostgreSQL to stop say). The
# S3ServerTest.* tests of src/net/s3_client_test.cc read the variables.
ensure_test_s3() {
  if [ -n "${DATASITE_TEST_S3_URL:-}" ]; then return 0; fi
  # s3rver comes from the npm registry (scripts/deps.sh); where npm could not install it, the S3
  # server tests skip, saying so, as the browser test does without playwright-core.
  if [ ! -x "${S3RVER:-/opt/datasite-s3rver/node_modules/.bin/s3rver}" ] && ! command -v s3rver >/dev/null; then
    echo "== warning: s3rver is not installed (npm); the S3 server tests (S3ServerTest.*) are skipped" >&2
    return 0
  fi
  DATASITE_TEST_S3_DIR=$(mktemp -d /tmp/datasite-test-s3.XXXXXX)
  export DATASITE_TEST_S3_DIR
  local vars previous
  # Absolute: the exit trap may run after the caller has changed directory.
  DATASITE_TEST_S3_SERVERS="$PWD/tests/s3/servers.sh"
  vars=$(bash "$DATASITE_TEST_S3_SERVERS" start "$DATASITE_TEST_S3_DIR")
  eval "$vars"
  previous=$(trap -p EXIT | sed "s/^trap -- '\(.*\)' EXIT\$/\1/")
  # shellcheck disable=SC2064  # the earlier exit command is meant to be expanded now
  trap "${previous:+$previous; }bash \"\$DATASITE_TEST_S3_SERVERS\" stop \"\$DATASITE_TEST_S3_DIR\" >/dev/null 2>&1 || true" EXIT
  echo "== S3 for the tests: $DATASITE_TEST_S3_URL (s3rver behind tests/s3/sigv4_proxy.py)"
}
