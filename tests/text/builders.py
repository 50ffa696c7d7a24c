"""What the text unit tests build their jobs from: a scripted backend (no model), a columns
spec, a generator with that backend (the stub OpenAI server's fixtures are in conftest)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from synthfactory.spec import load_spec
from synthfactory.spec.generators.text import LLMConfig
from synthfactory.storage import LocalStore
from synthfactory_workers.contract import GeneratorContext
from synthfactory_workers.text.backend import Completion, OnResult, Request, TextBackend
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.pipeline import Pipeline

Script = Callable[[list[dict[str, str]], int], str]


class ScriptedBackend(TextBackend):
    """Answers each request with ``reply`` (in request order), as a backend would."""

    config: Any
    model_id = "fake/model"
    revision = "r1"

    def load(self) -> None:
        pass

    def reply(self, request: Request) -> Completion:
        raise NotImplementedError

    def generate(
        self,
        requests: list[Request],
        batch_size: int,
        on_result: OnResult | None = None,
        max_failures: int | None = None,
    ) -> list[Completion]:
        out = []
        for i, request in enumerate(requests):
            completion = self.reply(request)
            if on_result is not None:
                on_result(i, completion)
            out.append(completion)
        return out


class FakeBackend(ScriptedBackend):
    """Replies from a script of (messages, seed) -> text; records every request."""

    def __init__(self, config: LLMConfig, script: Script) -> None:
        self.config = config
        self.script = script
        self.sent: list[Request] = []
        self.samplings: list[Any] = []

    def reply(self, request: Request) -> Completion:
        self.sent.append(request)
        self.samplings.append(self.config.sampling)
        text = self.script(request.messages, request.seed)
        return Completion(text, 10, len(text.split()), "stop")


def user(messages: list[dict[str, str]]) -> str:
    return messages[-1]["content"]


def spec(tmp: Path, columns: list[dict[str, Any]], **generator: Any) -> Any:
    config: dict[str, Any] = {
        "kind": "llm",
        "model": "builtin:smollm2",
        "columns": columns,
        "dedup": {"exact": False, "near": False},
    }
    config.update(generator)
    return load_spec(
        {
            "name": "pipe",
            "modality": "text",
            "rows": 4,
            "shard_rows": 4,
            "seed": 1,
            "output": str(tmp / "out"),
            "generator": config,
        }
    )


def with_backend(
    job: Any,
    tmp: Path,
    backend: TextBackend,
    journal: Path | None = None,
    source: pa.Table | None = None,
) -> LLMGenerator:
    """A generator of ``job`` whose only backend is ``backend`` (nothing loaded)."""
    context = GeneratorContext(
        artifacts=LocalStore(tmp / "a"), journal=LocalStore(journal) if journal else None
    )
    gen = LLMGenerator(job, context)
    gen.backend = backend
    gen.pipeline = Pipeline(gen, source)
    return gen


def make(
    tmp: Path,
    columns: list[dict[str, Any]],
    script: Script,
    journal: Path | None = None,
    source: pa.Table | None = None,
    **generator: Any,
) -> tuple[LLMGenerator, FakeBackend]:
    job = spec(tmp, columns, **generator)
    backend = FakeBackend(job.generator, script)
    return with_backend(job, tmp, backend, journal, source), backend
