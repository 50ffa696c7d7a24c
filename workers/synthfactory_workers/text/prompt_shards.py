"""The shards of a prompt spec (``generator.prompt``): prompts rendered from the template and
its variables (``PromptSampler``), ``n`` completions each, JSON parsed and retried where a
schema is set, then the filters and in-shard dedup; the columns ``prompt``, ``completion``,
``prompt_index``, ``completion_index``, ``seed``, ``json_*``, ``var_*`` and the decoding
settings. Requests, stats and dedup keys go through the same helpers as a columns pipeline
(``requests.py``, ``filters.py``); the rows and seeds are this path's own, so datasets made
from a prompt spec keep their rows."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory_workers.contract import ShardOutput, ShardTask
from synthfactory_workers.text.backend import Completion, Request, TextBackend
from synthfactory_workers.text.filters import (
    ShardFilter,
    parse_json,
    pop_dedup_keys,
    with_dedup_keys,
)
from synthfactory_workers.text.requests import add_backend_stats, cost_usd, new_stats

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory.spec.generators.text import LLMConfig
    from synthfactory_workers.prompt_sampler import PromptSampler
    from synthfactory_workers.text.requests import Requests


def row_seed(shard_seed: int, index: int, attempt: int, completion: int) -> int:
    state = np.random.SeedSequence([shard_seed, index, attempt, completion]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


class PromptShards:
    """One generator's prompt shards: its config, prompts, JSON validator, own backend and
    journaled requests."""

    def __init__(
        self,
        config: LLMConfig,
        prompts: PromptSampler,
        validator: Any,
        backend: TextBackend,
        requests: Requests,
    ) -> None:
        self.config = config
        self.prompts = prompts
        self.validator = validator
        self.backend = backend
        self.requests = requests

    def generate(self, shard: ShardTask) -> ShardOutput:
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

    def _messages(self, user: str) -> list[dict[str, str]]:
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
