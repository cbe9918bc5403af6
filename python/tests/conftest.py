"""pytest set-up for the splitrans package tests (run by ctest: python/CMakeLists.txt).

The package under test is the one on PYTHONPATH (ctest: the CMake build's python/ folder).
Environment: SPLITRANS_CODEC_CLI (the splitrans-codec binary; tests that need it skip without it),
SPLITRANS_SOURCE_DIR (the repository; default: two levels above this file).
"""
import os

import pytest

ROOT = os.environ.get("SPLITRANS_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FEATURES = os.path.join(ROOT, "tests", "data", "features")


def pytest_configure(config):
    config.addinivalue_line("markers", "tools: slow tool checks (pip install, tools/evaluate.py); ctest python_tools")


def feature_files():
    """The committed feature tensors (tests/data/features/*.npy), sorted."""
    return sorted(f for f in os.listdir(FEATURES) if f.endswith(".npy"))


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("SPLITRANS_CODEC_CLI")
    if not path or not os.access(path, os.X_OK):
        pytest.skip("SPLITRANS_CODEC_CLI (the splitrans-codec binary) not set")
    return path
