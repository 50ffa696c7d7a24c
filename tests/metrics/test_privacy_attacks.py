"""Privacy measured by attack: the membership-inference ensemble (``metrics.attacks``) and
Anonymeter's singling-out, linkability and inference risks (``metrics.anonymity``).

Known answers for the arithmetic; a planted memoriser (its training rows, exactly or with
tiny noise) found nearly every time and failing the gate; the quickstart's copula, fitted
on the same 275 penguins, at the attacks' chance level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synthfactory.metrics.card import _shown
from synthfactory.metrics.catalogue import meanings
from synthfactory.metrics.catalogue.tabular import RISKS
from synthfactory.metrics.evaluators.tabular import TabularEvaluator
from synthfactory.metrics.gates import evaluate
from synthfactory.metrics.privacy import anonymity, attacks
from synthfactory.metrics.privacy.anonymity import control_successes, result, wilson
from synthfactory.metrics.privacy.attacks import membership_attacks, tpr_at_fpr
from synthfactory.metrics.privacy.closeness import privacy_report
from synthfactory.metrics.tabular import holdout

from .manifests import manifest

ROOT = Path(__file__).resolve().parents[2]
PENGUINS = ROOT / "examples" / "data" / "penguins.csv"
GATE = {"privacy.mia.ensemble.tpr_at_1pct_fpr": "<= 0.1"}
RISKY_UNDER_NOISE = ("inference",)


# -- arithmetic -----------------------------------------------------------------------------
def test_tpr_at_fpr_by_hand() -> None:
    members = np.array([9.0, 8, 7, 3, 1])
    others = np.array([8.0, 5, 4, 2, 2, 1, 0, 0, 0, 0])
    # 10 non-members: at 10 % one may be exceeded, so the threshold is the second highest,
    # 5: members above it 9, 8, 7 -> 3/5. At 1 % (floor(0.1) = 0) none may be: above 8, the
    # highest, only 9 -> 1/5 (8 ties and does not count).
    assert tpr_at_fpr(members, others, 0.1) == pytest.approx(0.6)
    assert tpr_at_fpr(members, others, 0.01) == pytest.approx(0.2)
    assert tpr_at_fpr(members, others, 0.3) == pytest.approx(0.8)  # above 2: 9, 8, 7, 3
    # identical scores: nothing is found at any FPR below 1, AUC one half
    flat = attacks.scores_of(np.zeros(5), np.zeros(10))
    assert flat == {"auc": 0.5, "tpr_at_1pct_fpr": 0.0, "tpr_at_0_1pct_fpr": 0.0}


RISK_PATHS = tuple(f"privacy.{r}." for r in RISKS)


def test_wilson_rates_and_the_residual_risk_by_hand() -> None:
    # z = 1.96: 50 of 100 -> (50 + 1.9208) / 103.8415 = 0.5, error 1.96 / 103.8415 *
    # sqrt(25 + 0.9604) = 0.09617
    rate, error = wilson(100, 50)
    assert rate == pytest.approx(0.5) and error == pytest.approx(0.096170, abs=1e-5)
    # 0 of 100: not 0 but (1.9208) / 103.8415 = 0.018498
    assert wilson(100, 0)[0] == pytest.approx(0.018498, abs=1e-5)
    # attack 80/100, control 50/100: rates (80 + 1.9208)/103.8415 = 0.78891 and 0.5,
    # risk (0.78891 - 0.5) / 0.5 = 0.57782
    out = result(100, 80, 50, 10)
    assert out["attack_rate"] == pytest.approx(0.788906, abs=1e-5)
    assert out["risk"] == pytest.approx(0.577812, abs=1e-5)
    assert out["ci_low"] < out["risk"] < out["ci_high"]
    assert out["better_than_baseline"]
    # control as good as the attack: risk 0 (negative clipped), never above its CI
    assert result(100, 30, 60, 10)["risk"] == 0.0


def test_singling_out_control_rate_at_the_training_size_by_hand() -> None:
    # no match among 69 control rows: w ~ Beta(1, 70); E[275 w (1 - w)^274] =
    # 275 * 70 / (344 * 345) = 0.16220. One match among 1 row, at 1 row: 2/3.
    assert control_successes(np.array([0]), 69, 275) == pytest.approx(275 * 70 / (344 * 345))
    assert control_successes(np.array([1]), 1, 1) == pytest.approx(2 / 3)
    assert control_successes(np.array([0, 1]), 1, 1) == pytest.approx(1 / 3 + 2 / 3)


# -- planted failures and the quickstart ----------------------------------------------------
def penguins_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    real = pd.read_csv(PENGUINS)
    train, held = holdout.split(real, 0.2, seed=0)
    return real.iloc[train].reset_index(drop=True), real.iloc[held].reset_index(drop=True)


def memorised(train: pd.DataFrame, noise: float) -> pd.DataFrame:
    """Every training row 4 times, numbers moved by ``noise`` of their range."""
    rows = pd.concat([train] * 4, ignore_index=True)
    rng = np.random.default_rng(1)
    for c in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        span = float(train[c].max() - train[c].min())
        rows[c] = rows[c] + rng.normal(0, noise * span, len(rows))
    return rows


@pytest.mark.parametrize("noise", [0.0, 0.002])
def test_a_memoriser_is_found_and_fails_the_gate(noise: float) -> None:
    train, held = penguins_split()
    report = privacy_report(train, held, memorised(train, noise), seed=0)
    mia = report["mia"]
    assert mia["members"] == mia["non_members"] == 69
    assert mia["ensemble"]["tpr_at_1pct_fpr"] >= 0.9, mia
    assert mia["distance"]["tpr_at_1pct_fpr"] >= 0.9 and mia["ensemble"]["auc"] >= 0.95
    [gate] = evaluate(GATE, {"privacy": report})
    assert not gate["passed"]
    # reading a secret off the closest synthetic row works on near-copies too. Singling out
    # does not (a predicate "<= v" from a copy moved by noise misses the original half the
    # time, for each number in it), nor does linkability here: each row has 4 noisy copies,
    # and its two halves' closest synthetic rows are often different copies of it
    risks = ("singling_out", "linkability", "inference") if noise == 0 else RISKY_UNDER_NOISE
    for risk in risks:
        assert report[risk]["ci_low"] >= 0.5, (risk, report[risk])
    # every number the card explains is there, and every one is a declared metric name
    card_paths = [p for p in meanings("tabular") if p.startswith(("privacy.mia.", *RISK_PATHS))]
    assert len(card_paths) == 9  # the attacks' six and Anonymeter's three
    for path in card_paths:
        assert TabularEvaluator.knows(path)
        shown = _shown({"privacy": report}, path)
        assert shown is not None and not shown.startswith("n/a"), path
    if noise == 0:
        text = card_of({"modality": "tabular", "privacy": report})
        row = next(line for line in text.splitlines() if "mia.ensemble.tpr_at_1pct_fpr" in line)
        assert "1.0000" in row and "training rows" in row and "holdout rows" in row, row
        assert any("privacy.singling_out.risk" in line for line in text.splitlines())


def card_of(report: dict[str, object]) -> str:
    """The dataset card a tabular dataset with this report gets."""
    from synthfactory.metrics.card import render

    return render(manifest(), report, pd.DataFrame({"x": [1]}), [])


def test_the_quickstart_copula_stays_at_chance() -> None:
    """The quickstart's copula fitted on the 275 training penguins, 3000 rows: the attacks
    tell its 69 training penguins from the 69 held out no better than chance (AUC 0.5 with
    a standard error of ~0.05 at this size; at 1 % FPR with 69 non-members, the TPR at no
    false positive, ~1/70 by chance), and no Anonymeter risk is detectable (CI reaches 0)."""
    from synthfactory.column_detection import detect_types
    from synthfactory_workers.tabular.copula import GaussianCopula

    train, held = penguins_split()
    model = GaussianCopula(seed=0)
    model.fit(train, detect_types(train))
    report = privacy_report(train, held, model.sample(3000, seed=1), seed=0)
    mia = report["mia"]
    for name in attacks.ATTACKS:
        assert 0.35 <= mia[name]["auc"] <= 0.65, (name, mia[name])
        assert mia[name]["tpr_at_1pct_fpr"] <= 0.1, (name, mia[name])
    [gate] = evaluate(GATE, {"privacy": report})
    assert gate["passed"], gate
    for risk in ("singling_out", "linkability", "inference"):
        assert report[risk]["ci_low"] <= 0.05, (risk, report[risk])


def test_independent_rows_read_chance_on_every_attack() -> None:
    """Synthetic rows drawn from the population independently of the training rows: every
    attack at AUC ~0.5 and TPR ~FPR (600 + 600 rows: AUC's standard error ~0.017)."""
    rng = np.random.default_rng(0)

    def draw(n: int) -> pd.DataFrame:
        z = rng.normal(size=(n, 3))
        return pd.DataFrame(
            {"a": z[:, 0], "b": z[:, 0] + z[:, 1], "g": np.where(z[:, 2] > 0, "p", "q")}
        )

    mia = membership_attacks(draw(1500), draw(600), draw(2000), seed=0)
    assert mia["members"] == 600 and mia["fpr_resolution"] == pytest.approx(1 / 600)
    for name in attacks.ATTACKS:
        assert abs(mia[name]["auc"] - 0.5) < 0.06, (name, mia[name])
        assert mia[name]["tpr_at_1pct_fpr"] < 0.05, (name, mia[name])
    assert membership_attacks(draw(50), draw(3), draw(10))["not_applicable"]
    ids = pd.DataFrame({"id": [f"u{i}" for i in range(300)]})  # ids: no column to score
    train, held, synthetic = ids.iloc[:100], ids.iloc[100:200], ids.iloc[200:]
    assert "no column" in membership_attacks(train, held, synthetic)["not_applicable"]
    risks = anonymity.anonymity_report(train, held, synthetic)
    assert all("not_applicable" in risks[r] for r in anonymity.RISKS), risks


def test_the_new_names_are_gateable_and_a_typo_is_refused() -> None:
    from synthfactory.metrics.evaluators import unknown_gates

    gates = {
        "privacy.mia.ensemble.tpr_at_1pct_fpr": "<= 0.05",
        "privacy.mia.ensemble.auc": "<= 0.6",
        "privacy.mia.distance.tpr_at_0_1pct_fpr": "<= 0.01",
        "privacy.singling_out.risk": "<= 0.1",
        "privacy.linkability.ci_high": "<= 0.2",
        "privacy.inference.risk": "<= 0.2",
        "privacy.inference.columns.species.risk": "<= 0.2",
    }
    assert unknown_gates("tabular", gates) == []
    [message] = unknown_gates("tabular", {"privacy.mia.ensemble.tpr_at_1_fpr": "<= 0.05"})
    assert "did you mean 'privacy.mia.ensemble.tpr_at_1pct_fpr'?" in message


def test_a_memorising_job_fails_the_attack_gate_end_to_end(tmp_path: Path) -> None:
    """The planted `python` memoriser of test_holdout (it copies the training split of
    metrics.reference) through the generator contract and the tabular evaluator: the
    job's report holds the attacks and its gate on them fails."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "holdout_tests", Path(__file__).with_name("test_holdout.py")
    )
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    report, _ = helpers.run_locally(helpers.memoriser_job(tmp_path), tmp_path)
    privacy = report["privacy"]
    assert privacy["mia"]["non_members"] == 69
    assert privacy["mia"]["ensemble"]["tpr_at_1pct_fpr"] >= 0.9, privacy["mia"]
    gates = {**GATE, "privacy.singling_out.risk": "<= 0.2"}
    results = evaluate(gates, report)
    assert not any(r["passed"] for r in results), results
