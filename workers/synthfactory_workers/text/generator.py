"""Text generation: prompts from templates (and a source dataset) -> LLM completions ->
filters, JSON validation and dedup -> accepted rows, with rejected rows and their reasons."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.contract import Generator, ShardOutput, ShardTask
from synthfactory_workers.prompts import PromptSampler, check
from synthfactory_workers.text.backend import Completion, Request, TextBackend, open_backend
from synthfactory_workers.text.filters import (
    ShardFilter,
    parse_json,
    pop_dedup_keys,
    with_dedup_keys,
)
from synthfactory_workers.text.requests import Requests, add_backend_stats, cost_usd, new_stats

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory.spec import JobSpec


def _config(spec: JobSpec) -> LLMConfig:
    assert isinstance(spec.generator, LLMConfig)
    return spec.generator


def row_seed(shard_seed: int, index: int, attempt: int, completion: int) -> int:
    state = np.random.SeedSequence([shard_seed, index, attempt, completion]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


def _check_model(config: LLMConfig) -> dict[str, str]:
    """A ConfigError unless the model can be served as configured; facts for the hash."""
    from synthfactory_workers.text.models import resolve

    if config.openai is not None:
        from synthfactory_workers.text.openai_backend import check_server

        check_server(config)  # key set, server reachable, model served: or a ConfigError
        return {}
    if config.backend.kind == "vllm":
        from synthfactory_workers.text.vllm_backend import check_vllm

        # an HF model; backend.python exists and has vllm + the driver's ray
        return check_vllm(config)
    resolve(config.model, config.gguf_file)  # raises for a missing local model
    from synthfactory_workers.text.grammar import check_guided

    return check_guided(config)  # xgrammar installed where a schema is enforced


class LLMGenerator(Generator):
    @classmethod
    def companions(cls, spec: JobSpec, telemetry: Any = None) -> Any:
        """A pool per model other than generator.model (``text/model_pool.py``)."""
        config = _config(spec)
        if config.columns is None or not config.pool_models:
            return None
        from synthfactory_workers.text.model_pool import ModelPools

        return ModelPools(spec, telemetry)

    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        from synthfactory.sources import fingerprint, read_table

        config = _config(spec)
        facts: dict[str, str] = {}
        if config.columns is None or config.uses_own_model:
            facts.update(_check_model(config))
        if config.columns is not None:
            from synthfactory_workers.text.model_pool import pool_field

            for key in config.pool_models:
                try:
                    found = _check_model(config.for_model(key))
                except ConfigError as exc:
                    raise ConfigError(
                        f"{pool_field(config, key)}: {exc.message}", fix=exc.fix
                    ) from None
                facts.update({f"{k}[{key}]": v for k, v in found.items()})
        unknown = sorted(set(spec.resources.models) - set(config.pool_models))
        if unknown:
            raise ConfigError(
                f"resources.models.{unknown[0]}: no LLM column runs on a model of that name "
                "in its own pool",
                fix="key resources.models by a column's `model` (other than generator.model)"
                f"; models with pools: {config.pool_models or 'none'}",
            )
        columns = None
        source = config.prompt.source if config.prompt is not None else config.source
        if source:
            columns = read_table(source, spec.storage).column_names
            facts["source_sha256"] = fingerprint(source, spec.storage)
        if config.prompt is not None:
            check(config.prompt, columns)
        else:
            from synthfactory_workers.text.preflight import check_pipeline

            check_pipeline(config, columns)
        for pattern in [*config.filters.require_regex, *config.filters.exclude_regex]:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"filter regex {pattern!r} does not compile: {exc}") from None
        return facts

    def __init__(self, spec: JobSpec, context: Any) -> None:
        super().__init__(spec, context)
        self.config = _config(spec)
        self.backend: TextBackend | None = None
        self.backends: dict[str | None, TextBackend] = {}
        """Every backend the shard calls, by pool key (None: this actor's own model)."""
        self.requests = Requests(spec.resources.batch_size, self.config.backend.journal)
        """The shard's journaled sends (``text/requests.py``)."""

    def load(self, reuse: dict[str | None, TextBackend] | None = None) -> None:
        """``reuse``: backends already loaded in this process, by pool key (None: the own
        model), used instead of loading their models again; each gets this spec's engine
        config (``synthfactory preview`` keeps its model across prompt edits)."""
        from synthfactory.sources import read_table

        prompt = self.config.prompt
        uri = prompt.source if prompt is not None else self.config.source
        source = read_table(uri, self.spec.storage) if uri else None
        if prompt is not None:
            self.prompts = PromptSampler(prompt, source)
        else:
            from synthfactory_workers.text.pipeline import Pipeline

            self.pipeline = Pipeline(self, source)
        if prompt is None:
            from synthfactory_workers.text.model_pool import PooledBackend

            for key in self.config.pool_models:
                pool = self.context.companions.get(key)
                if pool is not None:
                    self.backends[key] = PooledBackend(self.config.for_model(key), pool)
                else:  # outside a job's actor pool (a generator used directly): in process
                    self.backends[key] = self._loaded(self.config.for_model(key), key, reuse)
        if prompt is not None or self.config.uses_own_model:
            self.backend = self._loaded(self.config, None, reuse)
            self.backends[None] = self.backend
        else:  # every column runs on another model: this actor only orchestrates
            self.backend = next(iter(self.backends.values()))
        if self.config.json_schema is not None:
            import jsonschema

            self.validator: Any = jsonschema.Draft202012Validator(self.config.json_schema)

    def _loaded(
        self, config: LLMConfig, key: str | None, reuse: dict[str | None, TextBackend] | None
    ) -> TextBackend:
        backend = (reuse or {}).get(key)
        if backend is not None and hasattr(backend, "config"):
            backend.config = config  # same engine, this spec's sampling and schema
            return backend
        backend = open_backend(config, self.context.device)
        backend.load()
        return backend

    def backend_for(self, key: str | None) -> TextBackend:
        """The backend of pool ``key`` (None: this actor's own model)."""
        backend = self.backends.get(key) or (self.backend if key is None else None)
        if backend is None:
            raise KeyError(f"no backend for model {key!r}: the generator is not loaded")
        return backend

    def all_backends(self) -> list[TextBackend]:
        return list(self.backends.values()) or ([self.backend] if self.backend else [])

    def identity(self) -> dict[str, str]:
        backend = self.backends.get(None)
        out = {
            "generator": "llm",
            "backend": self.config.backend.kind,
            "model": backend.model_id if backend else self.config.model,
            "revision": backend.revision if backend else (self.config.revision or ""),
        }
        others = {k: b for k, b in self.backends.items() if k is not None}
        if others:
            out["column_models"] = ", ".join(
                f"{k}={b.model_id}@{b.revision}" for k, b in others.items()
            )
        return out

    # -- one shard -------------------------------------------------------------------------

    def generate(self, shard: ShardTask) -> ShardOutput:
        assert self.backend is not None
        for backend in self.all_backends():
            backend.take_stats()  # counters of this shard only
        self.requests.open(getattr(self.context, "journal", None), shard)
        try:
            if self.config.columns is not None:
                return self.pipeline.generate(shard, self.backend, self.all_backends())
            return self._generate(shard)
        finally:
            self.requests.close()

    def _generate(self, shard: ShardTask) -> ShardOutput:
        assert self.backend is not None
        n = self.config.n
        wanted = shard.rows
        accepted: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        screen = ShardFilter(self.config.filters, self.config.dedup)
        stats = new_stats(self.requests.journal is not None)
        prompt_index = shard.row_start // n
        attempt = 0
        budget = self.config.max_attempts_per_row * max(1, -(-wanted // n))
        while len(accepted) < wanted and attempt < budget:
            missing = wanted - len(accepted)
            prompts_needed = -(-missing // n)
            batch = [prompt_index + k for k in range(prompts_needed)]
            prompt_index += prompts_needed
            attempt += prompts_needed
            rows = self._complete(batch, shard.seed, stats)
            self.requests.check_failures(shard, stats, self.backend)
            for row in rows:
                reason = self._reject_reason(row, screen)
                if reason:
                    rejected.append({**row, "reason": reason})
                elif len(accepted) < wanted:
                    accepted.append(row)
        stats["completion_tokens_accepted"] = float(sum(r["completion_tokens"] for r in accepted))
        add_backend_stats(stats, [self.backend])
        cost = cost_usd(self.config.backend, stats["prompt_tokens"], stats["completion_tokens"])
        if cost is not None:
            stats["cost_usd"] = cost
        return ShardOutput(
            self._table(accepted, sidecar=True),
            self._table(rejected, sidecar=False) if rejected else None,
            stats,
        )

    def _complete(
        self, prompt_indexes: list[int], seed: int, stats: dict[str, float]
    ) -> list[dict[str, Any]]:
        """Completions for these prompts (n each), with JSON retries; rows ready to filter."""
        assert self.backend is not None
        config = self.config
        rendered = {i: self.prompts.render(i, seed) for i in prompt_indexes}
        pending = [(i, j) for i in prompt_indexes for j in range(config.n)]
        rows: dict[tuple[int, int], dict[str, Any]] = {}
        for attempt in range(config.max_retries + 1 if config.json_schema else 1):
            if not pending:
                break
            requests = [
                Request(self._messages(rendered[i].text), row_seed(seed, i, attempt, j))
                for i, j in pending
            ]
            completions = self.requests.send(requests, stats, self.backend)
            still: list[tuple[int, int]] = []
            for (i, j), request, completion in zip(pending, requests, completions, strict=True):
                stats["prompt_tokens"] += completion.prompt_tokens
                stats["completion_tokens"] += completion.completion_tokens
                stats["attempts"] += 1
                row = self._row(i, j, rendered[i], request.seed, completion, attempt)
                if completion.error is not None:
                    stats["requests_failed"] += 1
                    row["reason_request"] = f"request_failed: {completion.error}"
                    self.requests.failed(completion.error)
                elif config.json_schema is not None:
                    error = self._parse(row)
                    if error and attempt < config.max_retries:
                        still.append((i, j))
                        continue
                    if error:
                        row["reason_json"] = error
                rows[(i, j)] = row
            pending = still
        return [rows[key] for key in sorted(rows)]

    def _messages(self, user: str) -> list[dict[str, str]]:  # the one-prompt path
        messages = []
        if self.config.system_prompt:
            messages.append({"role": "system", "content": self.config.system_prompt})
        messages.append({"role": "user", "content": user})
        return messages

    def _row(
        self,
        index: int,
        completion_index: int,
        rendered: Any,
        seed: int,
        completion: Completion,
        attempt: int,
    ) -> dict[str, Any]:
        s = self.config.sampling
        row: dict[str, Any] = {
            "prompt": rendered.text,
            "completion": completion.text,
            "prompt_index": index,
            "completion_index": completion_index,
            "seed": seed & (2**63 - 1),
            "json_attempt": attempt,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "finish_reason": completion.finish_reason,
            "model_id": self.backend.model_id if self.backend else self.config.model,
            "model_revision": self.backend.revision if self.backend else "",
            "temperature": 0.0 if s.greedy else s.temperature,
            "top_p": s.top_p,
            "top_k": s.top_k,
            "max_new_tokens": s.max_new_tokens,
            "source_row": rendered.source_row,
            "repeats_system_prompt": self._repeats_system_prompt(completion.text),
        }
        for name, value in rendered.variables.items():
            row[f"var_{name}"] = None if value is None else str(value)
        return row

    def _repeats_system_prompt(self, text: str) -> bool:
        system = (self.config.system_prompt or "").strip().lower()
        if len(system) < 20:
            return False
        words = system.split()
        probes = [" ".join(words[i : i + 6]) for i in range(0, max(1, len(words) - 5), 3)]
        lowered = " ".join(text.lower().split())
        return any(p in lowered for p in probes)

    def _parse(self, row: dict[str, Any]) -> str | None:
        value, error = parse_json(row["completion"], self.validator)
        if error is None:
            row["parsed"] = value
        return error

    def _reject_reason(self, row: dict[str, Any], screen: ShardFilter) -> str | None:
        """A failed request or reply, else the filters and in-shard dedup."""
        if "reason_request" in row:
            return str(row.pop("reason_request"))
        if "reason_json" in row:
            return str(row.pop("reason_json"))
        return screen.reject_reason(row, row["completion"])

    def _table(self, rows: list[dict[str, Any]], sidecar: bool) -> pa.Table:
        import pyarrow as pa

        records = []
        for row in rows:
            record = {
                k: v
                for k, v in row.items()
                if k != "parsed" and (sidecar or not k.startswith("__"))
            }
            if not sidecar:
                record.pop("__exact", None)
                record.pop("__lsh_bands", None)
            parsed = row.get("parsed")
            if isinstance(parsed, dict):
                for key, value in parsed.items():
                    record[f"json_{key}"] = value
            elif parsed is not None:
                record["json_value"] = json.dumps(parsed)
            records.append(record)
        if not sidecar:
            return pa.Table.from_pylist(records)
        schema_fields = self._json_fields()
        if not records:
            return pa.schema([("prompt", pa.string()), ("completion", pa.string())]).empty_table()
        keys = pop_dedup_keys(records)
        table = with_dedup_keys(pa.Table.from_pylist(records), keys, self.config.dedup)
        for name, arrow_type in schema_fields.items():
            if name in table.column_names:
                try:
                    index = table.schema.get_field_index(name)
                    table = table.set_column(index, name, table[name].cast(arrow_type))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    pass  # keep what the values are; the schema check already passed
        return table

    def _json_fields(self) -> dict[str, pa.DataType]:
        """Arrow types for the JSON Schema's top-level properties (typed columns)."""
        import pyarrow as pa

        schema = self.config.json_schema or {}
        mapping = {
            "string": pa.string(),
            "integer": pa.int64(),
            "number": pa.float64(),
            "boolean": pa.bool_(),
        }
        out = {}
        for key, prop in (schema.get("properties") or {}).items():
            kind = prop.get("type") if isinstance(prop, dict) else None
            if isinstance(kind, str) and kind in mapping:
                out[f"json_{key}"] = mapping[kind]
        return out
