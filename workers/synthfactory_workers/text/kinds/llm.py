"""LLM kinds: ``llm_text``, ``llm_structured`` and ``llm_judge`` (``llm_judge_pairwise`` is
in ``kinds/pairwise.py``). A column renders its template for every live row, sends one batch
of requests (each with its own seed from (shard seed, row, column, attempt)) through the
generator's journaled requests, and retries only the rows whose reply did not parse.

Lineage, per LLM column ``c``: ``c__model``, ``c__revision``, ``c__seed``,
``c__template_sha`` (sha256 of the column's system prompt, template, rubric/schema and
sampling, 16 hex), ``c__prompt_tokens``, ``c__completion_tokens``, ``c__attempt`` (the
retry that parsed), ``c__finish_reason``; ``c__prompt`` (the rendered user prompt) for
``llm_text`` and ``llm_structured`` columns."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.spec.judges import JUDGE_FIELDS, NEEDS_SOURCE
from synthfactory_workers.text.backend import Completion, Request, TextBackend
from synthfactory_workers.text.kinds.base import (
    ColumnKind,
    PipelineView,
    Row,
    column_seed,
    jinja_env,
    json_arrow_type,
    messages,
)
from synthfactory_workers.text.requests import cost_usd

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory_workers.contract import ShardTask

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
_INT_LINEAGE = ("seed", "prompt_tokens", "completion_tokens", "attempt")


class LLMKind(ColumnKind):
    """What every LLM column shares: its template, backend, settings, accounting."""

    keeps_prompt = False
    """Whether the rendered user prompt is lineage (``<name>__prompt``)."""

    def __init__(self, column: Any, pipe: PipelineView | None = None) -> None:
        super().__init__(column, pipe)
        self.template = jinja_env().from_string(column.template)

    @property
    def key(self) -> str | None:
        return self.pipe.config.column_model(self.column)

    @property
    def backend(self) -> TextBackend:
        return self.pipe.engine.backend_for(self.key)

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        types = {
            f"{self.name}__{key}": pa.int64() if key in _INT_LINEAGE else pa.string()
            for key in LINEAGE
        }
        types[f"{self.name}__raw"] = pa.string()
        return types

    def template_sha(self) -> str:
        config, column = self.pipe.config, self.column
        payload = column.model_dump(mode="json", exclude={"name", "model"})
        payload["_system"] = column.system_prompt or config.system_prompt
        payload["_sampling"] = config.column_sampling(column.sampling).model_dump(mode="json")
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @contextmanager
    def settings(self, schema: dict[str, Any] | None) -> Iterator[TextBackend]:
        """The column's backend with the column's sampling and reply schema, for the
        duration of the column's requests."""
        backend = self.backend
        previous = getattr(backend, "config", None)
        if previous is not None:
            overrides = {
                "sampling": self.pipe.config.column_sampling(self.column.sampling),
                "json_schema": schema,
            }
            backend.config = previous.model_copy(update=overrides)  # type: ignore[attr-defined]
        try:
            yield backend
        finally:
            if previous is not None:
                backend.config = previous  # type: ignore[attr-defined]

    def send(
        self, requests: list[Request], stats: dict[str, float], backend: TextBackend
    ) -> list[Completion]:
        return self.pipe.engine.requests.send(requests, stats, backend)

    def account(
        self,
        row: Row,
        request: Request,
        completion: Completion,
        attempt: int,
        stats: dict[str, float],
    ) -> None:
        """Count a completion in the shard's stats (tokens, attempts, cost, failures) and
        record its lineage in the row."""
        config, key = self.pipe.config, self.key
        engine = (config if key is None else config.for_model(key)).backend
        stats["prompt_tokens"] += completion.prompt_tokens
        stats["completion_tokens"] += completion.completion_tokens
        stats["attempts"] += 1
        cost = cost_usd(engine, completion.prompt_tokens, completion.completion_tokens)
        if cost is not None:  # each model at its own backend's prices
            stats["cost_usd"] = stats.get("cost_usd", 0.0) + cost
        row.out["prompt_tokens"] += completion.prompt_tokens
        row.out["completion_tokens"] += completion.completion_tokens
        backend = self.backend
        lineage = {
            "model": backend.model_id,
            "revision": backend.revision,
            "seed": request.seed & (2**63 - 1),
            "template_sha": self.template_sha(),
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "attempt": attempt,
            "finish_reason": completion.finish_reason,
        }
        if self.keeps_prompt:
            lineage["prompt"] = request.messages[-1]["content"]
        for field_name, value in lineage.items():
            row.out[f"{self.name}__{field_name}"] = value
        if completion.error is not None:
            stats["requests_failed"] += 1
            self.pipe.engine.requests.failed(completion.error)

    def run(self, ci: int, rows: list[Row], shard: ShardTask, stats: dict[str, float]) -> None:
        self.ask(ci, rows, int(shard.seed), stats)
        self.pipe.engine.requests.check_failures(shard, stats, self.backend)

    # -- one column's requests -----------------------------------------------------------

    def system(self) -> str | None:
        return self.column.system_prompt or self.pipe.config.system_prompt

    def schema(self) -> dict[str, Any] | None:
        return None

    def tries(self) -> int:
        return int(self.column.max_retries) + 1

    def top_logprobs(self) -> int:
        return 0

    def prompts(self, row: Row) -> tuple[str, str | None]:
        """(the user prompt, the one retries send instead, if any) of a row."""
        return self.template.render(**row.ctx), None

    def retry_system(self) -> str | None:
        return self.system()

    def store(self, row: Row, completion: Completion) -> str | None:
        """Put the reply into the row; why it cannot be used otherwise."""
        raise NotImplementedError

    def ask(self, ci: int, rows: list[Row], seed: int, stats: dict[str, float]) -> None:
        """Every live row's request, the unparsed ones asked again up to ``tries``."""
        users: dict[int, str] = {}
        plain: dict[int, str] = {}  # a lenient judge's retries ask for "criterion: score"
        ready: list[Row] = []
        for row in rows:
            try:
                user, retry = self.prompts(row)
            except Exception as exc:
                row.reject(self.name, f"template_error: {exc}")
                continue
            users[row.index] = user
            if retry is not None:
                plain[row.index] = retry
            ready.append(row)
        tries = self.tries()
        with self.settings(self.schema()) as backend:
            pending = ready
            for attempt in range(tries):
                if not pending:
                    break
                asked, told = users, self.system()
                if attempt and plain:
                    asked, told = plain, self.retry_system()
                requests = [
                    Request(
                        messages(told, asked[r.index]),
                        column_seed(seed, r.index, ci, attempt),
                        self.top_logprobs(),
                    )
                    for r in pending
                ]
                completions = self.send(requests, stats, backend)
                pending = self.read(pending, requests, completions, attempt, tries, stats)

    def read(
        self,
        rows: list[Row],
        requests: list[Request],
        completions: list[Completion],
        attempt: int,
        tries: int,
        stats: dict[str, float],
    ) -> list[Row]:
        """Account and store each reply: the rows to ask again."""
        still: list[Row] = []
        for row, request, completion in zip(rows, requests, completions, strict=True):
            self.account(row, request, completion, attempt, stats)
            if completion.error is not None:
                row.reject(self.name, f"request_failed: {completion.error}")
                continue
            error = self.store(row, completion)
            if error is None:
                continue
            if attempt + 1 < tries:
                still.append(row)
            else:
                row.out[f"{self.name}__raw"] = completion.text
                row.reject(self.name, error)
        return still


class LLMText(LLMKind):
    keeps_prompt = True

    def tries(self) -> int:
        return 1

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        return {**super().arrow_types(), self.name: pa.string()}

    def store(self, row: Row, completion: Completion) -> str | None:
        row.set(self.name, completion.text)
        return None


class LLMStructured(LLMKind):
    keeps_prompt = True

    def __init__(self, column: Any, pipe: PipelineView | None = None) -> None:
        import jsonschema

        super().__init__(column, pipe)
        self.validator = jsonschema.Draft202012Validator(column.json_schema)

    def schema(self) -> dict[str, Any] | None:
        return self.column.json_schema

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        types = super().arrow_types()
        for key, prop in self.column.json_schema["properties"].items():
            types[f"{self.name}.{key}"] = json_arrow_type(prop) or pa.string()
        return types

    def store(self, row: Row, completion: Completion) -> str | None:
        from synthfactory_workers.text.filters import parse_json

        value, error = parse_json(completion.text, self.validator)
        if error is not None:
            return error
        row.ctx[self.name] = value
        for key in self.column.json_schema["properties"]:
            item = value.get(key)
            row.out[f"{self.name}.{key}"] = (
                json.dumps(item) if isinstance(item, dict | list) else item
            )
        return None


def judge_types(column: Any) -> dict[str, pa.DataType]:
    """The Arrow types of a judge's fields (``<name>.<...>.<part>``)."""
    import pyarrow as pa

    parts = {"score": pa.int64(), "expected": pa.float64(), "mass": pa.float64()}
    parts.update(std=pa.float64(), consistent=pa.bool_(), prob_a=pa.float64())
    return {f: parts.get(f.rsplit(".", 1)[1], pa.string()) for f in column.fields()}


class LLMJudge(LLMKind):
    def check(self, where: str, source_columns: list[str] | None) -> None:
        names = []
        for item in self.column.rubric:
            name = item if isinstance(item, str) else item.name
            if name in NEEDS_SOURCE and not self.column.source_column:
                raise ConfigError(
                    f"{where}.rubric: {name!r} judges against a source text, and "
                    "source_column is not set",
                    fix="set source_column to the column holding the source passage",
                )
            names.append(name)
        if len(set(names)) != len(names):
            raise ConfigError(f"{where}.rubric names a criterion twice", fix="drop a repeat")

    def system(self) -> str | None:
        from synthfactory_workers.text.rubrics import JUDGE_SYSTEM

        return self.column.system_prompt or JUDGE_SYSTEM

    def retry_system(self) -> str | None:
        from synthfactory_workers.text.rubrics import JUDGE_SYSTEM_PLAIN

        return self.column.system_prompt or JUDGE_SYSTEM_PLAIN

    def schema(self) -> dict[str, Any] | None:
        from synthfactory_workers.text.rubrics import judge_schema

        return judge_schema(self.column)

    def top_logprobs(self) -> int:
        """Alternatives per token: a judge scoring from probabilities reads them."""
        from synthfactory_workers.text.logprobs import TOP_LOGPROBS

        return TOP_LOGPROBS if self.column.scores_from == "probability" else 0

    def prompts(self, row: Row) -> tuple[str, str | None]:
        from synthfactory_workers.text.rubrics import judge_prompt

        c = self.column
        user = self.template.render(**row.ctx)
        source = None if c.source_column is None else str(row.ctx.get(c.source_column))
        plain = judge_prompt(c, user, source, plain=True) if c.lenient else None
        return judge_prompt(c, user, source), plain

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        from synthfactory.spec.columns import criteria

        types = {**super().arrow_types(), **judge_types(self.column)}
        for criterion in criteria(self.column):
            types[f"{self.name}__{criterion.name}__source"] = pa.string()
        return types

    def store(self, row: Row, completion: Completion) -> str | None:
        from synthfactory_workers.text.rubrics import parse_judgement, weighted_scores

        scores, error = parse_judgement(self.column, completion.text)
        if scores is None:
            return f"judge_unreadable: {error}"
        scores = weighted_scores(self.column, scores, completion.logprobs)
        row.ctx[self.name] = scores
        for criterion, entry in scores.items():
            for part in JUDGE_FIELDS:
                row.out[f"{self.name}.{criterion}.{part}"] = entry[part]
            row.out[f"{self.name}__{criterion}__source"] = entry["source"]
        return None
