"""Gates: conditions on metrics that decide whether a dataset is published.

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


def evaluate(gates: dict[str, str], report: dict[str, Any]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for metric, condition in gates.items():
        op, threshold = parse(metric, condition)
        value = lookup(report, metric)
        if isinstance(value, dict) and "score" in value:
            value = value["score"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
            reason = (
                lookup(report, metric.rsplit(".", 1)[0] + ".not_applicable")
                or "metric was not computed for this dataset"
            )
            results.append(
                {
                    "metric": metric,
                    "condition": condition,
                    "value": None,
                    "passed": False,
                    "reason": str(reason),
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
