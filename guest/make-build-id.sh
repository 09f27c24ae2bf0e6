#!/usr/bin/env bash
# Usage: make-build-id.sh DEBIAN_VERSION_FILE GUEST.wasm STDLIB.pack OUT.c
# Writes brig_guest_build_id: "cpython-<debian revision>-<hash of module and stdlib>".
set -euo pipefail
ver=$(cat "$1")
hash=$(cat "$2" "$3" | sha256sum | cut -c1-16)
printf 'const char brig_guest_build_id[] = "cpython-%s-%s";\n' "$ver" "$hash" > "$4.tmp"
cmp -s "$4.tmp" "$4" 2>/dev/null && rm "$4.tmp" || mv "$4.tmp" "$4"
