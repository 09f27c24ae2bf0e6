#!/usr/bin/python3.11
"""Writes expected_differences.txt from a `harness.py --json` result.

Usage: update_expected.py RESULT.json [OUT]   (OUT defaults to expected_differences.txt here)

Every test that passes natively but not in brig is labelled by what brig said about it (its
skip reason or its error), with the rules below; a test no rule covers is left out, so the
harness reports it as unexplained until a rule (or a fix) says otherwise. A module that brig
skips as a whole gets one `test.MODULE.*` line. Review the diff of the output before
committing it: a rule is a claim about why a test cannot pass in the sandbox.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (regex on brig's outcome, category, reason). First match wins.
RULES = [
    # No threads in the guest (wasm32-wasi without threads).
    (r"requires threading support|can't start new thread", "threads", "no threads in the sandbox"),
    # No processes.
    (r"requires subprocess support|requires a shell|need os\.execv|requires working os\.fork"
     r"|sys\.executable required|test requires multiprocessing"
     r"|Need the \w+ command to run", "subprocesses",
     "no subprocesses in the sandbox"),
    (r"requires socket support|Unix sockets required", "sockets", "no sockets in the sandbox"),
    (r"signal\.alarm", "signals", "no signals in the sandbox"),
    # Refused by design.
    (r"symlink|symbolic link", "by-design", "symlinks are refused by design"),
    (r"os\.link\(\)|requires os\.link|hardlink_to|Missing hardlink implementation"
     r"|Operation not permitted: .* -> ", "by-design",
     "hard links are refused by design (should fail as where the platform lacks os.link: issue 12 item 1)"),
    (r"File too large", "by-design", "brig's per-file quota (a sparse write at 2 GiB)"),
    (r"requires write access to the installed location", "by-design",
     "the stdlib is read-only in the sandbox"),
    (r"test needs root privilege", "by-design",
     "the guest is not root: the sandbox has one unprivileged user (uid 1000)"),
    # brig_guest.c sets PyPreConfig.utf8_mode: WASI's file names are UTF-8 strings, so output and
    # names are UTF-8 whatever a locale says (PEP 540's UTF-8 mode; CPython 3.15's default).
    (r"utf-8 mode is enabled", "by-design",
     "the guest runs in UTF-8 mode by design (WASI file names are UTF-8; PEP 540)"),
    # brig's file names are UTF-8 by design (the VFS refuses others with EILSEQ,
    # names/path_rules.h; the store, the HTTP API and JSON carry them as text).
    (r"not supported on Emscripten/WASI", "by-design",
     "file names are UTF-8 by design (the VFS refuses others): an undecodable name cannot exist"),
    # The guest is wasm32-wasi (DESIGN.md's settled target): a 4 GiB address space at most,
    # 32-bit size_t, and a sandbox's memory is bounded by design (--memory).
    (r"requires 64bit platform", "by-design",
     "needs a 64-bit address space: the guest is wasm32 by design (a sandbox's memory is bounded)"),
    # Gaps: to close (issue 12). Closed gaps (_testcapi, tzset, os.fwalk, utime,
    # /usr/share/zoneinfo, getrandom, sendfile, copy_file_range, memfd_create, priority,
    # chmod/umask, the single user's ids and chown, /dev/null, os.pipe, os.dup for fwalk's
    # descriptor count, descriptors not open (TestInvalidFD), an empty path, statvfs, splice,
    # eventfd, named pipes, extended attributes, OpenSSL's _hashlib) have no rule left, so
    # that a regression shows up as unexplained, not as a known gap.
    (r"invalid FD|support dup|os\.dup\(|fd support for listdir|dir_fd", "gap",
     "WASI descriptor semantics (dup, invalid fds, dir_fd)"),
]

# (regex on the test id, category, reason) for outcomes that do not say why (an error's last
# line), tried when no rule above matched.
TEST_RULES = [
    # os.sendfile works in the sandbox; these send to a TCP server on loopback.
    (r"test_os\.TestSendfile\.", "sockets", "no sockets in the sandbox (the test sends a file to a TCP socket)"),
    (r"test_pathlib\.\w+\.test_chmod_follow_symlinks_true$", "by-design",
     "symlinks are refused by design (the test chmods through linkA, a symlink it could not make)"),
]


def label(outcome, test_id=""):
    for pattern, category, reason in RULES:
        if re.search(pattern, outcome):
            return category, reason
    for pattern, category, reason in TEST_RULES:
        if re.search(pattern, test_id):
            return category, reason
    return None


def main():
    with open(sys.argv[1]) as f:
        results = json.load(f)
    out_path = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "expected_differences.txt")
    lines = []
    unlabelled = []
    for r in results:
        bs = r["brig"].get("summary") or {}
        module_skip = [why for tid, why in bs.get("skipped", []) if tid.endswith(" [module]")]
        if module_skip and r["differences"]:
            got = label(module_skip[0])
            if got:
                lines.append((r["module"], "test.%s.*" % r["module"], got[0],
                              "%s (the whole module skips: %s)" % (got[1], module_skip[0])))
                continue
        for d in r["differences"]:
            got = label(d["brig"], d["test"])
            if got:
                lines.append((r["module"], d["test"], got[0], got[1]))
            else:
                unlabelled.append("%s -- %s" % (d["test"], d["brig"]))
    with open(out_path, "w") as f:
        f.write("""\
# Tests that pass natively (/usr/bin/python3.11) but not in brig, and why (issue 12, item 5).
# PATTERN CATEGORY REASON: PATTERN is an fnmatch pattern of unittest test ids; CATEGORY is
#   threads | subprocesses | sockets | signals | by-design  (counted apart: not in the sandbox)
#   gap        something brig lacks today and should have (to close; not a pass)
# A difference no line matches is "unexplained" and fails `make pytests`.
# Written by update_expected.py from a `make pytests` run (its rules say why); reviewed.
""")
        module = None
        for m, pattern, category, reason in lines:
            if m != module:
                f.write("\n# %s\n" % m)
                module = m
            f.write("%s %s %s\n" % (pattern, category, reason))
    print("%d lines written to %s; %d differences left unlabelled:" % (len(lines), out_path,
                                                                     len(unlabelled)))
    for u in unlabelled:
        print("  " + u)


if __name__ == "__main__":
    main()
