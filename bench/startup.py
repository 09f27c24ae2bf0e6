#!/usr/bin/env python3
"""Whole-process wall times, interleaved so that machine noise hits every command alike:
  - `brig exec -c pass` with the image cached on disk (target <= 5 ms) and with the cache
    off (CPython started from scratch), against native `python3.11 -c pass`;
  - `brig exec --session` continuing the seed example (load from SQLite, restore the page
    snapshot, execute, save), the restore-in-a-new-process case of issue #4.
Prints medians.  Usage: bench/startup.py BUILD/brig [runs]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

NATIVE = "/usr/bin/python3.11"


def wall(argv, env, want_stdout):
    """Seconds `argv` took; exits the benchmark unless it succeeded and printed `want_stdout`."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    took = time.perf_counter() - t0
    if p.returncode != 0 or p.stdout != want_stdout or p.stderr:
        sys.exit("startup.py: %s: exit %d, stdout %r (want %r), stderr %r"
                 % (argv, p.returncode, p.stdout, want_stdout, p.stderr))
    return took


def main():
    brig = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, BRIG_HOME=home)
        env.pop("BRIG_IMAGE_CACHE", None)
        env.pop("BRIG_DB", None)
        off = dict(env, BRIG_IMAGE_CACHE="off")
        seed = "x = 42; y = 100\ndef calculate(): return x + y\nprint(f'Sum: {calculate()}')"
        subprocess.run([brig, "exec", "-c", "pass"], env=env, check=True)  # saves the image
        subprocess.run([brig, "exec", "--session", "bench", "-c", seed], env=env, check=True, stdout=subprocess.DEVNULL)
        commands = {  # name: (argv, environment, the stdout it must print)
            "native python3.11 -c pass": ([NATIVE, "-c", "pass"], env, b""),
            "brig exec -c pass (image cached)": ([brig, "exec", "-c", "pass"], env, b""),
            "brig exec -c pass (cache off, cold)": ([brig, "exec", "-c", "pass"], off, b""),
            "brig exec --session (restore + run + save)":
                ([brig, "exec", "--session", "bench", "-c", "print(calculate())"], env, b"142\n"),
        }
        times = {name: [] for name in commands}
        for _ in range(runs):
            for name, (argv, e, want) in commands.items():
                times[name].append(wall(argv, e, want))
        for name, t in times.items():
            print("%-45s median %7.2f ms  (min %.2f, %d runs)" % (name, statistics.median(t) * 1e3, min(t) * 1e3, runs))


if __name__ == "__main__":
    main()
