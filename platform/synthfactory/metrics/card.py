"""The dataset card (README.md, Hugging Face style) and its plots, written beside the data."""

from __future__ import annotations

import io
import logging
import math
from typing import TYPE_CHECKING, Any

import yaml

from synthfactory.metrics import anonymity, attacks
from synthfactory.metrics.columns import NUMERIC, as_float, kind, numeric_values

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
    "privacy.dcr_closer_to_train_share": "p: share of synthetic rows whose closest real row "
    "(train and holdout together) is a train row; ties count p0",
    "privacy.dcr_closer_to_train_expected": "p0 = train/(train + holdout) rows compared: p "
    "when nothing was copied",
    "privacy.dcr_overfitting_protection": "min(1, (1 - p)/(1 - p0)) with p and p0 above (1 "
    "safe, 0 always closer to train); SDMetrics' min(1, 2*(1 - p)) when p0 = 1/2",
    "privacy.nndr_median": "nearest/second-nearest train distance, synthetic rows (0: singled out)",
    "privacy.membership_inference_auc": "distance attack, train vs holdout rows (0.5 safe, 1 bad)",
    **attacks.MEANINGS,  # the membership-inference ensemble, by attack
    **anonymity.MEANINGS,  # singling out, linkability, inference (Anonymeter)
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


#: One colour per role on every chart of every card: the real (reference) rows and the
#: synthetic rows never swap colours, and an output that holds source rows too (written with
#: ``augment.combined``) has its own colour and name, never "synthetic".
COLOURS = {"real": "#1f77b4", "synthetic": "#ff7f0e", "output": "#2ca02c"}
LABELS = {
    "real": "real",
    "synthetic": "synthetic",
    "output": "output (source + synthetic rows)",
}
SAMPLE_IMAGES = "plots/sample/"
"""Where the sample rows' images go (linked from the card's sample tables, not listed under
Plots)."""
THUMBNAIL = 64
"""Edge, in pixels, of a card thumbnail: smaller images are enlarged to it (nearest
neighbour, so a 16x16 digit stays crisp), larger ones shrunk."""
HEATMAP_COLUMNS = 12
NULL = "(null)"

log = logging.getLogger(__name__)


def cell(value: object, limit: int | None = None) -> str:
    """``value`` as one markdown table cell: whitespace (line breaks included) folded to single
    spaces, backslashes and ``|`` escaped so the cell never ends early; cut at ``limit``."""
    text = " ".join(str(value).split())
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _table_row(*cells: object) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def _code(name: object) -> str:
    return f"`{name}`"


def _number(value: Any) -> str:
    """A number as the card shows it: 4 decimals for floats, 'n/a' for None or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _shown(report: dict[str, Any], path: str) -> str | None:
    """A metric as the card shows it: the value, 'n/a' (with why, when the report says) for a
    metric that is there but could not be computed, or None when absent."""
    node: Any = report
    reason: Any = None
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        if "not_applicable" in node:
            reason = node["not_applicable"]
            if part not in node:
                return f"n/a: {reason}"
        if part not in node:
            return None
        node = node[part]
    if isinstance(node, dict):
        return f"n/a: {node['not_applicable']}" if "not_applicable" in node else None
    if node is None or (isinstance(node, float) and not math.isfinite(node)):
        return "n/a" + (f": {reason}" if reason is not None else "")
    if isinstance(node, bool):
        return str(node)
    if isinstance(node, float):
        return f"{node:.4f}"
    return str(node)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _short(name: object, limit: int) -> str:
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plot_kind(synthetic: pd.Series, real: pd.Series | None) -> str | None:
    """How a column is plotted: by its synthetic values, or by the real ones when every
    synthetic value is null (a column the synthesizer suppressed is still shown)."""
    for series in (synthetic, real):
        if series is not None and series.notna().any():
            return kind(series)
    return kind(synthetic)


def _null_note(series: list[tuple[str, pd.Series]]) -> str:
    shares = [(role, float(s.isna().mean()) if len(s) else 0.0) for role, s in series]
    if not any(share for _, share in shares):
        return ""
    return "nulls: " + ", ".join(
        f"{LABELS[role].split(' ')[0]} {share:.0%}" for role, share in shares
    )


def _category_shares(series: pd.Series) -> pd.Series:
    """Each value's share of the rows, nulls as their own category."""
    values = series.astype(object).where(series.notna(), NULL).map(str)
    return values.value_counts(normalize=True)


def column_figure(name: str, series: list[tuple[str, pd.Series]], how: str) -> Any:
    """One column's distribution per role (``series``: (role, values), real first):
    histograms for numbers and datetimes, bars of value shares (nulls included) for
    categories. An all-null column is drawn as such, never an error."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    if how == NUMERIC:
        values = {role: numeric_values(s).to_numpy() for role, s in series}
        pooled = np.concatenate(list(values.values())) if values else np.zeros(0)
        bins: Any = np.histogram_bin_edges(pooled, bins=30) if len(pooled) else 10
        for role, v in values.items():
            if len(v):
                ax.hist(
                    v, bins=bins, density=True, alpha=0.5, color=COLOURS[role], label=LABELS[role]
                )
            else:  # a legend entry that says so
                ax.bar([], [], color=COLOURS[role], label=f"{LABELS[role]}: no values")
        ax.set_ylabel("density", fontsize=8)
    else:
        import pandas as pd

        shares = {role: _category_shares(s) for role, s in series}
        top = pd.concat(list(shares.values()), axis=1).max(axis=1)
        order = list(top.sort_values(ascending=False, kind="stable").index[:15])
        x = np.arange(len(order))
        width = 0.8 / max(len(shares), 1)
        for k, (role, share) in enumerate(shares.items()):
            heights = share.reindex(order).fillna(0.0).to_numpy(dtype=float)
            offset = (k - (len(shares) - 1) / 2) * width
            ax.bar(x + offset, heights, width, color=COLOURS[role], label=LABELS[role])
        ax.set_xticks(x, [_short(v, 18) for v in order], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("share of rows", fontsize=8)
    note = _null_note(series)
    ax.set_title(_short(name, 48) + (f"\n{note}" if note else ""), fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=7)
    return fig


def correlation_figure(frames: list[tuple[str, pd.DataFrame]], numeric: list[str]) -> Any:
    """Correlation heatmaps of the numeric columns, one per role, side by side (real first),
    sized to the column count so no two labels touch: at most ``HEATMAP_COLUMNS`` columns,
    names cut to 16 characters, row labels on the first heatmap only."""
    plt = _pyplot()
    numeric = numeric[:HEATMAP_COLUMNS]
    n = len(numeric)
    names = [_short(c, 16) for c in numeric]
    side = min(max(3.0, 0.34 * n + 1.0), 8.0)
    fig, axes = plt.subplots(
        1,
        len(frames),
        figsize=(side * len(frames) + 1.5, side + 0.8),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for k, (ax, (role, df)) in enumerate(zip(axes[0], frames, strict=True)):
        corr = df[numeric].apply(as_float).corr().to_numpy(dtype=float)
        image = ax.imshow(corr, vmin=-1, vmax=1, cmap="coolwarm")
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names if k == 0 else [], fontsize=7)
        ax.set_title(f"{LABELS[role]} correlations", fontsize=9, color=COLOURS[role])
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8)
    return fig


def plots(
    real: pd.DataFrame | None,
    synthetic: pd.DataFrame,
    max_columns: int = 12,
    prefix: str = "plots/",
) -> dict[str, bytes]:
    """PNG plots: per column the real and synthetic distributions, and correlation heatmaps.
    A dataset that holds source rows too (an ``is_synthetic`` column, ``augment.combined``)
    is drawn as the output it is. A plot that fails is left out (and logged): the card is
    never lost to a plot."""
    from synthfactory.metrics.tabular_sharded import SYNTHETIC_FLAG

    role = "output" if SYNTHETIC_FLAG in synthetic.columns else "synthetic"
    out: dict[str, bytes] = {}

    def real_column(c: Any) -> pd.Series | None:
        return real[c] if real is not None and c in real.columns else None

    kinds = {
        c: _plot_kind(synthetic[c], real_column(c))
        for c in synthetic.columns
        if c != SYNTHETIC_FLAG
    }
    columns = [c for c, k in kinds.items() if k is not None][:max_columns]
    for c in columns:
        r = real_column(c)
        series = ([("real", r)] if r is not None else []) + [(role, synthetic[c])]
        name = f"{prefix}column_{_slug(c)}.png"
        try:
            out[name] = _png(column_figure(str(c), series, str(kinds[c])))
        except Exception:  # one plot never costs the card
            log.warning("card: no plot of column %r", c, exc_info=True)
    numeric = [c for c in columns if kinds[c] == NUMERIC and (real is None or c in real.columns)]
    if len(numeric) >= 2:
        frames = ([("real", real)] if real is not None else []) + [(role, synthetic)]
        try:
            out[f"{prefix}correlation.png"] = _png(correlation_figure(frames, numeric))
        except Exception:
            log.warning("card: no correlation plot", exc_info=True)
    return out


def text_plots(texts: list[str]) -> dict[str, bytes]:
    """A histogram of text lengths (words)."""
    from synthfactory.metrics.text_quality import WORD

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist([len(WORD.findall(t)) for t in texts], bins=30, color=COLOURS["synthetic"])
    ax.set_xlabel("words per text")
    ax.set_ylabel("texts")
    ax.set_title(f"text lengths ({len(texts):,} texts)")
    return {"plots/text_lengths.png": _png(fig)}


def fit_thumbnail(image: Any, size: int = THUMBNAIL) -> Any:
    """``image`` (PIL) within size x size: a smaller one enlarged by the largest whole factor
    that fits (nearest neighbour: pixels stay sharp), a larger one shrunk."""
    from PIL import Image

    width, height = image.size
    if max(width, height) < size:
        factor = size // max(width, height, 1)
        if factor > 1:
            image = image.resize((width * factor, height * factor), Image.Resampling.NEAREST)
    if max(image.size) > size:
        image = image.copy()
        image.thumbnail((size, size))
    return image


def thumbnails(images: list[bytes], size: int = THUMBNAIL, columns: int = 8) -> dict[str, bytes]:
    """Sample images as one contact sheet, each centred in a size x size cell."""
    from PIL import Image

    if not images:
        return {}
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * size, rows * size), "white")
    for i, data in enumerate(images):
        try:
            image = fit_thumbnail(Image.open(io.BytesIO(data)).convert("RGB"), size)
        except Exception:  # an unreadable image leaves its cell blank
            continue
        x = (i % columns) * size + (size - image.size[0]) // 2
        y = (i // columns) * size + (size - image.size[1]) // 2
        sheet.paste(image, (x, y))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return {"plots/thumbnails.png": buf.getvalue()}


def _is_image(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("bytes"), bytes | bytearray)


def sample_image_name(row: int, column: object, table: str | None = None) -> str:
    where = f"{_slug(table)}_" if table else ""
    return f"{SAMPLE_IMAGES}{where}row{row + 1}_{_slug(column)}.png"


def sample_images(
    sample: pd.DataFrame, table: str | None = None, size: int = THUMBNAIL
) -> dict[str, bytes]:
    """A PNG thumbnail of every image in the sample rows (``sample_image_name``), which the
    card's sample table shows in place of the image."""
    from PIL import Image

    out: dict[str, bytes] = {}
    for row, values in enumerate(sample.itertuples(index=False)):
        for column, value in zip(sample.columns, values, strict=True):
            if not _is_image(value):
                continue
            assert isinstance(value, dict)
            try:
                image = fit_thumbnail(Image.open(io.BytesIO(value["bytes"])).convert("RGB"), size)
            except Exception:  # an unreadable image stays "(image)"
                continue
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            out[sample_image_name(row, column, table)] = buf.getvalue()
    return out


def _slug(name: object) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(name))[:60]


#: what a sequential dataset's two tables hold (their names: spec.generators.sequential)
TABLE_NOTES = {
    "entities": "one row per entity: its context columns and sequence length",
    "sequences": "the steps: one row per step of an entity",
}


def render(
    manifest: Manifest,
    report: dict[str, Any] | None,
    sample: pd.DataFrame,
    plot_names: list[str],
    tables: dict[str, pd.DataFrame] | None = None,
) -> str:
    """The card. ``sample``: the first rows; ``tables``: a multi-table dataset's first rows of
    every table (relational, sequential: entities and steps), shown instead; ``plot_names``:
    the files written beside it (sample thumbnails under ``SAMPLE_IMAGES`` are shown in the
    sample tables, the rest under Plots)."""
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
        lines += metrics_section(manifest, report)
        lines += tables_section(report)
        lines += pipeline_section(manifest, report)
    if manifest.privacy_budget:
        lines += privacy_section(manifest.privacy_budget)
    if manifest.gates:
        lines += gates_section(manifest.gates)
    images = {n for n in plot_names if n.startswith(SAMPLE_IMAGES)}
    fields = _pipeline_fields(manifest)
    if tables and any(len(t) for t in tables.values()):
        lines += ["## Sample rows", ""]
        for name, frame in tables.items():
            note = TABLE_NOTES.get(name, "") if _is_sequential(manifest) else ""
            lines += [f"### `{name}`" + (f" ({note})" if note else ""), ""]
            lines += [_markdown_table(frame, images, name) if len(frame) else "(no rows)", ""]
    elif len(sample) and fields:
        lines += ["## Sample rows", "", *_row_blocks(sample, fields)]
    elif len(sample):
        lines += ["## Sample rows", "", _markdown_table(sample, images), ""]
    shown = [n for n in plot_names if n not in images]
    if shown:
        lines += ["## Plots", ""] + [f"![{n}]({n})" for n in shown] + [""]
    lines += [
        "## Spec",
        "",
        "```yaml",
        yaml.safe_dump(manifest.spec, sort_keys=False).strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def _is_sequential(manifest: Manifest) -> bool:
    generator = manifest.spec.get("generator")
    return isinstance(generator, dict) and generator.get("kind") == "sequential"


def metrics_section(manifest: Manifest, report: dict[str, Any]) -> list[str]:
    """The modality's headline metrics with what each means; a metric the report holds but
    could not compute reads 'n/a' (with why)."""
    meanings = dict(MEANINGS.get(manifest.modality, {}))
    if isinstance(report.get("tables"), dict):
        meanings["quality.overall"] = "mean of the tables' quality.overall (see Tables)"
    rows = [
        _table_row(_code(path), shown, meaning)
        for path, meaning in meanings.items()
        if (shown := _shown(report, path)) is not None
    ]
    if not rows:
        return []
    return ["## Metrics", "", "| metric | value | meaning |", "| --- | --- | --- |", *rows, ""]


def tables_section(report: dict[str, Any]) -> list[str]:
    """A multi-table dataset's own numbers: every table's quality against its source table
    and every relationship's cardinality, integrity and intertable trends (parent-child
    column pairs), as the gates name them."""
    tables = report.get("tables")
    if not isinstance(tables, dict) or not tables:
        return []
    links = report.get("relationships")
    names = "`tables.<table>.quality.<metric>`" + (
        " and `relationships.<parent>.<child>.<metric>`" if links else ""
    )
    lines = [
        "## Tables",
        "",
        f"Each table against the same view of its source (key columns left out); gates name "
        f"these {names}.",
        "",
        "| table | rows | rows scored | quality.overall | column_shapes | column_pair_trends |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, part in tables.items():
        part = part if isinstance(part, dict) else {}
        quality = part.get("quality") if isinstance(part.get("quality"), dict) else {}
        assert isinstance(quality, dict)
        lines.append(
            _table_row(
                _code(name),
                _number(part.get("rows")),
                _number(part.get("rows_scored")),
                *(
                    _number(quality.get(k))
                    for k in ("overall", "column_shapes", "column_pair_trends")
                ),
            )
        )
    if isinstance(links, dict) and links:
        lines += [
            "",
            "| relationship | cardinality_shape_similarity | referential_integrity | "
            "intertable_trends | children per parent, mean (real / synthetic) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for parent, children in links.items():
            for child, numbers in (children or {}).items():
                counts = numbers.get("children_per_parent") or {}
                lines.append(
                    _table_row(
                        _code(f"{parent}.{child}"),
                        _number(numbers.get("cardinality_shape_similarity")),
                        _number(numbers.get("referential_integrity")),
                        _number(numbers.get("intertable_trends")),
                        f"{_number(counts.get('real_mean'))} / "
                        f"{_number(counts.get('synthetic_mean'))}",
                    )
                )
    return [*lines, ""]


def gates_section(gates: list[dict[str, Any]]) -> list[str]:
    """Each gate, its value and result: pass, FAIL, or not applicable (the metric could not
    be computed, which no gate passes)."""
    lines = ["## Gates", "", "| gate | value | result |", "| --- | --- | --- |"]
    for gate in gates:
        value = gate.get("value")
        if value is None:
            shown = str(gate.get("reason", "not computed")).removeprefix("not applicable: ")
            result = "**not applicable** (not passed)"
        else:
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            result = "pass" if gate["passed"] else "**FAIL**"
        lines.append(_table_row(_code(f"{gate['metric']} {gate['condition']}"), shown, result))
    return [*lines, ""]


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
            _table_row(
                _code(m["statistic"]),
                m["mechanism"],
                f"{m['epsilon']:.6g}",
                f"{m['delta']:.3g}",
                f"{m['sensitivity']:.6g}",
                f"{m['noise_scale']:.6g}",
            )
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
            lines.append(_table_row(_code(path), f"{value:.4f}"))
        elif value is not None:
            lines.append(_table_row(_code(path), value))

    for key, value in (report.get("pipeline") or {}).items():
        row(f"pipeline.{key}", value)
    for judge in judges:
        for criterion, numbers in (report.get(judge) or {}).items():
            if isinstance(numbers, dict):
                for key in ("mean", "mean_all", "scored", "kept_share", "expected_mean"):
                    row(f"{judge}.{criterion}.{key}", numbers.get(key))
    for name in validators:
        for key, value in (report.get(name) or {}).items():
            row(f"{name}.{key}", value)
    return [*lines, ""] if len(lines) > 4 else []


def _markdown_table(
    df: pd.DataFrame, images: set[str] | None = None, table: str | None = None
) -> str:
    """Rows as a markdown table, every cell escaped (``cell``) and cut to 60 characters; an
    image shows as its thumbnail when ``images`` holds it (``sample_images``)."""
    images = images or set()

    def shown(row: int, column: object, value: object) -> str:
        if _is_image(value) or (isinstance(value, dict) and "bytes" in value):
            name = sample_image_name(row, column, table)
            return f"![{cell(column)} {row + 1}]({name})" if name in images else "(image)"
        return cell(value, 60)

    head = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = [
        "| " + " | ".join(shown(i, c, v) for c, v in zip(df.columns, row, strict=True)) + " |"
        for i, row in enumerate(df.itertuples(index=False))
    ]
    return "\n".join([head, rule, *body])
