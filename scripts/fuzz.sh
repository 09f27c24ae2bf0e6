#!/usr/bin/env bash
# Usage: scripts/fuzz.sh BUILD_DIR [TARGET...]
# Runs each libFuzzer target (default: every *_fuzz in BUILD_DIR/tests/fuzz) for
# FUZZ_SECONDS (default 60) on one core, one after another: first over its committed seed
# corpus (tests/fuzz/corpus/NAME, read-only here), then mutating. New inputs go to
# BUILD_DIR/fuzz-corpus/NAME, crashes to BUILD_DIR/fuzz-artifacts/NAME/. A summary line per
# target (executions, coverage) is printed and appended to BUILD_DIR/fuzz-runs.log.
# Exits non-zero if any target crashed, leaked, timed out or ran out of memory.
set -uo pipefail
build=${1:?usage: scripts/fuzz.sh BUILD_DIR [TARGET...]}
shift
src=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for t in "$build"/tests/fuzz/*_fuzz; do [[ -x $t ]] && targets+=("$(basename "$t" _fuzz)"); done
fi
[[ ${#targets[@]} -gt 0 ]] || { echo "fuzz: no targets in $build/tests/fuzz" >&2; exit 1; }

failed=()
for name in "${targets[@]}"; do
  bin="$build/tests/fuzz/${name}_fuzz"
  corpus="$build/fuzz-corpus/$name"
  artifacts="$build/fuzz-artifacts/$name/"
  seeds="$src/tests/fuzz/corpus/$name"
  dict="$src/tests/fuzz/$name.dict"
  mkdir -p "$corpus" "$artifacts" "$seeds"
  log="$build/fuzz-artifacts/$name.log"
  args=(-max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 -print_final_stats=1
        -artifact_prefix="$artifacts")
  [[ -f $dict ]] && args+=(-dict="$dict")
  echo "fuzz: $name for ${seconds}s" >&2
  start=$(date -u +%Y-%m-%dT%H:%MZ)
  # A host fault that brig's own signal handler ends the process on is not saved by
  # libFuzzer: the snapshot target keeps the input being run here (BRIG_FUZZ_SAVE_INPUT).
  BRIG_FUZZ_SAVE_INPUT="${artifacts}last-input" "$bin" "${args[@]}" "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  corp=$(ls "$corpus" | wc -l)
  line="$start $name ${seconds}s rc=$rc execs=${execs:-?} ${cov:-cov: ?} corpus=$corp"
  echo "$line" | tee -a "$build/fuzz-runs.log" >&2
  if [[ $rc -ne 0 ]]; then
    failed+=("$name")
    grep -E 'ERROR|FUZZ_CHECK|SUMMARY|Test unit written' "$log" | head -8 >&2
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash" >&2
