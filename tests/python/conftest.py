"""The package's tests run against the build tree: python/ on the path, the library and the
program from NSX_BUILD (default build/), scratch files under NSX_TMP."""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.dirname(__file__))
os.environ.setdefault("NSIMPLEX_LIB", os.path.join(ROOT, os.environ.get("NSX_BUILD", "build"), "libnsimplex.so"))
