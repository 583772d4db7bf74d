#!/usr/bin/env bash
# Installs what is missing and builds datasite into build/ (Release). Extra arguments go to cmake.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -G Ninja "$@" >/dev/null
cmake --build build
