"""Shared test fixtures. Every segment a test creates is named through `shm_names` and removed
at teardown; the session fails loudly if any tickring segment of this run is left behind."""
from __future__ import annotations

import itertools
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from shm import segment  # noqa: E402

RUN_PREFIX = f"t{os.getpid()}-"
_counter = itertools.count()


def _leftovers(prefix: str) -> list[str]:
    return [n for n in segment.list_segments() if n.startswith(prefix)]


class ShmNames:
    """Hands out unique segment names for one test and removes them afterwards."""

    def __init__(self):
        self.prefix = f"{RUN_PREFIX}{next(_counter)}-"

    def __call__(self, label: str = "ring") -> str:
        return f"{self.prefix}{label}"

    def cleanup(self) -> list[str]:
        left = _leftovers(self.prefix)
        for name in left:
            segment.unlink(name)
        return left


@pytest.fixture
def shm_names():
    names = ShmNames()
    yield names
    names.cleanup()


@pytest.fixture(scope="session", autouse=True)
def no_segment_left_behind():
    yield
    left = _leftovers(RUN_PREFIX)
    for name in left:
        segment.unlink(name)
    assert not left, f"tests left shared-memory segments behind: {left}"
