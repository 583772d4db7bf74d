#!/bin/sh
# Entrypoint of the datasite image: checks that the root admin's password is given, in the file
# DATASITE_ROOT_PASSWORD_FILE (a podman/docker secret, which the server reads itself, so that the
# password is in no process's environment) or in DATASITE_ROOT_PASSWORD, refuses to start without one,
# then replaces itself with `datasite "$@"` (default: launch), which reads the rest of its
# configuration from DATASITE_* variables. The password is never printed.
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
  # Read here only to check it (a variable of this shell's, not exported, gone at the exec); the
  # server reads the file itself (--root-password-file). $(...) drops the trailing newline.
  password=$(cat "$DATASITE_ROOT_PASSWORD_FILE")
else
  password=${DATASITE_ROOT_PASSWORD:-}
fi

# Asking for help needs no password.
for arg in "$@"; do
  case "$arg" in -h | --help) exec /usr/local/bin/datasite "$@" ;; esac
done

case "${1:-launch}" in
  launch | serve)
    # The server would refuse the published default on 0.0.0.0 anyway, but only after setting up
    # the data directory; saying it here, first, names the container's own variables.
    if [ -z "$password" ]; then
      fail "no root admin password: set DATASITE_ROOT_PASSWORD_FILE to a file holding it (e.g. podman run --secret NAME -e DATASITE_ROOT_PASSWORD_FILE=/run/secrets/NAME) or DATASITE_ROOT_PASSWORD. It is used when the volume is new; later starts keep the password the root admin has."
    fi
    if [ "$password" = changethis ]; then
      fail "the root admin password is the published default 'changethis': choose another"
    fi
    ;;
esac

exec /usr/local/bin/datasite "$@"
