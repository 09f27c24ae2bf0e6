"""Python in-process overhead: brig.Sandbox.execute("x = 1") from Python against the same
call made from C++ (brig::Sandbox::Execute), on the same sandbox, in the same process,
interleaved round by round (the machine may be loaded: compare within one run).

Usage: PYTHONPATH=build/python python3.11 bench/python_bench.py [ROUNDS] [CALLS]
Prints the medians (µs per call) of the C++ loop, the Python loop, and their difference.
Target (issue #11): Python overhead within 2 µs of the C++ call.
"""

import statistics
import sys
import time

import brig


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    sb = brig.Sandbox()
    execute = sb.execute
    for _ in range(2000):  # warm: pages faulted in, caches hot
        execute("x = 1")
    sb._bench_loop("x = 1", 2000)
    cpp, py, py_full = [], [], []
    for _ in range(rounds):
        cpp.append(sb._bench_loop("x = 1", calls) / calls / 1000)
        start = time.perf_counter_ns()
        for _ in range(calls):
            execute("x = 1")
        py.append((time.perf_counter_ns() - start) / calls / 1000)
        # The same, reading the result as a caller would (success and stdout).
        start = time.perf_counter_ns()
        for _ in range(calls):
            r = execute("x = 1")
            if not r.success or r.stdout:
                raise SystemExit("x = 1 failed: %r" % (r,))
        py_full.append((time.perf_counter_ns() - start) / calls / 1000)
    diffs = [p - c for p, c in zip(py, cpp)]
    print(f"== x = 1 in a live in-process sandbox (us per call; medians of {rounds} interleaved rounds of {calls})")
    print(f"C++  brig::Sandbox::Execute          {statistics.median(cpp):7.2f}")
    print(f"Python sb.execute('x = 1')           {statistics.median(py):7.2f}")
    print(f"Python, reading r.success/r.stdout   {statistics.median(py_full):7.2f}")
    print(f"Python overhead (median of per-round differences) {statistics.median(diffs):5.2f} us "
          f"(min {min(diffs):.2f}, max {max(diffs):.2f}); target <= 2 us")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
