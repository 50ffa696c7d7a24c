"""Text rows as a pipeline of columns (``generator.columns``), run inside the LLM actor.

A shard is built column by column for all of its candidate rows at once: each column's kind
(``text/kinds``, found through ``synthfactory.spec.columns.COLUMNS``) fills it for every row
still alive: samplers draw, LLM columns send one batch of requests, expressions and
validators compute. Then ``keep`` decides; rows that fail any step go to ``rejected/`` with
``rejected_column`` and ``reason``. The shard loops over new candidates until it has
``rows`` kept rows (or ``max_attempts_per_row`` x rows candidates were tried; the flow's
top-up does the rest). Every LLM request goes through the generator's request journal, so a
retried shard re-sends nothing an earlier attempt already received. The pipeline never
switches on a column's kind: it calls each kind's ``run`` and ``arrow_types``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory_workers.contract import ShardOutput, ShardTask
from synthfactory_workers.text.filters import ShardFilter, pop_dedup_keys, with_dedup_keys
from synthfactory_workers.text.kinds.base import Engine, Row, jinja_env, kind_of
from synthfactory_workers.text.preflight import keep_conditions
from synthfactory_workers.text.requests import add_backend_stats, new_stats

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory_workers.text.backend import TextBackend


class Pipeline:
    """One per loaded generator: each column's kind (compiled templates), the source rows,
    the engine's journaled requests."""

    def __init__(self, engine: Engine, source: pa.Table | None) -> None:
        self.engine = engine
        self.config = engine.config
        self.columns = self.config.pipeline
        self.source = source.to_pylist() if source is not None else None
        self.source_types = {f.name: f.type for f in source.schema} if source is not None else {}
        self.kinds = [kind_of(c, self) for c in self.columns]
        env = jinja_env()
        self.keep = [(c, env.compile_expression(c)) for c in keep_conditions(self.config)]

    # -- the shard loop --------------------------------------------------------------------

    def generate(
        self, shard: ShardTask, own: TextBackend, backends: list[TextBackend]
    ) -> ShardOutput:
        """``shard.rows`` kept rows (or what ``max_attempts_per_row`` allows); ``own``: the
        backend the rows' ``model_id`` names, ``backends``: every one the shard used."""
        wanted = shard.rows
        kept: list[Row] = []
        rejected: list[Row] = []
        stats = new_stats(
            self.engine.requests.journal is not None, "pipeline.generated", "pipeline.kept"
        )
        budget = self.config.max_attempts_per_row * max(1, wanted)
        tried, next_index = 0, shard.row_start
        screen = ShardFilter(self.config.filters, self.config.dedup)
        while len(kept) < wanted and tried < budget:
            missing = wanted - len(kept)
            rate = len(kept) / tried if tried else 1.0
            size = missing if not tried else math.ceil(missing / max(rate, 1 / budget))
            size = max(1, min(size, budget - tried))
            rows = [Row(next_index + k) for k in range(size)]
            next_index += size
            tried += size
            self.run_columns(rows, shard, stats, own)
            self._sort(rows, screen, wanted, kept, rejected, stats)
        stats["pipeline.kept"] = float(len(kept))
        stats["completion_tokens_accepted"] = float(
            sum(r.out.get("completion_tokens", 0) for r in kept)
        )
        add_backend_stats(stats, backends)
        return ShardOutput(
            self.table([r.out for r in kept], sidecar=True),
            self.table([self._rejected_record(r) for r in rejected], sidecar=False)
            if rejected
            else None,
            stats,
        )

    def _sort(
        self,
        rows: list[Row],
        screen: ShardFilter,
        wanted: int,
        kept: list[Row],
        rejected: list[Row],
        stats: dict[str, float],
    ) -> None:
        """Each row kept (keep, filters, dedup) or rejected; surplus rows are dropped."""
        main = self.config.main_text_column
        for row in rows:
            stats["pipeline.generated"] += 1
            if row.reason is None:
                self._keep(row)
            if row.reason is None and main is not None:
                reason = screen.reject_reason(row.out, str(row.out.get(main) or ""))
                if reason:
                    row.reject(main, reason)
            if row.reason is None and len(kept) < wanted:
                kept.append(row)
            elif row.reason is not None:
                rejected.append(row)
            else:  # passed, but the shard is full (batches over-ask by the keep rate)
                stats["pipeline.surplus"] = stats.get("pipeline.surplus", 0.0) + 1

    def _rejected_record(self, row: Row) -> dict[str, Any]:
        record = {k: v for k, v in row.out.items() if not k.startswith("__")}
        record["rejected_column"] = row.rejected_column
        record["reason"] = row.reason
        return record

    def _keep(self, row: Row) -> None:
        for source, expression in self.keep:
            try:
                ok = expression(**row.ctx)
            except Exception as exc:  # jinja2 UndefinedError, TypeError on None, ...
                row.reject("keep", f"keep_error: {source.strip()}: {exc}")
                return
            if not ok:
                row.reject("keep", f"keep: {source.strip()}")
                return

    def run_columns(
        self, rows: list[Row], shard: ShardTask, stats: dict[str, float], own: TextBackend
    ) -> None:
        seed = int(shard.seed)
        for row in rows:
            row.out["prompt_index"] = row.index
            row.out["row_id"] = f"{shard.index}:{row.index}"
            row.out["prompt_tokens"] = 0
            row.out["completion_tokens"] = 0
            row.out["model_id"] = own.model_id
            row.out["model_revision"] = own.revision
            if self.source is not None:
                if self.config.source_order == "sequential":
                    source_row = row.index % len(self.source)
                else:
                    rng = np.random.default_rng([seed, row.index, 2**31])
                    source_row = int(rng.integers(len(self.source)))
                row.out["source_row"] = source_row
        for ci, kind in enumerate(self.kinds):
            alive = [r for r in rows if r.reason is None]
            if not alive:
                return
            kind.run(ci, alive, shard, stats)

    # -- the tables ------------------------------------------------------------------------

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        types: dict[str, pa.DataType] = {
            "prompt_index": pa.int64(),
            "row_id": pa.string(),
            "source_row": pa.int64(),
            "prompt_tokens": pa.int64(),
            "completion_tokens": pa.int64(),
            "model_id": pa.string(),
            "model_revision": pa.string(),
            "reason": pa.string(),
            "rejected_column": pa.string(),
        }
        for kind in self.kinds:
            types.update(kind.arrow_types())
        return types

    def table(self, records: list[dict[str, Any]], sidecar: bool) -> pa.Table:
        import pyarrow as pa

        types = self.arrow_types()
        order = [f for c in self.columns for f in c.fields()]
        if not records:
            return pa.schema([(f, types.get(f, pa.string())) for f in order]).empty_table()
        keys = pop_dedup_keys(records)
        names: list[str] = []
        for record in records:
            for key in record:
                if key not in names:
                    names.append(key)
        front = [n for n in order if n in names]
        names = front + [n for n in names if n not in front]
        table = build_table(records, names, types)
        if sidecar and self.config.main_text_column is not None:
            table = with_dedup_keys(table, keys, self.config.dedup)
        return table


def build_table(
    records: list[dict[str, Any]], names: list[str], types: dict[str, pa.DataType]
) -> pa.Table:
    """The records as a table of these columns, each of its type where the values allow
    (else as text)."""
    import pyarrow as pa

    arrays = []
    for key in names:
        values = [r.get(key) for r in records]
        try:
            arrays.append(pa.array(values, types.get(key)))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(v) for v in values]))
    return pa.table(dict(zip(names, arrays, strict=True)))
