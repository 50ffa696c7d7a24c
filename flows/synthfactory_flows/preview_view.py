"""How ``synthfactory preview`` shows its rows: columns chosen, values as text or JSON,
rich tables (or one panel per row) that fit the terminal."""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from synthfactory.spec import JobSpec

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory_flows.preview import PreviewResult


#: a text generator's bookkeeping columns, left out of the table (shown with --json, or
#: when named with --column)
TEXT_BOOKKEEPING = frozenset(
    {
        "prompt_index",
        "completion_index",
        "seed",
        "json_attempt",
        "prompt_tokens",
        "completion_tokens",
        "finish_reason",
        "model_id",
        "model_revision",
        "temperature",
        "top_p",
        "top_k",
        "max_new_tokens",
        "source_row",
        "row_id",
        "repeats_system_prompt",
    }
)
#: why a row was rejected (and by which column of a pipeline): shown first
REASON_COLUMNS = ("reason", "rejected_column")
#: a cell of the table shows at most this many lines of its value, then an ellipsis
CELL_LINES = 4
#: rows shown of a relational or sequential generator's other tables (--json: all)
OTHER_ROWS = 20


def public_columns(table: pa.Table) -> pa.Table:
    """Without a run's sidecar columns (``__exact``, ``__lsh_bands``, unique keys)."""
    return table.drop_columns([c for c in table.column_names if c.startswith("__")])


def _text_config(spec: JobSpec) -> Any:
    from synthfactory.spec.generators.text import LLMConfig

    return spec.generator if isinstance(spec.generator, LLMConfig) else None


def validator_columns(spec: JobSpec) -> set[str]:
    """A text pipeline's ``validate`` columns (shown as pass / fail: reason)."""
    config = _text_config(spec)
    if config is None or config.columns is None:
        return set()
    return {c.name for c in config.columns if c.kind == "validate"}


def select_columns(
    table: pa.Table,
    wanted: Sequence[str],
    spec: JobSpec,
    *,
    everything: bool = False,
    rejected: bool = False,
) -> list[str]:
    """The columns to show. ``wanted``: names or prefixes (``persona`` is ``persona.*``),
    in that order. Else every column, less (unless ``everything``) a text generator's
    bookkeeping and lineage (``column__seed`` ...) and validators' ``_error`` columns
    (their cell says it); rejected rows' ``reason`` first. Names the table lacks are skipped
    (``PreviewResult.check_columns`` names the unknown ones)."""
    names = list(table.column_names)
    if wanted:
        chosen: list[str] = []
        for item in column_items(wanted):
            found = [n for n in names if n == item or n.startswith(item + ".")]
            chosen += [n for n in found if n not in chosen]
        names = chosen
    elif not everything and _text_config(spec) is not None:
        checks = validator_columns(spec)
        names = [
            n
            for n in names
            if n not in TEXT_BOOKKEEPING
            and "__" not in n
            and not (n.endswith("_error") and n.removesuffix("_error") in checks)
        ]
    if rejected:  # why first, whichever columns were asked for
        front = [c for c in REASON_COLUMNS if c in table.column_names]
        names = front + [n for n in names if n not in front]
    return names


def column_items(wanted: Sequence[str]) -> list[str]:
    """``--column`` values, each possibly comma-separated."""
    return [w.strip() for entry in wanted for w in entry.split(",") if w.strip()]


def json_value(value: Any) -> Any:
    """A value as JSON: bytes as base64, dates as ISO 8601, NaN as null."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def cell_text(value: Any, validator: bool = False, error: Any = None) -> str:
    """A value as a table shows it."""
    if validator:
        if value is None:
            return "—"
        return "pass" if value else f"fail: {error}" if error else "fail"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "NaN" if value != value else f"{value:.6g}"
    if isinstance(value, bytes):
        return _describe_bytes(value)
    if isinstance(value, dict) and isinstance(value.get("bytes"), bytes):  # an image
        return _describe_bytes(value["bytes"])
    if isinstance(value, dict | list):
        return json.dumps(json_value(value), ensure_ascii=False)
    return str(value)


def _describe_bytes(data: bytes) -> str:
    kind = "PNG image" if data.startswith(b"\x89PNG") else "bytes"
    if kind == "PNG image" and len(data) >= 24:
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        kind = f"PNG {width}x{height}"
    return f"<{kind}, {len(data):,} B>"


def clip(text: str, limit: int, lines: int = 2 * CELL_LINES) -> str:
    """``text`` cut to ``limit`` characters and ``lines`` lines, with an ellipsis when cut
    (line breaks kept: code stays readable)."""
    parts = text.splitlines()
    cut = len(parts) > lines
    if cut:
        text = "\n".join(parts[:lines])
    if len(text) > limit:
        text, cut = text[: max(1, limit - 1)], True
    return text.rstrip() + "…" if cut else text


def renderables(result: PreviewResult, columns: Sequence[str], width: int) -> Iterator[Any]:
    """rich tables of the kept rows (and other tables), then the rejected rows."""
    from rich.rule import Rule

    spec = result.spec
    yield Rule(f"{spec.name}: {result.rows.num_rows} row(s)", style="dim")
    yield from _table_view(result.rows, select_columns(result.rows, columns, spec), spec, width)
    for name, table in result.tables.items():
        shown = f"the first {OTHER_ROWS} of " if table.num_rows > OTHER_ROWS else ""
        yield Rule(f"table {name}: {shown}{table.num_rows} row(s)", style="dim")
        part = table.slice(0, OTHER_ROWS)
        yield from _table_view(part, select_columns(part, (), spec), spec, width)
    if result.rejected is not None and result.rejected.num_rows:
        rejected = result.rejected
        yield Rule(f"rejected: {rejected.num_rows} row(s)", style="red dim")
        names = select_columns(rejected, columns, spec, rejected=True)
        yield from _table_view(rejected, names, spec, width)


def _table_view(table: pa.Table, names: list[str], spec: JobSpec, width: int) -> Iterator[Any]:
    """One table with a row per record when the columns fit the width, else a two-column
    table (column, value) per record. Cells wrap to ``CELL_LINES`` lines, then "…"."""
    from rich import box
    from rich.table import Table

    checks = validator_columns(spec)
    shown = [n for n in names if n in table.column_names]
    records = table.select(shown).to_pylist()
    errors = {
        n: table[f"{n}_error"].to_pylist()
        for n in shown
        if n in checks and f"{n}_error" in table.column_names
    }

    def text(name: str, i: int, value: Any) -> str:
        error = errors[name][i] if name in errors else None
        return cell_text(value, name in checks, error)

    if not shown:
        return
    cells = [[text(n, i, record[n]) for n in shown] for i, record in enumerate(records)]
    natural = [
        min(40, max([len(name), *(len(row[k]) for row in cells)])) for k, name in enumerate(shown)
    ]
    if sum(natural) + 3 * len(shown) <= width or len(shown) * 22 <= width:
        per_column = max(8, (width - 3 * len(shown)) // len(shown))
        grid = Table(box=box.SIMPLE_HEAD, expand=False)
        for name in shown:
            grid.add_column(name, overflow="fold", min_width=min(len(name), 20))
        for row in cells:
            grid.add_row(*(clip(cell, per_column * CELL_LINES) for cell in row))
        yield grid
        return
    key_width = min(max(len(n) for n in shown), max(12, width // 3))
    value_width = max(10, width - key_width - 7)
    for i, row in enumerate(cells):
        view = Table(box=box.ROUNDED, show_header=False, title=f"row {i}", title_justify="left")
        view.add_column(style="bold cyan", no_wrap=True, overflow="ellipsis", max_width=key_width)
        view.add_column(overflow="fold")
        for name, cell in zip(shown, row, strict=True):
            view.add_row(name, clip(cell, value_width * CELL_LINES))
        yield view
