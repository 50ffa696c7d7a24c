"""The dataset card (README.md, Hugging Face style) and its plots, written beside the data."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import yaml

from synthfactory.metrics.columns import NUMERIC, kind, numeric_values

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.dataset.manifest import Manifest

TABULAR_MEANINGS = {
    "quality.overall": "mean of column shapes and column pair trends (1 = same distributions)",
    "quality.column_shapes": "mean KSComplement/TVComplement: each column's marginal matches",
    "quality.column_pair_trends": "mean Correlation/ContingencySimilarity: pairs move together",
    "sequential.overall": "mean of the sequential scores below (sequential jobs)",
    "sequential.sequence_length_similarity": "1 - KS statistic of steps per entity",
    "sequential.column_shapes": "per-step column shapes (context columns once per entity)",
    "sequential.lag1_autocorrelation_similarity": "1 - |r_real - r_synthetic| / 2 of the "
    "within-entity lag-1 autocorrelation, mean over numeric step columns",
    "sequential.inter_event_time_similarity": "1 - KS statistic of the time between steps",
    "quality.detection.score": "1 - (2*AUC - 1) of a classifier telling real-train from synthetic",
    "privacy.split.holdout": "real rows held out of the fit (metrics.holdout), never seen by it",
    "privacy.exact_copy_rate": "share of synthetic rows identical to a training row (want 0)",
    "privacy.dcr_median": "median Gower distance from a synthetic row to its closest train row",
    "privacy.dcr_holdout_median": "median distance from a synthetic row to its closest holdout row",
    "privacy.dcr_ratio": "DCR synthetic->train over synthetic->holdout, equal sizes (~1 safe, "
    "<<1 copying)",
    "privacy.dcr_overfitting_protection": "SDMetrics: 2*(1 - share of synthetic rows closer to "
    "train than holdout), capped at 1 (1 safe)",
    "privacy.nndr_median": "nearest/second-nearest train distance, synthetic rows (0: singled out)",
    "privacy.membership_inference_auc": "distance attack, train vs holdout rows (0.5 safe, 1 bad)",
    "utility.score": "train-on-synthetic over train-on-real-train, both tested on the holdout",
    "utility.augmentation_lift.accuracy": "holdout accuracy gain from adding synthetic rows",
    "utility.augmentation_lift.macro_f1": "holdout macro F1 gain from adding synthetic rows",
    "utility.augmentation_lift.r2": "holdout R^2 gain from adding synthetic rows to real-train",
    "bias.max_share_change": "largest change of a sensitive group's share, source to output",
    "bias.demographic_parity_difference": "largest selection-rate gap between groups",
    "bias.equalized_odds_difference": "largest TPR/FPR gap between groups",
}
TEXT_MEANINGS = {
    "quality.chars_mean": "mean characters per text",
    "quality.words_mean": "mean words per text",
    "quality.completion_tokens_mean": "mean generated tokens per text",
    "quality.distinct_1": "unique words over all words (higher = more varied vocabulary)",
    "quality.distinct_2": "unique word pairs over all word pairs",
    "quality.exact_duplicate_rate": "share of texts identical to an earlier one",
    "quality.near_duplicate_rate": "share of sampled texts with MinHash Jaccard >= 0.7 to another",
    "quality.self_similarity": "mean MinHash Jaccard of random text pairs (lower = more diverse)",
    "quality.refusal_rate": "share of texts that refuse ('I can't help with that')",
    "quality.json_valid_rate": "share of texts that parsed as the requested JSON",
    "quality.embedding.diversity": "mean pairwise cosine distance of MiniLM embeddings",
    "quality.embedding.similarity_to_reference": "mean best cosine similarity to a reference",
    "quality.perplexity.mean": "mean perplexity under the reference LM (lower = more fluent)",
    "privacy.pii_email_rate": "share of texts containing an e-mail address",
    "privacy.pii_phone_rate": "share of texts containing a phone number",
    "privacy.verbatim_8gram_overlap_rate": "texts copying 8 words in a row from the source",
    "bias.counterfactual.sentiment_gap": "largest sentiment gap between groups on swapped prompts",
    "bias.counterfactual.refusal_gap": "largest refusal-rate gap between groups",
    "bias.counterfactual.length_ratio": "shortest over longest mean length by group (1 = equal)",
}
IMAGE_MEANINGS = {
    "quality.blank_rate": "share of images with (almost) no variation",
    "quality.near_duplicate_rate": "share of images within 4 bits (pHash) of an earlier one",
    "quality.brightness.mean": "mean grey level (0-255)",
    "quality.contrast.mean": "mean standard deviation of grey levels",
    "quality.sharpness.mean": "mean variance of the Laplacian (higher = sharper)",
    "quality.embedding.diversity": "mean pairwise cosine distance of image-encoder embeddings",
    "quality.embedding.similarity_to_reference": "mean best cosine similarity to a reference",
    "quality.embedding.frechet_distance": "Frechet distance to the reference images on the "
    "image encoder's features (FID only if that encoder is Inception-v3)",
    "quality.clip_score.mean": "mean CLIPScore of images vs their prompts: 100*max(cos, 0)",
}
MEANINGS = {"tabular": TABULAR_MEANINGS, "text": TEXT_MEANINGS, "image": IMAGE_MEANINGS}


def _shown(report: dict[str, Any], path: str) -> str | None:
    """A metric as the card shows it: the value, 'n/a: why', or None when absent."""
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        if "not_applicable" in node and part not in node:
            return f"n/a: {node['not_applicable']}"
        node = node.get(part)
    if isinstance(node, bool) or node is None:
        return None if node is None else str(node)
    if isinstance(node, float):
        return f"{node:.4f}"
    return str(node)


def plots(
    real: pd.DataFrame | None, synthetic: pd.DataFrame, max_columns: int = 12
) -> dict[str, bytes]:
    """PNG plots: per-column real vs synthetic distributions and correlation heatmaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out: dict[str, bytes] = {}
    columns = [c for c in synthetic.columns if kind(synthetic[c]) is not None][:max_columns]

    def save(fig: Any, name: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
        plt.close(fig)
        out[name] = buf.getvalue()

    for c in columns:
        fig, ax = plt.subplots(figsize=(4.5, 3))
        if kind(synthetic[c]) == NUMERIC:
            s = numeric_values(synthetic[c])
            r = numeric_values(real[c]) if real is not None and c in real else None
            values = s if r is None else np.concatenate([r.to_numpy(), s.to_numpy()])
            bins: Any = np.histogram_bin_edges(values, bins=30) if len(values) else 10
            if r is not None:
                ax.hist(r, bins=bins, density=True, alpha=0.5, label="real")
            ax.hist(s, bins=bins, density=True, alpha=0.5, label="synthetic")
        else:
            s = synthetic[c].astype(str).value_counts(normalize=True).head(15)
            frame = {"synthetic": s}
            if real is not None and c in real:
                frame["real"] = real[c].astype(str).value_counts(normalize=True)
            import pandas as pd

            pd.DataFrame(frame).reindex(s.index).fillna(0).plot.bar(ax=ax)
        ax.set_title(str(c))
        ax.legend()
        save(fig, f"plots/column_{_slug(c)}.png")
    numeric = [c for c in columns if kind(synthetic[c]) == NUMERIC]
    if len(numeric) >= 2:
        frames = [("synthetic", synthetic)] + ([("real", real)] if real is not None else [])
        fig, axes = plt.subplots(1, len(frames), figsize=(5 * len(frames), 4))
        for ax, (label, df) in zip(np.atleast_1d(axes), frames, strict=True):
            corr = df[numeric].apply(lambda c: numeric_values(c).reindex(c.index)).corr()
            image = ax.imshow(corr, vmin=-1, vmax=1, cmap="coolwarm")
            ax.set_xticks(range(len(numeric)), numeric, rotation=90)
            ax.set_yticks(range(len(numeric)), numeric)
            ax.set_title(f"{label} correlations")
        fig.colorbar(image, ax=axes)
        save(fig, "plots/correlation.png")
    return out


def text_plots(texts: list[str]) -> dict[str, bytes]:
    """A histogram of text lengths (words)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthfactory.metrics.text_quality import WORD

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist([len(WORD.findall(t)) for t in texts], bins=30)
    ax.set_xlabel("words per text")
    ax.set_ylabel("texts")
    ax.set_title(f"text lengths ({len(texts):,} texts)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return {"plots/text_lengths.png": buf.getvalue()}


def thumbnails(images: list[bytes], size: int = 64, columns: int = 8) -> dict[str, bytes]:
    """Sample images as one contact sheet."""
    from PIL import Image

    if not images:
        return {}
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * size, rows * size), "white")
    for i, data in enumerate(images):
        image = Image.open(io.BytesIO(data)).convert("RGB")
        image.thumbnail((size, size))
        sheet.paste(image, ((i % columns) * size, (i // columns) * size))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return {"plots/thumbnails.png": buf.getvalue()}


def _slug(name: object) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(name))[:60]


def render(
    manifest: Manifest, report: dict[str, Any] | None, sample: pd.DataFrame, plot_names: list[str]
) -> str:
    header = {
        "pretty_name": manifest.name,
        "size_categories": [_size(manifest.rows)],
        "tags": ["synthetic", manifest.modality, "synthfactory"],
        "configs": _configs(manifest),
    }
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False).strip(),
        "---",
        "",
        f"# {manifest.name}",
        "",
    ]
    if manifest.spec.get("description"):
        lines += [str(manifest.spec["description"]), ""]
    lines += [
        f"Synthetic **{manifest.modality}** dataset generated by synthfactory.",
        "",
        f"- status: **{manifest.status}**",
        f"- rows: {manifest.rows:,} in {len(manifest.shards)} Parquet shards "
        f"({manifest.rejected_rows:,} rejected rows kept under `rejected/`)",
        *(
            [
                f"- constraints: {int(manifest.stats['constraint_rejections']):,} of "
                f"{int(manifest.stats.get('candidates', 0)):,} candidate rows rejected"
            ]
            if "constraint_rejections" in manifest.stats
            else []
        ),
        *(
            [f"- dropped by the whole-dataset pass: {dropped}"]
            if (
                dropped := ", ".join(
                    f"{k.removeprefix('dropped_')} {int(v):,}"
                    for k, v in manifest.stats.items()
                    if k.startswith("dropped_") and v
                )
            )
            else []
        ),
        f"- generator: `{manifest.generator}`",
        f"- spec hash: `{manifest.spec_hash[:16]}`, master seed {manifest.seeds.get('master')}",
        f"- code: `{manifest.lineage.get('code_version')}`, created {manifest.created_at}",
        "",
    ]
    if report:
        lines += ["## Metrics", "", "| metric | value | meaning |", "| --- | --- | --- |"]
        for path, meaning in MEANINGS.get(manifest.modality, {}).items():
            shown = _shown(report, path)
            if shown is not None:
                lines.append(f"| `{path}` | {shown} | {meaning} |")
        lines.append("")
    if report:
        lines += pipeline_section(manifest, report)
    if manifest.privacy_budget:
        lines += privacy_section(manifest.privacy_budget)
    if manifest.gates:
        lines += ["## Gates", "", "| gate | value | result |", "| --- | --- | --- |"]
        for gate in manifest.gates:
            value = gate.get("value")
            shown = f"{value:.4f}" if isinstance(value, float) else gate.get("reason", "n/a")
            result = "pass" if gate["passed"] else "**FAIL**"
            lines.append(f"| `{gate['metric']} {gate['condition']}` | {shown} | {result} |")
        lines.append("")
    fields = _pipeline_fields(manifest)
    if len(sample) and fields:
        lines += ["## Sample rows", "", *_row_blocks(sample, fields)]
    elif len(sample):
        lines += ["## Sample rows", "", _markdown_table(sample), ""]
    if plot_names:
        lines += ["## Plots", ""] + [f"![{n}]({n})" for n in plot_names] + [""]
    lines += [
        "## Spec",
        "",
        "```yaml",
        yaml.safe_dump(manifest.spec, sort_keys=False).strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def privacy_section(budget: dict[str, Any]) -> list[str]:
    """The card's differential-privacy section: the budget and every mechanism's share."""
    lines = [
        "## Differential privacy",
        "",
        f"The model was fitted with (epsilon = {budget['epsilon']:.6g}, delta = "
        f"{budget['delta']:.3g})-differential privacy; {budget.get('composition', '')}; "
        f"neighbouring tables: {budget.get('neighbouring', 'replace one row')}.",
        "",
        "| statistic | mechanism | epsilon | delta | sensitivity | noise scale |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in budget.get("mechanisms", []):
        lines.append(
            f"| `{m['statistic']}` | {m['mechanism']} | {m['epsilon']:.6g} | {m['delta']:.3g} "
            f"| {m['sensitivity']:.6g} | {m['noise_scale']:.6g} |"
        )
    return [*lines, ""]


def _configs(manifest: Manifest) -> list[dict[str, Any]]:
    """Hugging Face dataset configs: one per table of a multi-table dataset (its folder
    ``data/<table>/``, the root table first and the default), else the data folder."""
    tables = list(getattr(manifest, "tables", None) or {})
    if not tables:
        return [{"config_name": "default", "data_files": "data/*.parquet"}]
    return [
        {
            "config_name": name,
            "data_files": f"data/{name}/*.parquet",
            **({"default": True} if i == 0 else {}),
        }
        for i, name in enumerate(tables)
    ]


def _size(rows: int) -> str:
    for limit, label in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if rows < limit:
            return label
    return "n>10M"


def _pipeline_columns(manifest: Manifest) -> list[dict[str, Any]]:
    generator = manifest.spec.get("generator") or {}
    columns = generator.get("columns") if isinstance(generator, dict) else None
    return [c for c in columns or [] if isinstance(c, dict)]


def _pipeline_fields(manifest: Manifest) -> list[str]:
    """A text pipeline's own columns, in order (lineage and bookkeeping left out); [] for
    other datasets."""
    from synthfactory.spec.columns import column_fields, parse_column

    out: list[str] = []
    for raw in _pipeline_columns(manifest):
        try:
            out += column_fields(parse_column(raw))
        except ValueError:  # a spec from another version: show its name at least
            out.append(str(raw.get("name")))
    return out


def _row_blocks(sample: pd.DataFrame, fields: list[str], rows: int = 3) -> list[str]:
    """Whole rows, one block each: every column of the pipeline with its value."""
    lines: list[str] = []
    shown = [f for f in fields if f in sample.columns]
    for n, (_, row) in enumerate(sample.head(rows).iterrows()):
        lines += [f"**Row {n + 1}**", ""]
        for name in shown:
            text = " ".join(str(row[name]).split())
            text = text[:400] + ("…" if len(text) > 400 else "")
            lines.append(f"- `{name}`: {text.replace('|', chr(92) + '|')}")
        lines.append("")
    return lines


def pipeline_section(manifest: Manifest, report: dict[str, Any]) -> list[str]:
    """A text pipeline's judge and validator numbers and its keep rate (the names gates
    use), or nothing for other datasets."""
    columns = _pipeline_columns(manifest)
    judges = [str(c["name"]) for c in columns if c.get("kind") == "llm_judge"]
    validators = [str(c["name"]) for c in columns if c.get("kind") == "validate"]
    if not columns:
        return []
    lines = ["## Pipeline", "", "| metric | value |", "| --- | --- |"]

    def row(path: str, value: Any) -> None:
        if isinstance(value, float):
            lines.append(f"| `{path}` | {value:.4f} |")
        elif value is not None:
            lines.append(f"| `{path}` | {value} |")

    for key, value in (report.get("pipeline") or {}).items():
        row(f"pipeline.{key}", value)
    for judge in judges:
        for criterion, numbers in (report.get(judge) or {}).items():
            if isinstance(numbers, dict):
                for key in ("mean", "mean_all", "scored", "kept_share"):
                    row(f"{judge}.{criterion}.{key}", numbers.get(key))
    for name in validators:
        for key, value in (report.get(name) or {}).items():
            row(f"{name}.{key}", value)
    return [*lines, ""] if len(lines) > 4 else []


def _markdown_table(df: pd.DataFrame) -> str:
    def cell(v: object) -> str:
        if isinstance(v, dict) and "bytes" in v:
            return "(image)"
        text = str(v).replace("|", "\\|").replace("\n", " ")
        return text[:60] + ("…" if len(text) > 60 else "")

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])
