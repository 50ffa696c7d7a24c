"""JSON-safe values, one definition for the whole project: numpy scalars become Python
numbers, NaN, NA and infinities become None."""

from __future__ import annotations

import math
from typing import Any


def plain(value: Any) -> Any:
    """A JSON-friendly scalar: numpy types to Python, NaN/NA to None."""
    if value is None:
        return None
    try:
        if value != value:  # NaN (and pandas' NA, whose comparison raises)
            return None
    except (TypeError, ValueError):
        return None
    return value.item() if hasattr(value, "item") else value


def clean(value: Any) -> Any:
    """``plain`` applied through dicts and lists; infinities become None too."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (str, bytes)):
        return value
    value = plain(value) if hasattr(value, "item") or isinstance(value, float) else value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
