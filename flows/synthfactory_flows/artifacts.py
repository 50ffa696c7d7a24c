"""Prefect artifact keys: lowercase letters, digits and dashes only."""

from __future__ import annotations


def artifact_key(*parts: str) -> str:
    """``artifact_key("My Data", "metrics")`` -> ``"my-data-metrics"``."""
    return "".join(c if c.isalnum() else "-" for c in "-".join(parts).lower())
