"""A throwaway PostgreSQL server for the end-to-end tests (the Python twin of
tests/store/pg_harness.h): initdb in a temp dir, listening only on a unix socket there, one
fresh database per `database()` call, stopped and removed by `stop()`.

As root (the CI case) initdb and pg_ctl run as the `postgres` user, since PostgreSQL refuses
to run as root. Binaries: the newest /usr/lib/postgresql/*/bin, or BRIG_PG_BIN.
BRIG_SKIP_POSTGRES=1 makes `start()` return None (tests then skip their PostgreSQL half).
"""
import atexit
import glob
import os
import pwd
import shutil
import subprocess
import tempfile


def _bin_dir():
    if os.environ.get("BRIG_PG_BIN"):
        return os.environ["BRIG_PG_BIN"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


class Server:
    def __init__(self, directory, bin_dir):
        self.dir = directory
        self.bin = bin_dir
        self._count = 0

    def _run(self, argv):
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def url(self, db="postgres"):
        return "postgresql:///%s?host=%s&port=5432&user=postgres" % (db, self.dir)

    def database(self):
        """A new empty database; returns its URL."""
        self._count += 1
        name = "brig_e2e_%d" % self._count
        self._run([self.bin + "/psql", "-h", self.dir, "-p", "5432", "-U", "postgres", "-q",
                   "-c", "CREATE DATABASE " + name, "postgres"])
        return self.url(name)

    def pause(self):
        """Stops the server, keeping its data: clients now find nothing listening."""
        self._run([self.bin + "/pg_ctl", "-D", self.dir + "/data", "-m", "fast", "-w", "stop"])

    def resume(self):
        """Starts the server paused by pause() again, with its data."""
        self._run([self.bin + "/pg_ctl", "-D", self.dir + "/data", "-l", self.dir + "/postgres.log",
                   "-w", "-t", "60", "-o", "-k %s -c listen_addresses= -p 5432 -c fsync=on" % self.dir, "start"])

    def stop(self):
        try:
            self._run([self.bin + "/pg_ctl", "-D", self.dir + "/data", "-m", "fast", "-w", "stop"])
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def start():
    """A running server, or None when BRIG_SKIP_POSTGRES=1. Raises if it cannot start."""
    if os.environ.get("BRIG_SKIP_POSTGRES") == "1":
        return None
    bin_dir = _bin_dir()
    if not bin_dir:
        raise RuntimeError("PostgreSQL server binaries not found (install postgresql, or set "
                           "BRIG_SKIP_POSTGRES=1)")
    directory = tempfile.mkdtemp(prefix="brig-pg-")
    os.chmod(directory, 0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    server = Server(directory, bin_dir)
    try:
        server._run([bin_dir + "/initdb", "-D", directory + "/data", "-U", "postgres",
                     "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"])
        server.resume()
    except Exception:
        server.stop()
        raise
    return server


_shared = None


def shared():
    """The one server of this process, for every test module: started on first use (None when
    BRIG_SKIP_POSTGRES=1), stopped when the process exits. Tests take a database() each."""
    global _shared
    if _shared is None and os.environ.get("BRIG_SKIP_POSTGRES") != "1":
        _shared = start()
        atexit.register(_shared.stop)
    return _shared
