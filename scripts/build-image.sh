#!/usr/bin/env bash
# Builds the one-container image of datasite (docs/DEPLOY.md, "One container") with podman.
#   bash scripts/build-image.sh [--binary PATH] [--tag TAG]
#     --binary PATH  the datasite binary to put in the image (default: build/datasite)
#     --tag TAG      the image's name (default: localhost/datasite:latest)
# Prints the image's size and how long the base and the image took.
# No container registry is needed: the Debian 12 base is built here with mmdebstrap (minbase, plus the
# packages of the binary's shared libraries, python3 with pandas and numpy, bubblewrap and
# ca-certificates), imported with `podman import`, and deploy/Containerfile is built on it. The host must
# be Debian 12 too (the binary is copied in, so its libraries must match).
#
# The base tarball is cached: DATASITE_IMAGE_CACHE (default /var/cache/datasite-image) keeps one per
# package list and apt sources, so a second build skips mmdebstrap. Its apt sources are the host's Debian
# entries (DATASITE_IMAGE_SOURCES, default /etc/apt/sources.list.d/debian.sources, else
# /etc/apt/sources.list): the same mirror and suites (bookworm, its updates and security), so the
# libraries in the image are the host's versions.
set -euo pipefail

die() { echo "build-image.sh: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
binary="$ROOT/build/datasite"
tag="localhost/datasite:latest"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary=$2; shift 2 ;;
    --tag) [ $# -ge 2 ] || die "--tag needs a name"; tag=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

for tool in podman mmdebstrap dpkg-query ldd objdump; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install podman mmdebstrap binutils)"
done
[ -x "$binary" ] || die "no executable binary at $binary (build it first, or give --binary)"
grep -q '^VERSION_CODENAME=bookworm' /etc/os-release ||
  die "the host is not Debian 12: the binary's libraries would not match the image's"

SUITE=bookworm
# Debian 12 installs its sources as debian.sources; older installs upgraded to it keep sources.list.
sources=${DATASITE_IMAGE_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[ -n "${DATASITE_IMAGE_SOURCES:-}" ] || [ -r "$sources" ] || sources=/etc/apt/sources.list
[ -r "$sources" ] || die "no apt sources at $sources (set DATASITE_IMAGE_SOURCES to a .sources or .list file)"
cache=${DATASITE_IMAGE_CACHE:-/var/cache/datasite-image}
# The Containerfile's RUN step needs a runtime: runc, with finite descriptor and process limits (crun,
# and the unlimited defaults, fail on the test machines). DATASITE_PODMAN_BUILD_FLAGS replaces these.
podman_flags="--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024"

# The packages that hold the libraries the binary links directly (NEEDED); apt brings their own
# dependencies. ldd resolves each name to the path dpkg registered (/lib/x86_64-linux-gnu/...).
mapfile -t needed < <(objdump -p "$binary" | awk '$1 == "NEEDED" {print $2}')
lib_packages=()
for lib in "${needed[@]}"; do
  path=$(ldd "$binary" | awk -v l="$lib" '$1 == l {print $3}')
  [ -n "$path" ] || die "ldd does not resolve $lib"
  owner=$(dpkg-query -S "$path" 2>/dev/null || dpkg-query -S "/usr$path" 2>/dev/null) ||
    die "no Debian package owns $path"
  lib_packages+=("${owner%%:*}")
done
mapfile -t packages < <(printf '%s\n' "${lib_packages[@]}" python3 python3-pandas python3-numpy \
  bubblewrap ca-certificates | sort -u)
echo "base packages: ${packages[*]}"

# The cache key: everything that decides the tarball's content (bar the archive's own updates).
key=$( { echo "$SUITE"; printf '%s\n' "${packages[@]}"; cat "$sources"; sed -n '/^mmdebstrap()/,/^}/p' "$0"; } |
  sha256sum | cut -c1-16)
base_tar="$cache/base-$SUITE-$key.tar"
base_tag="localhost/datasite-base:$SUITE-$key"

# Documentation, man pages and translations are left out: nobody reads them in the container, and
# they are a fifth of the image.
mmdebstrap() {
  command mmdebstrap --variant=minbase --mode=root --format=tar \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --include="$(IFS=,; echo "${packages[*]}")" \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='rm -rf "$1"/var/log/apt/* "$1"/var/log/dpkg.log "$1"/var/cache/ldconfig/aux-cache' \
    "$SUITE" "$1" "$sources"
}

start=$(date +%s)
if [ -s "$base_tar" ]; then
  echo "base: reusing $base_tar"
else
  mkdir -p "$cache"
  echo "base: mmdebstrap $SUITE into $base_tar"
  # The clock of the build is the sources file's, so two builds of the same packages differ less.
  # A file of this build's own (two builds at once each write theirs), removed if the build stops;
  # only a whole one is renamed into place, atomically.
  partial=$(mktemp "$base_tar.XXXXXX.part")
  trap 'rm -f "$partial"' EXIT
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$sources")} mmdebstrap "$partial"
  mv "$partial" "$base_tar"
  trap - EXIT
fi
if ! podman image exists "$base_tag"; then
  podman import --quiet "$base_tar" "$base_tag" >/dev/null
fi
base_done=$(date +%s)

# The build context holds only what the Containerfile copies.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# Modes set here, not taken from the caller's umask: uid 10001 must be able to run and read them.
install -m 0755 "$binary" "$context/datasite"
install -m 0755 "$ROOT/deploy/entrypoint.sh" "$context/entrypoint.sh"
install -m 0644 "$ROOT/deploy/healthcheck.py" "$context/healthcheck.py"
# shellcheck disable=SC2086  # the flags are words
podman build ${DATASITE_PODMAN_BUILD_FLAGS-$podman_flags} --quiet --format docker --build-arg BASE="$base_tag" -t "$tag" \
  -f "$ROOT/deploy/Containerfile" "$context" >/dev/null
end=$(date +%s)

size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "image $tag: $((size / 1000000)) MB; base $((base_done - start)) s, image $((end - base_done)) s"
