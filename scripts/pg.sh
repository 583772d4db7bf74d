#!/usr/bin/env bash
# Starts and stops a private, throwaway PostgreSQL 15 cluster for tests (loopback only, trust auth).
#   bash scripts/pg.sh start DIR [PORT]  initdb into DIR/data, socket in DIR/sock, listen on 127.0.0.1:PORT
#                                        (default: a free port in 25432..25532), create role and database
#                                        `datasite`; prints the URL (also written to DIR/url):
#                                        postgresql://datasite@127.0.0.1:PORT/datasite
#   bash scripts/pg.sh stop DIR          stop the cluster (if running) and remove DIR.
#   bash scripts/pg.sh down DIR | up DIR stop the cluster keeping its data / start it again.
# Run as root, the server runs as user postgres (initdb refuses root); run as any other user, it runs
# as that user. PG_BIN overrides the binaries' directory (default /usr/lib/postgresql/15/bin).
# DIR must be new or empty; its parent must be searchable by user postgres when run as root.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PORT_MIN=25432
PORT_MAX=25532
# What start leaves in DIR; stop removes DIR only if it holds nothing else.
OWN_ENTRIES=" data sock url postgres.log initdb.log "

die() { echo "pg.sh: $*" >&2; exit 1; }
usage() { echo "usage: bash scripts/pg.sh start DIR [PORT] | stop DIR | down DIR | up DIR" >&2; exit 2; }

as_pg() {
  # As user postgres: from / (the caller's directory may be closed to it) and with a PATH it can
  # search (the caller's may start with directories it can't, and then `test` is not found).
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && runuser -u postgres -- /usr/bin/env PATH=/usr/bin:/bin "$@")
  else
    "$@"
  fi
}

check_install() {
  local b
  for b in initdb pg_ctl postgres psql; do
    [ -x "$PG_BIN/$b" ] ||
      die "PostgreSQL 15 is not installed ($PG_BIN/$b missing): apt-get install postgresql"
  done
  if [ "$(id -u)" -eq 0 ]; then
    getent passwd postgres >/dev/null ||
      die "running as root but there is no user 'postgres' to run the server as: apt-get install postgresql"
    command -v runuser >/dev/null || die "running as root needs runuser (util-linux)"
    # A root directory closed to other users (a chroot made in a mktemp directory, as
    # ../shared/tools/fresh-machine makes) keeps user postgres from everything, its own binaries
    # included: open it for searching (not listing), as every Debian install has it.
    if ! runuser -u postgres -- /usr/bin/test -x / 2>/dev/null; then
      echo "pg.sh: / was not searchable by other users; chmod o+x / (user postgres must reach its files)" >&2
      chmod o+x / || die "user postgres cannot search / and chmod o+x / failed"
    fi
  fi
}

abs_dir() {  # the absolute path of $1, which need not exist yet
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$PWD" "$1" ;;
  esac
}

port_in_use() {  # something accepts connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

running() {  # a server runs on DIR/data
  [ -f "$1/data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1
}

cmd_start() {
  local dir want_port="${2:-}"
  dir=$(abs_dir "$1")
  [ "$dir" != / ] || die "refusing DIR /"
  if [ -n "$want_port" ]; then
    [[ "$want_port" =~ ^[0-9]+$ ]] && [ "$want_port" -ge 1 ] && [ "$want_port" -le 65535 ] ||
      die "bad PORT '$want_port'"
  fi
  check_install

  if [ -d "$dir/data" ]; then
    if running "$dir"; then
      die "a cluster is already running in $dir/data ($(cat "$dir/url" 2>/dev/null || echo 'url unknown')); run: bash scripts/pg.sh stop $dir"
    fi
    die "$dir/data already exists (a stopped cluster); run: bash scripts/pg.sh stop $dir"
  fi
  if [ -e "$dir" ]; then
    [ -d "$dir" ] || die "$dir exists and is not a directory"
    [ -z "$(ls -A "$dir")" ] || die "$dir is not empty; give a new or empty directory"
  fi
  if [ -n "$want_port" ] && port_in_use "$want_port"; then
    die "port $want_port on 127.0.0.1 is already in use"
  fi
  # Unix socket paths are limited to 107 bytes: DIR/sock/.s.PGSQL.NNNNN
  [ $((${#dir} + 20)) -le 107 ] || die "DIR path too long for a unix socket (${#dir} chars): $dir"

  mkdir -p "$dir/sock"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir" "$dir/sock" || die "cannot chown $dir to user postgres"
    as_pg test -w "$dir" -a -x "$dir" ||
      die "user postgres cannot reach $dir (a parent directory is not searchable by it); use e.g. DIR=\$(mktemp -d)"
  fi

  if ! as_pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --locale=C --encoding=UTF8 --auth=trust \
      >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    die "initdb failed (log above, also in $dir/initdb.log)"
  fi
  cat >>"$dir/data/postgresql.conf" <<EOF

# scripts/pg.sh: a private throwaway test cluster
max_connections = 200
shared_buffers = 128MB
unix_socket_directories = '$dir/sock'
listen_addresses = '127.0.0.1'
port = 0
EOF

  # Candidate ports: the one asked for, or the range from a random offset (parallel starts rarely
  # collide, and one that loses a race for a port moves on to the next).
  local ports=() i n off
  if [ -n "$want_port" ]; then
    ports=("$want_port")
  else
    n=$((PORT_MAX - PORT_MIN + 1))
    off=$((RANDOM % n))
    for ((i = 0; i < n; i++)); do ports+=($((PORT_MIN + (off + i) % n))); done
  fi

  local port="" p
  for p in "${ports[@]}"; do
    if port_in_use "$p"; then
      [ -n "$want_port" ] && die "port $p on 127.0.0.1 is already in use"
      continue
    fi
    sed -i "s/^port = .*/port = $p/" "$dir/data/postgresql.conf"
    : >"$dir/postgres.log"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/postgres.log"
    if as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null 2>&1; then
      port=$p
      break
    fi
    if grep -q "could not bind\|Address already in use\|could not create lock file" "$dir/postgres.log" &&
        [ -z "$want_port" ]; then
      continue  # lost a race for this port: try the next one
    fi
    cat "$dir/postgres.log" >&2
    die "the server did not start (log above, also in $dir/postgres.log)"
  done
  [ -n "$port" ] || die "no free port in $PORT_MIN..$PORT_MAX on 127.0.0.1"

  # From here on a failure must not leave a server running.
  trap 'as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true' EXIT
  local out
  if ! out=$("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
      -c "CREATE ROLE datasite LOGIN SUPERUSER" -c "CREATE DATABASE datasite OWNER datasite" 2>&1); then
    echo "$out" >&2
    die "creating role/database datasite failed; server stopped, log in $dir/postgres.log"
  fi
  trap - EXIT

  local url="postgresql://datasite@127.0.0.1:$port/datasite"
  echo "$url" >"$dir/url"
  echo "$url"
}

cmd_stop() {
  local dir e
  dir=$(abs_dir "$1")
  [ "$dir" != / ] || die "refusing DIR /"
  [ -e "$dir" ] || return 0
  [ -d "$dir" ] || die "$dir is not a directory"
  # Only ever delete a directory this script made.
  shopt -s nullglob dotglob
  for e in "$dir"/*; do
    case "$OWN_ENTRIES" in
      *" ${e##*/} "*) ;;
      *) die "$dir holds '${e##*/}', which scripts/pg.sh start does not create; not removing it" ;;
    esac
  done
  if [ -f "$dir/data/PG_VERSION" ]; then
    check_install
    if running "$dir"; then
      as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null ||
        die "pg_ctl stop failed for $dir/data (log: $dir/postgres.log)"
    fi
  fi
  rm -rf -- "$dir"
}

[ $# -ge 2 ] || usage
# Resolve DIR here: the commands then run from / so that those run as user postgres do not start in a
# directory it cannot read.
DIR_ARG=$(abs_dir "$2")
cd /
# down / up: stop the server keeping its data, and start it again on its port (for tests of a database
# that goes away and comes back).
cmd_down() {
  running "$1" || die "no cluster runs in $1"
  as_pg "$PG_BIN/pg_ctl" -D "$1/data" -m fast -w -t 60 stop >/dev/null
}
cmd_up() {
  [ -f "$1/data/PG_VERSION" ] || die "no cluster in $1"
  running "$1" && die "the cluster in $1 runs already"
  as_pg "$PG_BIN/pg_ctl" -D "$1/data" -l "$1/postgres.log" -w -t 60 start >/dev/null
}

case "$1" in
  start) [ $# -le 3 ] || usage; cmd_start "$DIR_ARG" "${3:-}" ;;
  down) [ $# -eq 2 ] || usage; cmd_down "$DIR_ARG" ;;
  up) [ $# -eq 2 ] || usage; cmd_up "$DIR_ARG" ;;
  stop) [ $# -eq 2 ] || usage; cmd_stop "$DIR_ARG" ;;
  *) usage ;;
esac
