#!/usr/bin/env bash
# Runs every benchmark against the binary in BUILD_DIR (default build). Figures to record in
# bench/RESULTS.md with the date and this command.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
/usr/bin/python3.11 "$here/cpu_vs_native.py" "$build/brig"
"$build/bench/sandbox_bench" --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
