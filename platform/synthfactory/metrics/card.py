"""The dataset card (README.md, Hugging Face style), written beside the data: summary,
metrics (with the meanings declared in ``metrics.catalogue``), tables, pipeline numbers,
differential privacy, gates, sample rows and the plots of ``card_plots``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import yaml

from synthfactory.metrics import catalogue
from synthfactory.metrics.card_plots import SAMPLE_IMAGES, is_image, sample_image_name

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.dataset.manifest import Manifest


def cell(value: object, limit: int | None = None) -> str:
    """``value`` as one markdown table cell: whitespace (line breaks included) folded to single
    spaces, backslashes and ``|`` escaped so the cell never ends early; cut at ``limit``."""
    text = " ".join(str(value).split())
    if limit is not None and len(text) > limit:
        text = text[:limit] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|")


def missing(value: object) -> bool:
    """A scalar that holds nothing (None, NaN, NaT, pandas' NA): shown as ``(null)``, as the
    plots label it, never as ``nan`` or ``None`` (a value for nothing)."""
    if value is None:
        return True
    import numpy as np
    import pandas as pd

    found = pd.isna(cast(Any, value))  # an array for a list or an array: no scalar
    return isinstance(found, bool | np.bool_) and bool(found)


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
    lines = [*header_section(manifest), *summary_section(manifest)]
    if report:
        lines += metrics_section(manifest, report)
        lines += tables_section(report)
        lines += pipeline_section(manifest, report)
    if manifest.privacy_budget:
        lines += privacy_section(manifest.privacy_budget)
    if manifest.gates:
        lines += gates_section(manifest.gates)
    images = {n for n in plot_names if n.startswith(SAMPLE_IMAGES)}
    lines += sample_section(manifest, sample, tables, images)
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


def header_section(manifest: Manifest) -> list[str]:
    """The Hugging Face front matter (name, size, tags, configs) and the title."""
    header = {
        "pretty_name": manifest.name,
        "size_categories": [_size(manifest.rows)],
        "tags": ["synthetic", manifest.modality, "synthfactory"],
        "configs": _configs(manifest),
    }
    lines = ["---", yaml.safe_dump(header, sort_keys=False).strip(), "---", ""]
    lines += [f"# {manifest.name}", ""]
    if manifest.spec.get("description"):
        lines += [str(manifest.spec["description"]), ""]
    return lines


def summary_section(manifest: Manifest) -> list[str]:
    """What was made and how: status, rows, shards, rejections, generator, hash, code."""
    stats = manifest.stats
    lines = [
        f"Synthetic **{manifest.modality}** dataset generated by synthfactory.",
        "",
        f"- status: **{manifest.status}**",
        f"- rows: {manifest.rows:,} in {len(manifest.shards)} Parquet "
        f"shard{'' if len(manifest.shards) == 1 else 's'} "
        f"({manifest.rejected_rows:,} rejected rows kept under `rejected/`)",
    ]
    if "constraint_rejections" in stats:
        lines.append(
            f"- constraints: {int(stats['constraint_rejections']):,} of "
            f"{int(stats.get('candidates', 0)):,} candidate rows rejected"
        )
    dropped = ", ".join(
        f"{k.removeprefix('dropped_')} {int(v):,}"
        for k, v in stats.items()
        if k.startswith("dropped_") and v
    )
    if dropped:
        lines.append(f"- dropped by the whole-dataset pass: {dropped}")
    return [
        *lines,
        f"- generator: `{manifest.generator}`",
        f"- spec hash: `{manifest.spec_hash[:16]}`, master seed {manifest.seeds.get('master')}",
        f"- code: `{manifest.lineage.get('code_version')}`, created {manifest.created_at}",
        "",
    ]


def sample_section(
    manifest: Manifest,
    sample: pd.DataFrame,
    tables: dict[str, pd.DataFrame] | None,
    images: set[str],
) -> list[str]:
    """The first rows: every table's of a multi-table dataset, a pipeline's as whole-row
    blocks, else one table (images as their thumbnails)."""
    fields = _pipeline_fields(manifest)
    if tables and any(len(t) for t in tables.values()):
        lines = ["## Sample rows", ""]
        for name, frame in tables.items():
            note = TABLE_NOTES.get(name, "") if _is_sequential(manifest) else ""
            lines += [f"### `{name}`" + (f" ({note})" if note else ""), ""]
            lines += [_markdown_table(frame, images, name) if len(frame) else "(no rows)", ""]
        return lines
    if len(sample) and fields:
        return ["## Sample rows", "", *_row_blocks(sample, fields)]
    if len(sample):
        return ["## Sample rows", "", _markdown_table(sample, images), ""]
    return []


def _is_sequential(manifest: Manifest) -> bool:
    generator = manifest.spec.get("generator")
    return isinstance(generator, dict) and generator.get("kind") == "sequential"


def metrics_section(manifest: Manifest, report: dict[str, Any]) -> list[str]:
    """The modality's headline metrics with what each means; a metric the report holds but
    could not compute reads 'n/a' (with why)."""
    meanings = catalogue.meanings(manifest.modality)
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
            text = "(null)" if missing(row[name]) else " ".join(str(row[name]).split())
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
        if is_image(value) or (isinstance(value, dict) and "bytes" in value):
            name = sample_image_name(row, column, table)
            return f"![{cell(column)} {row + 1}]({name})" if name in images else "(image)"
        return "(null)" if missing(value) else cell(value, 60)

    head = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = [
        "| " + " | ".join(shown(i, c, v) for c, v in zip(df.columns, row, strict=True)) + " |"
        for i, row in enumerate(df.itertuples(index=False))
    ]
    return "\n".join([head, rule, *body])
