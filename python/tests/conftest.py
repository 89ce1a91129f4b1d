"""Shared fixtures of the distbarrier Python tests (run by ctest: python_* tests).

The package is imported from the build tree (PYTHONPATH=build/python, set by ctest). Each
test takes devices no other test of the process used, so a stream that a failed barrier left
failed (as in CANN, until destroyed) cannot disturb the next test.
"""
import itertools
import os

import pytest

os.environ.setdefault("DISTBARRIER_DEVICE_COUNT", "64")

# ctest sets this where CMake found torch: its absence must then fail, not skip.
if os.environ.get("DISTBARRIER_TESTS_REQUIRE_TORCH") == "1":
    import torch  # noqa: F401

import distbarrier  # noqa: E402

_unused_devices = itertools.count()


@pytest.fixture
def devices():
    """take(n): n devices no earlier test used."""

    def take(n):
        taken = [next(_unused_devices) for _ in range(n)]
        if taken[-1] >= distbarrier.device_count():
            pytest.fail(f"tests used more than DISTBARRIER_DEVICE_COUNT={distbarrier.device_count()} devices")
        return taken

    return take


@pytest.fixture
def pair(devices):
    """Two ranks of a fresh group in this process, on fresh devices: (comms, devices)."""
    devs = devices(2)
    comms = distbarrier.init_all(devs)
    return comms, devs
