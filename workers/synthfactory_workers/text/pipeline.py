"""Text rows as a pipeline of columns (``generator.columns``), run inside the LLM actor.

A shard is built column by column for all of its candidate rows at once: samplers draw,
each LLM column sends one batch of requests (the engine batches them; every request has
its own seed from (shard seed, row, column index, attempt)), structured and judge columns
retry only the rows whose reply did not parse, expressions and validators compute. Then
``keep`` decides; rows that fail any step go to ``rejected/`` with ``rejected_column``
and ``reason``. The shard loops over new candidates until it has ``rows`` kept rows (or
``max_attempts_per_row`` x rows candidates were tried; the flow's top-up does the rest).
Every LLM request goes through the generator's request journal, so a retried shard
re-sends nothing an earlier attempt already received.

Lineage, per LLM column ``c``: ``c__model``, ``c__revision``, ``c__seed``,
``c__template_sha`` (sha256 of the column's system prompt, template, rubric/schema and
sampling, 16 hex), ``c__prompt_tokens``, ``c__completion_tokens``, ``c__attempt`` (the
retry that parsed), ``c__finish_reason``; ``c__prompt`` (the rendered user prompt) for
``llm_text`` and ``llm_structured`` columns.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.spec.columns import (
    NEEDS_SOURCE,
    PERSON_FIELDS,
    CategoryByColumn,
    ChoiceColumn,
    DatetimeColumn,
    ExpressionColumn,
    LLMJudgeColumn,
    LLMJudgePairwiseColumn,
    LLMStructuredColumn,
    LLMTextColumn,
    PersonColumn,
    RangeColumn,
    SourceColumn,
    UUIDColumn,
    ValidateColumn,
    column_fields,
    criteria,
)
from synthfactory.spec.generators.text import LLMConfig
from synthfactory.spec.judges import JUDGE_FIELDS
from synthfactory_workers.contract import ShardOutput, ShardTask
from synthfactory_workers.text.backend import Completion, Request

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory_workers.text.generator import LLMGenerator

LLM = (LLMTextColumn, LLMStructuredColumn, LLMJudgeColumn, LLMJudgePairwiseColumn)
SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)
BOOKKEEPING = (
    "prompt_index",
    "row_id",
    "source_row",
    "prompt_tokens",
    "completion_tokens",
    "model_id",
    "model_revision",
    "reason",
    "rejected_column",
)
LINEAGE = (
    "model",
    "revision",
    "seed",
    "template_sha",
    "prompt_tokens",
    "completion_tokens",
    "attempt",
    "finish_reason",
    "prompt",
)


def column_seed(shard_seed: int, row: int, column: int, attempt: int) -> int:
    state = np.random.SeedSequence([shard_seed, row, column, attempt, 0x5EED]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


def _env() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def as_expression(text: str) -> str | None:
    """The inside of a template that is exactly one ``{{ ... }}``, else None."""
    match = SINGLE_EXPRESSION.match(text)
    if match and "{{" not in match.group(1) and "}}" not in match.group(1):
        return match.group(1)
    return None


def condition_source(text: str) -> str:
    """A keep condition as an expression: ``{{ x >= 3 }}`` or bare ``x >= 3``."""
    inner = as_expression(text)
    return inner if inner is not None else text


# -- preflight ---------------------------------------------------------------------------


def _templates(column: Any) -> list[tuple[str, str, bool]]:
    """(field, text, is_expression) of every Jinja text in the column."""
    out: list[tuple[str, str, bool]] = []
    if isinstance(column, LLM):
        out.append(("template", column.template, False))
        if column.system_prompt:
            out.append(("system_prompt", column.system_prompt, False))
    if isinstance(column, ExpressionColumn):
        inner = as_expression(column.expr)
        out.append(("expr", inner if inner is not None else column.expr, inner is not None))
    if isinstance(column, ValidateColumn) and column.test:
        out.append(("test", column.test, False))
    return out


def _references(text: str, expression: bool, where: str) -> set[str]:
    from jinja2 import TemplateSyntaxError, meta

    try:
        ast = _env().parse("{{ " + text + " }}" if expression else text)
    except TemplateSyntaxError as exc:
        raise ConfigError(
            f"{where} does not parse as Jinja: {exc.message} (line {exc.lineno})",
            fix=f"fix the Jinja syntax of {where}",
        ) from None
    return set(meta.find_undeclared_variables(ast))


def dependencies(config: LLMConfig) -> dict[str, set[str]]:
    """Column name -> the names its templates, expressions and options read."""
    deps: dict[str, set[str]] = {}
    for column in config.pipeline:
        where = f"generator.columns[{column.name}]"
        names: set[str] = set()
        for key, text, expression in _templates(column):
            names |= _references(text, expression, f"{where}.{key}")
        if isinstance(column, CategoryByColumn | ValidateColumn):
            names.add(column.column)
        if isinstance(column, LLMJudgeColumn) and column.source_column:
            names.add(column.source_column)
        if isinstance(column, LLMJudgePairwiseColumn):
            names.update(column.candidates)
        deps[column.name] = names
    return deps


def context_names(config: LLMConfig) -> dict[str, str]:
    """Variable name templates may use -> the column that defines it."""
    out: dict[str, str] = {}
    for column in config.pipeline:
        out[column.name] = column.name
        if isinstance(column, ValidateColumn):
            out[f"{column.name}_error"] = column.name
    return out


def _cycle(deps: dict[str, set[str]], defined: dict[str, str]) -> list[str] | None:
    graph = {n: {defined[d] for d in ds if d in defined} for n, ds in deps.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def check_pipeline(config: LLMConfig, source_columns: list[str] | None) -> None:
    """Every check of a columns pipeline that needs no model: a ConfigError naming the
    column and the fix."""
    import jsonschema

    columns = config.pipeline
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise ConfigError(
                f"generator.columns: two columns are named {column.name!r}",
                fix="give every column its own name",
            )
        seen.add(column.name)
    defined = context_names(config)
    fields = {f for c in columns for f in column_fields(c)}
    for reserved in BOOKKEEPING:
        if reserved in fields:
            raise ConfigError(
                f"generator.columns: {reserved!r} is a column the platform writes",
                fix=f"rename the column (reserved: {list(BOOKKEEPING)})",
            )
    for column in columns:
        if "__" in column.name:
            raise ConfigError(
                f"generator.columns[{column.name}]: names with '__' are reserved for lineage",
                fix="use a single underscore",
            )
    deps = dependencies(config)
    cycle = _cycle(deps, defined)
    if cycle:
        raise ConfigError(
            "generator.columns: the columns " + " -> ".join(cycle) + " form a cycle",
            fix="a column may only use columns listed before it; break the cycle",
        )
    position = {c.name: i for i, c in enumerate(columns)}
    for column in columns:
        for name in sorted(deps[column.name]):
            owner = defined.get(name)
            if owner is None:
                raise ConfigError(
                    f"generator.columns[{column.name}] uses {name!r}, which is no column",
                    fix=f"define a column {name!r} before it or fix the name "
                    f"(columns: {sorted(defined)})",
                )
            if position[owner] >= position[column.name]:
                raise ConfigError(
                    f"generator.columns[{column.name}] uses {name!r}, which comes after it "
                    f"(column {position[owner]} vs {position[column.name]})",
                    fix=f"move column {owner!r} before {column.name!r}",
                )
    for n, condition in enumerate(keep_conditions(config)):
        for name in sorted(_references(condition, True, f"generator.keep[{n}]")):
            if name not in defined:
                raise ConfigError(
                    f"generator.keep[{n}] uses {name!r}, which is no column",
                    fix=f"use column names (columns: {sorted(defined)})",
                )
    for column in columns:
        where = f"generator.columns[{column.name}]"
        if isinstance(column, LLMJudgeColumn):
            names = []
            for item in column.rubric:
                name = item if isinstance(item, str) else item.name
                if name in NEEDS_SOURCE and not column.source_column:
                    raise ConfigError(
                        f"{where}.rubric: {name!r} judges against a source text, and "
                        "source_column is not set",
                        fix="set source_column to the column holding the source passage",
                    )
                names.append(name)
            if len(set(names)) != len(names):
                raise ConfigError(f"{where}.rubric names a criterion twice", fix="drop a repeat")
        if isinstance(column, SourceColumn):
            if source_columns is None:
                raise ConfigError(
                    f"{where} reads the source table and generator.source is not set",
                    fix="set generator.source to a Parquet/CSV/JSONL table",
                )
            if column.source_column not in source_columns:
                raise ConfigError(
                    f"{where}: {column.source_column!r} is not a column of the source",
                    fix=f"use one of {source_columns}",
                )
        if isinstance(column, ValidateColumn) and column.check == "regex":
            try:
                re.compile(column.pattern or "")
            except re.error as exc:
                raise ConfigError(
                    f"{where}.pattern does not compile: {exc}", fix="fix the regex"
                ) from None
        if isinstance(column, ValidateColumn) and column.check == "sql" and column.dialect:
            from sqlglot.dialects.dialect import Dialect

            try:
                Dialect.get_or_raise(column.dialect)
            except ValueError:
                raise ConfigError(
                    f"{where}.dialect {column.dialect!r} is not a sqlglot dialect",
                    fix="use e.g. sqlite, postgres, mysql, duckdb, bigquery",
                ) from None
        if isinstance(column, ValidateColumn) and column.check == "json_schema":
            jsonschema.Draft202012Validator.check_schema(column.json_schema or {})
        if isinstance(column, ValidateColumn) and column.check == "python" and column.run:
            from synthfactory_workers.text import sandbox

            sandbox.require(f"{where}.run")  # model code never runs unconfined
    main = config.main_text_column
    if config.text_column and config.text_column not in {c.name for c in columns}:
        raise ConfigError(
            f"generator.text_column {config.text_column!r} is no column",
            fix=f"use one of {[c.name for c in columns]}",
        )
    if main is None and (config.filters.require_regex or config.filters.blocklist):
        raise ConfigError(
            "generator.filters need a text column and the pipeline has no llm_text column",
            fix="set generator.text_column",
        )
    if not any(isinstance(c, LLM) for c in columns):
        raise ConfigError(
            "generator.columns has no LLM column (llm_text, llm_structured or llm_judge)",
            fix="add one, or use a tabular generator for sampled columns only",
        )


def keep_conditions(config: LLMConfig) -> list[str]:
    keep = config.keep
    items = [keep] if isinstance(keep, str) else list(keep or [])
    return [condition_source(k) for k in items]


# -- execution -----------------------------------------------------------------------------


@dataclass
class Row:
    index: int
    ctx: dict[str, Any] = field(default_factory=dict)
    out: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    rejected_column: str | None = None

    def reject(self, column: str, reason: str) -> None:
        if self.reason is None:
            self.reason, self.rejected_column = reason, column


class Pipeline:
    """One per loaded generator: compiled templates, the source rows, the backend's
    sends through the generator (its journal, failure accounting)."""

    def __init__(self, generator: LLMGenerator, source: pa.Table | None) -> None:
        self.gen = generator
        self.config = generator.config
        self.columns = self.config.pipeline
        self.source = source.to_pylist() if source is not None else None
        self.source_types = {f.name: f.type for f in source.schema} if source is not None else {}
        env = _env()
        self.templates: dict[str, Any] = {}
        self.expressions: dict[str, Any] = {}
        for column in self.columns:
            if isinstance(column, LLM):
                self.templates[column.name] = env.from_string(column.template)
            if isinstance(column, ExpressionColumn):
                inner = as_expression(column.expr)
                self.expressions[column.name] = (
                    env.compile_expression(inner)
                    if inner is not None
                    else env.from_string(column.expr)
                )
        self.keep = [(c, env.compile_expression(c)) for c in keep_conditions(self.config)]
        self.fakers: dict[str, Any] = {}

    def template_sha(self, column: Any) -> str:
        payload = column.model_dump(mode="json", exclude={"name", "model"})
        payload["_system"] = column.system_prompt or self.config.system_prompt
        payload["_sampling"] = self.config.column_sampling(column.sampling).model_dump(mode="json")
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # -- the shard loop --------------------------------------------------------------------

    def generate(self, shard: ShardTask) -> ShardOutput:
        gen = self.gen
        assert gen.backend is not None
        wanted = shard.rows
        kept: list[Row] = []
        rejected: list[Row] = []
        seen_exact: set[int] = set()
        bands_seen: list[dict[int, int]] = []
        stats: dict[str, float] = {
            "prompt_tokens": 0.0,
            "completion_tokens": 0.0,
            "attempts": 0.0,
            "requests_failed": 0.0,
            "pipeline.generated": 0.0,
            "pipeline.kept": 0.0,
        }
        if gen._journal is not None:
            stats["journal_hits"] = 0.0
        budget = self.config.max_attempts_per_row * max(1, wanted)
        tried = 0
        next_index = shard.row_start
        main = self.config.main_text_column
        while len(kept) < wanted and tried < budget:
            missing = wanted - len(kept)
            rate = len(kept) / tried if tried else 1.0
            size = missing if not tried else math.ceil(missing / max(rate, 1 / budget))
            size = max(1, min(size, budget - tried))
            rows = [Row(next_index + k) for k in range(size)]
            next_index += size
            tried += size
            self.run_columns(rows, shard, stats)
            for row in rows:
                stats["pipeline.generated"] += 1
                if row.reason is None:
                    self._keep(row)
                if row.reason is None and main is not None:
                    reason = gen._reject_reason(
                        row.out, seen_exact, bands_seen, text=str(row.out.get(main) or "")
                    )
                    if reason:
                        row.reject(main, reason)
                if row.reason is None and len(kept) < wanted:
                    kept.append(row)
                elif row.reason is not None:
                    rejected.append(row)
                else:  # passed, but the shard is full (batches over-ask by the keep rate)
                    stats["pipeline.surplus"] = stats.get("pipeline.surplus", 0.0) + 1
        stats["pipeline.kept"] = float(len(kept))
        stats["completion_tokens_accepted"] = float(
            sum(r.out.get("completion_tokens", 0) for r in kept)
        )
        for backend in gen.all_backends():
            for key, value in backend.take_stats().items():
                if key != "requests_failed":
                    stats[key] = stats.get(key, 0.0) + value
        return ShardOutput(
            self.table([r.out for r in kept], sidecar=True),
            self.table([self._rejected_record(r) for r in rejected], sidecar=False)
            if rejected
            else None,
            stats,
        )

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

    def run_columns(self, rows: list[Row], shard: ShardTask, stats: dict[str, float]) -> None:
        gen = self.gen
        assert gen.backend is not None
        seed = int(shard.seed)
        for row in rows:
            row.out["prompt_index"] = row.index
            row.out["row_id"] = f"{shard.index}:{row.index}"
            row.out["prompt_tokens"] = 0
            row.out["completion_tokens"] = 0
            row.out["model_id"] = gen.backend.model_id
            row.out["model_revision"] = gen.backend.revision
            if self.source is not None:
                if self.config.source_order == "sequential":
                    source_row = row.index % len(self.source)
                else:
                    rng = np.random.default_rng([seed, row.index, 2**31])
                    source_row = int(rng.integers(len(self.source)))
                row.out["source_row"] = source_row
        for ci, column in enumerate(self.columns):
            alive = [r for r in rows if r.reason is None]
            if not alive:
                return
            if isinstance(column, LLMJudgePairwiseColumn):
                from synthfactory_workers.text.pairwise import run_pairwise

                run_pairwise(self, column, ci, alive, seed, stats)
            elif isinstance(column, LLM):
                self._llm(column, ci, alive, seed, stats)
            if isinstance(column, LLM):
                gen._check_failures(shard, stats, gen.backend_for(self.config.column_model(column)))
                continue
            for row in alive:
                try:
                    self._compute(column, ci, row, seed, stats)
                except _RowError as exc:
                    row.reject(column.name, str(exc))

    # -- non-LLM columns -------------------------------------------------------------------

    def _compute(self, column: Any, ci: int, row: Row, seed: int, stats: dict[str, float]) -> None:
        rng = np.random.default_rng([seed, row.index, ci])
        name = column.name
        if isinstance(column, ChoiceColumn):
            self._set(row, name, _choose(column.choices, rng))
        elif isinstance(column, RangeColumn):
            value: Any = (
                int(rng.integers(math.ceil(column.low), math.floor(column.high) + 1))
                if column.integer
                else float(rng.uniform(column.low, column.high))
            )
            self._set(row, name, value)
        elif isinstance(column, UUIDColumn):
            self._set(row, name, str(uuid.UUID(bytes=rng.bytes(16), version=4)))
        elif isinstance(column, DatetimeColumn):
            lo = datetime.fromisoformat(column.start).timestamp()
            hi = datetime.fromisoformat(column.end).timestamp()
            stamp = datetime.fromtimestamp(float(rng.uniform(lo, hi)))
            self._set(row, name, stamp.strftime(column.format))
        elif isinstance(column, CategoryByColumn):
            key = row.ctx.get(column.column)
            options = column.choices.get(str(key), column.default)
            if options is None:
                raise _RowError(f"no_options: {column.column}={key!r} is not in choices")
            self._set(row, name, _choose(options, rng))
        elif isinstance(column, PersonColumn):
            person = self._person(column, rng)
            row.ctx[name] = person
            for key, value in person.items():
                row.out[f"{name}.{key}"] = value
        elif isinstance(column, SourceColumn):
            assert self.source is not None
            self._set(row, name, self.source[row.out["source_row"]].get(column.source_column))
        elif isinstance(column, ExpressionColumn):
            expression = self.expressions[name]
            try:
                value = (
                    expression.render(**row.ctx)
                    if hasattr(expression, "render")
                    else expression(**row.ctx)
                )
            except Exception as exc:  # jinja2 errors, TypeError on None, ...
                raise _RowError(f"expression_error: {exc}") from None
            if value is not None and not isinstance(value, str | int | float | bool):
                value = str(value)
            self._set(row, name, _cast(value, column.dtype))
        elif isinstance(column, ValidateColumn):
            from synthfactory_workers.text.validators import validate

            test = None
            if column.test and "{" in column.test:
                try:
                    test = _env().from_string(column.test).render(**row.ctx)
                except Exception as exc:  # jinja2 errors
                    raise _RowError(f"test_error: {exc}") from None
            ok, error = validate(column, row.ctx.get(column.column), test)
            stats[f"validate.{name}.checked"] = stats.get(f"validate.{name}.checked", 0.0) + 1
            stats[f"validate.{name}.passed"] = stats.get(f"validate.{name}.passed", 0.0) + ok
            self._set(row, name, ok)
            self._set(row, f"{name}_error", error)
        else:  # pragma: no cover - the union is closed
            raise _RowError(f"unknown column kind {column.kind}")

    @staticmethod
    def _set(row: Row, name: str, value: Any) -> None:
        row.ctx[name] = value
        row.out[name] = value

    def _person(self, column: PersonColumn, rng: np.random.Generator) -> dict[str, Any]:
        from faker import Faker

        locale = str(_choose(column.locales, rng))
        fake = self.fakers.get(locale)
        if fake is None:
            fake = self.fakers[locale] = Faker(locale)
        fake.seed_instance(int(rng.integers(2**62)))
        sex = str(_choose(dict(column.sex), rng))
        first = fake.first_name_female() if sex == "female" else fake.first_name_male()
        last = fake.last_name()
        person = {
            "name": f"{first} {last}",
            "first_name": first,
            "last_name": last,
            "sex": sex,
            "age": int(rng.integers(column.age[0], column.age[1] + 1)),
            "locale": locale,
            "occupation": fake.job(),
            "city": fake.city(),
        }
        assert tuple(person) == PERSON_FIELDS
        return person

    # -- LLM columns ---------------------------------------------------------------------

    def _llm(
        self, column: Any, ci: int, rows: list[Row], seed: int, stats: dict[str, float]
    ) -> None:
        from synthfactory_workers.text.rubrics import (
            JUDGE_SYSTEM,
            JUDGE_SYSTEM_PLAIN,
            judge_prompt,
            judge_schema,
        )

        gen = self.gen
        key = self.config.column_model(column)
        backend = gen.backend_for(key)
        name = column.name
        system = column.system_prompt or self.config.system_prompt
        schema: dict[str, Any] | None = None
        if isinstance(column, LLMJudgeColumn):
            system = column.system_prompt or JUDGE_SYSTEM
            schema = judge_schema(column)
        elif isinstance(column, LLMStructuredColumn):
            schema = column.json_schema
        users: dict[int, str] = {}
        plain: dict[int, str] = {}  # a lenient judge's retries ask for "criterion: score"
        ready: list[Row] = []
        for row in rows:
            try:
                user = self.templates[name].render(**row.ctx)
                if isinstance(column, LLMJudgeColumn):
                    source = (
                        None
                        if column.source_column is None
                        else str(row.ctx.get(column.source_column))
                    )
                    if column.lenient:
                        plain[row.index] = judge_prompt(column, user, source, plain=True)
                    user = judge_prompt(column, user, source)
            except Exception as exc:
                row.reject(name, f"template_error: {exc}")
                continue
            users[row.index] = user
            ready.append(row)
        tries = 1 if isinstance(column, LLMTextColumn) else column.max_retries + 1
        overrides: dict[str, Any] = {
            "sampling": self.config.column_sampling(column.sampling),
            "json_schema": schema,
        }
        validator: Any = None
        if isinstance(column, LLMStructuredColumn):
            import jsonschema

            validator = jsonschema.Draft202012Validator(column.json_schema)
        previous = getattr(backend, "config", None)
        if previous is not None:
            backend.config = previous.model_copy(update=overrides)  # type: ignore[attr-defined]
        try:
            pending = ready
            for attempt in range(tries):
                if not pending:
                    break
                asked, told = users, system
                if attempt and plain:
                    asked, told = plain, column.system_prompt or JUDGE_SYSTEM_PLAIN
                requests = [
                    Request(
                        _messages(told, asked[r.index]),
                        column_seed(seed, r.index, ci, attempt),
                        top_logprobs(column),
                    )
                    for r in pending
                ]
                completions = gen._send(requests, stats, backend)
                still: list[Row] = []
                for row, request, completion in zip(pending, requests, completions, strict=True):
                    self.account(column, row, request, completion, attempt, stats)
                    if completion.error is not None:
                        row.reject(name, f"request_failed: {completion.error}")
                        continue
                    error = self._store(column, row, completion.text, validator, completion)
                    if error is None:
                        continue
                    if attempt + 1 < tries:
                        still.append(row)
                    else:
                        row.out[f"{name}__raw"] = completion.text
                        row.reject(name, error)
                pending = still
        finally:
            if previous is not None:
                backend.config = previous  # type: ignore[attr-defined]

    def account(
        self,
        column: Any,
        row: Row,
        request: Request,
        completion: Completion,
        attempt: int,
        stats: dict[str, float],
    ) -> None:
        """Count a completion in the shard's stats (tokens, attempts, cost, failures) and
        record its lineage in the row."""
        key = self.config.column_model(column)
        backend = self.gen.backend_for(key)
        engine = (self.config if key is None else self.config.for_model(key)).backend
        prices = getattr(engine, "price_per_million_tokens", None)
        stats["prompt_tokens"] += completion.prompt_tokens
        stats["completion_tokens"] += completion.completion_tokens
        stats["attempts"] += 1
        if prices is not None:  # each model at its own backend's prices
            cost = completion.prompt_tokens * prices.prompt
            cost += completion.completion_tokens * prices.completion
            stats["cost_usd"] = stats.get("cost_usd", 0.0) + cost / 1e6
        row.out["prompt_tokens"] += completion.prompt_tokens
        row.out["completion_tokens"] += completion.completion_tokens
        lineage = {
            "model": backend.model_id,
            "revision": backend.revision,
            "seed": request.seed & (2**63 - 1),
            "template_sha": self.template_sha(column),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "attempt": attempt,
            "finish_reason": completion.finish_reason,
        }
        if isinstance(column, LLMTextColumn | LLMStructuredColumn):
            lineage["prompt"] = request.messages[-1]["content"]
        for field_name, value in lineage.items():
            row.out[f"{column.name}__{field_name}"] = value
        if completion.error is not None:
            stats["requests_failed"] += 1
            gen = self.gen
            if not gen._first_failure or gen._first_failure.startswith("not sent"):
                gen._first_failure = completion.error

    def _store(
        self, column: Any, row: Row, text: str, validator: Any, completion: Completion | None = None
    ) -> str | None:
        """Put the reply into the row; why it cannot be used otherwise."""
        from synthfactory_workers.text.generator import extract_json
        from synthfactory_workers.text.rubrics import parse_judgement, weighted_scores

        name = column.name
        if isinstance(column, LLMTextColumn):
            self._set(row, name, text)
            return None
        if isinstance(column, LLMJudgeColumn):
            scores, error = parse_judgement(column, text)
            if scores is None:
                return f"judge_unreadable: {error}"
            logprobs = completion.logprobs if completion is not None else None
            scores = weighted_scores(column, scores, logprobs)
            row.ctx[name] = scores
            for criterion, entry in scores.items():
                for part in JUDGE_FIELDS:
                    row.out[f"{name}.{criterion}.{part}"] = entry[part]
                row.out[f"{name}__{criterion}__source"] = entry["source"]
            return None
        try:
            value = extract_json(text)
        except ValueError as exc:
            return f"invalid_json: {exc}"
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            return f"schema_violation: {errors[0].message}"
        row.ctx[name] = value
        for key in column.json_schema["properties"]:
            item = value.get(key)
            row.out[f"{name}.{key}"] = json.dumps(item) if isinstance(item, dict | list) else item
        return None

    # -- the tables ------------------------------------------------------------------------

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        json_types = {
            "string": pa.string(),
            "integer": pa.int64(),
            "number": pa.float64(),
            "boolean": pa.bool_(),
        }
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
        for column in self.columns:
            name = column.name
            if isinstance(column, LLM):
                for key in LINEAGE:
                    types[f"{name}__{key}"] = (
                        pa.int64()
                        if key in ("seed", "prompt_tokens", "completion_tokens", "attempt")
                        else pa.string()
                    )
                types[f"{name}__raw"] = pa.string()
            if isinstance(column, ChoiceColumn | CategoryByColumn):
                options = (
                    [column.choices]
                    if isinstance(column, ChoiceColumn)
                    else [*column.choices.values(), column.default or []]
                )
                values = [v for o in options for v in (o if isinstance(o, list) else list(o))]
                types[name] = _value_type(values)
            elif isinstance(column, RangeColumn):
                types[name] = pa.int64() if column.integer else pa.float64()
            elif isinstance(column, UUIDColumn | DatetimeColumn | LLMTextColumn):
                types[name] = pa.string()
            elif isinstance(column, PersonColumn):
                for key in PERSON_FIELDS:
                    types[f"{name}.{key}"] = pa.int64() if key == "age" else pa.string()
            elif isinstance(column, SourceColumn):
                source_type = self.source_types.get(column.source_column)
                if source_type is not None:
                    types[name] = source_type
            elif isinstance(column, LLMStructuredColumn):
                for key, prop in column.json_schema["properties"].items():
                    kind = prop.get("type") if isinstance(prop, dict) else None
                    types[f"{name}.{key}"] = (
                        json_types[kind]
                        if isinstance(kind, str) and kind in json_types
                        else pa.string()
                    )
            elif isinstance(column, LLMJudgeColumn | LLMJudgePairwiseColumn):
                types.update(_judge_types(column))
            elif isinstance(column, ValidateColumn):
                types[name] = pa.bool_()
                types[f"{name}_error"] = pa.string()
            elif isinstance(column, ExpressionColumn) and column.dtype != "auto":
                types[name] = {
                    "string": pa.string(),
                    "int": pa.int64(),
                    "float": pa.float64(),
                    "bool": pa.bool_(),
                }[column.dtype]
        return types

    def table(self, records: list[dict[str, Any]], sidecar: bool) -> pa.Table:
        import pyarrow as pa

        types = self.arrow_types()
        order = [f for c in self.columns for f in column_fields(c)]
        if not records:
            return pa.schema([(f, types.get(f, pa.string())) for f in order]).empty_table()
        exact = [r.pop("__exact", 0) for r in records]
        bands = [r.pop("__lsh_bands", []) for r in records]
        names: list[str] = []
        for record in records:
            for key in record:
                if key not in names:
                    names.append(key)
        front = [n for n in order if n in names]
        names = front + [n for n in names if n not in front]
        arrays = []
        for key in names:
            values = [r.get(key) for r in records]
            arrow_type = types.get(key)
            try:
                arrays.append(pa.array(values, arrow_type))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arrays.append(pa.array([None if v is None else str(v) for v in values]))
        table = pa.table(dict(zip(names, arrays, strict=True)))
        if sidecar and self.config.main_text_column is not None:
            if self.config.dedup.exact:
                table = table.append_column("__exact", pa.array(exact, pa.uint64()))
            if self.config.dedup.near:
                table = table.append_column("__lsh_bands", pa.array(bands, pa.list_(pa.uint64())))
        return table


class _RowError(Exception):
    """A value a row cannot have: the row is rejected with this reason."""


def top_logprobs(column: Any) -> int:
    """Alternatives per token a column asks for: a judge scoring from probabilities."""
    from synthfactory_workers.text.logprobs import TOP_LOGPROBS

    wants = isinstance(column, LLMJudgeColumn) and column.scores_from == "probability"
    return TOP_LOGPROBS if wants else 0


def _judge_types(column: LLMJudgeColumn | LLMJudgePairwiseColumn) -> dict[str, pa.DataType]:
    """The Arrow types of a judge's fields and of its ``__source`` lineage."""
    import pyarrow as pa

    parts = {"score": pa.int64(), "expected": pa.float64(), "mass": pa.float64()}
    parts.update(std=pa.float64(), consistent=pa.bool_(), prob_a=pa.float64())
    types = {f: parts.get(f.rsplit(".", 1)[1], pa.string()) for f in column_fields(column)}
    if isinstance(column, LLMJudgeColumn):
        for criterion in criteria(column):
            types[f"{column.name}__{criterion.name}__source"] = pa.string()
    else:
        types[f"{column.name}__source"] = pa.string()
    return types


def _messages(system: str | None, user: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return messages


def _choose(choices: Any, rng: np.random.Generator) -> Any:
    if isinstance(choices, dict):
        keys = list(choices)
        weights = np.asarray(list(choices.values()), dtype=float)
        return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]
    return choices[int(rng.integers(len(choices)))]


def _value_type(values: list[Any]) -> pa.DataType:
    import pyarrow as pa

    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def _cast(value: Any, dtype: str) -> Any:
    if value is None or dtype == "auto":
        return value
    try:
        if dtype == "string":
            return str(value)
        if dtype == "int":
            return int(float(value))
        if dtype == "float":
            return float(value)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1", "yes")
        return bool(value)
    except (TypeError, ValueError) as exc:
        raise _RowError(f"expression_error: {value!r} is not {dtype}: {exc}") from None
