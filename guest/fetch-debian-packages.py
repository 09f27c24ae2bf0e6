#!/usr/bin/python3.11
"""Fetches the pure-Python packages of debian-packages.txt from Debian's archive and lays
their Python files out as a site-packages tree for pack_stdlib.py (--site).

Usage: fetch-debian-packages.py LIST OUT_DIR

LIST has one binary package a line: NAME VERSION SHA256 (of the .deb, as `apt-cache show`
gives it; '#' starts a comment). Each .deb is taken with `apt-get download NAME=VERSION`
(apt checks it against the signed Release file) into the cache, $BRIG_DEB_CACHE or
~/.cache/brig/debs, so a rebuild downloads nothing; its sha256 is checked against LIST
before use. OUT_DIR/site-packages receives the contents of usr/lib/python3/dist-packages of
every package, without compiled modules (*.so: the guest cannot load them; each package kept
has a pure-Python fallback), and OUT_DIR/versions.txt lists NAME VERSION. A rerun with the
same LIST does nothing.

A package in ZIPPED goes instead into a directory OUT_DIR/site-packages/ARCHIVE.zip/, which
pack_stdlib.py packs as a deflate-compressed zip file (a big package would otherwise grow the
uncompressed stdlib pack by its full size); its metadata (*.egg-info, *.dist-info) stays in
site-packages, and each of its top-level modules gets a stub there (ZIP_STUB) that imports
it from the archive, so `import NAME` works without the archive being on sys.path.
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile


TZ_DIR = "/usr/local/lib/python3.11/tzdata/zoneinfo"  # the stdlib pack's tzdata package

# Small source edits for the sandbox, each (file, old text, new text); the build fails if an
# old text is missing, so a new Debian version cannot silently drop one.
PATCHES = [
    # pytz and dateutil read Debian's /usr/share/zoneinfo, which the sandbox lacks: point them
    # at the IANA database the stdlib pack ships as the tzdata package.
    ("pytz/__init__.py", 'tzdata_zi = pathlib.Path("/usr/share/zoneinfo/tzdata.zi")',
     'import tzdata\n    return tzdata.IANA_VERSION  # brig\n    tzdata_zi = None'),
    ("pytz/__init__.py", "filename = os.path.join('/usr','share',\n                                'zoneinfo', *name_parts)",
     f"filename = os.path.join({TZ_DIR!r}, *name_parts)  # brig"),
    ("pytz/__init__.py", 'zone_tab = pathlib.Path("/usr/share/zoneinfo/zone1970.tab")\n',
     'zone_tab = pathlib.Path("/usr/share/zoneinfo/zone1970.tab")\n'
     '    if not zone_tab.exists():  # brig: no zone1970.tab; the Area/Location zones instead\n'
     '        areas = {"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic",\n'
     '                 "Australia", "Europe", "Indian", "Pacific"}\n'
     '        return {z for z in zoneinfo.available_timezones() if z.split("/")[0] in areas}\n'),
    ("dateutil/tz/tz.py", 'TZPATHS = ["/usr/share/zoneinfo",',
     f'TZPATHS = [{TZ_DIR!r},  # brig\n               "/usr/share/zoneinfo",'),
    # cryptography (compiled) is only needed for AES-encrypted PDFs.
    ("pdfminer/pdfdocument.py",
     "from cryptography.hazmat.backends import default_backend\n"
     "from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n",
     "try:  # brig: cryptography is compiled code; only AES-encrypted PDFs need it\n"
     "    from cryptography.hazmat.backends import default_backend\n"
     "    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n"
     "except ImportError:\n    pass\n"),
    # pygal looks for map plugins through setuptools' pkg_resources, which is not shipped: the
    # sandbox has no plugins to find.
    ("pygal/__init__.py", "\nimport pkg_resources\n", "\n"),
    ("pygal/__init__.py", "for entry in pkg_resources.iter_entry_points('pygal.maps'):",
     "for entry in ():  # brig: no pkg_resources, no plugins"),
    # reportlab needs Pillow only for bitmap images; without it, drawing text and vectors works.
    ("reportlab/lib/utils.py", "\nfrom PIL import Image\n",
     "\ntry:  # brig: Pillow is optional (bitmap images only)\n    from PIL import Image\n"
     "except ImportError:\n    Image = None\n"),
    # Debian's plotly reads plotly.js and its templates from /usr/share/python3-plotly; they are
    # back in its package_data (SHARE_FILES), read as upstream does, from the package (here the
    # archive).
    ("plotly.zip/plotly/offline/offline.py",
     "    def get_debian_plotlyjs():\n"
     "        debian_path = '/usr/share/python3-plotly/plotly.js'\n"
     "        plotly_js_data = None\n"
     "        with open(debian_path, 'r') as file_:\n"
     "            plotly_js_data = file_.read()\n"
     "        return plotly_js_data.encode('utf-8').decode('utf-8')\n\n"
     "    return get_debian_plotlyjs()\n",
     "    path = os.path.join(\"package_data\", \"plotly.min.js\")  # brig\n"
     "    return pkgutil.get_data(\"plotly\", path).decode(\"utf-8\")\n"),
    ("plotly.zip/plotly/io/_templates.py",
     "                    path = os.path.join(\n"
     "                        \"/usr/share/python3-plotly\", \"templates\", f'{template_name}.json'\n"
     "                    )\n"
     "                    template_str = ''\n"
     "                    with open(path, 'r') as f:\n"
     "                        template_str = f.read()\n",
     "                    path = os.path.join(  # brig\n"
     "                        \"package_data\", \"templates\", template_name + \".json\"\n"
     "                    )\n"
     "                    template_str = pkgutil.get_data(\"plotly\", path).decode(\"utf-8\")\n"),
    # plotly.io._orca needs tenacity (not shipped: orca is a separate program the sandbox could
    # not start anyway). The renderers (fig.show()) import it for nothing; static image export
    # without kaleido looks for orca: caught, so that to_image/write_image raise plotly's own
    # "requires the kaleido package" error.
    ("plotly.zip/plotly/io/_base_renderers.py", "from plotly.io._orca import ensure_server\n",
     "# brig: `from plotly.io._orca import ensure_server` (unused, and it needs tenacity)\n"),
    # No browser in the sandbox: instead of no renderer at all (fig.show() did nothing, and
    # brig.show(fig) failed on the empty renderer name), a "brig" renderer, the default, that
    # shows the figure with brig.show() as HTML (plotly.js from the CDN, not 8.7 MB inline).
    ("plotly.zip/plotly/io/_renderers.py",
     "    import webbrowser\n\n"
     "    try:\n"
     "        webbrowser.get()\n"
     "        default_renderer = \"browser\"\n"
     "    except webbrowser.Error:\n"
     "        # Default browser could not be loaded\n"
     "        pass\n",
     "    # brig: the sandbox has no browser; brig.show() attaches the figure to the result.\n"
     "    class BrigRenderer(ExternalRenderer):\n"
     "        def render(self, fig_dict):\n"
     "            import brig\n"
     "            from plotly.io import to_html\n"
     "            html = to_html(fig_dict, full_html=False, include_plotlyjs=\"cdn\")\n"
     "            brig.show(html, mime=\"text/html\")\n\n"
     "    renderers[\"brig\"] = BrigRenderer()\n"
     "    default_renderer = \"brig\"\n"),
    ("plotly.zip/plotly/io/_kaleido.py",
     "            from ._orca import validate_executable\n\n            try:\n",
     "            try:  # brig: orca's module needs tenacity\n"
     "                from ._orca import validate_executable\n"),
]


# Packages shipped in a compressed archive (see above): NAME -> archive file name. plotly is
# 28.7 MB of Python (mostly generated graph_objs and validators) plus an 8.7 MB plotly.js:
# 74 MB with the .pyc files in the pack, 17.4 MB as a zip.
ZIPPED = {"python3-plotly": "plotly.zip"}

# Data files that Debian moves out of a package to /usr/share (a path the sandbox lacks), put
# back inside it as upstream has them: NAME -> [(path in the .deb, path under the package's
# root)]. plotly: the plotly.js bundle (for include_plotlyjs=True) and the figure templates;
# its example data sets are left out (plotly.data needs pandas).
SHARE_FILES = {
    "python3-plotly": [("usr/share/python3-plotly/plotly.js", "plotly/package_data/plotly.min.js"),
                       ("usr/share/python3-plotly/templates", "plotly/package_data/templates")],
}

ZIP_STUB = """\
# brig: {name} is in the compressed archive {archive} next to this file
# (guest/fetch-debian-packages.py). This stub imports it from there and puts it in its own
# place in sys.modules, so its __file__, __path__ and loader are the archive's: its submodules
# and its data files (pkgutil.get_data) load from the archive too.
import importlib.util, sys, zipimport
_spec = zipimport.zipimporter(__file__.rpartition("/")[0] + "/{archive}").find_spec(__name__)
_module = sys.modules[__name__] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
"""


def apply_patches(site):
    for rel, old, new in PATCHES:
        path = os.path.join(site, rel)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if old not in text:
            sys.exit(f"patch for {rel} no longer applies: {old!r} not found")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new, 1))


def write_zip_stubs(site, archive):
    for entry in sorted(os.listdir(os.path.join(site, archive))):
        module = entry[:-3] if entry.endswith(".py") else entry
        if not module.isidentifier():
            continue
        stub = os.path.join(site, module + ".py")
        if os.path.exists(stub) or os.path.exists(os.path.join(site, module)):
            sys.exit(f"{archive}: {module} is also in site-packages")
        with open(stub, "w", encoding="utf-8") as f:
            f.write(ZIP_STUB.format(name=module, archive=archive))


def read_list(path):
    pkgs = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version, sha256 = line.split()
                pkgs.append((name, version, sha256))
    return pkgs


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(name, version, sha256, cache):
    """Returns the path of the verified .deb, downloading it if the cache lacks it."""
    for entry in os.listdir(cache):
        if entry.startswith(name + "_") and entry.endswith(".deb"):
            path = os.path.join(cache, entry)
            if sha256_of(path) == sha256:
                return path
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        p = subprocess.run(["apt-get", "download", "-q", f"{name}={version}"], cwd=tmp,
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"apt-get download {name}={version} failed:\n{p.stderr}")
        (deb,) = os.listdir(tmp)
        got = sha256_of(os.path.join(tmp, deb))
        if got != sha256:
            sys.exit(f"{name} {version}: sha256 {got}, expected {sha256}")
        path = os.path.join(cache, deb)
        os.replace(os.path.join(tmp, deb), path)
    return path


def main():
    list_path, out_dir = sys.argv[1], sys.argv[2]
    pkgs = read_list(list_path)
    stamp_text = "".join(f"{n} {v} {s}\n" for n, v, s in pkgs)
    stamp_text += hashlib.sha256(open(__file__, "rb").read()).hexdigest() + "\n"
    stamp = os.path.join(out_dir, "stamp.txt")
    if os.path.exists(stamp) and open(stamp).read() == stamp_text:
        return
    cache = os.environ.get("BRIG_DEB_CACHE") or os.path.expanduser("~/.cache/brig/debs")
    os.makedirs(cache, exist_ok=True)
    site = os.path.join(out_dir, "site-packages")
    shutil.rmtree(site, ignore_errors=True)
    os.makedirs(site)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        for name, version, sha256 in pkgs:
            deb = fetch(name, version, sha256, cache)
            root = os.path.join(tmp, name)
            subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
            dist = os.path.join(root, "usr/lib/python3/dist-packages")
            if not os.path.isdir(dist):
                sys.exit(f"{name}: no usr/lib/python3/dist-packages in {deb}")
            dest = os.path.join(site, ZIPPED[name]) if name in ZIPPED else site
            for dirpath, dirs, files in os.walk(dist):
                dirs[:] = [d for d in dirs if d != "__pycache__"]
                for f in files:
                    src = os.path.join(dirpath, f)
                    if f.endswith((".so", ".pyc")) or os.path.islink(src) and not os.path.exists(src):
                        continue
                    rel = os.path.relpath(src, dist)
                    meta = rel.split(os.sep)[0].endswith((".egg-info", ".dist-info"))
                    dst = os.path.join(site if meta else dest, rel)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(src, dst)  # follows links (e.g. to /usr/share)
            for src, dst in SHARE_FILES.get(name, []):
                src, dst = os.path.join(root, src), os.path.join(dest, dst)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                if os.path.isdir(src):
                    shutil.copytree(src, dst)
                else:
                    shutil.copyfile(src, dst)
            if name in ZIPPED:
                write_zip_stubs(site, ZIPPED[name])
    apply_patches(site)
    with open(os.path.join(out_dir, "versions.txt"), "w") as f:
        f.writelines(f"{n} {v}\n" for n, v, _ in pkgs)
    with open(stamp, "w") as f:
        f.write(stamp_text)


if __name__ == "__main__":
    main()
