"""scripts/fetch-debian-source.sh: the deb-src entries it derives from the machine's apt
sources (one-line and deb822 files, found the way apt finds them), and a whole fetch from a
local file: archive, then from the cache alone. No network: the machine's own sources are
replaced by sample files through APT_CONFIG, which apt-config and apt-get both read."""
import os
import shutil
import subprocess
import tempfile
import textwrap
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                      "fetch-debian-source.sh")

ONE_LINE = textwrap.dedent("""\
    # the machine's main archive, through a mirror
    deb [arch=amd64 signed-by=/usr/share/keyrings/mirror.gpg] http://mirror.example/debian bookworm main non-free-firmware
    deb-src [ signed-by=/usr/share/keyrings/mirror.gpg ] http://mirror.example/debian bookworm main non-free-firmware
    # deb http://commented.example/debian bookworm main
    deb http://mirror.example/debian-security bookworm-security main   # left out at first
    deb cdrom:[Debian GNU/Linux 12.0.0 _Bookworm_]/ bookworm main
    deb [trusted=yes arch+=i386] file:/srv/flat ./
    """)

DEB822 = textwrap.dedent("""\
    # A comment before the first stanza.
    Types: deb deb-src
    URIs: http://a.example/debian http://b.example/debian
    Suites: bookworm bookworm-updates bookworm-security
    Components: main contrib
    Architectures: amd64 arm64
    # A comment inside a stanza.
    Signed-By:
     -----BEGIN PGP PUBLIC KEY BLOCK-----
     .
     mQINBGPL0BUBEADmW5NdOcHwPIJlgPu6JGLOU
     -----END PGP PUBLIC KEY BLOCK-----

    Types: deb
    URIs: http://disabled.example/debian
    Suites: bookworm
    Components: main
    Enabled: no

    types: deb
    uris: file:/srv/local
    suites: stable
    components: main
    trusted: yes
    """)

EXPECTED_ONE_LINE = textwrap.dedent("""\
    Types: deb-src
    URIs: http://mirror.example/debian
    Suites: bookworm
    Components: main non-free-firmware
    Signed-By: /usr/share/keyrings/mirror.gpg

    Types: deb-src
    URIs: file:/srv/flat
    Suites: ./
    Trusted: yes

    """)

EXPECTED_DEB822 = textwrap.dedent("""\
    Types: deb-src
    URIs: http://a.example/debian http://b.example/debian
    Suites: bookworm bookworm-updates
    Components: main contrib
    Signed-By:
     -----BEGIN PGP PUBLIC KEY BLOCK-----
     .
     mQINBGPL0BUBEADmW5NdOcHwPIJlgPu6JGLOU
     -----END PGP PUBLIC KEY BLOCK-----

    Types: deb-src
    URIs: file:/srv/local
    Suites: stable
    Components: main
    trusted: yes

    """)


def run(args, env=None, check=True):
    p = subprocess.run(["bash", SCRIPT] + args, env=env, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s" % (args, p.returncode, p.stderr))
    return p


class DerivedSources(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="brig-fds-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def machine(self, files):
        """An environment whose apt reads its sources from `files` under self.dir/etc."""
        for name, text in files.items():
            self.write("etc/" + name, text)
        os.makedirs(os.path.join(self.dir, "etc/sources.list.d"), exist_ok=True)
        conf = self.write("apt.conf", 'Dir::Etc::SourceList "%s/etc/sources.list";\n'
                                      'Dir::Etc::SourceParts "%s/etc/sources.list.d";\n' % (self.dir, self.dir))
        return dict(os.environ, APT_CONFIG=conf)

    def test_one_line_format(self):
        self.assertEqual(run(["--print-sources", self.write("a.list", ONE_LINE)]).stdout, EXPECTED_ONE_LINE)

    def test_deb822_format(self):
        self.assertEqual(run(["--print-sources", self.write("a.sources", DEB822)]).stdout, EXPECTED_DEB822)

    def test_security_suites_only_when_asked(self):
        out = run(["--print-sources", "--with-security", self.write("a.list", ONE_LINE)]).stdout
        self.assertIn("URIs: http://mirror.example/debian-security\nSuites: bookworm-security\n", out)
        out = run(["--print-sources", "--with-security", self.write("a.sources", DEB822)]).stdout
        self.assertIn("Suites: bookworm bookworm-updates bookworm-security\n", out)

    def test_machine_sources_in_apt_order(self):
        env = self.machine({
            "sources.list": ONE_LINE,
            "sources.list.d/b.sources": DEB822,
            "sources.list.d/a.list": "deb http://first.example/debian bookworm main\n",
            # apt ignores these names, and so must the script.
            "sources.list.d/c.list.disabled": "deb http://ignored.example/debian bookworm main\n",
            "sources.list.d/d.list.save": "deb http://ignored.example/debian bookworm main\n",
        })
        first = "Types: deb-src\nURIs: http://first.example/debian\nSuites: bookworm\nComponents: main\n\n"
        self.assertEqual(run(["--print-sources"], env=env).stdout, EXPECTED_ONE_LINE + first + EXPECTED_DEB822)

    def test_no_sources_at_all(self):
        env = self.machine({})
        self.assertEqual(run(["--print-sources"], env=env).stdout, "")
        p = run(["brig-hello", os.path.join(self.dir, "out")], check=False,
                env=dict(env, BRIG_CACHE=os.path.join(self.dir, "cache")))
        self.assertEqual(p.returncode, 1)
        self.assertIn("name no archive outside the *-security suites", p.stderr)
        self.assertIn("cannot download the source of brig-hello", p.stderr)

    def local_archive(self, suite=None):
        """A file: archive holding one tiny native source package, brig-hello 1.0: flat, or
        with `suite` (component main) when given."""
        src = os.path.join(self.dir, "pkg", "brig-hello-1.0")
        self.write("pkg/brig-hello-1.0/hello.txt", "hello from a local archive\n")
        self.write("pkg/brig-hello-1.0/debian/source/format", "3.0 (native)\n")
        self.write("pkg/brig-hello-1.0/debian/control", textwrap.dedent("""\
            Source: brig-hello
            Maintainer: brig tests <brig@example.invalid>
            Standards-Version: 4.6.2

            Package: brig-hello
            Architecture: all
            Description: a source package for brig's tests
             Nothing to build.
            """))
        self.write("pkg/brig-hello-1.0/debian/changelog", textwrap.dedent("""\
            brig-hello (1.0) unstable; urgency=medium

              * Test package.

             -- brig tests <brig@example.invalid>  Mon, 01 Jan 2024 00:00:00 +0000
            """))
        subprocess.run(["dpkg-source", "-b", src], cwd=os.path.dirname(src), check=True, capture_output=True)
        archive = os.path.join(self.dir, "archive")
        pool = os.path.join(archive, "pool") if suite else archive
        index = os.path.join(archive, "dists", suite, "main", "source") if suite else archive
        os.makedirs(pool)
        os.makedirs(index, exist_ok=True)
        for name in os.listdir(os.path.dirname(src)):
            if name.startswith("brig-hello_"):
                shutil.move(os.path.join(os.path.dirname(src), name), pool)
        sources = subprocess.run(["dpkg-scansources", "pool" if suite else "."], cwd=archive, check=True,
                                 capture_output=True).stdout
        with open(os.path.join(index, "Sources"), "wb") as f:
            f.write(sources)
        return archive

    def test_fetch_from_a_local_archive_then_from_the_cache(self):
        archive = self.local_archive()
        env = self.machine({"sources.list.d/local.sources":
                            "Types: deb\nURIs: file:%s\nSuites: ./\nTrusted: yes\n" % archive})
        env["BRIG_CACHE"] = os.path.join(self.dir, "cache")
        out = run(["brig-hello", os.path.join(self.dir, "out")], env=env).stdout.strip()
        self.assertEqual(out, os.path.join(self.dir, "out", "brig-hello-1.0"))
        with open(os.path.join(out, "hello.txt")) as f:
            self.assertEqual(f.read(), "hello from a local archive\n")
        with open(os.path.join(out, ".brig-unpacked")) as f:
            self.assertEqual(f.read(), "1.0\n")
        with open(os.path.join(self.dir, "cache", "debian-src", "apt", "sources.sources")) as f:
            self.assertEqual(f.read(), "Types: deb-src\nURIs: file:%s\nSuites: ./\nTrusted: yes\n\n" % archive)
        # Without the archive, a new tree is unpacked from the cache alone.
        shutil.rmtree(archive)
        again = run(["brig-hello", os.path.join(self.dir, "out2")], env=env).stdout.strip()
        with open(os.path.join(again, "hello.txt")) as f:
            self.assertEqual(f.read(), "hello from a local archive\n")

    def test_security_suites_are_the_fallback(self):
        archive = self.local_archive(suite="bookworm-security")
        env = self.machine({"sources.list": "deb [trusted=yes] file:%s bookworm-security main\n" % archive})
        env["BRIG_CACHE"] = os.path.join(self.dir, "cache")
        p = run(["brig-hello", os.path.join(self.dir, "out")], env=env)
        self.assertIn("trying again with the *-security suites", p.stderr)
        with open(os.path.join(p.stdout.strip(), "hello.txt")) as f:
            self.assertEqual(f.read(), "hello from a local archive\n")


if __name__ == "__main__":
    unittest.main()
