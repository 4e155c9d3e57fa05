"""Builds the native hot path (Cython); everything else about the package is in pyproject.toml.

Every .pyx under shm/ and feeds/ is one extension module named after its path. yyjson (vendored,
MIT) is compiled into feeds.native.decoder only: the venue decoders reach its parser through
that module and use just the header's inline accessors themselves.
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
EXTRA_SOURCES = {"feeds.native.decoder": ["feeds/native/vendor/yyjson.c"]}


def extensions():
    # TICKRING_BUILD_ONLY=feeds.native.okx,shm._batch builds just those (working on one module
    # while other processes run the rest)
    only = {m for m in os.environ.get("TICKRING_BUILD_ONLY", "").split(",") if m}
    out = []
    for pyx in sorted(glob.glob("shm/*.pyx") + glob.glob("feeds/**/*.pyx", recursive=True)):
        name = pyx[:-4].replace(os.sep, ".")
        if only and name not in only:
            continue
        out.append(Extension(name, [pyx, *EXTRA_SOURCES.get(name, [])],
                             include_dirs=["feeds/native"],
                             extra_compile_args=["-O3", "-fno-strict-aliasing"]))
    return out


setup(ext_modules=cythonize(extensions(), language_level=3, quiet=True,
                            # bounds and negative-index checks stay on: they only cost where Python
                            # objects are indexed (the rare paths); C pointers are never checked
                            compiler_directives={"cdivision": True}))
