"""The one column of a ``prompt`` spec (``PromptColumn``: ``completion``), so a prompt spec
runs through the same pipeline as ``columns`` (keep, filters, dedup, top-up, tables).

Row ``i`` is completion ``i % n`` of prompt ``i // n``: the prompt is rendered from the
template and its variables (``PromptSampler``, seeded by (shard seed, prompt)), each request
seeded by (shard seed, prompt, JSON attempt, completion) (``row_seed``). Where the job has a
``json_schema`` a reply that does not validate is asked again (``max_retries``), then
rejected. Columns: ``prompt``, ``completion``, ``completion_index``, ``seed``,
``json_attempt``, ``finish_reason``, the decoding settings, ``repeats_system_prompt``,
``var_<name>`` per variable and ``json_<property>`` per top-level schema property (or
``json_value``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory_workers.prompt_sampler import PromptSampler, RenderedPrompt, check
from synthfactory_workers.text.backend import Completion, Request
from synthfactory_workers.text.filters import parse_json
from synthfactory_workers.text.kinds.base import (
    ColumnKind,
    PipelineView,
    Row,
    json_arrow_type,
    messages,
)
from synthfactory_workers.text.requests import cost_usd

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory_workers.contract import ShardTask

#: Arrow type of each column the kind writes besides ``json_*`` (``var_*`` are strings)
_TYPES = {
    "prompt": "string",
    "completion": "string",
    "completion_index": "int64",
    "seed": "int64",
    "json_attempt": "int64",
    "finish_reason": "string",
    "temperature": "float64",
    "top_p": "float64",
    "top_k": "int64",
    "max_new_tokens": "int64",
    "repeats_system_prompt": "bool_",
}


def row_seed(shard_seed: int, index: int, attempt: int, completion: int) -> int:
    """The seed of completion ``completion`` of prompt ``index``, JSON attempt ``attempt``."""
    state = np.random.SeedSequence([shard_seed, index, attempt, completion]).generate_state(2)
    return int(state[0]) << 32 | int(state[1])


class PromptKind(ColumnKind):
    def __init__(self, column: Any, pipe: PipelineView | None = None) -> None:
        super().__init__(column, pipe)
        self.validator: Any = None
        if pipe is not None:
            self.prompts = PromptSampler(column.prompt, pipe.source)
            if pipe.config.json_schema is not None:
                import jsonschema

                self.validator = jsonschema.Draft202012Validator(pipe.config.json_schema)

    def check(self, where: str, source_columns: list[str] | None) -> None:
        check(self.column.prompt, source_columns)

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        types = {name: getattr(pa, kind)() for name, kind in _TYPES.items()}
        schema = self.pipe.config.json_schema or {}
        for key, prop in (schema.get("properties") or {}).items():
            found = json_arrow_type(prop)
            if found is not None:  # other properties: inferred from the values
                types[f"json_{key}"] = found
        for name in self.column.prompt.variables:
            types[f"var_{name}"] = pa.string()
        return types

    def run(self, ci: int, rows: list[Row], shard: ShardTask, stats: dict[str, float]) -> None:
        config, engine = self.pipe.config, self.pipe.engine
        seed, n = int(shard.seed), config.n
        rendered = {i: self.prompts.render(i, seed) for i in sorted({r.index // n for r in rows})}
        backend = engine.backend_for(None)
        pending = rows
        tries = config.max_retries + 1 if config.json_schema else 1
        for attempt in range(tries):
            if not pending:
                break
            requests = [
                Request(
                    messages(config.system_prompt, rendered[r.index // n].text),
                    row_seed(seed, r.index // n, attempt, r.index % n),
                )
                for r in pending
            ]
            completions = engine.requests.send(requests, stats, backend)
            still: list[Row] = []
            for row, request, completion in zip(pending, requests, completions, strict=True):
                self._fill(row, rendered[row.index // n], request, completion, attempt, stats)
                error = self._reply_error(row, completion)
                if error is None:
                    continue
                if completion.error is None and attempt + 1 < tries:
                    still.append(row)
                else:
                    row.reject(self.name, error)
            pending = still
        engine.requests.check_failures(shard, stats, backend)

    def _fill(
        self,
        row: Row,
        rendered: RenderedPrompt,
        request: Request,
        completion: Completion,
        attempt: int,
        stats: dict[str, float],
    ) -> None:
        """The reply and its bookkeeping in the row; tokens, attempts and cost in the stats."""
        config = self.pipe.config
        stats["prompt_tokens"] += completion.prompt_tokens
        stats["completion_tokens"] += completion.completion_tokens
        stats["attempts"] += 1
        if completion.error is not None:
            stats["requests_failed"] += 1
        cost = cost_usd(config.backend, completion.prompt_tokens, completion.completion_tokens)
        if cost is not None:
            stats["cost_usd"] = stats.get("cost_usd", 0.0) + cost
        s = config.sampling
        row.out.update(
            prompt=rendered.text,
            completion=completion.text,
            prompt_index=row.index // config.n,
            completion_index=row.index % config.n,
            seed=request.seed & (2**63 - 1),
            json_attempt=attempt,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            finish_reason=completion.finish_reason,
            temperature=0.0 if s.greedy else s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            max_new_tokens=s.max_new_tokens,
            source_row=rendered.source_row,
            repeats_system_prompt=self._repeats_system_prompt(completion.text),
        )
        row.ctx["completion"] = completion.text
        for name, value in rendered.variables.items():
            row.out[f"var_{name}"] = None if value is None else str(value)

    def _reply_error(self, row: Row, completion: Completion) -> str | None:
        """Why the reply cannot be used (a failed request, JSON that does not validate);
        a valid JSON reply's values go to the row as ``json_*``."""
        if completion.error is not None:
            self.pipe.engine.requests.failed(completion.error)
            return f"request_failed: {completion.error}"
        if self.validator is None:
            return None
        value, error = parse_json(completion.text, self.validator)
        if error is not None:
            return error
        if isinstance(value, dict):
            row.out.update({f"json_{k}": v for k, v in value.items()})
        else:
            row.out["json_value"] = json.dumps(value)
        return None

    def _repeats_system_prompt(self, text: str) -> bool:
        system = (self.pipe.config.system_prompt or "").strip().lower()
        if len(system) < 20:
            return False
        words = system.split()
        probes = [" ".join(words[i : i + 6]) for i in range(0, max(1, len(words) - 5), 3)]
        lowered = " ".join(text.lower().split())
        return any(p in lowered for p in probes)
