"""Gates: conditions on metrics that decide whether a dataset is published. A gate on a
metric that has no value (not applicable, or nothing was scored) is not passed: its result
says ``not_applicable`` and why, and the dataset is quarantined.

gates:
  quality.overall: ">= 0.8"
  privacy.exact_copy_rate: "== 0"
"""

from __future__ import annotations

import math
from typing import Any

from synthfactory.spec.gates import OPS, parse


def lookup(report: dict[str, Any], path: str) -> Any:
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def why_not(report: dict[str, Any], metric: str) -> str:
    """Why ``metric`` has no value: the nearest ``not_applicable`` on its path (the metric's
    own part first), else that it was not computed."""
    parts = metric.split(".")
    for end in range(len(parts), 0, -1):
        reason = lookup(report, ".".join([*parts[:end], "not_applicable"]))
        if reason:
            return str(reason)
    reason = report.get("not_applicable")
    return str(reason) if reason else "the metric was not computed for this dataset"


def evaluate(gates: dict[str, str], report: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for metric, condition in gates.items():
        op, threshold = parse(metric, condition)
        value = lookup(report, metric)
        if isinstance(value, dict) and "score" in value:
            value = value["score"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            # not applicable (nothing was scored, or the metric does not apply): never a pass
            results.append(
                {
                    "metric": metric,
                    "condition": condition,
                    "value": None,
                    "passed": False,
                    "not_applicable": True,
                    "reason": f"not applicable: {why_not(report, metric)}",
                }
            )
            continue
        results.append(
            {
                "metric": metric,
                "condition": condition,
                "value": float(value),
                "passed": bool(OPS[op](float(value), threshold)),
            }
        )
    return results
