#!/usr/bin/env bash
# Usage: compile-guest-c.sh PYTHON.c OUT.o PROFILE_DIR SOURCE_DIR [instrument] -- COMPILER_FLAGS...
# Compiles the generated guest C (wasm2c's output after wasm2c_post.py) with clang-19.
#
# Profile-guided: PROFILE_DIR/python.profdata.xz is a clang instrumentation profile of this
# code (xz: 3.7 MB -> 0.2 MB in git), PROFILE_DIR/python.key the sha256 of the exact python.c
# it was made from (clang keys its
# profile by function name, and wasm2c names functions by index: a profile of another guest
# would be applied to the wrong functions or dropped). When the key matches, the profile is
# used; otherwise the guest is compiled without one and a warning says how to make a new
# profile (scripts/pgo-profile.sh). `instrument` compiles the instrumented variant instead
# (used by scripts/pgo-profile.sh).
#
# The element segment and the function type ids are static in the generated C; the engine
# rebuilds the function table from them (src/engine/python_instance.c, module_table), so the
# object exports them as brig_w2c_elem_segment and brig_w2c_func_types (python.c itself is
# left as wasm2c_post.py made it: the profile's key is its hash).
#
# ccache: the profile's content is part of ccache's hash, so an unchanged guest and profile
# recompile in seconds from a fresh clone, and a new profile is never served a stale object.
set -euo pipefail
src=$1; out=$2; prof_dir=$3; source_dir=$4; shift 4
mode=use
if [[ "${1:-}" == instrument ]]; then mode=instrument; shift; fi
[[ "${1:-}" == -- ]] && shift

cc=(clang-19)
command -v ccache >/dev/null && cc=(ccache clang-19)
export CCACHE_BASEDIR="$source_dir" CCACHE_NOHASHDIR=1

pgo=()
if [[ $mode == instrument ]]; then
  pgo=(-fprofile-instr-generate)
elif [[ "${BRIG_GUEST_PGO:-ON}" =~ ^(OFF|off|0|NO|no|FALSE|false)$ ]]; then
  echo "compile-guest-c: profile-guided optimisation switched off (BRIG_GUEST_PGO)" >&2
elif [[ -f "$prof_dir/python.profdata.xz" && -f "$prof_dir/python.key" ]] &&
     [[ "$(sha256sum < "$src" | cut -c1-64)" == "$(cut -c1-64 "$prof_dir/python.key")" ]]; then
  /usr/bin/python3.11 -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.open(sys.argv[1]).read())' \
    "$prof_dir/python.profdata.xz" "$out.profdata"
  # Named relative to the working directory: ccache rewrites only plain path arguments under
  # CCACHE_BASEDIR, so an absolute path here would make every checkout miss the cache.
  pgo=(-fprofile-instr-use="$(realpath --relative-to=. "$out.profdata")" -Wno-profile-instr-unprofiled)
  echo "compile-guest-c: profile-guided ($prof_dir/python.profdata.xz)" >&2
else
  why="was made for another guest (python.key does not match this python.c)"
  [[ -f "$prof_dir/python.profdata.xz" ]] || why="does not exist"
  cat >&2 <<EOF
compile-guest-c: WARNING: the guest's profile ($prof_dir/python.profdata.xz) $why:
  compiling WITHOUT profile-guided
  optimisation, CPU-bound Python will run ~15% slower. Make a new profile with
  scripts/pgo-profile.sh and commit guest/pgo/.
EOF
fi
"${cc[@]}" "$@" "${pgo[@]}" -c "$src" -o "$out.tmp"
objcopy --redefine-sym elem_segment_exprs_w2c_e0=brig_w2c_elem_segment \
        --redefine-sym func_types=brig_w2c_func_types \
        --globalize-symbol=brig_w2c_elem_segment --globalize-symbol=brig_w2c_func_types "$out.tmp"
syms=$(nm "$out.tmp")
for sym in brig_w2c_elem_segment brig_w2c_func_types; do
  if ! grep -Eq "^[0-9a-f]+ [DRB] $sym\$" <<<"$syms"; then
    echo "compile-guest-c: $sym is not in the object (has wasm2c's output changed?)" >&2
    exit 1
  fi
done
mv "$out.tmp" "$out"
