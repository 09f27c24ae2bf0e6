"""Python in-process overhead: brig.Sandbox.execute("x = 1") from Python against the same
call made from C++ (brig::Sandbox::Execute), on the same sandbox, in the same process,
interleaved in short rounds so that machine noise hits both alike.

Usage: PYTHONPATH=build/python python3.11 bench/python_bench.py [ROUNDS] [CALLS]
Prints, per call (µs), the C++ loop, the Python loop and the Python loop that also reads
the result, as wall time and as this thread's CPU time (the executions run on the calling
thread; CPU time is what a loaded machine disturbs least), and the Python overhead: the
median of the per-round differences. Target (issue #11): within 2 µs of the C++ call.
"""

import statistics
import sys
import time

import brig


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    sb = brig.Sandbox()
    execute = sb.execute
    for _ in range(2000):  # warm: pages faulted in, caches hot
        execute("x = 1")
    sb._bench_loop("x = 1", 2000)
    wall = {"cpp": [], "py": [], "py_read": []}
    cpu = {"cpp": [], "py": [], "py_read": []}
    for _ in range(rounds):
        w, c = sb._bench_loop("x = 1", calls)
        wall["cpp"].append(w / calls / 1000)
        cpu["cpp"].append(c / calls / 1000)
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        for _ in range(calls):
            execute("x = 1")
        c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
        wall["py"].append((w1 - w0) / calls / 1000)
        cpu["py"].append((c1 - c0) / calls / 1000)
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        for _ in range(calls):  # as a caller would: the result read
            r = execute("x = 1")
            if not r.success or r.stdout:
                raise SystemExit("x = 1 failed: %r" % (r,))
        c1, w1 = time.thread_time_ns(), time.perf_counter_ns()
        wall["py_read"].append((w1 - w0) / calls / 1000)
        cpu["py_read"].append((c1 - c0) / calls / 1000)
    med = statistics.median
    print(f"== x = 1 in a live in-process sandbox (us per call; medians of {rounds} interleaved rounds of {calls})")
    print(f"{'':38s} {'wall':>7s} {'CPU':>7s}")
    for key, label in (("cpp", "C++  brig::Sandbox::Execute"), ("py", "Python sb.execute('x = 1')"),
                       ("py_read", "Python, reading r.success and r.stdout")):
        print(f"{label:38s} {med(wall[key]):7.2f} {med(cpu[key]):7.2f}")
    for clock, d in (("wall", wall), ("CPU", cpu)):
        over = med([p - c for p, c in zip(d["py"], d["cpp"])])
        over_read = med([p - c for p, c in zip(d["py_read"], d["cpp"])])
        print(f"Python overhead ({clock}, median of per-round differences): {over:5.2f} us, "
              f"reading the result {over_read:5.2f} us (target <= 2 us)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
