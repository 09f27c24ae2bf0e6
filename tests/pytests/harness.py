#!/usr/bin/python3.11
"""`make pytests`: CPython's own Lib/test modules, inside brig and natively, compared.

Usage: harness.py [--build DIR] [--modules a,b,...] [--jobs N] [--timeout S] [--json FILE]
                  [--markdown FILE] [--differences FILE] [--keep DIR] [--strict]
       harness.py --from-json FILE [...]   (report again on a saved run, no run)

The tests come from the Debian source the guest is built from (DIR/cpython/source-dir.txt,
fetched by guest/build-cpython.sh): Lib/test/__init__.py, support/, the helper and data files
next to the tests, and the chosen modules (modules.txt) go into one uncompressed tar. Each
module then runs twice through runner.py, which prints one JSON summary:
  - in brig: a fresh session gets the tar (put_tests(), the only transport-specific part),
    extracts it under /tmp with tarfile and runs the module (`brig exec --session`);
  - natively: /usr/bin/python3.11 runs the same runner on the same files, extracted from
    the same tar (PYTHONPATH points there).
It prints per module and in total the tests run, failed, errored and skipped on each side,
and every test that passes natively but not in brig, labelled from expected_differences.txt
(threads, subprocesses, sockets, signals, by-design, gap) or "unexplained". A sandbox that
traps, times out, crashes or prints no summary is reported as such (status column).

Exit status: 0 when every module ran on both sides and nothing is unexplained or broken;
1 otherwise (with --strict also when a difference is labelled "gap"); 2 bad usage.
"""
import argparse
import concurrent.futures
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "runner.py")
MARKER = "@@PYTESTS@@ "
NATIVE_PYTHON = "/usr/bin/python3.11"
CATEGORIES = ("threads", "subprocesses", "sockets", "signals", "by-design", "gap")
GUEST_TAR = "/tmp/pytests.tar"
# The files' time in the tar: fixed, so the tar is reproducible, and after 1980 (zipfile
# refuses earlier times). 2023-02-08, CPython 3.11.2's release.
TAR_MTIME = 1675814400
GUEST_ROOT = "/tmp/pytests"
# Lib/test entries that no chosen module needs and that only make the tar bigger.
LEFT_OUT = {"crashers", "leakers", "dtracedata", "audiodata", "sndhdrdata", "imghdrdata",
            "xmltestdata", "cjkencodings", "capath", "__pycache__"}


def read_modules(path):
    """modules.txt: one module per line, optionally followed by its timeout in seconds."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if line:
                out.append((line[0], float(line[1]) if len(line) > 1 else None))
    return out


def read_expected(path):
    """expected_differences.txt: `PATTERN CATEGORY REASON...`, PATTERN an fnmatch of test ids."""
    rules = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3 or parts[1] not in CATEGORIES:
                raise SystemExit("%s:%d: want PATTERN CATEGORY REASON, CATEGORY one of %s"
                                 % (path, n, ", ".join(CATEGORIES)))
            rules.append(tuple(parts))
    return rules


def classify(test_id, rules):
    for pattern, category, reason in rules:
        if fnmatch.fnmatchcase(test_id, pattern):
            return category, reason
    return "unexplained", ""


def make_tar(lib_test, modules, out_path):
    """One uncompressed, reproducible tar of Lib/test's support files and the modules."""
    wanted = set(modules)
    missing = [m for m in modules if not (os.path.exists(os.path.join(lib_test, m + ".py"))
                                          or os.path.isdir(os.path.join(lib_test, m)))]
    if missing:
        raise SystemExit("not in %s: %s" % (lib_test, " ".join(missing)))
    # Test modules that the chosen ones import (test_tokenize needs test_grammar).
    for m in modules:
        path = os.path.join(lib_test, m + ".py")
        paths = [path] if os.path.exists(path) else [
            os.path.join(root, f) for root, _, files in os.walk(os.path.join(lib_test, m))
            for f in files if f.endswith(".py")]
        for p in paths:
            with open(p, encoding="utf-8", errors="replace") as f:
                found = re.findall(r"\btest\.(test_\w+)|from test import (test_\w+)", f.read())
            wanted.update(x or y for x, y in found)
    names = [n for n in sorted(os.listdir(lib_test))
             if (not n.startswith("test_") or n.removesuffix(".py") in wanted
                 or (os.path.isfile(os.path.join(lib_test, n)) and not n.endswith(".py")))
             and n not in LEFT_OUT and not n.endswith(".pyc")]

    def clean(info):
        if "__pycache__" in info.name.split("/"):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = TAR_MTIME
        return info

    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for n in names:
            tar.add(os.path.join(lib_test, n), arcname="test/" + n, filter=clean, recursive=False)
            if os.path.isdir(os.path.join(lib_test, n)):
                for root, dirs, files in os.walk(os.path.join(lib_test, n)):
                    dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                    for f in sorted(files + dirs):
                        full = os.path.join(root, f)
                        tar.add(full, arcname="test/" + os.path.relpath(full, lib_test),
                                filter=clean, recursive=False)


def parse_summary(text):
    for line in text.splitlines():
        if line.startswith(MARKER):
            try:
                return json.loads(line[len(MARKER):])
            except ValueError:
                return None
    return None


def last_started(stderr):
    started = [l[2:] for l in stderr.splitlines() if l.startswith("> ")]
    return started[-1] if started else None


class Brig:
    """Runs a module in a fresh brig session. The store lives in a home of its own."""

    def __init__(self, binary, home, memory_mb):
        self.binary = binary
        self.env = dict(os.environ, BRIG_HOME=home)
        self.env.pop("BRIG_DB", None)
        self.memory_mb = memory_mb

    def _brig(self, args, timeout, **kw):
        return subprocess.run([self.binary] + args, env=self.env, capture_output=True,
                              timeout=timeout, **kw)

    def put_tests(self, session, tar_path):
        """The transport: makes the tar a file of the session at GUEST_TAR.
        (A read-only volume mount could replace this and the guest's extraction.)"""
        r = self._brig(["files", "put", "--session", session, GUEST_TAR, tar_path], 120)
        if r.returncode != 0:
            raise RuntimeError("brig files put: " + r.stderr.decode(errors="replace"))

    def run(self, module, tar_path, timeout):
        session = "pytests-" + module
        self.put_tests(session, tar_path)
        with open(RUNNER) as f:
            code = f.read()
        # brig runs code as __main__: leave out the runner's command-line entry point.
        code = code[:code.index('\nif __name__ == "__main__":')]
        code += f"""

def _pytests_main():
    import shutil, tarfile
    with tarfile.open({GUEST_TAR!r}) as t:
        t.extractall({GUEST_ROOT!r})
    os.remove({GUEST_TAR!r})
    try:
        run_module({GUEST_ROOT!r}, {module!r})
    finally:
        os.chdir("/home/user")
        shutil.rmtree({GUEST_ROOT!r}, ignore_errors=True)

_pytests_main()
"""
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(code)
            code_path = f.name
        started = time.monotonic()
        try:
            r = self._brig(["exec", "--session", session, "--json", "--timeout", str(timeout),
                            "--memory", str(self.memory_mb), "--max-files", "100000",
                            "--max-mib", "4000", code_path], timeout + 120)
        except subprocess.TimeoutExpired:
            return {"status": "hang (brig did not stop at its timeout)",
                    "seconds": time.monotonic() - started}
        finally:
            os.unlink(code_path)
            self._brig(["sessions", "delete", session], 60)
        out = {"seconds": round(time.monotonic() - started, 1), "exit": r.returncode}
        try:
            res = json.loads(r.stdout)
        except ValueError:
            out["status"] = "crash (exit %d, no JSON): %s" % (
                r.returncode, r.stderr.decode(errors="replace")[-500:])
            return out
        summary = parse_summary(res.get("stdout") or "")
        failure = res.get("failure")
        if failure:
            out["status"] = "%s: %s" % (failure.get("kind"), (failure.get("message") or "")[:300])
            out["last_test"] = last_started(res.get("stderr") or "")
        elif summary is None:
            out["status"] = "no summary (exit %d): %s" % (
                r.returncode, ((res.get("error") or {}).get("traceback") or r.stderr.decode(
                    errors="replace"))[-800:])
        elif r.returncode not in (0,):
            out["status"] = "exit %d: %s" % (r.returncode, r.stderr.decode(errors="replace")[-300:])
        else:
            out["status"] = "ok"
        if summary is not None:
            out["summary"] = summary
        return out


def run_native(module, tar_path, timeout, work):
    """The same runner and files under /usr/bin/python3.11, in a directory of its own."""
    d = tempfile.mkdtemp(prefix="native-%s-" % module, dir=work)
    root = os.path.join(d, "pytests")
    with tarfile.open(tar_path) as t:
        t.extractall(root)
    home = os.path.join(d, "home")
    os.mkdir(home)
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
           "PYTHONPATH": root, "PYTHONHASHSEED": "0"}
    started = time.monotonic()
    try:
        r = subprocess.run([NATIVE_PYTHON, RUNNER, root, module], cwd=home, env=env,
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return {"status": "timeout", "seconds": timeout,
                "last_test": last_started((e.stderr or b"").decode(errors="replace"))}
    finally:
        shutil.rmtree(d, ignore_errors=True)
    out = {"seconds": round(time.monotonic() - started, 1), "exit": r.returncode}
    summary = parse_summary(r.stdout.decode(errors="replace"))
    if summary is None:
        out["status"] = "no summary (exit %d): %s" % (r.returncode, r.stderr.decode(errors="replace")[-800:])
    else:
        out["status"] = "ok"
        out["summary"] = summary
    return out


def outcome_in(summary, test_id):
    """What happened to TEST_ID on one side, for the differences list."""
    if summary is None:
        return "not run (no summary)"
    for tid, tb in summary["failures"]:
        if tid.split(" ", 1)[0] == test_id:
            return "failed: " + tb.strip().splitlines()[-1][:200]
    for tid, tb in summary["errors"]:
        if tid.split(" ", 1)[0] == test_id:
            return "error: " + tb.strip().splitlines()[-1][:200]
    for tid, why in summary["skipped"]:  # a skipped subtest's id ends in " (params)"
        if tid.split(" ", 1)[0] == test_id:
            return "skipped: " + why[:200]
    for tid, why in summary["skipped"]:
        if tid.endswith(" [module]"):
            return "skipped (the whole module): " + why[:200]
    return "not run"


def counts(side):
    s = side.get("summary")
    if not s:
        return None
    return {"run": s["run"], "passed": len(s["passed"]), "failed": len(s["failures"]),
            "errors": len(s["errors"]), "skipped": len(s["skipped"])}


def compare(module, native, brig, rules):
    ns, bs = native.get("summary"), brig.get("summary")
    native_passed = set(ns["passed"]) if ns else set()
    brig_passed = set(bs["passed"]) if bs else set()
    diffs = []
    for tid in sorted(native_passed - brig_passed):
        category, reason = classify(tid, rules)
        diffs.append({"test": tid, "brig": outcome_in(bs, tid), "category": category,
                      "reason": reason})
    return diffs


def fmt_counts(c):
    if c is None:
        return "%5s %5s %4s %4s %5s" % ("-", "-", "-", "-", "-")
    return "%5d %5d %4d %4d %5d" % (c["run"], c["passed"], c["failed"], c["errors"], c["skipped"])


def report(results, out):
    head = "%-18s | %-28s | %-28s | %s" % ("module", "native  run  pass fail  err  skip",
                                           "brig    run  pass fail  err  skip", "differences")
    out.write(head + "\n" + "-" * len(head) + "\n")
    total = {"native": dict.fromkeys(("run", "passed", "failed", "errors", "skipped"), 0),
             "brig": dict.fromkeys(("run", "passed", "failed", "errors", "skipped"), 0)}
    by_cat = {}
    for r in results:
        for side in ("native", "brig"):
            c = counts(r[side])
            if c:
                for k in c:
                    total[side][k] += c[k]
        cats = {}
        for d in r["differences"]:
            cats[d["category"]] = cats.get(d["category"], 0) + 1
            by_cat[d["category"]] = by_cat.get(d["category"], 0) + 1
        note = ", ".join("%d %s" % (n, c) for c, n in sorted(cats.items()))
        for side in ("native", "brig"):
            if r[side]["status"] != "ok":
                note = "%s %s; %s" % (side.upper(), r[side]["status"].splitlines()[0][:90], note)
        out.write("%-18s | %s | %s | %s\n" % (r["module"], " " * 6 + fmt_counts(counts(r["native"])),
                                            " " * 6 + fmt_counts(counts(r["brig"])), note or "="))
    out.write("-" * len(head) + "\n")
    out.write("%-18s | %s | %s | %s\n" % (
        "TOTAL", " " * 6 + fmt_counts(total["native"]), " " * 6 + fmt_counts(total["brig"]),
        ", ".join("%d %s" % (n, c) for c, n in sorted(by_cat.items())) or "="))
    return total, by_cat


def markdown(results, total, by_cat):
    lines = ["| module | native run | pass | fail | err | skip | brig run | pass | fail | err | skip | brig status | passes natively, not in brig |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]

    def cells(c):
        return ["-"] * 5 if c is None else [str(c[k]) for k in ("run", "passed", "failed", "errors", "skipped")]
    for r in results:
        cats = {}
        for d in r["differences"]:
            cats[d["category"]] = cats.get(d["category"], 0) + 1
        status = r["brig"]["status"].splitlines()[0][:60].replace("|", "/")
        lines.append("| %s | %s | %s | %s | %s |" % (
            r["module"], " | ".join(cells(counts(r["native"]))), " | ".join(cells(counts(r["brig"]))),
            status, ", ".join("%d %s" % (n, c) for c, n in sorted(cats.items())) or "0"))
    lines.append("| **total** | %s | %s | | %s |" % (
        " | ".join(str(total["native"][k]) for k in ("run", "passed", "failed", "errors", "skipped")),
        " | ".join(str(total["brig"][k]) for k in ("run", "passed", "failed", "errors", "skipped")),
        ", ".join("%d %s" % (n, c) for c, n in sorted(by_cat.items())) or "0"))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="the build directory (brig, cpython/)")
    ap.add_argument("--source", help="CPython source tree (default: from BUILD/cpython/source-dir.txt)")
    ap.add_argument("--modules", help="comma-separated modules (default: modules.txt)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per module and side")
    ap.add_argument("--memory", type=int, default=1024, help="guest memory, MB")
    ap.add_argument("--json", help="write every result (ids, tracebacks) to this file")
    ap.add_argument("--markdown", help="write the comparison table to this file")
    ap.add_argument("--differences", help="write the differences (one per line) to this file")
    ap.add_argument("--keep", help="work directory to use and keep (default: a temporary one)")
    ap.add_argument("--from-json", help="no run: report on the results a --json FILE holds")
    ap.add_argument("--strict", action="store_true", help="fail on differences labelled gap too")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    source = args.source
    if not source:
        with open(os.path.join(build, "cpython", "source-dir.txt")) as f:
            source = f.read().strip()
    lib_test = os.path.join(source, "Lib", "test")
    listed = read_modules(os.path.join(HERE, "modules.txt"))
    timeouts = {m: t for m, t in listed}
    modules = args.modules.split(",") if args.modules else [m for m, _ in listed]
    rules = read_expected(os.path.join(HERE, "expected_differences.txt"))

    if args.from_json:  # report again (e.g. after editing expected_differences.txt)
        with open(args.from_json) as f:
            results = json.load(f)
        for r in results:
            r["differences"] = compare(r["module"], r["native"], r["brig"], rules)
        return finish(results, args)

    work = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="brig-pytests-")
    os.makedirs(work, exist_ok=True)
    try:
        tar_path = os.path.join(work, "pytests.tar")
        make_tar(lib_test, modules, tar_path)
        home = os.path.join(work, "brig-home")
        os.makedirs(home, exist_ok=True)
        brig = Brig(os.path.join(build, "brig"), home, args.memory)
        # Make the interpreter image once, before sandboxes start in parallel.
        subprocess.run([brig.binary, "exec", "-c", "pass"], env=brig.env, check=True)
        print("pytests: %d modules from %s, tar %.1f MB, %d jobs" % (
            len(modules), lib_test, os.path.getsize(tar_path) / 1e6, args.jobs), flush=True)

        def one(task):
            module, side = task
            t = timeouts.get(module) or args.timeout
            try:
                if side == "brig":
                    r = brig.run(module, tar_path, t)
                else:
                    r = run_native(module, tar_path, t, work)
            except Exception as e:  # the harness's own failure: reported, the others still run
                r = {"status": "harness error: %s: %s" % (type(e).__name__, e)}
            print("  %-18s %-6s %6.1fs %s" % (module, side, r.get("seconds", 0),
                                              r["status"].splitlines()[0][:100]), flush=True)
            return task, r

        tasks = [(m, s) for m in modules for s in ("brig", "native")]
        done = {}
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            for task, r in pool.map(one, tasks):
                done[task] = r
        results = []
        for m in modules:
            r = {"module": m, "native": done[(m, "native")], "brig": done[(m, "brig")]}
            r["differences"] = compare(m, r["native"], r["brig"], rules)
            results.append(r)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return finish(results, args)


def finish(results, args):
    """Prints the comparison, writes the requested files; returns the exit status."""
    print()
    total, by_cat = report(results, sys.stdout)
    broken = [(r["module"], side, r[side]["status"], r[side].get("last_test"))
              for r in results for side in ("native", "brig") if r[side]["status"] != "ok"]
    unexplained = [d for r in results for d in r["differences"] if d["category"] == "unexplained"]
    gaps = [d for r in results for d in r["differences"] if d["category"] == "gap"]
    if broken:
        print("\nNot run to the end (a crash, trap, hang or timeout of the sandbox is a bug):")
        for m, side, status, last in broken:
            print("  %s [%s] %s%s" % (m, side, status.splitlines()[0][:200],
                                     "; last test started: %s" % last if last else ""))
    if unexplained:
        print("\nPasses natively, not in brig, and not in expected_differences.txt:")
        for d in unexplained:
            print("  %s -- %s" % (d["test"], d["brig"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown(results, total, by_cat))
    if args.differences:
        with open(args.differences, "w") as f:
            for r in results:
                for d in r["differences"]:
                    f.write("%s\t%s\t%s\n" % (d["test"], d["category"], d["brig"]))
    failed = bool(broken or unexplained or (args.strict and gaps))
    print("\npytests: %s" % ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
