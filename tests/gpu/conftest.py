"""Tests that need a CUDA GPU: the whole folder is skipped on machines without one (CI)."""

from __future__ import annotations

import pytest


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (tests/gpu runs only where one exists)")
    for item in items:
        if "/tests/gpu/" in str(item.path):
            item.add_marker(skip)
