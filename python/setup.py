"""Builds the nsimplex package with the C library and the golden vectors inside it.

    pip install --no-index --no-build-isolation ./python

copies build/libnsimplex.so (running `make build/libnsimplex.so` in the repository when it is
missing; NSIMPLEX_LIB names another) and vectors/default/ into the package.  No network.
"""
import glob
import os
import shutil
import subprocess

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class BuildPy(build_py):
    def run(self):
        super().run()
        lib = os.environ.get("NSIMPLEX_LIB") or os.path.join(ROOT, "build", "libnsimplex.so")
        if not os.path.exists(lib):
            subprocess.check_call(["make", "-C", ROOT, "build/libnsimplex.so"])
        pkg = os.path.join(self.build_lib, "nsimplex")
        shutil.copy2(lib, os.path.join(pkg, "libnsimplex.so"))
        for suite in ("default",):
            dst = os.path.join(pkg, "vectors", suite)
            os.makedirs(dst, exist_ok=True)
            for f in glob.glob(os.path.join(ROOT, "vectors", suite, "*.safetensors")):
                shutil.copy2(f, dst)


class BinaryDistribution(Distribution):
    """The package carries a shared library: a platform wheel."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPy}, distclass=BinaryDistribution)
