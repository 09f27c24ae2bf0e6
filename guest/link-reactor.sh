#!/usr/bin/env bash
# Usage: link-reactor.sh CPYTHON_OUT_DIR GUEST_SOURCE OUT.wasm [LINK_INPUTS_FILE...]
# Compiles brig's guest entry points against the wasm32-wasi CPython build and links them
# with the interpreter as a WASI reactor (no main; exports brig_* and _initialize). Each
# LINK_INPUTS_FILE lists more archives to link (builtin modules outside CPython: Pillow's).
set -euo pipefail
# clang runs wasm-opt -O2 on the link when wasm-opt is on PATH: that decides the generated C
# (and so whether guest/pgo's profile applies), so it must be there, not just sometimes.
command -v wasm-opt >/dev/null || { echo "link-reactor: wasm-opt (binaryen) is missing: run scripts/install-deps.sh" >&2; exit 1; }
cpy=$(cd "$1" && pwd); guest_src=$2; out=$3; shift 3
extra=()
for f in "$@"; do read -r -a more < "$f"; extra+=("${more[@]}"); done
src=$(cat "$cpy/source-dir.txt")
cc=(clang-19 --target=wasm32-wasi --sysroot="$cpy/sysroot")
obj="$out.entry.o"
"${cc[@]}" -O2 -ffile-prefix-map="$cpy"=/brig -ffile-prefix-map="$(dirname "$guest_src")"=/brig/guest \
  -I "$cpy/build" -I "$src/Include" -c "$guest_src" -o "$obj"
# shellcheck disable=SC2046 # the files list word-splits by design
(cd "$cpy/build" && "${cc[@]}" -mexec-model=reactor -O2 "$obj" "${extra[@]}" $(cat "$cpy/link-inputs.txt") \
   $(cat "$cpy/link-flags.txt") -o "$out.tmp")
mv "$out.tmp" "$out"
