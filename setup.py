"""Builds the native hot path (Cython); everything else about the package is in pyproject.toml.

Every .pyx under shm/ and feeds/ is one extension module named after its path. yyjson (vendored,
MIT) is compiled into feeds.native.decoder only: the venue decoders reach its parser through
that module and use just the header's inline accessors themselves.
"""
import filecmp
import glob
import os
import shutil

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
EXTRA_SOURCES = {"feeds.native.decoder": ["feeds/native/vendor/yyjson.c"]}


class build_ext_replacing(build_ext):
    """--inplace copies every module into the tree on every build, writing over the file a
    running worker has mapped (it would crash). Here a changed module is written beside it and
    renamed into place (running processes keep the old file), an unchanged one is left alone."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:                 # compile the modules on every CPU (pip passes none)
            self.parallel = os.cpu_count() or 1

    def copy_file(self, src, dst, *args, **kwargs):
        if not (self.inplace and dst.endswith(".so")):
            return super().copy_file(src, dst, *args, **kwargs)
        if os.path.exists(dst) and filecmp.cmp(src, dst, shallow=False):
            return dst, False
        tmp = f"{dst}.{os.getpid()}.tmp"
        shutil.copyfile(src, tmp)
        shutil.copymode(src, tmp)
        os.replace(tmp, dst)
        return dst, True


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


setup(cmdclass={"build_ext": build_ext_replacing},
      ext_modules=cythonize(extensions(), language_level=3, quiet=True,
                            # bounds and negative-index checks stay on: they only cost where Python
                            # objects are indexed (the rare paths); C pointers are never checked
                            compiler_directives={"cdivision": True}))
