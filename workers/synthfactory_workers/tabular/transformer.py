"""The data transform CTGAN and TVAE share (Xu et al. 2019, section 4.2).

Continuous columns (numbers, datetimes) get *mode-specific normalisation*: a variational
(Dirichlet-process) Gaussian mixture is fitted per column and modes with weight under
0.005 are dropped; a value is encoded as the one-hot of a mode drawn from its posterior
plus a scalar ``alpha = (x - mu_k) / (4 sigma_k)`` clipped to (-0.99, 0.99). Discrete
columns (categorical, boolean, text) are one-hot. Missing values: a discrete column keeps
null as a category; a continuous column with nulls gets a two-way null indicator span.

The fitted transform is plain JSON (scikit-learn is needed to fit, not to sample).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.jsonsafe import plain
from synthfactory_workers.tabular import column_types as ct

if TYPE_CHECKING:
    import pandas as pd

MIN_MODE_WEIGHT = 0.005
GMM_MAX_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Span:
    """A slice of the encoded row: ``tanh`` (one alpha) or ``softmax`` (a one-hot)."""

    start: int
    width: int
    activation: str
    column: str
    role: str  # alpha, mode, null, category


class DataTransformer:
    def __init__(self, max_modes: int = 10, seed: int = 0) -> None:
        self.max_modes = max_modes
        self.seed = seed
        self.columns: list[dict[str, Any]] = []

    # -- fitting -------------------------------------------------------------------------
    def fit(self, df: pd.DataFrame, column_types: dict[str, str]) -> None:
        described = ct.described(df, column_types)
        self.columns = [col for _, col in described]
        for series, col in described:
            if col["type"] == "id":
                continue
            if col["type"] in ct.NUMERIC_TYPES:
                observed = ct.observed_numbers(col, series)
                if observed is None:
                    continue
                col["modes"] = self._fit_modes(observed)
                col["has_nulls"] = len(observed) < len(series)
            else:
                counts = ct.value_counts(series)
                order = sorted(counts.items(), key=lambda kv: (-kv[1], ct.key(plain(kv[0]))))
                col["categories"] = [plain(v) for v, _ in order]
                col["frequencies"] = [int(c) for _, c in order]

    def _fit_modes(self, x: np.ndarray) -> dict[str, list[float]]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import BayesianGaussianMixture

        unique = np.unique(x)
        if len(unique) <= 1:
            return {"weights": [1.0], "means": [float(unique[0])], "stds": [1.0]}
        if len(x) > GMM_MAX_ROWS:
            x = np.random.default_rng(self.seed).choice(x, GMM_MAX_ROWS, replace=False)
        scale = float(x.std()) or 1.0
        gmm = BayesianGaussianMixture(
            n_components=min(self.max_modes, len(unique)),
            weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=0.001,
            n_init=1,
            max_iter=200,
            random_state=self.seed,
        )
        # fitted on standardised values: the mixture's priors assume unit scale
        center = float(x.mean())
        with warnings.catch_warnings():  # a mixture that stops at max_iter is still usable
            warnings.simplefilter("ignore", ConvergenceWarning)
            gmm.fit(((x - center) / scale).reshape(-1, 1))
        keep = gmm.weights_ > MIN_MODE_WEIGHT
        weights = gmm.weights_[keep] / gmm.weights_[keep].sum()
        means = gmm.means_.ravel()[keep] * scale + center
        stds = np.sqrt(gmm.covariances_.ravel()[keep]) * scale
        return {
            "weights": weights.tolist(),
            "means": means.tolist(),
            "stds": np.maximum(stds, 1e-6 * scale).tolist(),
        }

    # -- layout ----------------------------------------------------------------------------
    def spans(self) -> list[Span]:
        out: list[Span] = []
        at = 0
        for col in self.columns:
            name = col["name"]
            if "modes" in col:
                k = len(col["modes"]["means"])
                out.append(Span(at, 1, "tanh", name, "alpha"))
                out.append(Span(at + 1, k, "softmax", name, "mode"))
                at += 1 + k
                if col["has_nulls"]:
                    out.append(Span(at, 2, "softmax", name, "null"))
                    at += 2
            elif "categories" in col:
                k = len(col["categories"])
                out.append(Span(at, k, "softmax", name, "category"))
                at += k
        return out

    @property
    def output_dim(self) -> int:
        return sum(s.width for s in self.spans())

    def discrete_spans(self) -> list[Span]:
        """The one-hot spans of discrete columns: what CTGAN's conditional vector covers."""
        return [s for s in self.spans() if s.role == "category"]

    # -- encoding --------------------------------------------------------------------------
    def transform(self, df: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
        from scipy.special import logsumexp

        n = len(df)
        out = np.zeros((n, self.output_dim), dtype=np.float32)
        by_name = {c["name"]: c for c in self.columns}
        for span in self.spans():
            col = by_name[span.column]
            series = df[span.column]
            if span.role == "alpha":
                x = ct.as_float(series, datetime=col["type"] == "datetime")
                nulls = np.isnan(x)
                x = np.where(nulls, np.asarray(col["modes"]["means"])[0], x)
                means = np.asarray(col["modes"]["means"])
                stds = np.asarray(col["modes"]["stds"])
                logp = (
                    np.log(np.asarray(col["modes"]["weights"]))
                    - np.log(stds)
                    - 0.5 * ((x[:, None] - means) / stds) ** 2
                )
                probs = np.exp(logp - logsumexp(logp, axis=1, keepdims=True))
                cum = probs.cumsum(axis=1)
                draws = rng.uniform(0.0, 1.0, (n, 1)) * cum[:, -1:]
                mode = np.minimum((cum < draws).sum(axis=1), len(means) - 1)
                alpha = np.clip((x - means[mode]) / (4 * stds[mode]), -0.99, 0.99)
                out[:, span.start] = alpha
                out[np.arange(n), span.start + 1 + mode] = 1.0
            elif span.role == "null":
                nulls = np.isnan(ct.as_float(series, datetime=col["type"] == "datetime"))
                out[np.arange(n), span.start + nulls.astype(int)] = 1.0
            elif span.role == "category":
                index = {ct.key(v): i for i, v in enumerate(col["categories"])}
                codes = np.array([index[ct.key(plain(v))] for v in series.astype(object)], int)
                out[np.arange(n), span.start + codes] = 1.0
        return out

    def category_index(self, column: str, value: Any) -> int:
        col = next(c for c in self.columns if c["name"] == column)
        return [ct.key(v) for v in col["categories"]].index(ct.key(plain(value)))

    # -- decoding --------------------------------------------------------------------------
    def inverse(
        self,
        data: np.ndarray,
        enforce_min_max: bool,
        sigmas: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> pd.DataFrame:
        """Rows back from the encoding: alphas as given (``sigmas`` adds TVAE's output
        noise), one-hot spans by argmax."""
        import pandas as pd

        n = len(data)
        spans = {(s.column, s.role): s for s in self.spans()}
        out: dict[str, Any] = {}
        for col in self.columns:
            name = col["name"]
            if col["type"] == "id":
                out[name] = None
            elif col.get("all_null"):
                out[name] = pd.Series([None] * n, dtype=col["dtype"] if n else "object")
            elif "modes" in col:
                alpha_span, mode_span = spans[(name, "alpha")], spans[(name, "mode")]
                alpha = data[:, alpha_span.start].astype(float)
                if sigmas is not None and rng is not None:
                    alpha = rng.normal(alpha, sigmas[alpha_span.start])
                alpha = np.clip(alpha, -1, 1)
                block = data[:, mode_span.start : mode_span.start + mode_span.width]
                mode = block.argmax(axis=1)
                means = np.asarray(col["modes"]["means"])
                stds = np.asarray(col["modes"]["stds"])
                x = ct.finish_numbers(alpha * 4 * stds[mode] + means[mode], col, enforce_min_max)
                nulls = np.zeros(n, dtype=bool)
                if col["has_nulls"]:
                    s = spans[(name, "null")]
                    nulls = data[:, s.start : s.start + 2].argmax(axis=1) == 1
                out[name] = ct.restore_numbers(x, nulls, col)
            else:
                s = spans[(name, "category")]
                codes = data[:, s.start : s.start + s.width].argmax(axis=1)
                values = np.empty(n, dtype=object)
                values[:] = np.array([*col["categories"], None], dtype=object)[:-1][codes]
                out[name] = ct.restore_category(values, col)
        return pd.DataFrame(out, columns=[c["name"] for c in self.columns])

    # -- storage ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"max_modes": self.max_modes, "seed": self.seed, "columns": self.columns}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DataTransformer:
        out = cls(raw["max_modes"], raw["seed"])
        out.columns = raw["columns"]
        return out
