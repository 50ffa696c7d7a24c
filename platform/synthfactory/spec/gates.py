"""Gate conditions in a spec: ``{metric: "<op> <number>"}``. Parsed here, when the spec is
read; evaluated against a report by ``synthfactory.metrics.gates``."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": lambda a, b: math.isclose(a, b, abs_tol=1e-12),
    "!=": operator.ne,
}
PATTERN = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(-?\d+(\.\d*)?([eE]-?\d+)?)\s*$")
METRIC = re.compile(r"^[a-z_]+(\.[A-Za-z0-9_ |-]+)+$")


def parse(metric: str, condition: str) -> tuple[str, float]:
    """Raise ValueError (shown as a spec error) for a malformed gate."""
    if not METRIC.match(metric):
        raise ValueError(
            f"gate {metric!r}: name a metric like 'quality.overall' or 'privacy.exact_copy_rate'"
        )
    match = PATTERN.match(str(condition))
    if not match:
        raise ValueError(f"gate {metric}: {condition!r} is not a condition; write e.g. '>= 0.8'")
    return match.group(1), float(match.group(2))
