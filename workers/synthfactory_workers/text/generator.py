"""Text generation: every text job is a pipeline of columns (``text/pipeline.py``); a
``prompt`` spec is the pipeline of its one ``prompt`` column (``text/kinds/prompt.py``).
The generator checks the spec and its models, loads the backends (its own model and a
pooled backend per other model) and runs each shard's pipeline through its journaled
requests."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.contract import Generator, ShardOutput, ShardTask
from synthfactory_workers.text.backend import TextBackend, open_backend
from synthfactory_workers.text.requests import Requests

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec


def _config(spec: JobSpec) -> LLMConfig:
    assert isinstance(spec.generator, LLMConfig)
    return spec.generator


def _check_model(config: LLMConfig) -> dict[str, str]:
    """A ConfigError unless the model can be served as configured; facts for the hash."""
    from synthfactory_workers.text.models import resolve

    if config.openai is not None:
        from synthfactory_workers.text.grammar import uses_schema
        from synthfactory_workers.text.openai_backend import check_server, schema_in_words

        check_server(config)  # key set, server reachable, model served: or a ConfigError
        if uses_schema(config) and schema_in_words(config.openai):
            # since 2026-12-06 the completions API gets the schema in the prompt (it has no
            # response_format): other prompts than before, so other rows
            return {"schema_in_prompt": "completions"}
        return {}
    if config.backend.kind == "vllm":
        from synthfactory_workers.text.vllm_backend import check_vllm

        # an HF model; backend.python exists and has vllm + the driver's ray
        return check_vllm(config)
    resolve(config.model, config.gguf_file)  # raises for a missing local model
    from synthfactory_workers.text.decode_loop import LOOP
    from synthfactory_workers.text.grammar import check_guided

    # the decode loop joins the hash: its rows differ (in the last bits) from the static
    # batches of transformers' generate() used before 2026-12-06
    return {"transformers_decoding": LOOP, **check_guided(config)}


class LLMGenerator(Generator):
    @classmethod
    def companions(cls, spec: JobSpec, telemetry: Any = None) -> Any:
        """A pool per model other than generator.model (``text/model_pool.py``)."""
        config = _config(spec)
        if not config.pool_models:
            return None
        from synthfactory_workers.text.model_pool import ModelPools

        return ModelPools(spec, telemetry)

    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        from synthfactory.sources import fingerprint, read_table

        config = _config(spec)
        facts: dict[str, str] = {}
        if config.prompt is not None:
            # prompt specs have run as a one-column pipeline since 2026-12-06: other rows
            # than the old prompt loop's, so a dataset it half made does not resume
            facts["text_engine"] = "pipeline"
        if config.uses_own_model:
            facts.update(_check_model(config))
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
        source = config.source_uri
        if source:
            columns = read_table(source, spec.storage).column_names
            facts["source_sha256"] = fingerprint(source, spec.storage)
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

    def loaded_engines(self) -> dict[str | None, Any]:
        return dict(self.backends)

    def load(self, reuse: dict[str | None, TextBackend] | None = None) -> None:
        """``reuse``: backends already loaded in this process, by pool key (None: the own
        model), used instead of loading their models again; each gets this spec's engine
        config (``synthfactory preview`` keeps its model across prompt edits)."""
        from synthfactory.sources import read_table
        from synthfactory_workers.text.model_pool import PooledBackend
        from synthfactory_workers.text.pipeline import Pipeline

        uri = self.config.source_uri
        self.pipeline = Pipeline(self, read_table(uri, self.spec.storage) if uri else None)
        for key in self.config.pool_models:
            pool = self.context.companions.get(key)
            if pool is not None:
                self.backends[key] = PooledBackend(self.config.for_model(key), pool)
            else:  # outside a job's actor pool (a generator used directly): in process
                self.backends[key] = self._loaded(self.config.for_model(key), key, reuse)
        if self.config.uses_own_model:
            self.backend = self._loaded(self.config, None, reuse)
            self.backends[None] = self.backend
        else:  # every column runs on another model: this actor only orchestrates
            self.backend = next(iter(self.backends.values()))

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
            return self.pipeline.generate(shard, self.backend, self.all_backends())
        finally:
            self.requests.close()
