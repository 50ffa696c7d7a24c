"""Membership inference by attack: can an attacker holding the synthetic rows (and real rows
from the same population that were never trained on) tell which real rows the synthesizer
was trained on? Reported, as Synth-MIA and the MIDST challenge (SaTML 2025) do, as the ROC
AUC and the true-positive rate at a low false-positive rate (1 % and 0.1 %), per attack and
for their ensemble.

Rows compared: members are a seeded sample of the training rows, non-members an equal-size
seeded sample of the holdout (``metrics.holdout``: split off before the fit, never seen by
it). The attacks also need real rows from the population to compare the synthetic rows
with (the reference): the holdout is cut in two halves and each half's non-members (and an
equal share of the members) are scored against the other half as reference, so no row is
ever its own reference (two-fold cross-fitting; members and non-members are scored alike).

Attacks (a higher score says "member"):

- distance: the distance to the closest synthetic row, normalised by the distance to the
  closest reference row, ``d_ref / (d_syn + d_ref)`` (Gower distances; a row far from
  everything is not taken for a member). A copied row scores 1.
- density: the DOMIAS density ratio (van Breugel et al., 2023), ``log p_syn(x) -
  log p_ref(x)``, Gaussian kernel density estimates on the rows' encoding (numbers scaled
  to [0, 1], categories one-hot), each with its own bandwidth: the median distance from
  one of its rows to the closest other (a reference of a few hundred rows is smoothed
  more than thousands of synthetic rows, else its density is noise).
- classifier: a LOGAN-style attack (Hayes et al., 2019): a random forest trained to tell
  synthetic rows (1) from reference rows (0), classes weighted equally; the score is its
  probability of "synthetic".
- ensemble: on one fold's labelled members and non-members, the best of the three attacks
  and a logistic regression over all three (scores as ``-log(1 - rank / n)``, which
  stretches the top ranks) by TPR at 1 % FPR, then AUC; applied to the other fold. So it
  follows whichever attack works on the data at hand, at the low false-positive rates that
  matter, and never learns from the rows it scores.

Chance: an attack that learns nothing has AUC 0.5 and TPR = FPR (0.01 at 1 % FPR). TPR at
FPR ``a`` is the share of members scored above a threshold that at most ``floor(a * n)`` of
the n non-members exceed; below ``1 / n`` (``fpr_resolution``) it is the TPR at no false
positive at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.catalogue.tabular import MIA_ATTACKS
from synthfactory.metrics.privacy.distance import Encoder, auc, nearest_two, sample_rows

if TYPE_CHECKING:
    import pandas as pd

ATTACKS = MIA_ATTACKS  # their names are declared in the catalogue
#: reported TPRs and the false-positive rate each is read at
FPRS = {"tpr_at_1pct_fpr": 0.01, "tpr_at_0_1pct_fpr": 0.001}
MEASURES = ("auc", *FPRS)
#: members (and non-members) scored at most, each side
MAX_TARGETS = 2000


def tpr_at_fpr(members: np.ndarray, others: np.ndarray, fpr: float) -> float:
    """The share of members scored above the highest threshold that at most
    ``floor(fpr * len(others))`` non-members exceed (ties never count as found)."""
    allowed = int(np.floor(fpr * len(others) + 1e-9))
    ranked = np.sort(others)[::-1]
    threshold = ranked[allowed] if allowed < len(ranked) else -np.inf
    return float(np.mean(members > threshold))


def scores_of(members: np.ndarray, others: np.ndarray) -> dict[str, float]:
    out = {"auc": auc(members, others)}
    out.update({name: tpr_at_fpr(members, others, fpr) for name, fpr in FPRS.items()})
    return out


class Features:
    """Rows as vectors for the density and classifier attacks: numbers scaled to [0, 1]
    (missing: -1), categories one-hot over 1/sqrt(2) so a mismatch is 1 apart, as a number
    at the two ends of its range is."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.sizes = [len(m) for _, m in encoder.categorical]

    def __call__(self, df: pd.DataFrame) -> np.ndarray:
        num, cat = self.encoder.encode(df)
        blocks = [num]
        for j, size in enumerate(self.sizes):
            onehot = np.zeros((len(df), size + 1))  # the last: a category the fit never saw
            onehot[np.arange(len(df)), np.where(cat[:, j] < 0, size, cat[:, j])] = 1.0
            blocks.append(onehot / np.sqrt(2))
        return np.hstack(blocks) if blocks else np.zeros((len(df), 0))


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def bandwidth(data: np.ndarray, most: int = 2000) -> float:
    """A kernel's width for ``data``: the median distance from a row to its closest other
    row (on a seeded sample of at most ``most`` rows), never below 1e-3."""
    rows = data[np.random.default_rng(0).permutation(len(data))[:most]]
    if len(rows) < 2:
        return 1.0
    d = _sq_distances(rows, rows)
    np.fill_diagonal(d, np.inf)
    return max(float(np.median(np.sqrt(d.min(axis=1)))), 1e-3)


def log_kde(points: np.ndarray, data: np.ndarray, bandwidth: float, chunk: int = 512) -> np.ndarray:
    """log of the Gaussian kernel density of ``data`` at ``points`` (constants left out:
    they do not move a ratio's ranks)."""
    from scipy.special import logsumexp

    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        d = _sq_distances(points[start : start + chunk], data)
        out[start : start + chunk] = logsumexp(-d / (2 * bandwidth**2), axis=1)
    return out - np.log(len(data))


def _fold_scores(
    targets: pd.DataFrame, reference: pd.DataFrame, synthetic: pd.DataFrame, enc: Encoder, seed: int
) -> np.ndarray:
    """(len(targets), 3): the distance, density and classifier scores of ``targets``."""
    from sklearn.ensemble import RandomForestClassifier

    t_enc, r_enc, s_enc = enc.encode(targets), enc.encode(reference), enc.encode(synthetic)
    d_syn = nearest_two(t_enc, s_enc, enc.width)[:, 0]
    d_ref = nearest_two(t_enc, r_enc, enc.width)[:, 0]
    total = d_syn + d_ref
    distance = np.where(total > 0, d_ref / np.where(total > 0, total, 1.0), 0.5)
    features = Features(enc)
    t_x, r_x, s_x = features(targets), features(reference), features(synthetic)
    density = log_kde(t_x, s_x, bandwidth(s_x)) - log_kde(t_x, r_x, bandwidth(r_x))
    forest = RandomForestClassifier(
        n_estimators=50, class_weight="balanced", random_state=seed, n_jobs=1
    )
    forest.fit(np.vstack([s_x, r_x]), np.r_[np.ones(len(s_x)), np.zeros(len(r_x))])
    classifier = forest.predict_proba(t_x)[:, 1]
    return np.column_stack([distance, density, classifier])


def _ranks(scores: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    n = len(scores)
    return np.column_stack(
        [-np.log1p(-(rankdata(scores[:, j]) - 0.5) / n) for j in range(scores.shape[1])]
    )


def _merit(score: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """How well ``score`` finds the members (label 1): TPR at 1 % FPR, then AUC."""
    members, others = score[labels == 1], score[labels == 0]
    if not len(members) or not len(others):
        return (0.0, 0.0)
    return (tpr_at_fpr(members, others, FPRS["tpr_at_1pct_fpr"]), auc(members, others))


def _ensemble(ranks: np.ndarray, labels: np.ndarray, folds: np.ndarray, seed: int) -> np.ndarray:
    """Each fold's ensemble score, chosen on the other fold's labelled rows: among the three
    attacks and a logistic regression over all three, the one with the highest TPR at 1 %
    FPR there (then AUC); as a rank within the fold, so that both folds pool."""
    from scipy.stats import rankdata
    from sklearn.linear_model import LogisticRegression

    out = np.empty(len(ranks))
    for f in (0, 1):
        fit, use = folds != f, folds == f
        candidates = [ranks[:, j] for j in range(ranks.shape[1])]
        if len(np.unique(labels[fit])) == 2:
            model = LogisticRegression(random_state=seed).fit(ranks[fit], labels[fit])
            candidates.append(model.decision_function(ranks))
        best = max(candidates, key=lambda score: _merit(score[fit], labels[fit]))
        out[use] = rankdata(best[use]) / int(use.sum())
    return out


def membership_attacks(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    encoder: Encoder | None = None,
    sample: int = 5000,
    targets: int = MAX_TARGETS,
    seed: int = 0,
) -> dict[str, Any]:
    """AUC and TPR at 1 % and 0.1 % FPR of each attack and the ensemble (module docstring).
    Members: training rows; non-members: holdout rows; up to ``targets`` of each, and up
    to ``sample`` synthetic rows, seeded."""
    import pandas as pd

    rng = np.random.default_rng([seed, 2])
    n = min(len(train), len(holdout), targets)
    if n < 4 or not len(synthetic):
        return {"not_applicable": "needs 4 training rows, 4 holdout rows and synthetic rows"}
    train, holdout, synthetic = (f.reset_index(drop=True) for f in (train, holdout, synthetic))
    enc = encoder or Encoder(pd.concat([train, holdout], ignore_index=True))
    if not enc.width:
        return {"not_applicable": "no column to attack with (ids, free text and blobs only)"}
    members = sample_rows(train, n, rng).reset_index(drop=True)
    # non-members: n holdout rows, in two folds; each fold is scored against the other
    # fold as reference (two-fold cross-fitting), members likewise
    others = sample_rows(holdout, n, rng).reset_index(drop=True)
    syn = sample_rows(synthetic, sample, rng).reset_index(drop=True)
    folds = np.r_[rng.permutation(np.arange(n) % 2), rng.permutation(np.arange(n) % 2)]
    both = pd.concat([members, others], ignore_index=True)
    labels = np.r_[np.ones(n), np.zeros(n)]
    scores = np.empty((2 * n, 3))
    for f in (0, 1):
        reference = others[folds[n:] != f]
        scores[folds == f] = _fold_scores(both[folds == f], reference, syn, enc, seed)
    ensemble = _ensemble(_ranks(scores), labels, folds, seed)
    report: dict[str, Any] = {}
    for j, name in enumerate(ATTACKS):
        column = ensemble if name == "ensemble" else scores[:, j]
        report[name] = scores_of(column[:n], column[n:])
    report.update(
        members=n,
        non_members=n,
        synthetic=len(syn),
        fpr_resolution=1.0 / n,
        chance={"auc": 0.5, **FPRS},
        compared="train rows (members) vs holdout rows (non-members), scored against the "
        "synthetic rows; reference rows: the other half of the holdout",
        seed=seed,
    )
    return report
