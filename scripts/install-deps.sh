#!/usr/bin/env bash
# Installs, through apt, whatever the build (and, with --test, the tests; with --sanitize, the
# sanitizer and fuzzing runtimes) need and is missing.
# Idempotent: with everything present it runs no apt command at all.
set -euo pipefail

build_pkgs=(
  build-essential cmake ccache pkg-config dpkg-dev python3.11
  clang-19 lld-19 llvm-19 wasi-libc libclang-rt-19-dev-wasm32 wabt binaryen
  libsqlite3-dev libpq-dev nlohmann-json3-dev libcli11-dev libzstd-dev libboost-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-dev python3-setuptools  # the Python package (python/): its extension module, pip install
  fonts-dejavu-core  # DejaVuSans.ttf, shipped with Pillow in the guest (guest/build-pillow.sh)
)
test_pkgs=(postgresql)
# --sanitize: AddressSanitizer, UBSan and libFuzzer runtimes for clang-19 (`make test-sanitize`,
# `make fuzz`; scripts/pgo-profile.sh's profiling runtime is in the same package).
sanitize_pkgs=(libclang-rt-19-dev)

want=("${build_pkgs[@]}")
for arg in "$@"; do
  case $arg in
    --test)
      want+=("${test_pkgs[@]}")
      # The MCP test's client (tests/mcp: the official SDK, from npm) needs node and npm; any
      # that provide them will do (Debian's, or NodeSource's nodejs, which holds npm).
      command -v node >/dev/null && command -v npm >/dev/null || want+=(nodejs npm) ;;
    --sanitize) want+=("${sanitize_pkgs[@]}") ;;
    *) echo "usage: install-deps.sh [--test] [--sanitize]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# A list older than a day may name package revisions the archive no longer serves.
if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]]; then
  $SUDO apt-get update -q
fi
for attempt in 1 2 3; do
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" && exit 0
  echo "install-deps: apt-get install failed (attempt $attempt), retrying" >&2
  $SUDO apt-get update -q || true
  sleep 3
done
exit 1
