#!/usr/bin/env bash
# Usage: build-cpython.sh OUT_DIR
# Cross-compiles Debian's CPython 3.11 to wasm32-wasi and leaves in OUT_DIR:
#   libpython3.11.a and the static module archives (the linkable guest), pyconfig/Include
#   for the guest entry points, link-flags.txt (what to link the reactor with) and
#   debian-version.txt (the Debian revision, part of the guest build id).
# The configured tree is kept in OUT_DIR/build: a rerun with unchanged inputs only runs
# `make`, which has nothing to do.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
jobs=${JOBS:-$(nproc)}
unset MAKEFLAGS MFLAGS MAKELEVEL  # our own -j, not the caller's jobserver

src=$("$here/../scripts/fetch-debian-source.sh" python3.11 "$out/src")
# brig's own patches (guest/patches/cpython, applied in name order on top of Debian's): a
# changed set re-unpacks the pristine source from the cache first.
patches_id=$(cat "$here"/patches/cpython/*.patch | sha256sum | cut -c1-16)
if [[ "$(cat "$src/.brig-patches" 2>/dev/null)" != "$patches_id" ]]; then
  if [[ -f "$src/.brig-patches" ]]; then
    rm -rf "$src" && src=$("$here/../scripts/fetch-debian-source.sh" python3.11 "$out/src")
  fi
  for p in "$here"/patches/cpython/*.patch; do
    patch -p1 -N -s --no-backup-if-mismatch -d "$src" < "$p" ||
      { echo "build-cpython: $p does not apply" >&2; rm -rf "$src"; exit 1; }
  done
  echo "$patches_id" > "$src/.brig-patches"
fi
cp "$src/.brig-unpacked" "$out/debian-version.txt.new"
cmp -s "$out/debian-version.txt.new" "$out/debian-version.txt" 2>/dev/null ||
  mv "$out/debian-version.txt.new" "$out/debian-version.txt"
rm -f "$out/debian-version.txt.new"

# Clang with --target=wasm32-wasi but no --sysroot also searches the host's glibc headers.
sysroot=$out/sysroot
mkdir -p "$sysroot/include" "$sysroot/lib"
ln -sfn /usr/include/wasm32-wasi "$sysroot/include/wasm32-wasi"
ln -sfn /usr/lib/wasm32-wasi "$sysroot/lib/wasm32-wasi"

# zlib, bzip2, xz-utils and sqlite3 for the zlib, _bz2, _lzma and _sqlite3 modules: static
# wasm32-wasi libraries from Debian's sources, found by configure through their .pc files.
"$here/build-deps.sh" "$out"
# The IANA time zone database (Debian's tzdata source) for zoneinfo: data, packed with the
# stdlib; not part of the interpreter's configuration.
"$here/build-tzdata.sh" "$out"
# musl's time zone code, which Debian's wasi-libc leaves out, for time.tzset() and local time
# (build-libc-tz.sh): linked in through configure's LIBS.
"$here/build-libc-tz.sh" "$out"
# File modes, umask, the file owner and statvfs (guest/libc_perms.c, build-libc-perms.sh):
# linked in through configure's LIBS too, with --wrap so that an empty path is ENOENT and
# strerror knows ENODATA.
"$here/build-libc-perms.sh" "$out"

cc="clang-19 --target=wasm32-wasi --sysroot=$sysroot"
# ccache makes a rebuild in a fresh tree (a new clone, CI) cost seconds, not minutes.
# CCACHE_BASEDIR turns this tree's absolute paths into relative ones in ccache's hash.
command -v ccache >/dev/null && cc="ccache $cc"
export CCACHE_BASEDIR="$out" CCACHE_NOHASHDIR=1
bld=$out/build
mkdir -p "$bld"
stamp=$bld/.brig-configured
config_id="v5 ${GUEST_CFLAGS:--O2} $(cat "$out/debian-version.txt") $(sed -n '/^# configure:begin/,/^# configure:end/p' "$0" | sha256sum | cut -c1-16) patches $patches_id deps $(sha256sum < "$out/deps/versions.txt" | cut -c1-16) tz $(sha256sum < "$out/libc-tz/version.txt" | cut -c1-16) perms $(cat "$out/libc-perms/version.txt")"
# configure:begin
# __DATE__/__TIME__ (CPython's build info) from Debian's changelog, not the clock: the same
# inputs make the same guest.
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$src/debian/changelog" -STimestamp)
export SOURCE_DATE_EPOCH
# configure's link checks of SQLite's functions declare them with a wrong prototype, and
# wasm-opt (which clang runs on every optimised link) fails to parse what wasm-ld makes of
# that when the library comes first on the line: their answers come from the library's
# symbol table instead.
sqlite_answers=()
sqlite_syms=$(llvm-nm-19 --defined-only "$out/deps/lib/libsqlite3.a")  # not piped into grep -q:
# with pipefail, nm's SIGPIPE when grep stops early would read as "missing"
for f in bind_double column_decltype column_double complete enable_shared_cache load_extension \
         progress_handler result_double serialize set_authorizer trace trace_v2 value_double; do
  if grep -q " T sqlite3_$f\$" <<<"$sqlite_syms"; then
    sqlite_answers+=("ac_cv_lib_sqlite3_sqlite3_$f=yes")
  else
    sqlite_answers+=("ac_cv_lib_sqlite3_sqlite3_$f=no")
  fi
done
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$config_id" ]]; then
  rm -rf "$bld" && mkdir -p "$bld"   # a changed configuration starts from a clean tree
  # The source is named relative to the build dir and __FILE__ is mapped, so no path of
  # this tree ends up in the guest: two checkouts build the same module, and ccache can
  # reuse the ~3 minute compile of its C translation.
  rel_src=$(realpath --relative-to="$bld" "$src")
  # The test modules CPython's own test suite imports (_testcapi, _testinternalcapi,
  # _testbuffer) are built in, so `make pytests` runs the tests that need them. Built-in
  # modules cost only code: nothing imports them into the image. _testclinic and
  # _xxtestfuzz serve no test brig runs; the others need dlopen and configure drops them.
  # The sandbox refuses links by design: without link()/symlink() os.link and os.symlink do
  # not exist, as on a platform that lacks them, so library code takes its fallback.
  # CPython's WASI site file says fdopendir() fails (seen with wasi-sdk 15): Debian's wasi-libc
  # works, and listdir(fd)/scandir(fd) open their own descriptor (patch 0006), so os.fwalk
  # and the fd forms of listdir and scandir exist. It says there is no eventfd(): brig's
  # guest/libc_perms.c has one. A site file may override the command line, so the override
  # is a site file of its own, read after CPython's. It says WASI cannot make named pipes:
  # brig's host makes them in the sandbox's file system (libc_perms.c's mkfifo, mkfifoat).
  # OpenSSL (build-deps.sh) is for _hashlib only: _ssl needs sockets, which the sandbox has not.
  printf '. %s\nac_cv_func_fdopendir=yes\nac_cv_func_eventfd=yes\nac_cv_func_mkfifo=yes\nac_cv_func_mkfifoat=yes\nac_cv_working_openssl_ssl=no\n' \
    "$rel_src/Tools/wasm/config.site-wasm32-wasi" \
    > "$bld/config.site-brig"
  (cd "$bld" &&
   CONFIG_SITE=./config.site-brig \
   PKG_CONFIG_PATH="" PKG_CONFIG_LIBDIR="$out/deps/lib/pkgconfig" \
   CC="$cc" CPP="$cc -E" AR=llvm-ar-19 RANLIB=llvm-ranlib-19 READELF=true \
   LIBS="$out/libc-tz/__tz.o $out/libc-perms/perms.o -Wl,--wrap=__wasilibc_find_relpath_alloc -Wl,--wrap=strerror" \
   CFLAGS="${GUEST_CFLAGS:--O2} -ffile-prefix-map=$out=/brig -Wno-error=int-conversion -Wno-int-conversion" \
   "$rel_src/configure" -C \
     --host=wasm32-unknown-wasi --build=x86_64-pc-linux-gnu \
     --with-build-python=/usr/bin/python3.11 \
     --prefix=/usr/local --disable-ipv6 --enable-test-modules --with-openssl="$out/deps" \
     --with-pymalloc --without-ensurepip --disable-shared \
     ac_cv_func_symlink=no ac_cv_func_link=no "${sqlite_answers[@]}" \
     py_cv_module__testclinic=n/a py_cv_module__xxtestfuzz=n/a \
     >"$bld/configure.log" 2>&1) || { tail -40 "$bld/configure.log"; exit 1; }
  echo "$config_id" > "$stamp"
fi
# configure:end

# python.wasm proves the whole interpreter links; pybuilddir.txt makes _sysconfigdata.
make -C "$bld" -j"$jobs" python.wasm pybuilddir.txt >"$bld/make.log" 2>&1 ||
  { grep -v '^clang-19' "$bld/make.log" | tail -40; exit 1; }

# What the reactor link needs besides brig's own object (the objects and archives of the
# interpreter and its static modules, and the flags configure chose).
cat > "$bld/print-vars.mk" <<'MK'
print-%: ; @echo $($*)
MK
link_vars() { make -s -C "$bld" -f Makefile -f print-vars.mk "print-$1"; }
{
  echo "$(link_vars LINK_PYTHON_DEPS) $(link_vars MODLIBS) $(link_vars LIBS) $(link_vars SYSLIBS)"
} > "$out/link-inputs.txt.new"
{
  echo "$(link_vars PY_CORE_LDFLAGS) $(link_vars LINKFORSHARED)"
} > "$out/link-flags.txt.new"
for f in link-inputs.txt link-flags.txt; do
  cmp -s "$out/$f.new" "$out/$f" 2>/dev/null || mv "$out/$f.new" "$out/$f"
  rm -f "$out/$f.new"
done
echo "$src" > "$out/source-dir.txt.new"
cmp -s "$out/source-dir.txt.new" "$out/source-dir.txt" 2>/dev/null || mv "$out/source-dir.txt.new" "$out/source-dir.txt"
rm -f "$out/source-dir.txt.new"
