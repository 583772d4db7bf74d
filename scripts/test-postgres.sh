# Sourced by the test scripts: makes sure a PostgreSQL server for the tests is up. When
# DATASITE_TEST_POSTGRES_URL is already set (an operator's or CI's own server) it is used as it is;
# otherwise a private throwaway cluster is started with scripts/pg.sh and stopped when the sourcing
# script exits. The PostgreSQL half of the suite (the postgres.* store tests, integration_postgres)
# reads the URL.
ensure_test_postgres() {
  if [ -n "${DATASITE_TEST_POSTGRES_URL:-}" ]; then return 0; fi
  DATASITE_TEST_PG_DIR=$(mktemp -d /tmp/datasite-test-pg.XXXXXX)
  DATASITE_TEST_POSTGRES_URL=$(bash scripts/pg.sh start "$DATASITE_TEST_PG_DIR")
  export DATASITE_TEST_POSTGRES_URL DATASITE_TEST_PG_DIR
  trap 'bash scripts/pg.sh stop "$DATASITE_TEST_PG_DIR" >/dev/null 2>&1 || true' EXIT
  echo "== PostgreSQL for the tests: $DATASITE_TEST_POSTGRES_URL"
}
