"""Builds the splitrans package: the native module _splitrans from src/splitrans_module.cc plus the
codec's C++ sources, compiled directly from ../codec (the list is read from codec/CMakeLists.txt, so
it cannot drift from the CMake build). Needs the repository checkout around python/ (pip builds
in place); no downloads:

    /usr/bin/python3 -m pip install --no-build-isolation ./python
"""
import os
import re

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _read(path):
    try:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise SystemExit("splitrans: %s not found (%s): build the package from the repository checkout, "
                         "where python/ sits beside codec/" % (path, e))


def codec_sources():
    """The sources of add_library(splitrans_codec ...) in codec/CMakeLists.txt, relative to here."""
    m = re.search(r"add_library\(splitrans_codec\s+([^)]*)\)", _read("codec/CMakeLists.txt"))
    if not m:
        raise SystemExit("splitrans: add_library(splitrans_codec ...) not found in codec/CMakeLists.txt")
    names = [n for n in m.group(1).split() if n.endswith(".cc")]
    if not names:
        raise SystemExit("splitrans: no sources in add_library(splitrans_codec ...)")
    return [os.path.relpath(os.path.join(ROOT, "codec", n), HERE) for n in names]


def project_version():
    m = re.search(r"project\(splitrans\s+VERSION\s+([0-9][0-9.]*)", _read("CMakeLists.txt"))
    if not m:
        raise SystemExit("splitrans: project(splitrans VERSION ...) not found in CMakeLists.txt")
    return m.group(1)


os.chdir(HERE)  # relative source paths, whatever the caller's directory
VERSION = project_version()
ParallelCompile("NPY_NUM_BUILD_JOBS").install()  # every core unless NPY_NUM_BUILD_JOBS says otherwise

ext = Pybind11Extension(
    "splitrans._splitrans",
    ["src/splitrans_module.cc"] + codec_sources(),
    include_dirs=[os.path.relpath(ROOT, HERE)],
    define_macros=[("SPLITRANS_VERSION", '"%s"' % VERSION)],
    extra_compile_args=["-O3"],  # as the CMake build of the codec
    cxx_std=17,
)

setup(
    name="splitrans",
    version=VERSION,
    description="splitrans feature codec: Q-bit quantization + rANS for split-inference features",
    packages=["splitrans"],
    package_data={"splitrans": ["py.typed", "*.pyi"]},
    ext_modules=[ext],
    cmdclass={"build_ext": build_ext},
    python_requires=">=3.8",
    install_requires=["numpy"],
    zip_safe=False,
)
