"""Tests that need CUDA: every test in this folder is skipped on a machine without a GPU
(torch is imported only when a test from here was collected)."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mine = [item for item in items if HERE in Path(str(item.path)).resolve().parents]
    if not mine:
        return
    try:
        import torch

        available = bool(torch.cuda.is_available())
    except ImportError:
        available = False
    if available:
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is false)")
    for item in mine:
        item.add_marker(skip)
