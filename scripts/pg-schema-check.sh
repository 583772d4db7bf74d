#!/usr/bin/env bash
# Checks src/store/postgres_schema.h (kPostgresBaseline) on a throwaway PostgreSQL 15 cluster
# (scripts/pg.sh): the DDL runs in one transaction, then the change-log triggers, the rowid
# columns and instr() behave as the SQLite store's do. Prints one line per check; exits non-zero on
# the first failure.
#   bash scripts/pg-schema-check.sh [URL]   with a URL: use that (empty) database instead of a new cluster
set -euo pipefail
cd "$(dirname "$0")/.."

PSQL=${PSQL:-/usr/lib/postgresql/15/bin/psql}
[ -x "$PSQL" ] || PSQL=psql
work=$(mktemp -d)
url=${1:-}
own_cluster=0
cleanup() {
  if [ "$own_cluster" -eq 1 ]; then bash scripts/pg.sh stop "$pgdir" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "$url" ]; then
  pgdir=$(mktemp -d)  # its own: pg.sh hands it to user postgres
  own_cluster=1
  url=$(bash scripts/pg.sh start "$pgdir")
fi

# The DDL: the text between R"sql( and )sql" in the header.
sed -n '/kPostgresBaseline = R"sql(/,/^)sql";/p' src/store/postgres_schema.h | sed '1d;$d' >"$work/schema.sql"
[ -s "$work/schema.sql" ] || { echo "FAIL: no kPostgresBaseline in src/store/postgres_schema.h" >&2; exit 1; }
if grep -qE '^\s*\\' "$work/schema.sql"; then
  echo "FAIL: the DDL has a psql meta-command" >&2; exit 1
fi
"$PSQL" -X -q -v ON_ERROR_STOP=1 -1 -f "$work/schema.sql" "$url"
echo "ok   DDL applied in one transaction ($(wc -l <"$work/schema.sql") lines)"

q() { "$PSQL" -X -qAt -v ON_ERROR_STOP=1 -c "$1" "$url"; }
fails=0
expect() {  # expect NAME SQL WANT
  local got
  got=$(q "$2" 2>&1) || true
  if [ "$got" == "$3" ]; then
    echo "ok   $1"
  else
    echo "FAIL $1: got '$got', want '$3'" >&2
    fails=$((fails + 1))
  fi
}
log_count() { echo "SELECT count(*) FROM change_log"; }

# The schema starts with change_origin's one row (origin ''), as SQLite's migration makes it.
expect "change_origin starts with one row" "SELECT count(*) FROM change_origin WHERE origin = ''" "1"
# Change log: nothing is logged while change_origin is empty.
q "DELETE FROM change_origin"
q "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
   VALUES ('u0', 'u0@x', 'U0', 1, 'h', 1, 1)"
expect "no change_log row while change_origin is empty" "$(log_count)" "0"

q "INSERT INTO change_origin (singleton, origin) VALUES (1, 'here')"
q "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
   VALUES ('u1', 'u1@x', 'U1', 1, 'h', 1, 1)"
expect "users insert logs one row" "$(log_count)" "1"
expect "... kind 'user', op 'insert', the id, the origin" \
  "SELECT kind, object_id, op, origin FROM change_log" "user|u1|insert|here"
expect "... at is the current unix time in seconds" \
  "SELECT abs(at - extract(epoch FROM now())::bigint) <= 5 FROM change_log" "t"

# rowid: generated, last, increasing; not settable.
q "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
   VALUES ('u2', 'u2@x', 'U2', 1, 'h', 1, 1)"
expect "users rowid is generated and increments" \
  "SELECT string_agg(id, ',' ORDER BY rowid) || ' ' || (max(rowid) - min(rowid)) FROM users" "u0,u1,u2 2"
expect "rowid is the last column of users" \
  "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'
   ORDER BY ordinal_position DESC LIMIT 1" "rowid"
expect "ORDER BY created_at, rowid works" \
  "SELECT string_agg(id, ',') FROM (SELECT id FROM users ORDER BY created_at, rowid) t" "u0,u1,u2"
expect "rowid cannot be set" \
  "INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at, rowid)
   VALUES ('u9', 'u9@x', 'U9', 1, 'h', 1, 1, 7) RETURNING rowid" \
  "$(printf 'ERROR:  cannot insert a non-DEFAULT value into column "rowid"\nDETAIL:  Column "rowid" is an identity column defined as GENERATED ALWAYS.\nHINT:  Use OVERRIDING SYSTEM VALUE to override.')"

# Update and delete, and an id column other than 'id' (code_policies.code_id).
q "UPDATE users SET name = 'U1b' WHERE id = 'u1'"
expect "users update logs op 'update'" \
  "SELECT kind || ' ' || object_id || ' ' || op FROM change_log ORDER BY seq DESC LIMIT 1" "user u1 update"
q "INSERT INTO user_code (id, user_id, name, version, source, code_hash, inputs, output_policy,
     output_limit, created_at) VALUES ('c1', 'u1', 'f', 1, 'src', 'hash', '{}', 'p', 0, 1)"
q "INSERT INTO code_policies (code_id, spec) VALUES ('c1', '{}')"
q "DELETE FROM code_policies WHERE code_id = 'c1'"
expect "code_policies delete logs the OLD code_id" \
  "SELECT kind || ' ' || object_id || ' ' || op FROM change_log ORDER BY seq DESC LIMIT 1" "code c1 delete"

# Jobs: the update trigger fires only for its columns, and only when the status leaves queued/running.
q "INSERT INTO jobs (id, code_id, user_id, kind, status, inputs, timeout_ms, created_at)
   VALUES ('j1', 'c1', 'u1', 'run', 'queued', '{}', 1000, 1)"
expect "jobs insert logs" \
  "SELECT kind || ' ' || object_id || ' ' || op FROM change_log ORDER BY seq DESC LIMIT 1" "job j1 insert"
n=$(q "$(log_count)")
q "UPDATE jobs SET status = 'running' WHERE id = 'j1'"
expect "jobs update to 'running' does not log" "$(log_count)" "$n"
q "UPDATE jobs SET status = 'completed', result = '\\x0102'::bytea, result_size = 2 WHERE id = 'j1'"
expect "jobs update to 'completed' logs" "$(log_count)" "$((n + 1))"
expect "... as job j1 update" \
  "SELECT kind || ' ' || object_id || ' ' || op FROM change_log ORDER BY seq DESC LIMIT 1" "job j1 update"
q "UPDATE jobs SET stdout = 'more' WHERE id = 'j1'"
expect "jobs update of a column outside the trigger's list does not log" "$(log_count)" "$((n + 1))"
q "UPDATE jobs SET held = 1 WHERE id = 'j1'"
expect "jobs update of held on a completed job logs" "$(log_count)" "$((n + 2))"

# An emptied change_origin stops logging again.
q "DELETE FROM change_origin"
n=$(q "$(log_count)")
q "DELETE FROM users WHERE id = 'u2'"
expect "no change_log row after change_origin is emptied" "$(log_count)" "$n"

expect "instr('abc', 'c') = 3" "SELECT instr('abc', 'c')" "3"
expect "instr('abc', 'z') = 0, returns bigint" "SELECT instr('abc', 'z') || ' ' || pg_typeof(instr('abc', 'z'))" "0 bigint"
expect "33 change-log triggers" \
  "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'change\\_%'" "33"

if [ "$fails" -ne 0 ]; then
  echo "pg-schema-check: $fails check(s) failed" >&2
  exit 1
fi
echo "pg-schema-check: all checks passed"
