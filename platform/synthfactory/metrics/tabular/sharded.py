"""Tabular metrics over every row, one shard at a time (the work runs in parallel Ray tasks).

Each shard yields a small mergeable summary; merged summaries give the same numbers the
definitions in ``tabular.quality`` give on the whole table at once:

- KSComplement: for each real value ``r``, how many synthetic values are ``<= r`` and
  ``< r``. Between two consecutive real values the real CDF is flat and the synthetic CDF
  rises, so the largest gap is at one of those points: the statistic is exact. (Reference
  columns with more than ``MAX_KS_POINTS`` distinct values use that many real quantiles;
  the report says so.)
- TVComplement, ContingencySimilarity, group representation: category (and bin) counts.
  A continuous column paired with a discrete one is binned on each table's own range
  (``tabular.quality``), which for the synthetic table is known only after the last shard:
  shards count it in fine cells (``CELLS_PER_BIN`` per bin of the reference's range) and
  keep each cell's exact min and max and the rows at their maximum, so the merged cells map
  onto the whole column's bins exactly, unless a bin edge falls between two values of one
  cell (then approximately; the pair says ``bins_exact: False``). The reference table itself
  (shard -1) is binned exactly.
- CorrelationSimilarity: Pearson sums over pairwise-complete rows.
- Which pairs count (the real-data correlation and association thresholds) comes from the
  reference's sums and counts, as in ``tabular.quality``.
- exact_copy_rate: synthetic row hashes looked up in the training rows' hashes.

Detection, DCR/NNDR, train-on-synthetic and fairness need rows, not counts: they use a
seeded sample of ``metrics.max_rows`` rows drawn evenly from the shards (stated in the
report as ``rows_sampled``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.sampling import take
from synthfactory.metrics.tabular.quality import (
    BINS,
    MAX_DECIMALS,
    NULL,
    REAL_ASSOCIATION_THRESHOLD,
    REAL_CORRELATION_THRESHOLD,
    category_counts,
    choose_pairs,
    contingency_from_counts,
    cramers_v,
    joint_counts,
    pair_labels,
    pair_trend,
    property_scores,
    quality_kinds,
    similarity_of_correlations,
    tv_from_counts,
)
from synthfactory.metrics.tabular.sdtypes import NUMERIC, as_float, numeric_values

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.spec.model import MetricsConfig

MAX_KS_POINTS = 50_000
#: a combined (source + synthetic) dataset marks its rows; only synthetic ones are scored
SYNTHETIC_FLAG = "is_synthetic"
#: fine cells per histogram bin of the real range, for the synthetic side of binned pairs
CELLS_PER_BIN = 1000
#: the label np.digitize gives the column maximum and the nulls (past the last edge)
TOP_BIN = BINS + 1


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
    grid: dict[str, tuple[float, float]]
    centers: dict[str, float]
    real_hashes: np.ndarray
    sensitive: list[str]
    quota: dict[int, int]
    seed: int
    ks_exact: dict[str, bool] = field(default_factory=dict)
    thresholds: tuple[float, float] = (REAL_CORRELATION_THRESHOLD, REAL_ASSOCIATION_THRESHOLD)

    @classmethod
    def plan(
        cls,
        real: pd.DataFrame,
        synthetic_columns: list[str],
        config: MetricsConfig,
        quota: dict[int, int],
        train: pd.DataFrame | None = None,
        sdtypes: Mapping[str, str] | None = None,
    ) -> TabularSummary:
        """``train``: the real rows the synthesizer trained on, which exact copies are
        counted against (default: every real row); ``sdtypes``: declared column types
        (``tabular.quality.quality_kind``)."""
        columns = [c for c in real.columns if c in synthetic_columns]
        kinds = quality_kinds(real, columns, sdtypes)
        pairs, sampled = choose_pairs(list(kinds), config.max_pairs, config.seed)
        points, grid, centers, exact = {}, {}, {}, {}
        for c, k in kinds.items():
            if k != NUMERIC:
                continue
            values = numeric_values(real[c]).to_numpy()
            rounded = np.round(values, MAX_DECIMALS)
            unique = np.unique(rounded)
            exact[c] = len(unique) <= MAX_KS_POINTS
            points[c] = (
                unique
                if exact[c]
                else np.unique(np.quantile(rounded, np.linspace(0, 1, MAX_KS_POINTS)))
            )
            centers[c] = float(values.mean()) if len(values) else 0.0
            low = float(values.min()) if len(values) else 0.0
            span = float(values.max()) - low if len(values) else 0.0
            width = span / (BINS * CELLS_PER_BIN) if span > 0 else max(abs(low), 1.0) * 1e-9
            grid[c] = (low, width)
        return cls(
            columns=columns,
            kinds=kinds,
            pairs=pairs,
            pairs_sampled=sampled,
            ks_points=points,
            grid=grid,
            centers=centers,
            real_hashes=np.unique(_row_hashes(real if train is None else train, columns)),
            sensitive=[c for c in config.sensitive_columns if c in columns],
            quota=quota,
            seed=config.seed,
            ks_exact=exact,
            thresholds=(
                float(getattr(config, "real_correlation_threshold", REAL_CORRELATION_THRESHOLD)),
                float(getattr(config, "real_association_threshold", REAL_ASSOCIATION_THRESHOLD)),
            ),
        )

    # -- per shard ------------------------------------------------------------------------
    def _binned_pair(self, a: str, b: str) -> int | None:
        """Which side of a contingency pair is continuous (binned): 0, 1 or None."""
        ka, kb = self.kinds[a] == NUMERIC, self.kinds[b] == NUMERIC
        return 0 if ka and not kb else 1 if kb and not ka else None

    def _cells(self, df: pd.DataFrame, c: str) -> np.ndarray:
        """Fine-grid cells of a continuous column (NaN for nulls): the synthetic side of a
        binned pair, whose own bin edges are known only once every shard is in."""
        low, width = self.grid[c]
        return np.floor((as_float(df[c]).to_numpy() - low) / width)

    def partial(self, df: pd.DataFrame, shard: int) -> dict[str, Any]:
        """The mergeable summary of one shard, or of the whole reference table (shard = -1:
        binned pairs are then binned exactly, on the reference's own range)."""
        if shard >= 0 and SYNTHETIC_FLAG in df.columns:
            df = df[df[SYNTHETIC_FLAG].astype(bool)]
        out: dict[str, Any] = {"rows": len(df), "binned": shard < 0, **self._marginals(df)}
        out.update(self._pair_summaries(df, shard))
        out["sensitive"] = {c: _counts(df[c].astype(str)) for c in self.sensitive}
        if shard >= 0:
            out["copies"] = int(np.isin(_row_hashes(df, self.columns), self.real_hashes).sum())
            out["sample"] = take(df, self.quota.get(shard, 0), self.seed, shard)
        return out

    def _marginals(self, df: pd.DataFrame) -> dict[str, Any]:
        """Per column: KS counts at the reference's points (numbers), value counts (others)."""
        ks: dict[str, Any] = {}
        freq: dict[str, Counter[Hashable]] = {}
        for c, k in self.kinds.items():
            if k == NUMERIC:
                v = np.sort(np.round(numeric_values(df[c]).to_numpy(), MAX_DECIMALS))
                p = self.ks_points[c]
                ks[c] = (
                    np.stack(
                        [np.searchsorted(v, p, "right"), np.searchsorted(v, p, "left")]
                    ).astype(np.int64),
                    len(v),
                )
            else:
                freq[c] = Counter(category_counts(df[c]))
        return {"ks": ks, "freq": freq}

    def _pair_summaries(self, df: pd.DataFrame, shard: int) -> dict[str, Any]:
        """Per column pair: correlation sums (two numbers), joint counts (contingency), and
        for a binned pair the fine-grid cells of its continuous side and the top value."""
        out: dict[str, Any] = {"corr": {}, "cont": {}, "cells": {}, "top": {}}
        labels: dict[str, list[Hashable]] = {}  # per column, built once for all its pairs

        def discrete(c: str) -> list[Hashable]:
            if c not in labels:
                labels[c] = pair_labels(df[c], self.kinds[c] == NUMERIC)
            return labels[c]

        cells: dict[str, tuple[np.ndarray, list[Hashable]]] = {}
        for a, b in self.pairs:
            if self.kinds[a] == NUMERIC and self.kinds[b] == NUMERIC:
                out["corr"][(a, b)] = self._correlation_sums(df, a, b)
                continue
            side = self._binned_pair(a, b)
            if side is None or shard < 0:
                out["cont"][(a, b)] = Counter(joint_counts(discrete(a), discrete(b)))
                continue
            c, other = (a, b) if side == 0 else (b, a)
            if c not in cells:
                cells[c] = self._grid_cells(df, c, out["cells"])
            values, keys = cells[c]
            pair = (keys, discrete(other)) if side == 0 else (discrete(other), keys)
            out["cont"][(a, b)] = Counter(joint_counts(*pair))
            top = float(np.nanmax(values)) if np.isfinite(values).any() else -np.inf
            at_top = np.asarray(discrete(other), dtype=object)[values == top]
            out["top"][(a, b)] = (top, Counter(at_top.tolist()))
        return out

    def _correlation_sums(self, df: pd.DataFrame, a: str, b: str) -> np.ndarray:
        """n and the sums of x, y, x², y², xy (centred on the reference) of rows with both."""
        x = as_float(df[a]).to_numpy() - self.centers[a]
        y = as_float(df[b]).to_numpy() - self.centers[b]
        ok = ~(np.isnan(x) | np.isnan(y))
        x, y = x[ok], y[ok]
        return np.array([len(x), x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()])

    def _grid_cells(
        self, df: pd.DataFrame, c: str, found_cells: dict[str, Any]
    ) -> tuple[np.ndarray, list[Hashable]]:
        """A continuous column's values and fine-grid cell keys (NULL for nulls); records
        each cell's (min, max) in ``found_cells[c]``."""
        import pandas as pd

        values = as_float(df[c]).to_numpy()
        cell = self._cells(df, c)
        found = pd.Series(values).groupby(cell).agg(["min", "max"])
        found_cells[c] = {
            float(k): (float(lo), float(hi))
            for k, lo, hi in zip(found.index, found["min"], found["max"], strict=True)
        }
        return values, [NULL if np.isnan(v) else float(v) for v in cell]

    @staticmethod
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
        import pandas as pd

        merged: dict[str, Any] = {
            "rows": 0,
            "binned": False,
            "ks": {},
            "freq": {},
            "corr": {},
            "cont": {},
            "cells": {},
            "top": {},
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
            for c, found in part.get("cells", {}).items():
                into = merged["cells"].setdefault(c, {})
                for cell, (lo, hi) in found.items():
                    old = into.get(cell)
                    into[cell] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
            for key, (top, at_top) in part.get("top", {}).items():
                old = merged["top"].get(key)
                if old is None or top > old[0]:
                    merged["top"][key] = (top, Counter(at_top))
                elif top == old[0]:
                    old[1].update(at_top)
            if "sample" in part:
                samples.append(part["sample"])
        merged["sample"] = pd.concat(samples, ignore_index=True) if samples else None
        return merged

    # -- the report -----------------------------------------------------------------------
    def _bins_from_cells(
        self, summary: dict[str, Any], a: str, b: str, side: int
    ) -> tuple[Counter[Any], bool]:
        """A merged pair's cell counts as the bins np.histogram_bin_edges + np.digitize give
        on the whole column: edges from the exact min and max, each cell to the bin its values
        lie in, the maximum's rows (np.digitize: past the last edge) and nulls to TOP_BIN.
        Exact unless a bin edge falls inside a cell's range of values (then False)."""
        c = (a, b)[side]
        counts = Counter(summary["cont"].get((a, b), Counter()))
        found = summary["cells"].get(c, {})
        exact = True
        if not found:  # all null: np.digitize puts every row past the last edge
            return Counter({_at(k, side, TOP_BIN): n for k, n in counts.items()}), exact
        low = min(lo for lo, _ in found.values())
        high = max(hi for _, hi in found.values())
        edges = np.histogram_bin_edges(np.array([low, high]), bins=BINS)
        interior = edges[1:-1]
        to_bin: dict[Any, int] = {NULL: TOP_BIN}
        for cell, (lo, hi) in found.items():
            first, last = np.searchsorted(interior, [lo, hi], "right")
            exact = exact and bool(first == last)
            to_bin[cell] = int(first) + 1
        top, at_top = summary["top"].get((a, b), (high, Counter()))
        if high > low and top == high == edges[-1]:
            top_cell = float(np.floor((top - self.grid[c][0]) / self.grid[c][1]))
            for label, n in at_top.items():
                key = (top_cell, label) if side == 0 else (label, top_cell)
                counts[key] -= n
                counts[_at(key, side, NULL)] += n
        binned: Counter[Any] = Counter()
        for key, n in counts.items():
            if n:
                binned[_at(key, side, to_bin[key[side]])] += n
        return binned, exact

    def quality(self, real: dict[str, Any], synthetic: dict[str, Any]) -> dict[str, Any]:
        """Column shapes, pair trends and overall from the real and merged summaries."""
        shapes: dict[str, dict[str, Any]] = {}
        for c, k in self.kinds.items():
            if k == NUMERIC:
                score = _ks_complement(real["ks"][c], synthetic["ks"].get(c))
                shapes[c] = {"metric": "KSComplement", "score": score}
                if not self.ks_exact.get(c, True):
                    shapes[c]["points"] = len(self.ks_points[c])
            else:
                score = tv_from_counts(real["freq"][c], synthetic["freq"].get(c, Counter()))
                shapes[c] = {"metric": "TVComplement", "score": score}
        trends: dict[str, dict[str, Any]] = {}
        for a, b in self.pairs:
            if (a, b) in real["corr"]:
                sums = synthetic["corr"].get((a, b))
                r = _pearson(real["corr"][(a, b)])
                s = _pearson(sums) if sums is not None else float("nan")
                score = similarity_of_correlations(r, s)
                trends[f"{a} | {b}"] = pair_trend(
                    "CorrelationSimilarity", score, r, self.thresholds
                )
                continue
            side = self._binned_pair(a, b)
            exact = True
            tables = []
            for summary in (real, synthetic):
                if side is None or summary.get("binned"):
                    tables.append(summary["cont"].get((a, b), Counter()))
                else:
                    table, ok = self._bins_from_cells(summary, a, b, side)
                    tables.append(table)
                    exact = exact and ok
            score = contingency_from_counts(tables[0], tables[1])
            trend = pair_trend(
                "ContingencySimilarity", score, cramers_v(tables[0]), self.thresholds
            )
            if not exact:
                trend["bins_exact"] = False  # a bin edge fell inside a fine cell: approximate
            trends[f"{a} | {b}"] = trend
        return {
            **property_scores(shapes, trends),
            "sdtypes": dict(self.kinds),
            "columns": shapes,
            "pairs": trends,
            "pairs_sampled": {
                "sampled": self.pairs_sampled,
                "pairs": len(self.pairs),
                "seed": self.seed,
            },
            "thresholds": {
                "real_correlation": self.thresholds[0],
                "real_association": self.thresholds[1],
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


def _at(key: tuple[Any, Any], side: int, value: Any) -> tuple[Any, Any]:
    return (value, key[1]) if side == 0 else (key[0], value)


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
