"""The tabular metrics (``metrics.evaluators.tabular``): quality and detection
(``tabular.quality``, ``tabular.sharded``), the sequential scores (``sequential``), privacy
(``privacy``, ``attacks``, ``anonymity``), utility (``tabular.model_scores``), bias (``bias``) and
the multi-table scores (``relational``). The card shows them in this order."""

from __future__ import annotations

from synthfactory.metrics.catalogue import Metric, hidden, shown

SEQUENTIAL = "sequential jobs"
RELATIONAL = "relational jobs"
TARGET = "jobs with metrics.target_column"
SENSITIVE = "jobs with metrics.sensitive_columns"
CLASSIFICATION = "a categorical metrics.target_column"
REGRESSION = "a numeric metrics.target_column"

MIA_ATTACKS = ("distance", "density", "classifier", "ensemble")
"""The membership-inference attacks of ``attacks.membership_attacks``, the ensemble last."""
MIA_MEASURES = ("auc", "tpr_at_1pct_fpr", "tpr_at_0_1pct_fpr")
RISKS = ("singling_out", "linkability", "inference")
"""Anonymeter's three risks (``anonymity``)."""
RISK_MEASURES = ("risk", "ci_low", "ci_high", "attack_rate", "control_rate", "baseline_rate")

QUALITY = (
    shown(
        "quality.overall",
        "mean of column shapes and column pair trends (1 = same distributions)",
    ),
    shown(
        "quality.column_shapes",
        "mean KSComplement/TVComplement: each column's marginal matches",
    ),
    shown(
        "quality.column_pair_trends",
        "mean Correlation/ContingencySimilarity: pairs move together",
    ),
    hidden("quality.columns.*", "each column's shape score and metric", listed=False),
    hidden("quality.pairs.*", "each column pair's trend score and metric", listed=False),
    hidden("quality.pairs_sampled.*", "how many column pairs were scored, of how many"),
    hidden("quality.thresholds.*", "the cut-offs between categorical and free-text columns"),
    hidden("quality.rows.*", "rows compared, real and synthetic"),
)
SEQUENCES = (
    shown(
        "sequential.overall",
        "mean of the sequential scores below (sequential jobs)",
        when=SEQUENTIAL,
    ),
    shown(
        "sequential.sequence_length_similarity",
        "1 - KS statistic of steps per entity",
        when=SEQUENTIAL,
    ),
    shown(
        "sequential.column_shapes",
        "per-step column shapes (context columns once per entity)",
        when=SEQUENTIAL,
    ),
    hidden("sequential.columns.*", "each step column's shape", when=SEQUENTIAL),
    shown(
        "sequential.lag1_autocorrelation_similarity",
        "1 - |r_real - r_synthetic| / 2 of the within-entity lag-1 autocorrelation, mean over "
        "numeric step columns",
        when=SEQUENTIAL,
    ),
    hidden("sequential.lag1_autocorrelation.*", "each numeric step column's", when=SEQUENTIAL),
    shown(
        "sequential.inter_event_time_similarity",
        "1 - KS statistic of the time between steps",
        when=SEQUENTIAL,
    ),
    hidden("sequential.entities.*", "entities compared, real and synthetic", when=SEQUENTIAL),
    hidden("sequential.steps.*", "steps compared, real and synthetic", when=SEQUENTIAL),
)
DETECTION_METRICS = (
    hidden("quality.detection", "a gate on it reads its score", when="gates (its score)"),
    shown(
        "quality.detection.score",
        "1 - (2*AUC - 1) of a classifier telling real-train from synthetic",
    ),
    hidden("quality.detection.auc", "the classifier's AUC"),
    hidden("quality.detection.rows", "rows the classifier saw"),
)
DISTANCES = (
    shown(
        "privacy.split.holdout",
        "real rows held out of the fit (metrics.holdout), never seen by it",
    ),
    hidden("privacy.split.train", "real rows the fit saw"),
    hidden("privacy.split.fraction", "the share of real rows held out"),
    hidden("privacy.split.seed", "the split's seed"),
    shown(
        "privacy.exact_copy_rate",
        "share of synthetic rows identical to a training row (want 0)",
    ),
    shown(
        "privacy.dcr_median",
        "median Gower distance from a synthetic row to its closest train row",
    ),
    hidden("privacy.dcr_p05", "5th percentile of the same distances"),
    shown(
        "privacy.dcr_holdout_median",
        "median distance from a synthetic row to its closest holdout row",
    ),
    shown(
        "privacy.dcr_ratio",
        "DCR synthetic->train over synthetic->holdout, equal sizes (~1 safe, <<1 copying)",
    ),
    shown(
        "privacy.dcr_closer_to_train_share",
        "p: share of synthetic rows whose closest real row (train and holdout together) is a "
        "train row; ties count p0",
    ),
    shown(
        "privacy.dcr_closer_to_train_expected",
        "p0 = train/(train + holdout) rows compared: p when nothing was copied",
    ),
    shown(
        "privacy.dcr_overfitting_protection",
        "min(1, (1 - p)/(1 - p0)) with p and p0 above (1 safe, 0 always closer to train); "
        "SDMetrics' min(1, 2*(1 - p)) when p0 = 1/2",
    ),
    shown(
        "privacy.nndr_median",
        "nearest/second-nearest train distance, synthetic rows (0: singled out)",
    ),
    hidden("privacy.sample.*", "rows the distance metrics compared"),
    shown(
        "privacy.membership_inference_auc",
        "distance attack, train vs holdout rows (0.5 safe, 1 bad)",
    ),
    hidden("privacy.membership_inference.*", "the distance attack's details"),
)
MEMBERSHIP_SHOWN = (
    shown(
        "privacy.mia.ensemble.auc",
        "membership-inference ensemble, train (members) vs holdout (non-members) rows, scored "
        "against the synthetic rows (0.5 = chance, 1 = every member found)",
    ),
    shown(
        "privacy.mia.ensemble.tpr_at_1pct_fpr",
        "share of training rows the ensemble finds while taking at most 1 % of holdout rows "
        "for members (chance 0.01, 1 = all found)",
    ),
    shown(
        "privacy.mia.ensemble.tpr_at_0_1pct_fpr",
        "the same at 0.1 % of holdout rows (chance 0.001)",
    ),
    shown(
        "privacy.mia.distance.tpr_at_1pct_fpr",
        "distance attack: closest synthetic row over closest reference (holdout) row, train "
        "vs holdout rows, at 1 % FPR",
    ),
    shown(
        "privacy.mia.density.tpr_at_1pct_fpr",
        "density-ratio attack (DOMIAS: synthetic over holdout kernel density), train vs "
        "holdout rows, at 1 % FPR",
    ),
    shown(
        "privacy.mia.classifier.tpr_at_1pct_fpr",
        "classifier attack (synthetic vs holdout rows), train vs holdout rows, at 1 % FPR",
    ),
)
MEMBERSHIP = (
    *MEMBERSHIP_SHOWN,
    *(
        hidden(name)
        for name in (f"privacy.mia.{a}.{m}" for a in MIA_ATTACKS for m in MIA_MEASURES)
        if name not in {m.name for m in MEMBERSHIP_SHOWN}
    ),
    hidden("privacy.mia.members", "train rows attacked"),
    hidden("privacy.mia.non_members", "holdout rows attacked"),
    hidden("privacy.mia.synthetic", "synthetic rows the attacks read"),
    hidden("privacy.mia.fpr_resolution", "the smallest false-positive rate the holdout resolves"),
    hidden("privacy.mia.seed", "the attacks' seed"),
    hidden("privacy.mia.chance.*", "each measure's value for an attack that guesses"),
)
ANONYMITY = (
    shown(
        "privacy.singling_out.risk",
        "anonymeter singling-out risk: predicates from synthetic rows that isolate one train "
        "row beyond one holdout row (0 safe, 1 every one)",
    ),
    shown(
        "privacy.linkability.risk",
        "anonymeter linkability risk: train rows whose two column halves lead to the same "
        "synthetic row, beyond holdout rows (0 safe)",
    ),
    shown(
        "privacy.inference.risk",
        "anonymeter inference risk, worst column: secrets read off the closest synthetic row, "
        "right for train rows beyond holdout rows (0 safe)",
    ),
    *(
        hidden(f"privacy.{r}.{m}")
        for r in RISKS
        for m in (*RISK_MEASURES, "attacks", "successes.*")
        if m != "risk"
    ),
    hidden("privacy.inference.columns.*", "each secret column's inference risk"),
)
UTILITY = (
    shown(
        "utility.score",
        "train-on-synthetic over train-on-real-train, both tested on the holdout",
        when=TARGET,
    ),
    hidden(
        "utility.train_synthetic_test_real",
        "holdout score of a model fitted on synthetic rows",
        when=TARGET,
    ),
    hidden(
        "utility.train_real_test_real",
        "holdout score of a model fitted on real-train rows",
        when=TARGET,
    ),
    hidden("utility.fairness.*", "the utility models' fairness by sensitive group", when=SENSITIVE),
    shown(
        "utility.augmentation_lift.accuracy",
        "holdout accuracy gain from adding synthetic rows",
        when=CLASSIFICATION,
    ),
    shown(
        "utility.augmentation_lift.macro_f1",
        "holdout macro F1 gain from adding synthetic rows",
        when=CLASSIFICATION,
    ),
    shown(
        "utility.augmentation_lift.r2",
        "holdout R^2 gain from adding synthetic rows to real-train",
        when=REGRESSION,
    ),
    hidden("utility.augmentation_lift.per_class_recall.*", when=CLASSIFICATION),
    hidden("utility.augmentation_lift.real_only.*", when=TARGET),
    hidden("utility.augmentation_lift.real_plus_synthetic.*", when=TARGET),
    hidden("utility.augmentation_lift.rows.*", when=TARGET),
)
BIAS = (
    shown(
        "bias.max_share_change",
        "largest change of a sensitive group's share, source to output",
        when=SENSITIVE,
    ),
    shown(
        "bias.demographic_parity_difference",
        "largest selection-rate gap between groups",
        when=TARGET + " and metrics.sensitive_columns",
    ),
    hidden("bias.demographic_parity_ratio", when=TARGET + " and metrics.sensitive_columns"),
    shown(
        "bias.equalized_odds_difference",
        "largest TPR/FPR gap between groups",
        when=TARGET + " and metrics.sensitive_columns",
    ),
    hidden(
        "bias.representation.*", "each sensitive group's share, source and output", when=SENSITIVE
    ),
    hidden("bias.fairness.*", when=TARGET + " and metrics.sensitive_columns"),
)
ROWS = (
    hidden("rows_scored", "rows the exact metrics read (every row)"),
    hidden("rows_sampled", "rows of the seeded sample the other metrics read"),
)
TABLES = (
    *(
        hidden(f"tables.*.quality.{part}", when=RELATIONAL)
        for part in (
            "overall",
            "column_shapes",
            "column_pair_trends",
            "columns.*",
            "pairs.*",
            "pairs_sampled.*",
            "thresholds.*",
            "rows.*",
        )
    ),
    hidden("tables.*.rows", when=RELATIONAL + " and " + SEQUENTIAL),
    hidden("tables.*.rows_scored", when=RELATIONAL + " and " + SEQUENTIAL),
    hidden("relationships.*.cardinality_shape_similarity", when=RELATIONAL),
    hidden("relationships.*.referential_integrity", when=RELATIONAL),
    hidden("relationships.*.intertable_trends", when=RELATIONAL),
    hidden("relationships.*.intertable_pairs.*", when=RELATIONAL),
    hidden("quality.cardinality", when=RELATIONAL),
    hidden("quality.intertable_trends", when=RELATIONAL),
    hidden("relationships.*.children_per_parent.*", when=RELATIONAL),
)

METRICS: tuple[Metric, ...] = (
    *QUALITY,
    *SEQUENCES,
    *DETECTION_METRICS,
    *DISTANCES,
    *MEMBERSHIP,
    *ANONYMITY,
    *UTILITY,
    *BIAS,
    *ROWS,
    *TABLES,
)
