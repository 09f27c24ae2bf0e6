#!/usr/bin/env bash
# Usage: build-pillow.sh CPYTHON_OUT_DIR
# Cross-compiles Pillow (Debian's source) and the C libraries it is built with here -- zlib
# (build-deps.sh's), libjpeg-turbo, libpng (for FreeType's PNG glyphs) and FreeType, all from
# Debian's sources -- to wasm32-wasi, for linking into the guest as builtin modules (there is
# no dlopen: brig_guest.c registers PIL._imaging, PIL._imagingft, PIL._imagingmath and
# PIL._imagingmorph in the inittab). Leaves in CPYTHON_OUT_DIR/pillow:
#   lib/lib{pillow,freetype,png16,jpeg}.a and link-inputs.txt (them, in link order);
#   python/PIL/ (Pillow's Python package, and fonts/DejaVuSans.ttf from Debian's
#   fonts-dejavu-core) for the stdlib pack;
# Pillow's C and Python sources carry brig's patches (guest/patches/pillow).
#   versions.txt (the Debian revisions and this recipe's hash).
# Needs CPYTHON_OUT_DIR's sysroot, deps/ and configured build (build-cpython.sh). A rerun with
# the same inputs does nothing and rewrites nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cpy=$(cd "$1" && pwd)
jobs=${JOBS:-$(nproc)}
fetch=$here/../scripts/fetch-debian-source.sh
out=$cpy/pillow
sysroot=$cpy/sysroot
pysrc=$(cat "$cpy/source-dir.txt")
font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

pilsrc=$("$fetch" pillow "$cpy/src")
# brig's patches (guest/patches/pillow, in name order, on top of Debian's): a changed set
# re-unpacks the pristine source from the cache first.
patches=("$here"/patches/pillow/*.patch)
patches_id=$(cat "${patches[@]}" | sha256sum | cut -c1-16)
if [[ "$(cat "$pilsrc/.brig-patches" 2>/dev/null)" != "$patches_id" ]]; then
  if [[ -f "$pilsrc/.brig-patches" ]]; then
    rm -rf "$pilsrc" && pilsrc=$("$fetch" pillow "$cpy/src")
  fi
  for p in "${patches[@]}"; do
    patch -p1 -N -s --no-backup-if-mismatch -d "$pilsrc" < "$p" ||
      { echo "build-pillow: $p does not apply" >&2; rm -rf "$pilsrc"; exit 1; }
  done
  echo "$patches_id" > "$pilsrc/.brig-patches"
fi
jpgsrc=$("$fetch" libjpeg-turbo "$cpy/src")
pngsrc=$("$fetch" libpng1.6 "$cpy/src")
ftsrc=$("$fetch" freetype "$cpy/src")
[[ -f $font ]] || { echo "build-pillow: $font missing: run scripts/install-deps.sh (fonts-dejavu-core)" >&2; exit 1; }

recipe=$(cat "$0" "$here/compile-lib.sh" "${patches[@]}" | sha256sum | cut -c1-16)
want="recipe $recipe ${GUEST_CFLAGS:--O2}
python $(cat "$cpy/debian-version.txt")
zlib $(head -2 "$cpy/deps/versions.txt" | tail -1)
pillow $(cat "$pilsrc/.brig-unpacked")
libjpeg-turbo $(cat "$jpgsrc/.brig-unpacked")
libpng1.6 $(cat "$pngsrc/.brig-unpacked")
freetype $(cat "$ftsrc/.brig-unpacked")
fonts-dejavu-core $(dpkg-query -W -f='${Version}' fonts-dejavu-core) $(sha256sum < "$font" | cut -c1-16)"
if [[ -f $out/versions.txt && "$(cat "$out/versions.txt")" == "$want" ]]; then
  exit 0
fi
rm -rf "$out" && mkdir -p "$out/lib" "$out/obj" "$out/include"

cc=(clang-19 --target=wasm32-wasi --sysroot="$sysroot")
command -v ccache >/dev/null && cc=(ccache "${cc[@]}")
export CCACHE_BASEDIR="$cpy" CCACHE_NOHASHDIR=1
cflags=(${GUEST_CFLAGS:--O2} -ffile-prefix-map="$cpy"=/brig -w -I "$out/include")

# Debian's wasi-libc has no setjmp/longjmp (WebAssembly cannot unwind the C stack without the
# exception-handling proposal, which wasm2c's output here does not use). libjpeg's and
# FreeType's error paths longjmp out of a fatal error: here that ends the guest with a trap
# (the sandbox's run fails, the session is not damaged) instead of raising an exception.
cat > "$out/include/setjmp.h" <<'EOF'
#ifndef BRIG_SETJMP_H
#define BRIG_SETJMP_H
typedef long jmp_buf[1];
#define setjmp(env) ((void)(env), 0)
void longjmp(jmp_buf env, int val) __attribute__((noreturn));
#endif
EOF
cat > "$out/obj/brig_longjmp.c" <<'EOF'
#include <stdio.h>
#include <setjmp.h>
void longjmp(jmp_buf env, int val) {
  (void)env; (void)val;
  fputs("brig: a C library's fatal error (a corrupt image or font?) cannot be recovered "
        "from inside the sandbox (no longjmp in WebAssembly)\n", stderr);
  fflush(stderr);
  __builtin_trap();
}
EOF

source "$here/compile-lib.sh"

# ---- libjpeg-turbo: the libjpeg API (6b ABI, as Debian's libjpeg62-turbo), no SIMD.
jver=$(sed -n 's/^set(VERSION \([0-9.]*\)).*/\1/p' "$jpgsrc/CMakeLists.txt")
IFS=. read -r jmaj jmin jrev <<<"$jver"
mkdir -p "$out/obj/jpeg-conf"
sed -e "s/@JPEG_LIB_VERSION@/62/; s/@VERSION@/$jver/; s/@LIBJPEG_TURBO_VERSION_NUMBER@/$((jmaj * 1000000 + jmin * 1000 + jrev))/" \
    -e 's/#cmakedefine C_ARITH_CODING_SUPPORTED 1/#define C_ARITH_CODING_SUPPORTED 1/' \
    -e 's/#cmakedefine D_ARITH_CODING_SUPPORTED 1/#define D_ARITH_CODING_SUPPORTED 1/' \
    -e 's/#cmakedefine MEM_SRCDST_SUPPORTED 1/#define MEM_SRCDST_SUPPORTED 1/' \
    -e 's/@BITS_IN_JSAMPLE@/8/' -e 's/^#cmakedefine .*//' "$jpgsrc/jconfig.h.in" > "$out/include/jconfig.h"
sed -e 's/@BUILD@/brig/; s/@INLINE@/inline __attribute__((always_inline))/; s/@THREAD_LOCAL@//' \
    -e "s/@CMAKE_PROJECT_NAME@/libjpeg-turbo/; s/@VERSION@/$jver/; s/@SIZE_T@/4/" \
    -e 's/#cmakedefine HAVE_BUILTIN_CTZL/#define HAVE_BUILTIN_CTZL/' -e 's/^#cmakedefine .*//' \
    "$jpgsrc/jconfigint.h.in" > "$out/obj/jpeg-conf/jconfigint.h"
sed -e "s/@COPYRIGHT_YEAR@/1991-2023/" "$jpgsrc/jversion.h.in" > "$out/obj/jpeg-conf/jversion.h"
compile_lib jpeg "$jpgsrc" -I "$out/obj/jpeg-conf" -- \
  jcapimin.c jcapistd.c jccoefct.c jccolor.c jcdctmgr.c jchuff.c jcicc.c jcinit.c jcmainct.c \
  jcmarker.c jcmaster.c jcomapi.c jcparam.c jcphuff.c jcprepct.c jcsample.c jctrans.c \
  jdapimin.c jdapistd.c jdatadst.c jdatasrc.c jdcoefct.c jdcolor.c jddctmgr.c jdhuff.c \
  jdicc.c jdinput.c jdmainct.c jdmarker.c jdmaster.c jdmerge.c jdphuff.c jdpostct.c \
  jdsample.c jdtrans.c jerror.c jfdctflt.c jfdctfst.c jfdctint.c jidctflt.c jidctfst.c \
  jidctint.c jidctred.c jquant1.c jquant2.c jutils.c jmemmgr.c jmemnobs.c jaricom.c \
  jcarith.c jdarith.c jsimd_none.c
cp "$jpgsrc/jpeglib.h" "$jpgsrc/jmorecfg.h" "$jpgsrc/jerror.h" "$out/include/"

# ---- libpng (FreeType decodes the PNG glyphs of colour fonts with it).
cp "$pngsrc/scripts/pnglibconf.h.prebuilt" "$out/include/pnglibconf.h"
compile_lib png16 "$pngsrc" -I "$cpy/deps/include" -DPNG_ARM_NEON_OPT=0 -- \
  png.c pngerror.c pngget.c pngmem.c pngpread.c pngread.c pngrio.c pngrtran.c pngrutil.c \
  pngset.c pngtrans.c pngwio.c pngwrite.c pngwtran.c pngwutil.c
cp "$pngsrc/png.h" "$pngsrc/pngconf.h" "$out/include/"

# ---- FreeType: the TrueType, OpenType/CFF and Type 1 drivers, both rasterisers (Pillow's
# mode "1" text uses the monochrome one), the auto-hinter, gzip (with zlib: SVG glyphs); no BDF/PCF fonts.
cat > "$out/include/brig_ftmodule.h" <<'EOF'
FT_USE_MODULE( FT_Module_Class, autofit_module_class )
FT_USE_MODULE( FT_Driver_ClassRec, tt_driver_class )
FT_USE_MODULE( FT_Driver_ClassRec, t1_driver_class )
FT_USE_MODULE( FT_Driver_ClassRec, cff_driver_class )
FT_USE_MODULE( FT_Module_Class, psaux_module_class )
FT_USE_MODULE( FT_Module_Class, psnames_module_class )
FT_USE_MODULE( FT_Module_Class, pshinter_module_class )
FT_USE_MODULE( FT_Module_Class, sfnt_module_class )
FT_USE_MODULE( FT_Renderer_Class, ft_smooth_renderer_class )
FT_USE_MODULE( FT_Renderer_Class, ft_raster1_renderer_class )
EOF
compile_lib freetype "$ftsrc" -I "$ftsrc/include" -I "$cpy/deps/include" -DFT2_BUILD_LIBRARY \
  '-DFT_CONFIG_MODULES_H=<brig_ftmodule.h>' -DFT_CONFIG_OPTION_USE_PNG -DFT_CONFIG_OPTION_SYSTEM_ZLIB -- \
  src/base/ftsystem.c src/base/ftinit.c src/base/ftdebug.c src/base/ftbase.c \
  src/base/ftbbox.c src/base/ftbitmap.c src/base/ftglyph.c src/base/ftmm.c \
  src/base/ftstroke.c src/base/ftsynth.c src/base/fttype1.c \
  src/truetype/truetype.c src/type1/type1.c src/cff/cff.c src/sfnt/sfnt.c \
  src/psaux/psaux.c src/psnames/psnames.c src/pshinter/pshinter.c src/autofit/autofit.c \
  src/smooth/smooth.c src/raster/raster.c src/gzip/ftgzip.c
cp -r "$ftsrc/include/ft2build.h" "$ftsrc/include/freetype" "$out/include/"

# ---- Pillow's C modules (setup.py's lists), against the guest's Python headers.
pilver=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$pilsrc/src/PIL/_version.py")
imaging=(src/_imaging.c src/decode.c src/encode.c src/map.c src/display.c src/outline.c src/path.c)
while read -r f; do imaging+=("src/libImaging/$f.c"); done < <(
  sed -n '/^_LIB_IMAGING = (/,/^)/s/^ *"\([A-Za-z0-9_]*\)",$/\1/p' "$pilsrc/setup.py")
compile_lib pillow "$pilsrc" -I "$pysrc/Include" -I "$cpy/build" -I "$out/include/freetype" \
  -DHAVE_LIBJPEG -DHAVE_LIBZ "-DPILLOW_VERSION=\"$pilver\"" -I "$cpy/deps/include" -- \
  "${imaging[@]}" src/_imagingft.c src/_imagingmath.c src/_imagingmorph.c
"${cc[@]}" "${cflags[@]}" -c -I "$out/include" "$out/obj/brig_longjmp.c" -o "$out/obj/pillow/brig_longjmp.o"
llvm-ar-19 rcsD "$out/lib/libpillow.a" "$out/obj/pillow/brig_longjmp.o"
syms=$(llvm-nm-19 --defined-only "$out/lib/libpillow.a" 2>/dev/null)  # not piped into grep -q
for m in _imaging _imagingft _imagingmath _imagingmorph; do
  grep -q " T PyInit_$m\$" <<<"$syms" ||
    { echo "build-pillow: PyInit_$m missing" >&2; exit 1; }
done
echo "$out/lib/libpillow.a $out/lib/libfreetype.a $out/lib/libpng16.a $out/lib/libjpeg.a" > "$out/link-inputs.txt"

# ---- Pillow's Python package, patched, and one TrueType font from Debian.
mkdir -p "$out/python"
cp -r "$pilsrc/src/PIL" "$out/python/PIL"
mkdir -p "$out/python/PIL/fonts"
cp "$font" "$out/python/PIL/fonts/"

echo "$want" > "$out/versions.txt"
