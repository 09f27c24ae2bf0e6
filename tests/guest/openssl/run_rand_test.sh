#!/usr/bin/env bash
# Usage: run_rand_test.sh BUILD_DIR
# Links rand_seed.c against the guest's libcrypto (BUILD_DIR/cpython/deps) with the guest's
# toolchain and runs it under Node's WASI, whose random_get is the host's randomness as
# brig's is. Fails (never skips) when node is missing: make test installs it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cpy=$1/cpython
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clang-19 --target=wasm32-wasi --sysroot="$cpy/sysroot" -O1 -I "$cpy/deps/include" \
  -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_GETPID \
  "$here/rand_seed.c" "$cpy/deps/lib/libcrypto.a" \
  -lwasi-emulated-signal -lwasi-emulated-process-clocks -lwasi-emulated-getpid -lwasi-emulated-mman \
  -o "$work/rand_seed.wasm"
cat > "$work/run.mjs" <<'JS'
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
const wasi = new WASI({ version: 'preview1', args: ['rand_seed'], env: {}, preopens: {}, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(process.argv[2]));
const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi.wasiImport });
process.exit(wasi.start(instance));
JS
node --no-warnings "$work/run.mjs" "$work/rand_seed.wasm"
