# Sourced by the guest's C-library recipes (build-pillow.sh, build-lxml.sh), which set
# cc (the compiler command, an array), cflags (an array), out (the output dir) and jobs.
# compile_lib NAME SRC_DIR EXTRA_FLAGS... -- FILES...: objects in obj/NAME, lib/libNAME.a.
compile_lib() {
  local name=$1 dir=$2; shift 2
  local extra=()
  while [[ $1 != -- ]]; do extra+=("$1"); shift; done
  shift
  mkdir -p "$out/obj/$name"
  local f pids=() n=0 o
  for f in "$@"; do
    o=${f%.c}; o=${o//\//_}
    "${cc[@]}" "${cflags[@]}" "${extra[@]}" -I "$dir" -c "$dir/$f" -o "$out/obj/$name/$o.o" &
    pids+=($!)
    if (( ++n % jobs == 0 )); then for p in "${pids[@]}"; do wait "$p"; done; pids=(); fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
  rm -f "$out/lib/lib$name.a"
  llvm-ar-19 rcsD "$out/lib/lib$name.a" "$out/obj/$name"/*.o
}
