#!/usr/bin/env bash
# Usage: build-libc-tz.sh OUT_DIR
# Time zones for the guest: Debian's wasi-libc is built without musl's TZ code (local time is
# always UTC, no tzset()). This compiles musl's __tz.c from Debian's wasi-libc source with
# brig's patch (guest/patches/wasi-libc: TZ as a POSIX string or an IANA name read from the
# sandbox's read-only tzdata, no mmap) into OUT_DIR/libc-tz/__tz.o. CPython links it (configure's
# LIBS) ahead of libc.a, so localtime_r, mktime and strftime's %Z, all still libc.a's, use it.
#   OUT_DIR/libc-tz/version.txt: the source revision and the recipe (part of CPython's
#   configuration id). Needs OUT_DIR/sysroot (made by build-cpython.sh). A rerun with the same
#   inputs does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$1" && pwd)
dest=$out/libc-tz
src=$("$here/../scripts/fetch-debian-source.sh" wasi-libc "$out/src")
want="$(cat "$src/.brig-unpacked") $(cat "$0" "$here"/patches/wasi-libc/*.patch | sha256sum | cut -c1-16)"
[[ -f $dest/version.txt && -f $dest/__tz.o && "$(cat "$dest/version.txt")" == "$want" ]] && exit 0
rm -rf "$dest" && mkdir -p "$dest"
# The patched copy lives here, not in the cached source tree.
work=$dest/src
mkdir -p "$work/libc-top-half"
cp -r "$src/libc-top-half/musl" "$src/libc-top-half/headers" "$work/libc-top-half/"
for p in "$here"/patches/wasi-libc/*.patch; do
  patch -p1 -N -s --no-backup-if-mismatch -d "$work" < "$p" ||
    { echo "build-libc-tz: $p does not apply" >&2; exit 1; }
done
m=$work/libc-top-half/musl
# musl's own flags (-std=c99 -D_XOPEN_SOURCE=700: its private headers assume them) and the
# include order of wasi-libc's Makefile. The zone directory is where pack_stdlib.py puts
# the `tzdata` package in the sandbox.
clang-19 --target=wasm32-wasi --sysroot="$out/sysroot" -std=c99 -D_XOPEN_SOURCE=700 \
  ${GUEST_CFLAGS:--O2} -DNDEBUG -mthread-model single -ffile-prefix-map="$out"=/brig \
  -DBRIG_TZ '-DBRIG_ZONEINFO_DIR="/usr/local/lib/python3.11/tzdata/zoneinfo"' \
  -I"$m/src/include" -I"$m/src/internal" -I"$m/arch/wasm32" -I"$m/arch/generic" \
  -I"$work/libc-top-half/headers/private" -Wall -Wno-parentheses -Werror \
  -c "$m/src/time/__tz.c" -o "$dest/__tz.o"
rm -rf "$work"
echo "$want" > "$dest/version.txt"
