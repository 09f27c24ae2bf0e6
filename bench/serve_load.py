#!/usr/bin/env python3
"""`brig serve` under load (issue #10): starts the server on a temp BRIG_HOME with the SQLite
store, and on a throwaway PostgreSQL (tests/e2e/pg_server.py: initdb in a temp dir, unix
socket only, fsync on), runs bench/http_load against each for several connection/session
settings, and prints one line per run: executions/s, p50, p99 and errors. Every execution
is durable before its answer unless --durable false ("durable": false: answered from the
live session, saved in the background).

Usage: bench/serve_load.py [--build build] [--brig B] [--stores sqlite,postgresql]
                           [--settings 1x1,16x64,64x256] [--seconds 5] [--warmup 2]
                           [--rounds 1] [--durable true|false|both] [--baseline OTHER_BRIG]
                           [--database-core N]
                           [-- extra brig serve flags, e.g. --threads 16]
A setting CxS is C connections over S sessions (http_load --connections C --sessions S).
With --rounds N each setting runs N times (each on a fresh server) and every run is printed.
Each run also prints the server's CPU time per execution (the server and its worker
processes, measured after the warm-up): on a machine shared with other work, a steadier
figure than executions/s. --baseline runs another brig binary (e.g. the previous build) on
the same settings, alternating with this one, so that both see the same machine.

Each line ends with the machine's own speed, measured just before that run with nothing
else of ours running: a fixed Python loop (ms) and a loopback TCP round trip between two
threads (us), each the median of five. A virtual machine whose host is busy runs both
slower; the same build's figures move with them (bench/RESULTS.md, stop 27). Then the share
of the machine's CPU time that the hypervisor took for other guests during the run
("stolen", /proc/stat's steal), where it reports it: the CPUs the run did not have.

--database-core N keeps the database apart: the throwaway PostgreSQL (its postmaster and
every process it starts) on CPU N, and brig serve, its workers and the load generator on
the other CPUs. On a 2-core machine that is one core each: what brig does on one core with
the database elsewhere. SQLite runs too are confined to the other CPUs (CPU N left idle), so
that the two stores are compared on the same cores.
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import pg_server  # noqa: E402  (the tests' throwaway PostgreSQL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `brig serve` on loopback with its own BRIG_HOME; stopped with SIGTERM."""

    def __init__(self, brig, db, extra):
        self.home = tempfile.mkdtemp(prefix="brig-serve-load-")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ, BRIG_HOME=self.home)
        argv = [brig, "serve", "--listen", "127.0.0.1:%d" % self.port] + (["--db", db] if db else []) + extra
        self.log = open(os.path.join(self.home, "serve.log"), "w")
        self.proc = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                sys.exit("serve_load.py: the server did not start; see its log above")
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.proc.returncode not in (0, None, -15):
            with open(os.path.join(self.home, "serve.log")) as f:
                sys.stderr.write(f.read()[-4000:])
        shutil.rmtree(self.home, ignore_errors=True)


def cpu_seconds(pid):
    """User + system CPU time of `pid` and its live child processes (brig serve's workers, or
    PostgreSQL's backends: those that exit within the window are not counted)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    pids = [pid]
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        tasks = []
    for task in tasks:  # each thread's children: brig serve starts its workers from another thread
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                pids += [int(c) for c in f.read().split() if int(c) not in pids]
        except (OSError, ValueError):
            pass
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / tick


def cpu_ticks():
    """(steal, all) clock ticks of the whole machine so far, from /proc/stat: steal is the
    time the hypervisor ran something else while this virtual machine had work for a CPU."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def machine_speed():
    """(ms for a fixed loop, us per loopback TCP round trip), medians of five: how fast this
    machine is right now, the same work every time."""
    loops = []
    for _ in range(5):
        t = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i
        loops.append(1e3 * (time.perf_counter() - t))
    listener = socket.create_server(("127.0.0.1", 0))
    rounds = 400

    def echo():
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while (b := conn.recv(1)):
                conn.sendall(b)

    server = threading.Thread(target=echo)
    server.start()
    trips = []
    with socket.create_connection(listener.getsockname()) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(rounds):
                c.sendall(b"x")
                c.recv(1)
            trips.append(1e6 * (time.perf_counter() - t) / rounds)
    server.join()
    listener.close()
    return statistics.median(loops), statistics.median(trips)


def postmaster_pid(pg):
    """The PostgreSQL server's postmaster (its backends are its children), or None."""
    try:
        with open(os.path.join(pg.dir, "data", "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def confine_database(pg, cpu):
    """Puts the PostgreSQL server's processes on `cpu`: those running now (all their threads),
    and through the postmaster those it starts later."""
    postmaster = postmaster_pid(pg)
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    for pid in [postmaster] + [int(c) for c in children]:
        try:
            for task in os.listdir("/proc/%d/task" % pid):
                os.sched_setaffinity(int(task), {cpu})
        except (FileNotFoundError, ProcessLookupError):
            pass  # ended meanwhile


def run_load(http_load, url, connections, sessions, seconds, warmup, durable=True, pid=None, db_pid=None):
    base = [http_load, url, "--connections", str(connections), "--sessions", str(sessions)] + \
        ([] if durable else ["--durable", "false"])
    if warmup > 0:
        subprocess.run(base + ["--seconds", str(warmup), "--warmup", "0"], capture_output=True, text=True,
                       timeout=warmup + 300)
    cpu0 = cpu_seconds(pid) if pid else 0
    db_cpu0 = cpu_seconds(db_pid) if db_pid else 0
    steal0, all0 = cpu_ticks()
    p = subprocess.run(base + ["--seconds", str(seconds), "--warmup", "0"], capture_output=True, text=True,
                       timeout=seconds + 300)
    cpu = cpu_seconds(pid) - cpu0 if pid else 0
    steal1, all1 = cpu_ticks()
    db_cpu = cpu_seconds(db_pid) - db_cpu0 if db_pid else 0
    m = re.search(r"executions/s (\d+)\s+p50 ([\d.]+) ms\s+p99 ([\d.]+) ms\s+errors (\d+)", p.stdout)
    if not m:
        sys.exit("serve_load.py: http_load said: %s %s" % (p.stdout, p.stderr))
    first_error = re.search(r"first error: (.*)", p.stdout)
    rate = int(m.group(1))
    return {"rate": rate, "p50": float(m.group(2)), "p99": float(m.group(3)),
            "errors": int(m.group(4)), "first_error": first_error.group(1) if first_error else "",
            "cpu_us": 1e6 * cpu / (rate * seconds) if rate else 0,
            "db_cpu_us": 1e6 * db_cpu / (rate * seconds) if rate else 0,
            "stolen": 100.0 * (steal1 - steal0) / (all1 - all0) if all1 > all0 else 0.0}


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--brig", help="the brig binary (default BUILD/brig)")
    ap.add_argument("--http-load", help="the load generator (default BUILD/bench/http_load)")
    ap.add_argument("--stores", default="sqlite,postgresql")
    ap.add_argument("--settings", default="1x1,16x64,64x256")
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--durable", default="true", choices=["true", "false", "both"],
                    help="false: executions answered before their save (\"durable\": false)")
    ap.add_argument("--baseline", help="another brig binary to run alternately on the same settings")
    ap.add_argument("--database-core", type=int,
                    help="PostgreSQL on this CPU only, brig and the load generator on the others")
    a = ap.parse_args(argv)
    all_cpus = os.sched_getaffinity(0)
    brig_cpus = all_cpus
    if a.database_core is not None:
        brig_cpus = all_cpus - {a.database_core}
        if a.database_core not in all_cpus or not brig_cpus:
            sys.exit("serve_load.py: --database-core %d must be one of this process's CPUs %s, and not the only one"
                     % (a.database_core, sorted(all_cpus)))
    brig = a.brig or os.path.join(a.build, "brig")
    http_load = a.http_load or os.path.join(a.build, "bench", "http_load")
    settings = [tuple(int(x) for x in s.split("x")) for s in a.settings.split(",")]
    pg = None
    failed = False
    try:
        for store in a.stores.split(","):
            for connections, sessions in settings:
                for _ in range(a.rounds):
                    db = None
                    if store == "postgresql":
                        if pg is None:
                            pg = pg_server.start()
                            if pg is None:
                                sys.exit("serve_load.py: BRIG_SKIP_POSTGRES=1 but postgresql was asked for")
                            if a.database_core is not None:
                                confine_database(pg, a.database_core)
                        db = pg.database()
                    elif store != "sqlite":
                        sys.exit("serve_load.py: unknown store %r" % store)
                    for durable in {"true": [True], "false": [False], "both": [True, False]}[a.durable]:
                        for binary in [brig] + ([a.baseline] if a.baseline else []):
                            if db and a.baseline:
                                db = pg.database()  # each binary on an empty database of its own
                            loop_ms, trip_us = machine_speed()
                            os.sched_setaffinity(0, brig_cpus)  # inherited by the server and http_load
                            try:
                                server = Server(binary, db, extra)
                                try:
                                    r = run_load(http_load, server.url, connections, sessions, a.seconds, a.warmup,
                                                 durable, server.proc.pid, postmaster_pid(pg) if db else None)
                                finally:
                                    server.stop()
                            finally:
                                os.sched_setaffinity(0, all_cpus)
                            load = os.getloadavg()[0]
                            print("%s%-10s %-11s connections %3d sessions %4d: %6d executions/s  p50 %7.2f ms  p99 %7.2f ms  "
                                  "server CPU %6.0f us/execution%s  errors %d  (load %.1f; machine: loop %.1f ms, "
                                  "loopback round trip %.1f us; %.0f%% stolen)%s%s" % (
                                      "baseline: " if binary != brig else "", store, "durable" if durable else "non-durable",
                                      connections, sessions, r["rate"], r["p50"], r["p99"], r["cpu_us"],
                                      "  PostgreSQL CPU %5.0f us/execution" % r["db_cpu_us"] if db else "",
                                      r["errors"], load, loop_ms, trip_us, r["stolen"],
                                      "" if a.database_core is None else "  [brig on CPUs %s, database on CPU %d]" % (
                                          ",".join(map(str, sorted(brig_cpus))), a.database_core),
                                      "  first error: " + r["first_error"] if r["errors"] else ""),
                                  flush=True)
                            failed |= r["errors"] > 0
    finally:
        if pg is not None:
            pg.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
