"""Metrics of a text column pipeline: judge scores and validator pass rates.

Counted per shard over both the kept rows (the shard) and the rejected rows (its
``rejected/`` file, which keeps every column a row reached), merged by summing:

- ``<judge>.<criterion>``: ``mean`` (the kept rows' mean score: what the dataset holds),
  ``mean_all`` and ``histogram`` (every row the judge scored, kept or rejected; histogram
  keys are the scores 1..N), ``scored`` (how many rows it scored) and ``kept_share`` (the
  share of scored rows that were kept); from the probability-weighted scores
  (``<criterion>.expected``): ``expected_mean`` (kept rows), ``expected_mean_all`` and
  ``probability_share`` (the share of scored rows whose score came from probabilities
  rather than the sampled token);
- ``<validator>``: ``pass_rate`` (over every row it checked), ``pass_rate_kept`` (over the
  kept rows) and ``checked``;
- ``pipeline``: ``kept`` and ``rejected`` rows and ``kept_rate`` = kept / (kept +
  rejected). Rows that passed after their shard was already full are neither (the shard
  stats count them as ``pipeline.surplus``).

Gates name them as reported: ``judge.correctness.mean: ">= 3.5"``,
``judge.correctness.expected_mean: ">= 3.5"``,
``code_ok.pass_rate: ">= 0.5"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.spec.generators.text import llm_config

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec import JobSpec

JUDGE_PARTS = (
    "mean",
    "mean_all",
    "scored",
    "kept_share",
    "histogram.*",
    "expected_mean",
    "expected_mean_all",
    "probability_share",
)
VALIDATOR_PARTS = ("pass_rate", "pass_rate_kept", "checked")
PIPELINE_NAMES = ("pipeline.kept", "pipeline.rejected", "pipeline.kept_rate")


def judges_and_validators(job: JobSpec) -> tuple[dict[str, dict[str, int]], list[str]]:
    """({judge column: {criterion: number of levels}}, [validator columns]) of a job's
    pipeline; empty for other jobs."""
    llm = llm_config(job.generator)
    columns = (llm.columns if llm else None) or []
    judges = {c.name: c.levels() for c in columns if c.reports == "judge"}
    validators = [c.name for c in columns if c.reports == "validator"]
    return judges, validators


def metric_names(job: JobSpec) -> tuple[str, ...]:
    """The names this job's pipeline reports (for gate checks)."""
    judges, validators = judges_and_validators(job)
    if not judges and not validators:
        return ()
    names = [f"{j}.{c}.{part}" for j, cs in judges.items() for c in cs for part in JUDGE_PARTS]
    names += [f"{v}.{part}" for v in validators for part in VALIDATOR_PARTS]
    return (*names, *PIPELINE_NAMES)


@dataclass
class PipelineSummary:
    judges: dict[str, dict[str, int]]
    validators: list[str]
    uri: str | None = None
    storage: dict[str, Any] = field(default_factory=dict)
    rejected: dict[int, str] = field(default_factory=dict)
    """shard index -> its rejected file, relative to ``uri``."""

    def _rejected(self, shard: int) -> pd.DataFrame | None:
        path = self.rejected.get(shard)
        if path is None or self.uri is None:
            return None
        from synthfactory.dataset import parquet
        from synthfactory.spec.storage import StorageOptions
        from synthfactory.storage import open_store

        store = open_store(self.uri, StorageOptions.model_validate(self.storage))
        return parquet.decode(store.get_bytes(path)).to_pandas()

    def partial(self, df: pd.DataFrame, shard: int) -> dict[str, Any]:
        rejected = self._rejected(shard)
        out: dict[str, Any] = {
            "kept": len(df),
            "rejected": 0 if rejected is None else len(rejected),
        }
        for judge, criteria in self.judges.items():
            for criterion, levels in criteria.items():
                column = f"{judge}.{criterion}.score"
                out[f"judge:{column}"] = np.stack(
                    [_histogram(df, column, levels), _histogram(rejected, column, levels)]
                )
                out[f"expected:{judge}.{criterion}"] = np.stack(
                    [_expected(df, judge, criterion), _expected(rejected, judge, criterion)]
                )
        for name in self.validators:
            out[f"validate:{name}"] = np.array([_passes(df, name), _passes(rejected, name)])
        return out

    @staticmethod
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for part in parts:
            for key, value in part.items():
                merged[key] = merged[key] + value if key in merged else value
        return merged

    def finish(self, merged: dict[str, Any]) -> dict[str, Any]:
        kept, rejected = merged.get("kept", 0), merged.get("rejected", 0)
        report: dict[str, Any] = {
            "pipeline": {
                "kept": kept,
                "rejected": rejected,
                "kept_rate": kept / (kept + rejected) if kept + rejected else None,
            }
        }
        for judge, criteria in self.judges.items():
            report[judge] = {}
            for criterion, levels in criteria.items():
                counts = merged.get(f"judge:{judge}.{criterion}.score")
                if counts is None:
                    counts = np.zeros((2, levels + 1), np.int64)
                report[judge][criterion] = _judge_numbers(counts)
                sums = merged.get(f"expected:{judge}.{criterion}")
                report[judge][criterion].update(_expected_numbers(sums))
        for name in self.validators:
            value = merged.get(f"validate:{name}")
            (kept_pass, kept_n), (rej_pass, rej_n) = value if value is not None else ((0, 0),) * 2
            checked = int(kept_n + rej_n)
            report[name] = {
                "pass_rate": (kept_pass + rej_pass) / checked if checked else None,
                "pass_rate_kept": kept_pass / kept_n if kept_n else None,
                "checked": checked,
            }
        return report


def _histogram(df: pd.DataFrame | None, column: str, levels: int) -> np.ndarray:
    """Counts of the integer scores 1..levels (index = score; index 0 stays 0)."""
    import pandas as pd

    if df is None or column not in df.columns:
        return np.zeros(levels + 1, np.int64)
    scores = pd.to_numeric(df[column], errors="coerce").dropna().round().astype(int)
    scores = scores[(scores >= 1) & (scores <= levels)]
    return np.bincount(scores.to_numpy(), minlength=levels + 1)[: levels + 1].astype(np.int64)


def _expected(df: pd.DataFrame | None, judge: str, criterion: str) -> np.ndarray:
    """[sum of the probability-weighted scores, rows with one, rows scored from
    probabilities] (zeros for a dataset written before judges had them)."""
    import pandas as pd

    column = f"{judge}.{criterion}.expected"
    if df is None or column not in df.columns:
        return np.zeros(3)
    values = pd.to_numeric(df[column], errors="coerce").dropna()
    source = f"{judge}__{criterion}__source"
    from_probs = int((df[source] == "probability").sum()) if source in df.columns else 0
    return np.array([float(values.sum()), float(len(values)), float(from_probs)])


def _expected_numbers(sums: np.ndarray | None) -> dict[str, Any]:
    if sums is None:
        sums = np.zeros((2, 3))
    kept, every = sums[0], sums[0] + sums[1]
    return {
        "expected_mean": float(kept[0] / kept[1]) if kept[1] else None,
        "expected_mean_all": float(every[0] / every[1]) if every[1] else None,
        "probability_share": float(every[2] / every[1]) if every[1] else None,
    }


def _passes(df: pd.DataFrame | None, column: str) -> tuple[int, int]:
    """(rows that passed, rows checked): a validator column is True/False, null when the row
    never reached it."""
    if df is None or column not in df.columns:
        return 0, 0
    values = df[column].dropna().astype(bool)
    return int(values.sum()), len(values)


def _judge_numbers(counts: np.ndarray) -> dict[str, Any]:
    kept, every = counts[0], counts[0] + counts[1]
    scores = np.arange(len(kept))
    scored, kept_n = int(every.sum()), int(kept.sum())
    return {
        "mean": float((scores * kept).sum() / kept_n) if kept_n else None,
        "mean_all": float((scores * every).sum() / scored) if scored else None,
        "scored": scored,
        "kept_share": kept_n / scored if scored else None,
        "histogram": {str(s): int(every[s]) for s in range(1, len(every))},
    }
