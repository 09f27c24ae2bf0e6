#!/usr/bin/env bash
# ctest's mcp_sdk: installs the official MCP TypeScript SDK clients from the npm registry with
# `npm ci` (the versions of the committed package-lock.json) into BUILD_DIR/mcp-sdk-test,
# then runs sdk_test.mjs against BRIG_BIN. When npm or the registry cannot be reached the
# test FAILS, saying so: it never skips.
# Usage: run_sdk_test.sh BRIG_BIN BUILD_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
brig=$(realpath "$1")
work_root=$(realpath "$2")/mcp-sdk-test
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "mcp_sdk: FAILED: node and npm are needed (scripts/install-deps.sh --test installs them)" >&2
  exit 1
fi
# The 2.x client (@modelcontextprotocol/client, the 2026-07-28 checks) needs node 20 or later.
if (( $(node -p 'process.versions.node.split(".")[0]') < 20 )); then
  echo "mcp_sdk: FAILED: node $(node --version) is too old: @modelcontextprotocol/client needs node 20 or later" >&2
  exit 1
fi
mkdir -p "$work_root"
cp "$here/package.json" "$here/package-lock.json" "$here/sdk_test.mjs" "$work_root/"
# npm ci every run: the committed lockfile's exact versions, or a failure.
echo "mcp_sdk: npm ci (registry: $(npm config get registry))"
if ! (cd "$work_root" && npm ci --no-audit --no-fund --fetch-retries=1 --fetch-timeout=60000 2>&1); then
  echo "mcp_sdk: FAILED: npm ci could not install @modelcontextprotocol/sdk from the npm registry" \
       "($(npm config get registry)); the MCP conversation test cannot run without it" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/brig-mcp-sdk.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work_root"
BRIG_BIN=$brig WORK=$work node sdk_test.mjs
