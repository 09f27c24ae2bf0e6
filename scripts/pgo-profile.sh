#!/usr/bin/env bash
# Usage: scripts/pgo-profile.sh [BUILD_DIR]   (default: build, configured and built)
# Makes the guest's profile for profile-guided optimisation, guest/pgo/python.profdata.xz, and
# its key guest/pgo/python.key (the sha256 of the python.c it belongs to). Run it, and commit
# guest/pgo/, whenever the guest changes (the build warns when the profile no longer matches:
# a new CPython revision, brig_guest.c, the guest's compiler flags, wabt, wasm2c_post.py).
#
# How: the build's python.c is compiled again with clang's instrumentation
# (-fprofile-instr-generate), linked into an instrumented copy of build/brig, which runs the
# training through the real engine: the CPU benchmark's workload (bench/cpu_workload.py) and a
# broader mix of typical agent code (bench/pgo_train.py). The raw profiles are merged with
# llvm-profdata-19. clang keys the profile by function name and a hash of each function's
# control flow, not by file path, so the same profile serves any checkout and build dir.
# Needs libclang-rt-19-dev (clang's profile runtime) beyond the build's packages.
# Takes ~5 minutes on 2 cores (the instrumented compile is most of it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
pgo=$root/guest/pgo
work=$build/pgo-train
rt=$(clang-19 -print-file-name=libclang_rt.profile-x86_64.a)  # Debian: lib/linux/, not the runtime dir
[[ "$rt" == /* && -f "$rt" ]] || { echo "pgo-profile: needs clang's profile runtime: apt-get install libclang-rt-19-dev" >&2; exit 1; }
for f in guest/python.c guest/guest-cflags.txt guest/libbrig_guest_module.a src/cli/CMakeFiles/brig.dir/link.txt; do
  [[ -f "$build/$f" ]] || { echo "pgo-profile: $build/$f missing: build first (make build)" >&2; exit 1; }
done
rm -rf "$work" && mkdir -p "$work"

echo "pgo-profile: instrumented compile of the guest's C" >&2
IFS=";" read -r -a cflags < "$build/guest/guest-cflags.txt" || true  # no final newline
"$root/guest/compile-guest-c.sh" "$build/guest/python.c" "$work/python.o" "$pgo" "$root" instrument -- "${cflags[@]}"

echo "pgo-profile: linking an instrumented brig" >&2
cp "$build/guest/libbrig_guest_module.a" "$work/libbrig_guest_module.a"
(cd "$work" && ar r libbrig_guest_module.a python.o)
read -r -a link < "$build/src/cli/CMakeFiles/brig.dir/link.txt" || true
cmd=(clang++-19)
for ((i = 1; i < ${#link[@]}; i++)); do
  a=${link[i]}
  case "$a" in
    */libbrig_guest_module.a) a=$work/libbrig_guest_module.a ;;
  esac
  [[ "${link[i-1]}" == -o ]] && a=$work/brig
  cmd+=("$a")
done
(cd "$build/src/cli" && "${cmd[@]}" -fprofile-instr-generate)

echo "pgo-profile: training" >&2
for script in "$root/bench/cpu_workload.py" "$root/bench/pgo_train.py"; do
  LLVM_PROFILE_FILE="$work/train-%p.profraw" "$work/brig" exec --timeout 600 "$script" >/dev/null
done
mkdir -p "$pgo"
llvm-profdata-19 merge -o "$work/python.profdata" "$work"/train-*.profraw
/usr/bin/python3.11 -c 'import lzma, sys; lzma.open(sys.argv[2], "wb", preset=6).write(open(sys.argv[1], "rb").read())' \
  "$work/python.profdata" "$pgo/python.profdata.xz.tmp"
mv "$pgo/python.profdata.xz.tmp" "$pgo/python.profdata.xz"
echo "$(sha256sum < "$build/guest/python.c" | cut -c1-64)  python.c" > "$pgo/python.key"
rm -rf "$work"
echo "pgo-profile: wrote $pgo/python.profdata.xz ($(du -k "$pgo/python.profdata.xz" | cut -f1) KiB) and python.key;" \
     "rebuild (make build) to use it, and commit guest/pgo/" >&2
