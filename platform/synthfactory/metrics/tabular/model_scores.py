"""Model-based scores: detection (can a classifier tell synthetic from real-train?),
train-on-synthetic / test-on-holdout (TSTR) utility with the fairness of that model, and
augmentation lift (real-train + synthetic vs real-train alone, tested on the holdout)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.tabular.sdtypes import NUMERIC, kind

if TYPE_CHECKING:
    import pandas as pd


def _features(frames: list[pd.DataFrame], columns: list[str]) -> list[np.ndarray]:
    import pandas as pd

    joined = pd.concat([f[columns] for f in frames], keys=range(len(frames)))
    parts = []
    for c in columns:
        k = kind(joined[c])
        if k == NUMERIC:
            v = pd.to_numeric(
                joined[c].astype("int64")
                if pd.api.types.is_datetime64_any_dtype(joined[c].dtype)
                else joined[c],
                errors="coerce",
            ).astype(float)
            parts.append(v.fillna(v.median()).to_frame())
            parts.append(v.isna().astype(float).to_frame(f"{c}__null"))
        elif k is not None:
            parts.append(
                pd.get_dummies(joined[c].astype(object).fillna("<null>"), prefix=c, dtype=float)
            )
    matrix = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=joined.index)
    return [matrix.xs(i).to_numpy(dtype=float) for i in range(len(frames))]


def detection_score(
    real: pd.DataFrame, synthetic: pd.DataFrame, seed: int = 0, sample: int = 10_000
) -> dict[str, Any]:
    """SDMetrics' LogisticDetection: 1 - (2 * max(AUC, 0.5) - 1), cross-validated AUC of a
    logistic regression separating real from synthetic rows. 1 = indistinguishable."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    r = real.sample(min(sample, len(real)), random_state=seed)
    s = synthetic.sample(min(sample, len(synthetic)), random_state=seed)
    columns = [c for c in r.columns if c in s.columns]
    xr, xs = _features([r, s], columns)
    x = np.vstack([xr, xs])
    y = np.r_[np.zeros(len(xr)), np.ones(len(xs))]
    if len(np.unique(y)) < 2 or min(len(xr), len(xs)) < 10:
        return {"not_applicable": "needs at least 10 real and 10 synthetic rows"}
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    auc = float(np.mean(cross_val_score(model, x, y, cv=3, scoring="roc_auc")))
    return {"score": 1.0 - (2 * max(auc, 0.5) - 1), "auc": auc, "rows": len(x)}


def _is_class(values: pd.Series) -> bool:
    return kind(values) != NUMERIC or values.nunique() <= 10


def _labels(*frames: pd.Series) -> dict[str, int]:
    import pandas as pd

    joined = pd.concat([f.astype(str) for f in frames])
    return {v: i for i, v in enumerate(sorted(joined.unique()))}


def tstr(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    target: str,
    sensitive: list[str],
    seed: int = 0,
) -> dict[str, Any]:
    """Train on synthetic, test on the real holdout (accuracy or R^2), compared with train
    on real-train, test on the holdout; and the fairness of the synthetic-trained
    classifier on the holdout (fairlearn). The holdout was never shown to the
    synthesizer."""
    if target not in train.columns or target not in synthetic.columns:
        return {"not_applicable": f"target column {target!r} is not in both tables"}
    train_real = train.dropna(subset=[target])
    test_real = holdout.dropna(subset=[target])
    synthetic = synthetic.dropna(subset=[target])
    if min(len(train_real), len(test_real), len(synthetic)) < 2:
        return {"not_applicable": "needs labelled training, holdout and synthetic rows"}
    columns = [c for c in train.columns if c != target and c in synthetic.columns]
    frames = (synthetic, train_real, test_real)
    if _is_class(train_real[target]):
        scored = _tstr_classification(frames, columns, target, seed)
        if isinstance(scored, str):
            return {"not_applicable": scored}
        syn_score, real_score, (yte, predictions) = scored
        metric = "accuracy"
    else:
        syn_score, real_score = _tstr_regression(frames, columns, target, seed)
        metric = "r2"
    out: dict[str, Any] = {
        "metric": metric,
        "train_synthetic_test_real": syn_score,
        "train_real_test_real": real_score,
        "score": syn_score / real_score if real_score > 0 else None,
        "compared": "train on synthetic vs train on real-train, both tested on the holdout",
    }
    if metric == "accuracy":
        out["fairness"] = fairness(test_real, yte, predictions, sensitive)
    return out


Frames = tuple["pd.DataFrame", "pd.DataFrame", "pd.DataFrame"]


def _tstr_classification(
    frames: Frames, columns: list[str], target: str, seed: int
) -> str | tuple[float, float, tuple[np.ndarray, np.ndarray]]:
    """(synthetic-trained accuracy, real-trained accuracy, (holdout labels, the synthetic
    model's predictions)), or why not."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    synthetic, train_real, test_real = frames
    xs, xtr, xte = _features(list(frames), columns)
    labels = _labels(train_real[target], test_real[target])

    def enc(series: pd.Series) -> np.ndarray:
        return series.astype(str).map(labels).fillna(-1).to_numpy(dtype=int)

    ys, ytr, yte = enc(synthetic[target]), enc(train_real[target]), enc(test_real[target])
    if len(np.unique(ys)) < 2:
        return "the synthetic target has a single class"
    if len(np.unique(ytr)) < 2:
        return "the real training target has a single class"
    model = HistGradientBoostingClassifier(random_state=seed)
    syn_score = float(model.fit(xs, ys).score(xte, yte))
    predictions = model.predict(xte)
    real_score = float(
        HistGradientBoostingClassifier(random_state=seed).fit(xtr, ytr).score(xte, yte)
    )
    return syn_score, real_score, (yte, predictions)


def _tstr_regression(
    frames: Frames, columns: list[str], target: str, seed: int
) -> tuple[float, float]:
    """(synthetic-trained R^2, real-trained R^2) on the holdout."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    synthetic, train_real, test_real = frames
    xs, xtr, xte = _features(list(frames), columns)
    model = HistGradientBoostingRegressor(random_state=seed)
    syn_score = float(model.fit(xs, synthetic[target]).score(xte, test_real[target]))
    real_score = float(
        HistGradientBoostingRegressor(random_state=seed)
        .fit(xtr, train_real[target])
        .score(xte, test_real[target])
    )
    return syn_score, real_score


def augmentation_lift(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    target: str,
    seed: int = 0,
) -> dict[str, Any]:
    """Does adding the synthetic rows to the real training rows help a model? The same
    model (gradient-boosted trees) trained on real-train alone and on real-train +
    synthetic, both tested on the holdout. Classification: accuracy, macro F1 and each
    class's recall; regression: R^2. Each is reported as the lift (with - without) and
    both raw values (``real_only``, ``real_plus_synthetic``)."""
    import pandas as pd

    if target not in train.columns or target not in synthetic.columns:
        return {"not_applicable": f"target column {target!r} is not in both tables"}
    real = train.dropna(subset=[target])
    test = holdout.dropna(subset=[target])
    synthetic = synthetic.dropna(subset=[target])
    if min(len(real), len(test)) < 2 or not len(synthetic):
        return {"not_applicable": "needs labelled training, holdout and synthetic rows"}
    columns = [c for c in train.columns if c != target and c in synthetic.columns]
    keep = [*columns, target]
    both = pd.concat([real[keep], synthetic[keep]], ignore_index=True)
    rows = {"real_train": len(real), "synthetic": len(synthetic), "holdout": len(test)}
    if _is_class(real[target]):
        lift, without, with_ = _class_lift((real, both, test), synthetic, columns, target, seed)
    else:
        lift, without, with_ = _regression_lift((real, both, test), columns, target, seed)
    lift.update(
        real_only=without,
        real_plus_synthetic=with_,
        rows=rows,
        compared="trained on real-train + synthetic vs real-train alone, tested on the holdout",
    )
    return lift


Lift = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]
"""(the lift, the scores without synthetic rows, the scores with them)"""


def _class_lift(
    frames: Frames, synthetic: pd.DataFrame, columns: list[str], target: str, seed: int
) -> Lift:
    """Accuracy, macro F1 and each class's recall, with and without the synthetic rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    real, both, test = frames
    x_real, x_both, x_test = _features(list(frames), columns)
    labels = _labels(real[target], test[target], synthetic[target])

    def enc(series: pd.Series) -> np.ndarray:
        return series.astype(str).map(labels).to_numpy(dtype=int)

    y_real, y_both, y_test = enc(real[target]), enc(both[target]), enc(test[target])
    classes = sorted(set(np.unique(y_test)))
    names = {i: v for v, i in labels.items()}

    def scores(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        if len(np.unique(y)) < 2:
            predicted = np.full(len(y_test), y[0])
        else:
            model = HistGradientBoostingClassifier(random_state=seed)
            predicted = model.fit(x, y).predict(x_test)
        recall = recall_score(y_test, predicted, labels=classes, average=None, zero_division=0)
        return {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "macro_f1": float(
                f1_score(y_test, predicted, labels=classes, average="macro", zero_division=0)
            ),
            "per_class_recall": {names[c]: float(r) for c, r in zip(classes, recall, strict=True)},
        }

    without, with_ = scores(x_real, y_real), scores(x_both, y_both)
    lift: dict[str, Any] = {
        "task": "classification",
        "accuracy": with_["accuracy"] - without["accuracy"],
        "macro_f1": with_["macro_f1"] - without["macro_f1"],
        "per_class_recall": {
            c: with_["per_class_recall"][c] - r for c, r in without["per_class_recall"].items()
        },
    }
    return lift, without, with_


def _regression_lift(frames: Frames, columns: list[str], target: str, seed: int) -> Lift:
    """R^2 on the holdout, with and without the synthetic rows."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.metrics import r2_score

    real, both, test = frames
    x_real, x_both, x_test = _features(list(frames), columns)

    def scores(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        model = HistGradientBoostingRegressor(random_state=seed)
        return {"r2": float(r2_score(test[target], model.fit(x, y).predict(x_test)))}

    without = scores(x_real, real[target].to_numpy(dtype=float))
    with_ = scores(x_both, both[target].to_numpy(dtype=float))
    return {"task": "regression", "r2": with_["r2"] - without["r2"]}, without, with_


def fairness(
    test: pd.DataFrame, y_true: np.ndarray, y_pred: np.ndarray, sensitive: list[str]
) -> dict[str, Any]:
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    out: dict[str, Any] = {}
    positive = int(np.bincount(y_true).argmin()) if len(np.unique(y_true)) == 2 else None
    for column in sensitive:
        groups = test[column].astype(str).fillna("<null>").to_numpy()
        if len(np.unique(groups)) < 2:
            out[column] = {"not_applicable": "only one group in the test data"}
            continue
        if positive is None:
            out[column] = {"not_applicable": "fairness metrics need a binary target"}
            continue
        yt, yp = (y_true == positive).astype(int), (y_pred == positive).astype(int)
        out[column] = {
            "demographic_parity_difference": float(
                demographic_parity_difference(yt, yp, sensitive_features=groups)
            ),
            "demographic_parity_ratio": float(
                demographic_parity_ratio(yt, yp, sensitive_features=groups)
            ),
            "equalized_odds_difference": float(
                equalized_odds_difference(yt, yp, sensitive_features=groups)
            ),
        }
    return out
