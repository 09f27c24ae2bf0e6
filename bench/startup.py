#!/usr/bin/env python3
"""Whole-process wall times, interleaved so that machine noise hits every command alike:
  - `brig exec -c pass` with the image cached on disk and with the cache off (CPython
    started from scratch), against native `python3.11 -S -c pass` (and `-c pass`, and
    `/bin/true` as the floor of starting any process);
  - `brig exec --session` continuing the seed example (load from SQLite, restore the page
    snapshot, execute, save), the restore-in-a-new-process case of issue #4.
Prints medians, then the start-up ratio of issue #9 (target <= 0.5): `brig exec -c pass`
(image cached) over `python3.11 -S -c pass`, as the median of the per-round ratios (each
round runs every command once, one after another) and as the ratio of the medians.

Usage: bench/startup.py BUILD/brig [runs] [--startup-only] [--baseline=OTHER/brig]
  --startup-only: only `brig exec -c pass` (image cached) and `python3.11 -S -c pass`,
                  alternating (quicker, for measuring start-up changes).
  --baseline=B:   also runs B (e.g. a build of the previous commit) in the same rounds, and
                  prints its ratio: before/after figures from one run.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

NATIVE = "/usr/bin/python3.11"
BRIG = "brig exec -c pass (image cached)"
REFERENCE = "native python3.11 -S -c pass"
BASELINE = "baseline brig exec -c pass (image cached)"


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
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    startup_only = "--startup-only" in sys.argv[1:]
    baseline = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--baseline=")), None)
    brig = args[0]
    runs = int(args[1]) if len(args) > 1 else 30
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, BRIG_HOME=home)
        env.pop("BRIG_IMAGE_CACHE", None)
        env.pop("BRIG_DB", None)
        off = dict(env, BRIG_IMAGE_CACHE="off")
        seed = "x = 42; y = 100\ndef calculate(): return x + y\nprint(f'Sum: {calculate()}')"
        subprocess.run([brig, "exec", "-c", "pass"], env=env, check=True)  # saves the image
        commands = {  # name: (argv, environment, the stdout it must print)
            REFERENCE: ([NATIVE, "-S", "-c", "pass"], env, b""),
            BRIG: ([brig, "exec", "-c", "pass"], env, b""),
        }
        if baseline:
            subprocess.run([baseline, "exec", "-c", "pass"], env=env, check=True)  # its own image
            commands[BASELINE] = ([baseline, "exec", "-c", "pass"], env, b"")
        if not startup_only:
            subprocess.run([brig, "exec", "--session", "bench", "-c", seed], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            commands.update({
                "/bin/true": (["/bin/true"], env, b""),
                "native python3.11 -c pass": ([NATIVE, "-c", "pass"], env, b""),
                "brig exec -c pass (cache off, cold)": ([brig, "exec", "-c", "pass"], off, b""),
                "brig exec --session (restore + run + save)":
                    ([brig, "exec", "--session", "bench", "-c", "print(calculate())"], env, b"142\n"),
            })
        times = {name: [] for name in commands}
        for _ in range(runs):
            for name, (argv, e, want) in commands.items():
                times[name].append(wall(argv, e, want))
        for name, t in times.items():
            print("%-45s median %7.2f ms  (min %.2f, %d runs)" % (name, statistics.median(t) * 1e3, min(t) * 1e3, runs))
        for name, label in ((BASELINE, "baseline "), (BRIG, "")):
            if name not in times:
                continue
            ratios = [b / r for b, r in zip(times[name], times[REFERENCE])]
            brig_ms, ref_ms = statistics.median(times[name]) * 1e3, statistics.median(times[REFERENCE]) * 1e3
            print("%sstart-up ratio, brig exec -c pass / python3.11 -S -c pass: %.2fx median of %d alternating "
                  "rounds (ratio of medians %.2fx: %.2f ms / %.2f ms; target <= 0.5x)"
                  % (label, statistics.median(ratios), runs, brig_ms / ref_ms, brig_ms, ref_ms))


if __name__ == "__main__":
    main()
