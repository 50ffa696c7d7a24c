"""Tabular metrics over every row, one shard at a time (the work runs in parallel Ray tasks).

Each shard yields a small mergeable summary; merged summaries give the same numbers the
definitions in ``tabular_quality`` give on the whole table at once:

- KSComplement: for each real value ``r``, how many synthetic values are ``<= r`` and
  ``< r``. Between two consecutive real values the real CDF is flat and the synthetic CDF
  rises, so the largest gap is at one of those points: the statistic is exact. (Reference
  columns with more than ``MAX_KS_POINTS`` distinct values use that many real quantiles;
  the report says so.)
- TVComplement, ContingencySimilarity, group representation: category (and bin) counts.
- CorrelationSimilarity: Pearson sums over pairwise-complete rows.
- exact_copy_rate: synthetic row hashes looked up in the real rows' hashes.

Detection, DCR/NNDR, train-on-synthetic and fairness need rows, not counts: they use a
seeded sample of ``metrics.max_rows`` rows drawn evenly from the shards (stated in the
report as ``rows_sampled``).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.columns import NUMERIC, kind, numeric_values
from synthfactory.metrics.sampling import take

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec.model import MetricsConfig

MAX_KS_POINTS = 50_000
#: a combined (source + synthetic) dataset marks its rows; only synthetic ones are scored
SYNTHETIC_FLAG = "is_synthetic"
BINS = 10
NULL = "<null>"


def _labels(series: pd.Series) -> pd.Series:
    """Category labels as TVComplement counts them (null is a category)."""
    return series.astype(object).where(series.notna(), NULL)


def _row_hashes(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    import pandas as pd

    frame = df[columns].astype(object).where(df[columns].notna(), None).astype(str)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def _counts(values: pd.Series) -> Counter[Any]:
    return Counter(values.value_counts(sort=False).to_dict())


@dataclass
class TabularSummary:
    """What every shard task needs to know about the reference table (built once)."""

    columns: list[str]
    kinds: dict[str, str]
    pairs: list[tuple[str, str]]
    pairs_sampled: bool
    ks_points: dict[str, np.ndarray]
    edges: dict[str, np.ndarray]
    centers: dict[str, float]
    real_hashes: np.ndarray
    sensitive: list[str]
    quota: dict[int, int]
    seed: int
    ks_exact: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def plan(
        cls,
        real: pd.DataFrame,
        synthetic_columns: list[str],
        config: MetricsConfig,
        quota: dict[int, int],
    ) -> TabularSummary:
        columns = [c for c in real.columns if c in synthetic_columns]
        kinds = {c: k for c in columns if (k := kind(real[c])) is not None}
        pairs = list(itertools.combinations(kinds, 2))
        sampled = len(pairs) > config.max_pairs
        if sampled:
            rng = np.random.default_rng(config.seed)
            chosen = sorted(rng.choice(len(pairs), config.max_pairs, replace=False))
            pairs = [pairs[i] for i in chosen]
        points, edges, centers, exact = {}, {}, {}, {}
        for c, k in kinds.items():
            if k != NUMERIC:
                continue
            values = numeric_values(real[c]).to_numpy()
            unique = np.unique(values)
            exact[c] = len(unique) <= MAX_KS_POINTS
            points[c] = (
                unique
                if exact[c]
                else np.unique(np.quantile(values, np.linspace(0, 1, MAX_KS_POINTS)))
            )
            centers[c] = float(values.mean()) if len(values) else 0.0
            cut: np.ndarray = (
                np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)))
                if len(values)
                else np.zeros(0)
            )
            if len(cut) >= 2:
                cut[0], cut[-1] = -np.inf, np.inf
                edges[c] = np.asarray(cut)
        return cls(
            columns=columns,
            kinds=kinds,
            pairs=pairs,
            pairs_sampled=sampled,
            ks_points=points,
            edges=edges,
            centers=centers,
            real_hashes=np.unique(_row_hashes(real, columns)),
            sensitive=[c for c in config.sensitive_columns if c in columns],
            quota=quota,
            seed=config.seed,
            ks_exact=exact,
        )

    # -- per shard ------------------------------------------------------------------------
    def _pair_labels(self, df: pd.DataFrame, c: str) -> pd.Series:
        """A column as contingency-table labels: numbers in the real data's decile bins."""
        import pandas as pd

        if self.kinds[c] != NUMERIC:
            return df[c].astype(object).where(df[c].notna(), NULL).astype(str)
        values = numeric_values(df[c]).reindex(df.index)
        if c not in self.edges:  # a constant real column: its values are the categories
            return values.astype(object).where(values.notna(), NULL).astype(str)
        bins = np.searchsorted(self.edges[c], values.to_numpy(), side="left") - 1
        labels = pd.Series(bins.astype(str), index=df.index, dtype=object)
        return labels.where(values.notna(), NULL)

    def partial(self, df: pd.DataFrame, shard: int) -> dict[str, Any]:
        """The mergeable summary of one shard (or of the reference table, shard = -1)."""
        if shard >= 0 and SYNTHETIC_FLAG in df.columns:
            df = df[df[SYNTHETIC_FLAG].astype(bool)]
        out: dict[str, Any] = {"rows": len(df), "ks": {}, "freq": {}, "corr": {}, "cont": {}}
        for c, k in self.kinds.items():
            if k == NUMERIC:
                v = np.sort(numeric_values(df[c]).to_numpy())
                p = self.ks_points[c]
                out["ks"][c] = (
                    np.stack(
                        [np.searchsorted(v, p, "right"), np.searchsorted(v, p, "left")]
                    ).astype(np.int64),
                    len(v),
                )
            else:
                out["freq"][c] = _counts(_labels(df[c]))
        for a, b in self.pairs:
            if self.kinds[a] == NUMERIC and self.kinds[b] == NUMERIC:
                x = numeric_values(df[a]).reindex(df.index).to_numpy() - self.centers[a]
                y = numeric_values(df[b]).reindex(df.index).to_numpy() - self.centers[b]
                ok = ~(np.isnan(x) | np.isnan(y))
                x, y = x[ok], y[ok]
                out["corr"][(a, b)] = np.array(
                    [len(x), x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()]
                )
            else:
                joint = self._pair_labels(df, a) + "\x1f" + self._pair_labels(df, b)
                out["cont"][(a, b)] = _counts(joint)
        out["sensitive"] = {c: _counts(df[c].astype(str)) for c in self.sensitive}
        if shard >= 0:
            out["copies"] = int(np.isin(_row_hashes(df, self.columns), self.real_hashes).sum())
            out["sample"] = take(df, self.quota.get(shard, 0), self.seed, shard)
        return out

    @staticmethod
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        import pandas as pd

        merged: dict[str, Any] = {
            "rows": 0,
            "ks": {},
            "freq": {},
            "corr": {},
            "cont": {},
            "sensitive": {},
            "copies": 0,
        }
        samples = []
        for part in parts:
            merged["rows"] += part["rows"]
            merged["copies"] += part.get("copies", 0)
            for c, (counts, n) in part["ks"].items():
                old = merged["ks"].get(c)
                merged["ks"][c] = (counts, n) if old is None else (old[0] + counts, old[1] + n)
            for name in ("freq", "cont", "sensitive"):
                for key, counter in part[name].items():
                    merged[name].setdefault(key, Counter()).update(counter)
            for key, sums in part["corr"].items():
                merged["corr"][key] = merged["corr"].get(key, 0) + sums
            if "sample" in part:
                samples.append(part["sample"])
        merged["sample"] = pd.concat(samples, ignore_index=True) if samples else None
        return merged

    # -- the report -----------------------------------------------------------------------
    def quality(self, real: dict[str, Any], synthetic: dict[str, Any]) -> dict[str, Any]:
        """Column shapes, pair trends and overall from the real and merged summaries."""
        from synthfactory.metrics.tabular_quality import _mean

        shapes: dict[str, dict[str, Any]] = {}
        for c, k in self.kinds.items():
            if k == NUMERIC:
                score = _ks_complement(real["ks"][c], synthetic["ks"].get(c))
                shapes[c] = {"metric": "KSComplement", "score": score}
                if not self.ks_exact.get(c, True):
                    shapes[c]["points"] = len(self.ks_points[c])
            else:
                tvd = _tvd(real["freq"][c], synthetic["freq"].get(c, Counter()))
                shapes[c] = {"metric": "TVComplement", "score": 1.0 - tvd}
        trends: dict[str, dict[str, Any]] = {}
        for a, b in self.pairs:
            if (a, b) in real["corr"]:
                score = _correlation_similarity(real["corr"][(a, b)], synthetic["corr"].get((a, b)))
                trends[f"{a} | {b}"] = {"metric": "CorrelationSimilarity", "score": score}
            else:
                tvd = _tvd(real["cont"][(a, b)], synthetic["cont"].get((a, b), Counter()))
                trends[f"{a} | {b}"] = {"metric": "ContingencySimilarity", "score": 1.0 - tvd}
        shape_score = _mean(v["score"] for v in shapes.values())
        trend_score = _mean(v["score"] for v in trends.values())
        return {
            "overall": _mean([shape_score, trend_score]),
            "column_shapes": shape_score,
            "column_pair_trends": trend_score,
            "columns": shapes,
            "pairs": trends,
            "pairs_sampled": {
                "sampled": self.pairs_sampled,
                "pairs": len(self.pairs),
                "seed": self.seed,
            },
            "rows": {"real": real["rows"], "synthetic": synthetic["rows"]},
        }

    def representation(self, real: dict[str, Any], synthetic: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in self.sensitive:
            r, s = real["sensitive"][c], synthetic["sensitive"].get(c, Counter())
            groups = set(r) | set(s)
            if len(groups) < 2:
                out[c] = {"not_applicable": "only one group"}
                continue
            rn, sn = max(sum(r.values()), 1), max(sum(s.values()), 1)
            out[c] = {
                "source_share": {str(k): v / rn for k, v in r.items()},
                "synthetic_share": {str(k): v / sn for k, v in s.items()},
                "max_share_change": max(abs(s.get(g, 0) / sn - r.get(g, 0) / rn) for g in groups),
            }
        return out


def _tvd(real: Counter[Any], synthetic: Counter[Any]) -> float:
    rn, sn = sum(real.values()), sum(synthetic.values())
    if not rn or not sn:
        return float("nan")
    keys = set(real) | set(synthetic)
    return 0.5 * float(sum(abs(real.get(k, 0) / rn - synthetic.get(k, 0) / sn) for k in keys))


def _ks_complement(real: tuple[np.ndarray, int], synthetic: tuple[np.ndarray, int] | None) -> float:
    if synthetic is None or not real[1] or not synthetic[1]:
        return float("nan")
    r_le, _ = real[0] / real[1]
    s_le, s_lt = synthetic[0] / synthetic[1]
    # at each real point, and just below the next one (where the real CDF has not risen yet)
    below_next = np.append(s_lt[1:], 1.0)
    gaps = np.concatenate(
        [np.abs(r_le - s_le), np.abs(r_le - below_next), [s_lt[0]] if len(s_lt) else []]
    )
    return float(1.0 - gaps.max())


def _pearson(sums: np.ndarray) -> float:
    n, sx, sy, sxx, syy, sxy = (float(v) for v in sums)
    if n < 2:
        return float("nan")
    vx, vy = sxx / n - (sx / n) ** 2, syy / n - (sy / n) ** 2
    if vx <= 1e-12 * max(sxx / n, 1e-300) or vy <= 1e-12 * max(syy / n, 1e-300):
        return float("nan")
    return float((sxy / n - sx * sy / n**2) / np.sqrt(vx * vy))


def _correlation_similarity(real: np.ndarray, synthetic: np.ndarray | None) -> float:
    if synthetic is None:
        return float("nan")
    r, s = _pearson(real), _pearson(synthetic)
    if np.isnan(r) or np.isnan(s):
        return float("nan")
    return 1.0 - abs(s - r) / 2.0
