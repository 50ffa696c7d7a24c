"""Singling-out, linkability and inference risks: the three criteria of anonymisation under
the GDPR (Article 29 Working Party, Opinion 05/2014), measured by attack as in Anonymeter
(Giomi et al., "A Unified Framework for Quantifying Privacy Risk in Synthetic Data", PoPETs
2023). Written here from the paper rather than depending on the ``anonymeter`` package
(Clear BSD, fine licence-wise): anonymeter 1.1.0 requires numpy<1.27 (we run numpy 2),
numba~=0.59, polars and pyarrow<22, and would recompute distances we already have
(``privacy.Encoder``, Gower); the whole method is the few functions below.

Each attack uses only the synthetic rows. It is run against target rows (training rows the
synthesizer saw) and against control rows (holdout rows it never saw), and a baseline
attacker guesses at random:

- success rates: n_success / n_attacks with Wilson's score interval, as the paper does
  (``rate = (k + z^2/2) / (n + z^2)``, error ``z / (n + z^2) sqrt(k (n - k) / n + z^2/4)``).
- risk = (attack - control) / (1 - control), clipped to [0, 1]: what the synthetic rows
  tell about the rows they were trained on beyond what they tell about anyone from the
  same population (the control attack is the paper's baseline for the risk; the random
  attacker only checks that the attack works: ``better_than_baseline``). Its confidence
  interval propagates both rates' errors. 0 = no more risk than for strangers, 1 = every
  attack on a training row succeeds where none on a stranger does.

Attacks (``attacks`` target rows and as many control rows, seeded):

- singling out: predicates built from one synthetic row on ``predicate_columns`` random
  columns (``==`` for categories, ``<=`` or ``>=`` its value for numbers, at random) that
  match exactly one synthetic row; success when it matches exactly one target (control)
  row (every training row, or a seeded sample of ``sample``). Random baseline: the same
  predicates with each value drawn from the column's synthetic values. The holdout is
  smaller than the training rows, and a predicate singles out one row of a small set more
  easily than of a large one: as the paper corrects for it, the control rate is the
  expected success at the training rows' size, from each predicate's matches among the
  holdout rows (a Beta posterior of its match probability; ``control_successes``).
- linkability: the columns in two seeded halves, A and B; success when a row's closest
  synthetic row on A is its closest on B (distinct synthetic rows; Gower distance).
  Baseline: two random synthetic rows coincide.
- inference: for each secret column (up to ``MAX_SECRETS``, seeded), the attacker reads it
  off the synthetic row closest on every other column; success when it equals the secret
  (numbers: within 5 % of it). Baseline: a random synthetic row's value. The headline is
  the column with the highest risk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.metrics.catalogue.tabular import RISKS
from synthfactory.metrics.privacy.distance import Encoder, gower_sums, sample_rows

if TYPE_CHECKING:
    import pandas as pd

CONFIDENCE = 0.95
MAX_ATTACKS = 500
MAX_SECRETS = 8
PREDICATE_COLUMNS = 3
#: a guessed number within this share of the secret counts as right
TOLERANCE = 0.05


def wilson(n: int, k: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(rate, error) of k successes in n attacks, Wilson's score interval."""
    from scipy.stats import norm

    z = float(norm.ppf(0.5 * (1 + confidence)))
    denominator = n + z * z
    rate = (k + 0.5 * z * z) / denominator
    error = z / denominator * np.sqrt(k * (n - k) / n + 0.25 * z * z)
    return float(rate), float(error)


def result(
    n: int, success: int, control: float, baseline: int, confidence: float = CONFIDENCE
) -> dict[str, Any]:
    """The risk (module docstring) from the three attacks' success counts."""
    attack, a_err = wilson(n, success, confidence)
    ctrl, c_err = wilson(n, control, confidence)
    base, _ = wilson(n, baseline, confidence)
    risk = (attack - ctrl) / (1 - ctrl)
    error = float(np.hypot(a_err / (1 - ctrl), c_err * (1 - attack) / (1 - ctrl) ** 2))

    def clip(v: float) -> float:
        return float(min(max(v, 0.0), 1.0))

    return {
        "risk": clip(risk),
        "ci_low": clip(risk - error),
        "ci_high": clip(risk + error),
        "attack_rate": attack,
        "control_rate": ctrl,
        "baseline_rate": base,
        "attacks": n,
        "successes": {"target": success, "control": control, "baseline": baseline},
        "better_than_baseline": attack > base,
    }


# -- singling out ---------------------------------------------------------------------------
Predicate = list[tuple[int, str, Any]]  # (column position, op, value)


def _matches(values: list[np.ndarray], predicate: Predicate) -> np.ndarray:
    mask = np.ones(len(values[0]), dtype=bool)
    for j, op, v in predicate:
        column = values[j]
        if op == "isnull":
            mask &= np.isnan(column)
        elif op == "==":
            mask &= column == v
        elif op == "<=":
            mask &= column <= v
        else:
            mask &= column >= v
    return mask


def _columns(df: pd.DataFrame, enc: Encoder) -> tuple[list[str], list[np.ndarray], list[bool]]:
    """Scored columns, their values and which are numeric: numbers as floats (NaN for
    nulls), categories as the encoder's integer codes (null has a code of its own, a value
    the real rows never hold is -1), so that comparing them is fast."""
    from synthfactory.metrics.tabular.sdtypes import as_float

    names = [c for c, _, _ in enc.numeric] + [c for c, _ in enc.categorical]
    numeric = [True] * len(enc.numeric) + [False] * len(enc.categorical)
    codes = enc.encode(df)[1]
    values = [as_float(df[c]).to_numpy() for c, _, _ in enc.numeric]
    values += [codes[:, j] for j in range(codes.shape[1])]
    return names, values, numeric


def _predicate(
    row: int, values: list[np.ndarray], numeric: list[bool], k: int, rng: np.random.Generator
) -> Predicate:
    out: Predicate = []
    for j in rng.choice(len(values), size=min(k, len(values)), replace=False):
        v = values[j][row]
        if not numeric[j]:
            out.append((int(j), "==", int(v)))
        elif np.isnan(v):
            out.append((int(j), "isnull", None))
        else:
            out.append((int(j), "<=" if rng.random() < 0.5 else ">=", float(v)))
    return out


def control_successes(matched: np.ndarray, size: int, at: int) -> float:
    """Expected number of predicates that single out one row of ``at`` rows, from each
    predicate's match count in ``size`` control rows: its match probability w has the
    posterior Beta(m + 1, size - m + 1) (uniform prior), and E[at w (1 - w)^(at - 1)] is
    ``at B(m + 2, size - m + at) / B(m + 1, size - m + 1)``."""
    from scipy.special import betaln

    m = matched.astype(float)
    log_p = np.log(at) + betaln(m + 2, size - m + at) - betaln(m + 1, size - m + 1)
    return float(np.exp(log_p).sum())


def singling_out(
    targets: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    enc: Encoder,
    rng: np.random.Generator,
    attacks: int = MAX_ATTACKS,
    k: int = PREDICATE_COLUMNS,
) -> dict[str, Any]:
    """Predicates from distinct synthetic rows; target success: exactly one of the
    ``targets`` (every training row sampled); control: the expected success at the targets'
    size from each predicate's matches among the control rows (``control_successes``)."""
    synthetic = synthetic.drop_duplicates(ignore_index=True)
    _, syn, numeric = _columns(synthetic, enc)
    _, tgt, _ = _columns(targets, enc)
    _, ctl, _ = _columns(control, enc)
    found: list[Predicate] = []
    seen: set[str] = set()
    for _ in range(20 * attacks):
        if len(found) == attacks:
            break
        predicate = _predicate(int(rng.integers(len(synthetic))), syn, numeric, k, rng)
        key = repr(sorted(predicate, key=lambda p: p[0]))
        if key not in seen and _matches(syn, predicate).sum() == 1:
            seen.add(key)
            found.append(predicate)
    if not found:
        return {"not_applicable": "no predicate singles out one synthetic row"}
    baseline = [
        [(j, op, _random_value(syn[j], rng) if op != "isnull" else None) for j, op, _ in p]
        for p in found
    ]
    matched = np.array([_matches(ctl, p).sum() for p in found])
    return result(
        len(found),
        sum(int(_matches(tgt, p).sum() == 1) for p in found),
        control_successes(matched, len(control), len(targets)),
        sum(int(_matches(tgt, p).sum() == 1) for p in baseline),
    )


def _random_value(column: np.ndarray, rng: np.random.Generator) -> Any:
    present = column[~np.isnan(column)] if column.dtype.kind == "f" else column
    return present[rng.integers(len(present))] if len(present) else np.nan


# -- nearest synthetic rows on some columns -------------------------------------------------
def nearest(
    query: tuple[np.ndarray, np.ndarray],
    ref: tuple[np.ndarray, np.ndarray],
    keep: tuple[np.ndarray, np.ndarray],
    chunk: int = 256,
) -> np.ndarray:
    """Index of each query row's closest reference row by Gower distance over the kept
    numeric and categorical columns (boolean masks), ties to the first."""
    kept_query = (query[0][:, keep[0]], query[1][:, keep[1]])
    kept_ref = (ref[0][:, keep[0]], ref[1][:, keep[1]])
    out = np.empty(len(kept_query[0]), dtype=np.int64)
    for start, d in gower_sums(kept_query, kept_ref, chunk):
        out[start : start + len(d)] = d.argmin(axis=1)
    return out


def linkability(
    targets: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    enc: Encoder,
    rng: np.random.Generator,
) -> dict[str, Any]:
    width = len(enc.numeric) + len(enc.categorical)
    if width < 2:
        return {"not_applicable": "linkability needs two columns or more"}
    synthetic = synthetic.drop_duplicates(ignore_index=True)
    half = np.zeros(width, dtype=bool)
    half[rng.permutation(width)[: width // 2]] = True
    p = len(enc.numeric)
    a_keep, b_keep = (half[:p], half[p:]), (~half[:p], ~half[p:])
    syn = enc.encode(synthetic)

    def links(frame: pd.DataFrame) -> int:
        rows = enc.encode(frame)
        return int((nearest(rows, syn, a_keep) == nearest(rows, syn, b_keep)).sum())

    n = len(targets)
    guesses = rng.integers(len(synthetic), size=(2, n))
    return result(n, links(targets), links(control), int((guesses[0] == guesses[1]).sum()))


def _right(guess: np.ndarray, secret: np.ndarray, numeric: bool) -> np.ndarray:
    """Whether each guess is the secret: the same category code (null is a code), or a
    number within ``TOLERANCE`` of it (both missing counts as right)."""
    if not numeric:
        return np.asarray(guess == secret)
    close = np.abs(guess - secret) <= TOLERANCE * np.maximum(np.abs(secret), 1e-12)
    return np.asarray(close | (np.isnan(guess) & np.isnan(secret)))


def inference(
    targets: pd.DataFrame,
    control: pd.DataFrame,
    synthetic: pd.DataFrame,
    enc: Encoder,
    rng: np.random.Generator,
) -> dict[str, Any]:
    names, syn_values, numeric = _columns(synthetic, enc)
    if len(names) < 2:
        return {"not_applicable": "inference needs two columns or more"}
    p = len(enc.numeric)
    syn = enc.encode(synthetic)
    columns: dict[str, Any] = {}
    for j in sorted(rng.permutation(len(names))[:MAX_SECRETS]):
        keep = np.ones(len(names), dtype=bool)
        keep[j] = False
        counts = []
        for frame in (targets, control):
            guess = syn_values[j][nearest(enc.encode(frame), syn, (keep[:p], keep[p:]))]
            counts.append(int(_right(guess, _columns(frame, enc)[1][j], numeric[j]).sum()))
        random_rows = rng.integers(len(synthetic), size=len(targets))
        secrets = _columns(targets, enc)[1][j]
        base = int(_right(syn_values[j][random_rows], secrets, numeric[j]).sum())
        columns[names[j]] = result(len(targets), counts[0], counts[1], base)
    worst = max(columns, key=lambda c: (columns[c]["risk"], columns[c]["attack_rate"]))
    return {**columns[worst], "secret": worst, "columns": columns}


def anonymity_report(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    encoder: Encoder | None = None,
    attacks: int = MAX_ATTACKS,
    sample: int = 5000,
    seed: int = 0,
) -> dict[str, Any]:
    """The three risks (module docstring): ``attacks`` training rows as targets, as many
    holdout rows as control, up to ``sample`` synthetic rows, all seeded."""
    import pandas as pd

    n = min(len(train), len(holdout), attacks)
    if n < 1 or not len(synthetic):
        reason = "needs training rows, holdout rows and synthetic rows"
        return {r: {"not_applicable": reason} for r in RISKS}
    rng = np.random.default_rng([seed, 3])
    train, holdout, synthetic = (f.reset_index(drop=True) for f in (train, holdout, synthetic))
    enc = encoder or Encoder(pd.concat([train, holdout], ignore_index=True))
    if not enc.width:
        reason = "no column to attack with (ids, free text and blobs only)"
        return {r: {"not_applicable": reason} for r in RISKS}
    targets = sample_rows(train, n, rng).reset_index(drop=True)
    control = sample_rows(holdout, n, rng).reset_index(drop=True)
    syn = sample_rows(synthetic, sample, rng).reset_index(drop=True)
    every = sample_rows(train, sample, rng).reset_index(drop=True)
    held = sample_rows(holdout, sample, rng).reset_index(drop=True)
    out = {
        "singling_out": singling_out(every, held, syn, enc, rng, attacks),
        "linkability": linkability(targets, control, syn, enc, rng),
        "inference": inference(targets, control, syn, enc, rng),
    }
    compared = "train rows (targets) vs holdout rows (control), attacked with synthetic rows"
    for part in out.values():
        part["compared"] = compared
    return out
