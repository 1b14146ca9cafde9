"""Shared pytest setup: GPU tests are marked `gpu` and skipped cleanly where no CUDA GPU is usable."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS_DIR = str(Path(__file__).parent)


@pytest.fixture
def targets_importable(monkeypatch):
    """tests/ on PYTHONPATH, so worker processes can import tests/isolate_targets.py."""
    paths = [TESTS_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


def _cuda_usable() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if _cuda_usable():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run on the lent GPU: tools/lent-gpu/gpu_session.sh)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
