#!/usr/bin/env bash
# Usage: build-deps.sh OUT_DIR
# Cross-compiles the C libraries behind CPython's zlib, _bz2, _lzma, _sqlite3 and _hashlib
# modules from Debian's sources (zlib, bzip2, xz-utils, sqlite3, openssl; fetched like
# CPython's, with Debian's patches, and brig's in guest/patches/openssl) to wasm32-wasi static
# libraries, and leaves in OUT_DIR/deps:
#   include/, lib/lib{z,bz2,lzma,sqlite3,crypto,ssl}.a, lib/pkgconfig/*.pc (what CPython's configure
#   reads) and versions.txt (the Debian revisions and this recipe's hash: part of CPython's
#   configuration id, so a new library or recipe reconfigures and relinks the guest).
# Needs OUT_DIR/sysroot (made by build-cpython.sh). A rerun with the same inputs does nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$1" && pwd)
jobs=${JOBS:-$(nproc)}
fetch=$here/../scripts/fetch-debian-source.sh
deps=$out/deps
sysroot=$out/sysroot

zsrc=$("$fetch" zlib "$out/src")
bzsrc=$("$fetch" bzip2 "$out/src")
xzsrc=$("$fetch" xz-utils "$out/src")
sqsrc=$("$fetch" sqlite3 "$out/src")
# OpenSSL with brig's patches, applied once to the unpacked tree (a changed set unpacks it again).
sslsrc=$("$fetch" openssl "$out/src")
ssl_patches=$(cat "$here"/patches/openssl/*.patch | sha256sum | cut -c1-16)
if [[ "$(cat "$sslsrc/.brig-patches" 2>/dev/null)" != "$ssl_patches" ]]; then
  if [[ -f "$sslsrc/.brig-patches" ]]; then rm -rf "$sslsrc" && sslsrc=$("$fetch" openssl "$out/src"); fi
  for p in "$here"/patches/openssl/*.patch; do
    patch -p1 -N -s --no-backup-if-mismatch -d "$sslsrc" < "$p" ||
      { echo "build-deps: $p does not apply" >&2; rm -rf "$sslsrc"; exit 1; }
  done
  echo "$ssl_patches" > "$sslsrc/.brig-patches"
fi

recipe=$(sha256sum < "$0" | cut -c1-16)
want="recipe $recipe ${GUEST_CFLAGS:--O2}
zlib $(cat "$zsrc/.brig-unpacked")
bzip2 $(cat "$bzsrc/.brig-unpacked")
xz-utils $(cat "$xzsrc/.brig-unpacked")
sqlite3 $(cat "$sqsrc/.brig-unpacked")
openssl $(cat "$sslsrc/.brig-unpacked") patches $ssl_patches"
if [[ -f $deps/versions.txt && "$(cat "$deps/versions.txt")" == "$want" ]]; then
  exit 0
fi
rm -rf "$deps" && mkdir -p "$deps/include" "$deps/lib/pkgconfig" "$deps/obj"

cc=(clang-19 --target=wasm32-wasi --sysroot="$sysroot")
command -v ccache >/dev/null && cc=(ccache "${cc[@]}")
export CCACHE_BASEDIR="$out" CCACHE_NOHASHDIR=1
cflags=(${GUEST_CFLAGS:--O2} -ffile-prefix-map="$out"=/brig -w)

# compile_lib NAME SRC_DIR EXTRA_FLAGS... -- FILES...: objects in obj/NAME, lib/libNAME.a.
compile_lib() {
  local name=$1 dir=$2; shift 2
  local extra=()
  while [[ $1 != -- ]]; do extra+=("$1"); shift; done
  shift
  mkdir -p "$deps/obj/$name"
  local f pids=() n=0
  for f in "$@"; do
    "${cc[@]}" "${cflags[@]}" "${extra[@]}" -I "$dir" -c "$dir/$f" \
      -o "$deps/obj/$name/$(basename "${f%.c}").o" &
    pids+=($!)
    if (( ++n % jobs == 0 )); then for p in "${pids[@]}"; do wait "$p"; done; pids=(); fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
  rm -f "$deps/lib/lib$name.a"
  llvm-ar-19 rcsD "$deps/lib/lib$name.a" "$deps/obj/$name"/*.o
}

pc() {  # pc NAME VERSION LIBS: a pkg-config file for CPython's configure
  cat > "$deps/lib/pkgconfig/$1.pc" <<EOF
prefix=$deps
Name: $1
Description: $1 for wasm32-wasi (brig guest)
Version: $2
Cflags: -I\${prefix}/include
Libs: -L\${prefix}/lib $3
EOF
}

# ---- zlib
compile_lib z "$zsrc" -DHAVE_UNISTD_H -DHAVE_STDARG_H -- \
  adler32.c compress.c crc32.c deflate.c gzclose.c gzlib.c gzread.c gzwrite.c infback.c \
  inffast.c inflate.c inftrees.c trees.c uncompr.c zutil.c
cp "$zsrc/zlib.h" "$zsrc/zconf.h" "$deps/include/"
pc zlib "$(sed -n 's/^#define ZLIB_VERSION "\([^"]*\)".*/\1/p' "$zsrc/zlib.h")" -lz

# ---- bzip2
compile_lib bz2 "$bzsrc" -D_FILE_OFFSET_BITS=64 -- \
  blocksort.c huffman.c crctable.c randtable.c compress.c decompress.c bzlib.c
cp "$bzsrc/bzlib.h" "$deps/include/"
pc bzip2 1.0.8 -lbz2

# ---- xz-utils (liblzma only), through its own configure
# liblzma built without threads still includes <signal.h> for a sigprocmask() wrapper it
# never calls; WASI has no signal masks: a stand-in header declares one that does nothing.
xzb=$deps/build-xz
mkdir -p "$xzb/shim"
cat > "$xzb/shim/signal.h" <<'EOF'
typedef unsigned long sigset_t;
static inline int sigprocmask(int how, const sigset_t *set, sigset_t *old) {
  (void)how; (void)set; (void)old;
  return 0;
}
EOF
(cd "$xzb" &&
 CC="${cc[*]}" AR=llvm-ar-19 RANLIB=llvm-ranlib-19 CFLAGS="${cflags[*]} -I$xzb/shim" \
 "$xzsrc/configure" --host=wasm32-unknown-wasi --build=x86_64-pc-linux-gnu \
   --enable-static --disable-shared --disable-threads --disable-nls \
   --disable-xz --disable-xzdec --disable-lzmadec --disable-lzmainfo --disable-lzma-links \
   --disable-scripts --disable-doc --disable-rpath --disable-sandbox \
   >"$xzb/configure.log" 2>&1 &&
 make -C src/liblzma -j"$jobs" >"$xzb/make.log" 2>&1) ||
  { tail -30 "$xzb/configure.log" "$xzb/make.log" 2>/dev/null; exit 1; }
cp "$xzb/src/liblzma/.libs/liblzma.a" "$deps/lib/"
cp -r "$xzsrc/src/liblzma/api/lzma.h" "$xzsrc/src/liblzma/api/lzma" "$deps/include/"
pc liblzma "$(cat "$xzsrc/.brig-unpacked")" -llzma

# ---- sqlite3: the amalgamation is generated on the host (tclsh), then cross-compiled.
sqb=$deps/build-sqlite
mkdir -p "$sqb"
(cd "$sqb" && "$sqsrc/configure" --disable-tcl >"$sqb/configure.log" 2>&1 &&
 make sqlite3.c >"$sqb/make.log" 2>&1) ||
  { tail -30 "$sqb/configure.log" "$sqb/make.log" 2>/dev/null; exit 1; }
cp "$sqb/sqlite3.c" "$sqb/sqlite3.h" "$deps/obj/"
# WASI has no fcntl() locks, no mmap of files, no shared memory (so no WAL), no dlopen and
# no threads: sqlite_wasi.h says how os_unix.c is built without them. One process owns a
# sandbox, and brig locks a session while it runs: SQLite's in-process locks are enough.
compile_lib sqlite3 "$deps/obj" -include "$here/sqlite_wasi.h" \
  -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_WAL=1 -DSQLITE_OMIT_LOAD_EXTENSION=1 \
  -DSQLITE_MAX_MMAP_SIZE=0 \
  -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_MATH_FUNCTIONS \
  -DSQLITE_ENABLE_DBSTAT_VTAB -DSQLITE_TEMP_STORE=2 -- sqlite3.c
cp "$sqb/sqlite3.h" "$deps/include/"
pc sqlite3 "$(sed -n 's/^#define SQLITE_VERSION *"\([^"]*\)".*/\1/p' "$sqb/sqlite3.h")" -lsqlite3

# ---- OpenSSL, for _hashlib (the sandbox has no network: _ssl stays out, build-cpython.sh;
# libssl, with no protocol in it, is built only because CPython's configure links it when it
# looks for OpenSSL), through its own Configure, built out of its tree. No assembler, threads, sockets,
# engines, dynamic loading or protocols; the process-clock, signal and getpid emulations
# wasi-libc offers are what CPython links anyway. WASI has no setuid (patch 0001) and no
# chmod declaration (NO_CHMOD: the random seed file's chmod, which nothing here writes).
sslb=$deps/build-openssl
mkdir -p "$sslb"
(cd "$sslb" &&
 "$sslsrc/Configure" linux-generic32 no-asm no-pic no-threads no-shared no-sock no-dso no-engine \
   no-async no-afalgeng no-ui-console no-tests no-secure-memory no-autoload-config no-legacy \
   no-module no-dgram no-srtp no-ssl no-tls no-dtls no-ktls no-ocsp no-ts no-cms no-cmp no-ct \
   CC="${cc[*]}" AR=llvm-ar-19 RANLIB=llvm-ranlib-19 \
   CFLAGS="${cflags[*]} -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_GETPID -DNO_SYSLOG -DNO_CHMOD" \
   >"$sslb/configure.log" 2>&1 &&
 make -j"$jobs" build_libs >"$sslb/make.log" 2>&1) ||
  { grep -v '^clang-19\|^ccache' "$sslb/configure.log" "$sslb/make.log" 2>/dev/null | tail -30; exit 1; }
cp "$sslb/libcrypto.a" "$sslb/libssl.a" "$deps/lib/"
mkdir -p "$deps/include/openssl"
cp "$sslsrc"/include/openssl/*.h "$sslb"/include/openssl/*.h "$deps/include/openssl/"
pc libcrypto "$(sed -n 's/^# define OPENSSL_FULL_VERSION_STR "\([^"]*\)".*/\1/p' "$sslb/include/openssl/opensslv.h")" -lcrypto

echo "$want" > "$deps/versions.txt"
