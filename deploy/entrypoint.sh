#!/bin/sh
# Entrypoint of the datasite image: takes the root admin's password from DATASITE_ROOT_PASSWORD or from
# the file DATASITE_ROOT_PASSWORD_FILE (a podman/docker secret), refuses to start without one, then
# replaces itself with `datasite "$@"` (default: launch), which reads the rest of its configuration
# from DATASITE_* variables. The password is never printed.
set -eu

fail() {
  echo "datasite container: $*" >&2
  exit 64
}

if [ -n "${DATASITE_ROOT_PASSWORD_FILE:-}" ]; then
  [ -z "${DATASITE_ROOT_PASSWORD:-}" ] ||
    fail "both DATASITE_ROOT_PASSWORD and DATASITE_ROOT_PASSWORD_FILE are set; give one"
  [ -r "$DATASITE_ROOT_PASSWORD_FILE" ] ||
    fail "DATASITE_ROOT_PASSWORD_FILE=$DATASITE_ROOT_PASSWORD_FILE is not a readable file (uid $(id -u))"
  # $(...) drops the trailing newline an editor or `echo` leaves in the file.
  DATASITE_ROOT_PASSWORD=$(cat "$DATASITE_ROOT_PASSWORD_FILE")
  export DATASITE_ROOT_PASSWORD
  unset DATASITE_ROOT_PASSWORD_FILE
fi

# Asking for help needs no password.
for arg in "$@"; do
  case "$arg" in -h | --help) exec /usr/local/bin/datasite "$@" ;; esac
done

case "${1:-launch}" in
  launch | serve)
    # The server would refuse the published default on 0.0.0.0 anyway, but only after setting up
    # the data directory; saying it here, first, names the container's own variables.
    if [ -z "${DATASITE_ROOT_PASSWORD:-}" ]; then
      fail "no root admin password: set DATASITE_ROOT_PASSWORD_FILE to a file holding it (e.g. podman run --secret NAME -e DATASITE_ROOT_PASSWORD_FILE=/run/secrets/NAME) or DATASITE_ROOT_PASSWORD. It is used when the volume is new; later starts keep the password the root admin has."
    fi
    if [ "$DATASITE_ROOT_PASSWORD" = changethis ]; then
      fail "the root admin password is the published default 'changethis': choose another"
    fi
    ;;
esac

exec /usr/local/bin/datasite "$@"
