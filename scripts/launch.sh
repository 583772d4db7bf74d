#!/usr/bin/env bash
# Builds datasite if needed and launches a local server in the foreground (Ctrl-C stops it).
# Arguments go to `datasite launch`; the default is `--name my_datasite --port 8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
[ $# -eq 0 ] && set -- --name my_datasite --port 8080
exec build/datasite launch "$@"
