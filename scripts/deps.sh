#!/usr/bin/env bash
# Installs the Debian 12 packages datasite needs to build, test and run; a no-op when all are present.
set -euo pipefail
# Checked once per CI run: .ci/run runs this first and then sets DATASITE_DEPS_CHECKED=1, so the stages'
# own calls (build.sh, test-sanitizers.sh, fuzz.sh) do not check again. Where npm can't reach its registry
# (the fresh Debian root CI runs in), each of the three npm installs below fails only after about 70 s
# (measured: 00:51:59, 00:53:10, 00:54:20 in one run): every later call paid those 3.5 minutes again.
[ "${DATASITE_DEPS_CHECKED:-}" = 1 ] && exit 0
packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libboost1.74-dev libboost-system1.74-dev nlohmann-json3-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev libsodium-dev libssl-dev
  libspdlog-dev libcli11-dev libicu-dev libgtest-dev libgmock-dev bubblewrap libseccomp-dev
  python3 python3-pytest python3-pandas python3-numpy
  python3-nbclient python3-ipykernel  # tests/pysyft_notebooks: PySyft's notebooks in a real kernel
  python3-matplotlib  # tests/pysyft_notebooks: the tutorials import it (their expected stops assume it)
  python3-venv python3-pip python3-setuptools python3-wheel  # pip install -e python into a venv
  python3-sklearn  # worker pools (issue 19): an environment with a library the default pool lacks
  python3-hypothesis  # the round-trip property tests (tests/integration/test_roundtrip_*.py)
  python3-aiosmtpd  # tests/integration/test_notifications.py: a real SMTP server on loopback
  python3-cryptography  # tests/integration/sync_helpers.py: forged sync bundles signed with ed25519
  python3-botocore  # src/net/sigv4_test.cc and tests/s3/sigv4_proxy.py: an independent SigV4 signer (offline)
  openssl  # src/net/http_client_test.cc, tests/integration/test_sync_cli.py: a certificate for a TLS peer
  libpq-dev postgresql  # the PostgreSQL store (src/store/sql_postgres.cc) and its tests (scripts/pg.sh)
  python3-zxcvbn  # its list of common passwords is built into the server (src/auth)
  clang-14 libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer and the sanitizers
  chromium  # tests/integration/test_display_browser.py, with playwright-core from npm (below)
  nginx-light  # tests/integration/test_scale_out.py: replicas behind a real proxy (never run as a service)
  prometheus  # tests/integration/test_metrics.py: scrapes a launched server (never run as a service)
  python3-yaml  # tests/deploy/test_k8s.py: reads the rendered Kubernetes manifests
  podman mmdebstrap  # tests/deploy/test_container.py: builds the image (scripts/build-image.sh) and runs it
  runc netavark iptables  # podman's runtime (crun refuses a hybrid cgroup layout) and port publishing
)
command -v npm >/dev/null 2>&1 || packages+=(npm)  # a nodejs of its own may bring npm
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  # Packages with a service (nginx, postgresql) must not start it here: the tests start their own.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    # Removed however the install ends: left behind, it would keep every later package's service
    # on this machine from starting.
    trap '$sudo rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod +x "$policy"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy" ] || { $sudo rm -f "$policy"; trap - EXIT; }
fi
# npm retries a failed fetch twice, after 10 s and then (by default) 60 s: an unreachable registry cost 74 s
# per install (measured against a refused port), 30 s with the second wait capped at 15 s. Still two retries.
npm_retry="--fetch-retry-maxtimeout=15000"
if ! npm ls -g playwright-core >/dev/null 2>&1; then
  echo "Installing playwright-core (npm, global): drives chromium in the notebook display's browser test"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  # Not fatal: without it the browser test is skipped (and says so); everything else still runs.
  # Behind a TLS-intercepting proxy npm needs that proxy's CA (in /usr/local/share/ca-certificates, then
  # update-ca-certificates); the error's last lines below say when that is the cause.
  npm_log=$(mktemp)
  if ! $sudo npm install -g --loglevel=error $npm_retry playwright-core >"$npm_log" 2>&1; then
    echo "warning: npm could not install playwright-core; tests/integration/test_display_browser.py will be skipped:" >&2
    tail -n 3 "$npm_log" >&2
  fi
  rm -f "$npm_log"
fi
# An npm package under a prefix of its own (not global: nothing else on the machine should find it), unless
# FILE under the prefix already exists. Not fatal: the tests that need it skip or fail saying so (WHY).
#   npm_under PREFIX PACKAGE@VERSION FILE WHY
npm_under() {
  local prefix=$1 package=$2 file=$3 why=$4 sudo="" npm_log
  [ -e "$prefix/$file" ] && return 0
  echo "Installing ${package%@*} (npm, under $prefix)"
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  npm_log=$(mktemp)
  if ! { $sudo mkdir -p "$prefix" &&
         $sudo npm install --prefix "$prefix" --loglevel=error --no-audit --no-fund $npm_retry "$package" >"$npm_log" 2>&1; }; then
    echo "warning: npm could not install ${package%@*}; $why:" >&2
    tail -n 3 "$npm_log" >&2
  fi
  rm -f "$npm_log"
}
# tests/s3/servers.sh: an S3-compatible server for the S3 client's tests.
npm_under /opt/datasite-s3rver s3rver@3.7.1 node_modules/.bin/s3rver "the S3 client's server tests will fail"
# tests/deploy/test_k8s.py: the Kubernetes schemas, to validate the rendered manifests offline. The test also
# needs kubectl (1.27 or later, for its kustomize; skipped without it), which Debian 12 does not ship (its
# kubernetes-client is 1.20): install it from Kubernetes' own packages.
npm_under /opt/datasite-k8s-models kubernetes-models@5.1.0 node_modules/kubernetes-models/package.json \
  "tests/deploy/test_k8s.py will skip its schema check"
command -v kubectl >/dev/null 2>&1 || echo "warning: no kubectl: tests/deploy/test_k8s.py will be skipped (install kubectl 1.27+)" >&2
# The tests and clients talk to "localhost"; a minimal root file system (debootstrap, some containers) may
# have no /etc/hosts at all.
if ! getent hosts localhost >/dev/null 2>&1; then
  if [ -w /etc/hosts ] || [ "$(id -u)" -eq 0 ]; then
    echo "Adding localhost to /etc/hosts"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >> /etc/hosts
  else
    echo "warning: 'localhost' does not resolve on this machine; add it to /etc/hosts" >&2
  fi
fi
