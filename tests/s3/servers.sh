#!/usr/bin/env bash
# Starts and stops the S3 server of the tests: s3rver (npm) on a free loopback port, behind
# tests/s3/sigv4_proxy.py (which checks every request's SigV4 signature; s3rver does not).
#   bash tests/s3/servers.sh start DIR   start both (data, logs and pids in DIR, which must be new or
#                                        empty); prints the variables the tests read, as `export` lines:
#                                        DATASITE_TEST_S3_URL=http://127.0.0.1:PORT/BUCKET and the test
#                                        credentials DATASITE_TEST_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY
#   bash tests/s3/servers.sh stop DIR    stop both (by their pids) and remove DIR.
# s3rver is looked for in $S3RVER, then under /opt/datasite-s3rver (where scripts/deps.sh installs it),
# then on the PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "servers.sh: $*" >&2; exit 1; }
BUCKET=datasite-test
ACCESS_KEY_ID=AKIDDATASITETEST
SECRET=datasite/test+secret
REGION=us-east-1

find_s3rver() {
  local c
  for c in "${S3RVER:-}" /opt/datasite-s3rver/node_modules/.bin/s3rver "$(command -v s3rver || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then printf '%s\n' "$c"; return 0; fi
  done
  die "s3rver is not installed: bash scripts/deps.sh (npm install --prefix /opt/datasite-s3rver s3rver)"
}

wait_for() {  # wait_for FILE PATTERN PID: until FILE holds PATTERN (20 s at most, or the PID dies)
  local i
  for i in $(seq 200); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

cmd_start() {
  local dir=$1 s3rver port proxy_port
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
  s3rver=$(find_s3rver)
  mkdir "$dir/data"
  # s3rver's continuation tokens are DES-encrypted, which OpenSSL 3 keeps in its legacy provider.
  NODE_OPTIONS=--openssl-legacy-provider setsid "$s3rver" -d "$dir/data" -a 127.0.0.1 -p 0 --no-vhost-buckets --configure-bucket "$BUCKET" \
    >"$dir/s3rver.log" 2>&1 </dev/null &
  echo $! >"$dir/s3rver.pid"
  wait_for "$dir/s3rver.log" "listening on" "$!" || { cat "$dir/s3rver.log" >&2; die "s3rver did not start"; }
  port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$dir/s3rver.log" | head -n 1)
  [ -n "$port" ] || die "no port in $dir/s3rver.log"
  setsid /usr/bin/python3 "$here/sigv4_proxy.py" --upstream "http://127.0.0.1:$port" \
    --port-file "$dir/proxy.port" --access-key-id "$ACCESS_KEY_ID" --secret-access-key "$SECRET" \
    --region "$REGION" >"$dir/proxy.log" 2>&1 </dev/null &
  echo $! >"$dir/proxy.pid"
  local i
  for i in $(seq 200); do
    [ -s "$dir/proxy.port" ] && break
    kill -0 "$(cat "$dir/proxy.pid")" 2>/dev/null || { cat "$dir/proxy.log" >&2; die "the proxy did not start"; }
    sleep 0.1
  done
  [ -s "$dir/proxy.port" ] || die "the proxy did not start"
  proxy_port=$(cat "$dir/proxy.port")
  printf 'export DATASITE_TEST_S3_URL=%q\n' "http://127.0.0.1:$proxy_port/$BUCKET"
  printf 'export DATASITE_TEST_S3_ACCESS_KEY_ID=%q\n' "$ACCESS_KEY_ID"
  printf 'export DATASITE_TEST_S3_SECRET_ACCESS_KEY=%q\n' "$SECRET"
  printf 'export DATASITE_TEST_S3_REGION=%q\n' "$REGION"
}

cmd_stop() {
  local dir=$1 f pid
  [ -d "$dir" ] || return 0
  for f in "$dir/proxy.pid" "$dir/s3rver.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    # Each was started as the leader of its own session: its group goes with it.
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

case "${1:-}" in
  start) [ $# -eq 2 ] || die "usage: servers.sh start DIR"; cmd_start "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: servers.sh stop DIR"; cmd_stop "$2" ;;
  *) echo "usage: bash tests/s3/servers.sh start DIR | stop DIR" >&2; exit 2 ;;
esac
