"""Installs the `brig` package: the pure-Python modules plus the extension module that
`make build` (CMake target brig_python_ext) leaves in build/python/brig/.

    make build
    pip install --no-build-isolation ./python        # Debian's setuptools, no PyPI

The extension is looked for in $BRIG_BUILD_DIR/python/brig (default: ../build). When it is
not there, setup.py runs CMake to build it (the engine's build: minutes the first time).
BRIG_PYTHON_REMOTE_ONLY=1 installs without it: then only the remote mode (brig serve over
HTTP) works.
"""

import glob
import os
import shutil
import subprocess
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def built_extension():
    """The path of the built _native module, building it with CMake if needed."""
    build_dir = os.environ.get("BRIG_BUILD_DIR") or os.path.join(SOURCE, "build")
    found = glob.glob(os.path.join(build_dir, "python", "brig", "_native*.so"))
    if not found:
        if not os.path.exists(os.path.join(SOURCE, "CMakeLists.txt")):
            return None
        print(f"brig: building the extension module in {build_dir} (cmake)", file=sys.stderr)
        subprocess.check_call(["cmake", "-S", SOURCE, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"])
        subprocess.check_call(["cmake", "--build", build_dir, "-j2", "--target", "brig_python_ext"])
        found = glob.glob(os.path.join(build_dir, "python", "brig", "_native*.so"))
    return found[0] if found else None


class BuildWithNative(build_py):
    """build_py that also copies the prebuilt extension module into the package."""

    def run(self):
        super().run()
        if os.environ.get("BRIG_PYTHON_REMOTE_ONLY") == "1":
            return
        so = built_extension()
        if so is None:
            raise SystemExit("brig: the extension module is not built (run `make build`), "
                             "or set BRIG_PYTHON_REMOTE_ONLY=1 for the remote mode only")
        target = os.path.join(self.build_lib, "brig", "_native" + SUFFIX)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(so, target)


try:  # wheels that hold a native module are platform wheels
    from wheel.bdist_wheel import bdist_wheel

    class PlatformWheel(bdist_wheel):
        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

    extra_cmds = {"bdist_wheel": PlatformWheel}
except ImportError:
    extra_cmds = {}

setup(
    name="brig",
    version="0.1.0",
    description="Run untrusted Python in WebAssembly sandboxes (in-process or via brig serve)",
    packages=["brig", "brig.integrations"],
    package_data={"brig": ["py.typed"]},
    python_requires=">=3.11",
    cmdclass={"build_py": BuildWithNative, **extra_cmds},
    zip_safe=False,
)
