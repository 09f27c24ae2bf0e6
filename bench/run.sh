#!/usr/bin/env bash
# Runs every benchmark against the binary in BUILD_DIR (default build). Figures to record in
# bench/RESULTS.md with the date and this command. Takes ~5 minutes; run on a quiet machine.
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
echo "== CPU: brig vs native python3.11 (issues #2, #3)"
BRIG_BENCH_ROUNDS=${BRIG_BENCH_ROUNDS:-5} /usr/bin/python3.11 "$here/cpu_vs_native.py" "$build/brig" 10
echo "== whole processes: brig exec -c pass, a session continued (issues #3, #4)"
/usr/bin/python3.11 "$here/startup.py" "$build/brig" 30
echo "== sandboxes (issue #3)"
"$build/bench/sandbox_bench" --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
echo "== sessions: x = 1, rollback, fork, idle memory, scaling (issue #3)"
"$build/bench/session_bench"
echo "== persistence: snapshot size, restore (issue #4)"
"$build/bench/persist_bench"
echo "== Python package: in-process execute overhead against C++ (issue #11)"
PYTHONPATH="$build/python" /usr/bin/python3.11 "$here/python_bench.py"

echo "== MCP: run_python round trips/s over stdio and HTTP (issue #11)"
/usr/bin/python3.11 "$here/mcp_bench.py" "$build/brig" 200 5
