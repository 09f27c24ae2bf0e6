"""Runs one CPython Lib/test module and prints one JSON summary line.

The same file runs inside brig (harness.py sends its source plus a call of run_module()) and
natively (`python3.11 runner.py ROOT MODULE`), so both sides run identical test code from the
copy of Lib/test under ROOT. Loading follows regrtest's rules (a module's test_main() if it
has one, else the load_tests protocol); no resources are enabled, as `python -m test` without
-u. Only the summary goes to stdout, on one line starting with MARKER; what the tests print is
swallowed, and each test's id goes to stderr as it starts (so a hang or a trap names the test).
"""
import io
import json
import os
import sys
import time
import traceback
import unittest

MARKER = "@@PYTESTS@@ "
MAX_TRACEBACK = 1500  # chars kept per failure: the summary must stay well under 1 MiB


class _Result(unittest.TestResult):
    """Collects every outcome by test id."""

    def __init__(self, progress):
        super().__init__()
        self.progress = progress
        self.passed = []
        self.failed = []
        self.errored = []
        self.skips = []
        self.xfail = 0
        self.xpass = []

    def startTest(self, test):
        super().startTest(test)
        if self.progress is not None:
            self.progress.write("> %s\n" % test.id())
            self.progress.flush()

    def _tb(self, test, err):
        return self._exc_info_to_string(err, test)[-MAX_TRACEBACK:]

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed.append(test.id())

    def addFailure(self, test, err):
        self.failed.append([test.id(), self._tb(test, err)])

    def addError(self, test, err):
        self.errored.append([test.id(), self._tb(test, err)])

    def addSkip(self, test, reason):
        self.skips.append([test.id(), str(reason)[:300]])

    def addExpectedFailure(self, test, err):
        self.xfail += 1

    def addUnexpectedSuccess(self, test):
        self.xpass.append(test.id())

    def addSubTest(self, test, subtest, err):
        # A failing subtest counts as a failure of its test, as unittest's runner reports it.
        if err is not None:
            if issubclass(err[0], test.failureException):
                self.failed.append([subtest.id(), self._tb(test, err)])
            else:
                self.errored.append([subtest.id(), self._tb(test, err)])


def _counts(result):
    """The test ids that did not pass anywhere: a test with a failing subtest is not passed."""
    bad = {i.split(" ", 1)[0] for i, _ in result.failed + result.errored}
    result.passed = [t for t in result.passed if t not in bad]


def run_module(root, module, progress=True):
    """Imports test.MODULE from ROOT and runs it; prints MARKER + JSON, returns the dict."""
    start = time.monotonic()
    notes = []
    real_stdout, real_stderr = sys.stdout, sys.stderr
    result = _Result(real_stderr if progress else None)
    summary = {"module": module, "platform": sys.platform, "notes": notes}
    sink = io.StringIO()
    try:
        for name in [m for m in sys.modules if m == "test" or m.startswith("test.")]:
            del sys.modules[name]
        sys.path.insert(0, root)
        import test
        if not os.path.abspath(test.__file__).startswith(os.path.abspath(root)):
            raise RuntimeError("test package from %s, not from %s" % (test.__file__, root))
        from test import support
        support.use_resources = []  # as `python -m test` without -u
        support.verbose = 0
        support.failfast = False
        support.match_tests = None
        support.ignore_tests = None

        def run_suite(suite):  # support.run_unittest() of old-style test_main()s
            suite.run(result)
        support._run_suite = run_suite

        sys.stdout = sys.stderr = sink
        try:
            mod = __import__("test." + module, fromlist=["*"])
            if hasattr(mod, "test_main"):
                try:
                    mod.test_main()
                except (support.TestFailed, unittest.SkipTest) as e:
                    # run_doctest() and test_main's own checks: one failure of the module.
                    fake = unittest.FunctionTestCase(lambda: None, description="test_main")
                    if isinstance(e, unittest.SkipTest):
                        result.addSkip(fake, str(e))
                    else:
                        result.errored.append(["test.%s.test_main" % module, str(e)[:MAX_TRACEBACK]])
            else:
                suite = unittest.TestLoader().loadTestsFromModule(mod)
                suite.run(result)
        finally:
            sys.stdout, sys.stderr = real_stdout, real_stderr
    except unittest.SkipTest as e:  # the whole module skips itself, as regrtest reports it
        sys.stdout, sys.stderr = real_stdout, real_stderr
        result.skips.append(["test.%s [module]" % module, str(e)[:300]])
    except BaseException as e:  # the module did not import, or the runner itself broke
        sys.stdout, sys.stderr = real_stdout, real_stderr
        tb = traceback.format_exc()[-MAX_TRACEBACK:]
        result.errored.append(["test.%s [import or runner]" % module, tb])
        if isinstance(e, KeyboardInterrupt):
            raise
    _counts(result)
    summary.update({
        "run": result.testsRun,
        "passed": sorted(result.passed),
        "failures": result.failed,
        "errors": result.errored,
        "skipped": result.skips,
        "expected_failures": result.xfail,
        "unexpected_successes": result.xpass,
        "seconds": round(time.monotonic() - start, 3),
        "output_chars": len(sink.getvalue()),
    })
    real_stdout.write(MARKER + json.dumps(summary, sort_keys=True) + "\n")
    real_stdout.flush()
    return summary


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: runner.py ROOT MODULE")
    run_module(sys.argv[1], sys.argv[2])
