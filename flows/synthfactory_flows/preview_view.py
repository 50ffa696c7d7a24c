"""How ``synthfactory preview`` shows its rows: columns chosen, values as text or JSON,
rich tables (or one panel per row) that fit the terminal."""

from __future__ import annotations

import base64
import datetime
import decimal
import html
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.spec import JobSpec
from synthfactory.spec.generators.text import llm_config

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from rich.console import Console, ConsoleOptions, RenderResult


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


def validator_columns(spec: JobSpec) -> set[str]:
    """A text pipeline's ``validate`` columns (shown as pass / fail: reason)."""
    config = llm_config(spec.generator)
    if config is None:
        return set()
    return {c.name for c in config.pipeline if c.reports == "validator"}


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
    elif not everything and llm_config(spec.generator) is not None:
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


@dataclass
class PreviewResult:
    """What one preview made: the kept rows, the rejected rows with their reasons, the
    generator's counters, and where the time went."""

    spec: JobSpec
    rows: pa.Table
    """The kept rows (a run's sidecar ``__`` columns left out)."""
    rejected: pa.Table | None
    """Rows the generator rejected, with ``reason`` (and ``rejected_column``)."""
    stats: dict[str, float]
    check_seconds: float = 0.0
    prepare_seconds: float = 0.0
    load_seconds: float = 0.0
    generate_seconds: float = 0.0
    loaded: bool = True
    """Whether this call loaded the generator's models (False: kept from an earlier call)."""
    tables: dict[str, pa.Table] = field(default_factory=dict)
    """A relational generator's other tables, by name."""

    @property
    def rejected_rows(self) -> int:
        return 0 if self.rejected is None else self.rejected.num_rows

    @property
    def tokens(self) -> tuple[int, int]:
        """(prompt, completion) tokens, generated rows rejected ones included."""
        return int(self.stats.get("prompt_tokens", 0)), int(self.stats.get("completion_tokens", 0))

    def summary(self) -> str:
        """One line: rows kept and rejected, tokens, seconds to load and to generate."""
        parts = [f"{self.rows.num_rows} kept, {self.rejected_rows} rejected"]
        prompt, completion = self.tokens
        if prompt or completion:
            parts.append(
                f"{prompt + completion:,} tokens ({prompt:,} prompt + {completion:,} completion)"
            )
        if self.prepare_seconds >= 0.05:
            parts.append(f"prepare {self.prepare_seconds:.1f} s")
        load = f"load {self.load_seconds:.1f} s" if self.loaded else "model reused"
        parts.append(load)
        parts.append(f"generate {self.generate_seconds:.1f} s")
        return " · ".join(parts)

    def to_pandas(self) -> pd.DataFrame:
        return self.rows.to_pandas()

    def rejected_pandas(self) -> pd.DataFrame | None:
        return None if self.rejected is None else self.rejected.to_pandas()

    def check_columns(self, columns: Sequence[str]) -> None:
        """A ConfigError for a name in ``columns`` that no row has (listing those there are)."""
        tables = [self.rows, *([self.rejected] if self.rejected is not None else [])]
        known = list(dict.fromkeys(n for t in tables for n in t.column_names))
        for item in column_items(columns):
            if not any(n == item or n.startswith(item + ".") for n in known):
                raise ConfigError(
                    f"--column {item!r}: the preview has no such column",
                    fix="use one of: " + ", ".join(n for n in known if not n.startswith("__")),
                )

    def records(self, columns: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
        """Kept rows, then rejected ones (with ``reason``), as JSON-ready dicts with
        ``_status``: every column, or those ``columns`` name. A relational or sequential
        generator's other tables follow, every column, with ``_table`` naming the table."""
        self.check_columns(columns)
        for status, table in (("kept", self.rows), ("rejected", self.rejected)):
            if table is None:
                continue
            names = select_columns(
                table, columns, self.spec, everything=True, rejected=status == "rejected"
            )
            for row in table.select(names).to_pylist():
                yield {"_status": status, **{k: json_value(v) for k, v in row.items()}}
        for name, table in self.tables.items():
            for row in public_columns(table).to_pylist():
                yield {
                    "_status": "kept",
                    "_table": name,
                    **{k: json_value(v) for k, v in row.items()},
                }

    def json_lines(self, columns: Sequence[str] = ()) -> Iterator[str]:
        for record in self.records(columns):
            yield json.dumps(record, ensure_ascii=False)

    def show(self, columns: Sequence[str] = (), console: Console | None = None) -> None:
        """Print the rows as tables (rich), then the summary line."""
        from rich.console import Console

        self.check_columns(columns)
        console = console or Console()
        for renderable in renderables(self, columns, console.width):
            console.print(renderable)
        console.print(self.summary(), style="bold", highlight=False, soft_wrap=True)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from renderables(self, (), options.max_width)
        yield self.summary()

    def _repr_html_(self) -> str:  # notebooks
        parts = [f"<p><b>{html.escape(self.summary())}</b></p>"]
        visible = select_columns(self.rows, (), self.spec)
        parts.append(self.rows.select(visible).to_pandas().to_html(index=False))
        if self.rejected is not None and self.rejected.num_rows:
            names = select_columns(self.rejected, (), self.spec, rejected=True)
            parts.append(f"<p>rejected ({self.rejected.num_rows})</p>")
            parts.append(self.rejected.select(names).to_pandas().to_html(index=False))
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"PreviewResult({self.summary()})"
