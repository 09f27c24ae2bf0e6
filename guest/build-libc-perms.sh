#!/usr/bin/env bash
# Usage: build-libc-perms.sh OUT_DIR
# File modes for the guest (guest/libc_perms.c: umask, the chmod family, open and mkdir with
# their mode, fstat/fstatat with the mode and owner) compiled into OUT_DIR/libc-perms/perms.o,
# which CPython links (configure's LIBS) ahead of libc.a, so configure finds chmod, fchmod,
# fchmodat, umask, statvfs, fstatvfs and eventfd, and libc.a's fstat and fstatat are not linked.
#   OUT_DIR/libc-perms/version.txt: the recipe (part of CPython's configuration id). Needs
#   OUT_DIR/sysroot (made by build-cpython.sh). A rerun with the same inputs does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$1" && pwd)
dest=$out/libc-perms
want="$(cat "$0" "$here/libc_perms.c" "$here"/include/sys/*.h | sha256sum | cut -c1-16)"
# The headers wasi-libc lacks (statvfs.h, eventfd.h) go in the sysroot beside its own (clang
# searches sysroot/include after sysroot/include/wasm32-wasi), for CPython's configure to find.
mkdir -p "$out/sysroot/include/sys"
for h in "$here"/include/sys/*.h; do
  cmp -s "$h" "$out/sysroot/include/sys/${h##*/}" || cp "$h" "$out/sysroot/include/sys/${h##*/}"
done
[[ -f $dest/version.txt && -f $dest/perms.o && "$(cat "$dest/version.txt")" == "$want" ]] && exit 0
rm -rf "$dest" && mkdir -p "$dest"
clang-19 --target=wasm32-wasi --sysroot="$out/sysroot" -std=c11 ${GUEST_CFLAGS:--O2} -DNDEBUG \
  -mthread-model single -ffile-prefix-map="$here"=/brig/guest -Wall -Wextra -Werror \
  -c "$here/libc_perms.c" -o "$dest/perms.o"
echo "$want" > "$dest/version.txt"
