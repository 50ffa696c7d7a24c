"""``synthfactory preview``: a spec's generator on a few rows, in this process.

No Prefect, no Ray, no dataset and no journal: the spec passes the same preflight as
``validate`` and ``run`` (the same named errors), the generator's one-off ``prepare`` (a
tabular fit) runs here, its models load here (a text pipeline's other models too, which a
run serves from their own actor pools), and it generates the shards a run of ``N`` rows
plans (``plan_shards``: shard 0 from row 0, with the run's shard seed). So the rows are
the rows ``synthfactory run --rows N`` writes, and, for every generator whose rows do not
depend on how many rows a shard holds (copulas), the first rows of the full run. Text
rows get the run's prompts, variables and per-row seeds; a transformers model's words
can still differ from the full run's, as they do between batch sizes (the batch a prompt
runs in changes the last bits of its logits, bf16 on a CPU especially).

A tabular fit is cached under ``storage.artifacts`` when the spec sets it, else under the
user's cache (``$SYNTHFACTORY_CACHE``, default ``~/.cache/synthfactory``), never under the
output. Models stay loaded between calls of a ``Previewer``: a new spec whose models and
engines are unchanged (an edited template, sampling, filters, keep) reuses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.sources import job_cache
from synthfactory.spec import JobSpec, load_spec
from synthfactory_flows.plan import plan_shards
from synthfactory_flows.preflight import preflight
from synthfactory_flows.preview_view import PreviewResult, public_columns

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory.storage import ObjectStore
    from synthfactory_workers.contract import Generator

SpecLike = JobSpec | str | Path | dict[str, Any]

DEFAULT_ROWS = 3

#: the engine settings of a text model: a spec that changes none of them keeps the model
ENGINE_FIELDS = {"model", "revision", "gguf_file", "backend", "device", "dtype"}
#: what a generator built from the spec never reads (the shard plan carries the seed)
NOT_GENERATOR = {"seed", "rows", "output", "name", "description"}


def cache_root() -> Path:
    return Path(os.environ.get("SYNTHFACTORY_CACHE", Path.home() / ".cache" / "synthfactory"))


def artifacts_uri(job: JobSpec) -> str:
    """Where ``prepare`` caches fits: the spec's ``storage.artifacts``, else the user's
    cache (a run's default, ``<output>/_artifacts``, is under the output: left alone)."""
    return job.storage.artifacts or str(cache_root() / "preview-artifacts")


def check_spec(spec: SpecLike, seed: int | None = None) -> JobSpec:
    """The spec parsed and through ``preflight`` (the errors ``validate`` gives)."""
    overrides = {"seed": seed} if seed is not None else {}
    if isinstance(spec, JobSpec) and not overrides:
        job = spec
    else:
        job = load_spec(spec if isinstance(spec, JobSpec | dict) else str(spec), **overrides)
    return preflight(job).job


def engines(job: JobSpec) -> dict[str | None, str]:
    """A text job's models, by pool key (None: generator.model), as their engine settings:
    equal settings, same loaded model. Empty for other generators."""
    from synthfactory.spec.generators.text import LLMConfig

    config = job.generator
    if not isinstance(config, LLMConfig):
        return {}
    keys: list[str | None] = [None] if config.uses_own_model else []
    keys += config.pool_models
    out: dict[str | None, str] = {}
    for key in keys:
        model = config if key is None else config.for_model(key)
        settings = model.model_dump(mode="json", include=ENGINE_FIELDS)
        out[key] = json.dumps(settings, sort_keys=True, default=str)
    return out


def check_in_process(job: JobSpec) -> None:
    """A ConfigError, naming the field, for a model this process cannot load: a vllm
    backend whose ``python`` is another interpreter (a run's actors start on it; the
    preview loads every model here)."""
    import importlib.util

    from synthfactory.spec.generators.text import LLMConfig

    config = job.generator
    if not isinstance(config, LLMConfig) or importlib.util.find_spec("vllm") is not None:
        return
    for key in engines(job):
        model = config if key is None else config.for_model(key)
        backend = model.backend
        if backend.kind == "vllm" and getattr(backend, "python", None):
            if key is None:
                where = "generator.backend.python"
            else:
                from synthfactory_workers.text.model_pool import pool_field

                where = f"{pool_field(config, key)} (backend.python)"
            raise ConfigError(
                f"{where}: model {model.model!r} runs on {backend.python}, and the preview "
                "loads every model in this process, whose Python has no vllm",
                fix=f"run the preview with that interpreter: {backend.python} -m "
                "synthfactory_flows.cli preview SPEC",
            )


def generator_key(job: JobSpec) -> str:
    """Everything of the spec a generator built from it may read."""
    return json.dumps(job.model_dump(mode="json", exclude=NOT_GENERATOR), sort_keys=True)


def preview_device(job: JobSpec) -> str:
    """The device a run's actor would be given: a GPU when the spec asks for one and this
    machine has one."""
    from synthfactory_workers.devices import local_device

    return local_device(job.resources.num_gpus)


def math_threads(job: JobSpec) -> None:
    """torch's threads as a run's actor has them (``resources.math_threads``, default
    ``num_cpus``), if torch is loaded: a run's speed and numbers, and no oversubscribed
    cores (on a busy 2-core machine, 2 threads made SmolLM2 several times slower than 1)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    res = job.resources
    threads = res.math_threads or max(1, int(res.num_cpus))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class Previewer:
    """Load a spec's generator once, preview it many times (notebooks)::

        p = Previewer("examples/text_reviews.yaml")
        p.preview(3)                                # loads the model, 3 rows
        p.preview(3, spec=edited)                   # same model: only the prompt changed
        p.preview(5, seed=8)                        # this call only: another seed

    ``spec``: a path, a dict or a JobSpec. Bad specs raise the named errors ``validate``
    gives (SpecError, ConfigError) here, before anything loads."""

    def __init__(self, spec: SpecLike, *, seed: int | None = None) -> None:
        started = time.perf_counter()
        with job_cache():
            self.job = check_spec(spec, seed)
        check_in_process(self.job)
        self._check_seconds = time.perf_counter() - started
        self.generator: Generator | None = None
        self._built_for: JobSpec | None = None
        self._prepared: dict[str, Any] = {}
        self._loaded_now = False
        self._unreported: tuple[float, float] | None = None
        """What ``load()`` did, for the next preview's timings."""

    def load(self) -> float:
        """Prepare and load the generator for the current spec now (the next preview
        reports the time); seconds it took."""
        with job_cache():
            prepare_seconds, load_seconds = self._ensure(self.job)
        if self._loaded_now:
            self._unreported = (prepare_seconds, load_seconds)
        return prepare_seconds + load_seconds

    def preview(
        self, n: int = DEFAULT_ROWS, *, spec: SpecLike | None = None, seed: int | None = None
    ) -> PreviewResult:
        """``n`` rows of ``spec`` (default: the spec given before; a new one is kept for
        the next calls) from ``seed`` (default: the spec's; for this call only)."""
        if n < 1:
            raise ConfigError(f"preview needs at least one row, not {n}", fix="pass n >= 1")
        started = time.perf_counter()
        with job_cache():
            if spec is not None:
                job = check_spec(spec)
                check_in_process(job)
                self.job = job
                check_seconds = time.perf_counter() - started
            else:
                check_seconds, self._check_seconds = self._check_seconds, 0.0
            job = self.job if seed is None else load_spec(self.job, seed=seed)
            prepare_seconds, load_seconds = self._ensure(job)
            loaded = self._loaded_now
            if not loaded and self._unreported is not None:  # loaded by load()
                (prepare_seconds, load_seconds), loaded = self._unreported, True
            self._unreported = None
            started = time.perf_counter()
            math_threads(job)
            outputs = [self._generate(task) for task in plan_shards(job, rows=n)]
            generate_seconds = time.perf_counter() - started
        return combine(
            job,
            outputs,
            check_seconds=check_seconds,
            prepare_seconds=prepare_seconds,
            load_seconds=load_seconds,
            generate_seconds=generate_seconds,
            loaded=loaded,
        )

    def close(self) -> None:
        """Drop the generator and its models."""
        self.generator = None
        self._built_for = None

    # -- building --------------------------------------------------------------------------

    def _ensure(self, job: JobSpec) -> tuple[float, float]:
        """Build, prepare and load the generator for ``job`` unless the one built already
        serves it; (prepare seconds, load seconds) of what was done."""
        from synthfactory.storage import open_store
        from synthfactory_workers.contract import GeneratorContext, generator_class

        self._loaded_now = False
        old = self._built_for
        if self.generator is not None and old is not None and _same(old, job):
            self._built_for = job
            return 0.0, 0.0
        reuse = self._reusable(job)
        self.generator = None  # a model not reused is freed before the next loads
        started = time.perf_counter()
        cls = generator_class(job)
        artifacts = open_store(artifacts_uri(job), job.storage)
        same_prepare = old is not None and _prepare_key(old) == _prepare_key(job)
        if not same_prepare:
            self._prepared = _prepare(cls, job, artifacts)
        prepare_seconds = time.perf_counter() - started
        started = time.perf_counter()
        context = GeneratorContext(
            artifacts=artifacts, prepared=self._prepared, device=preview_device(job)
        )
        generator = cls(job, context)
        math_threads(job)
        if reuse:
            generator.load(reuse=reuse)  # type: ignore[call-arg]
        else:
            generator.load()
        self._loaded_now = len(reuse) < len(engines(job)) or not engines(job)
        self.generator, self._built_for = generator, job
        return prepare_seconds, time.perf_counter() - started

    def _reusable(self, job: JobSpec) -> dict[str | None, Any]:
        """The loaded text backends the new spec's models can keep (same engine settings)."""
        old, generator = self._built_for, self.generator
        if old is None or generator is None:
            return {}
        backends = generator.loaded_engines()
        before, after = engines(old), engines(job)
        return {k: b for k, b in backends.items() if k in after and before.get(k) == after[k]}

    def _generate(self, task: Any) -> Any:
        import pyarrow as pa

        from synthfactory_workers.contract import ShardOutput

        assert self.generator is not None
        out = self.generator.generate(task)
        return ShardOutput(out) if isinstance(out, pa.Table) else out


def _same(old: JobSpec, new: JobSpec) -> bool:
    return generator_key(old) == generator_key(new)


def _prepare_key(job: JobSpec) -> str:
    return json.dumps(
        job.model_dump(mode="json", include={"generator", "metrics", "storage", "modality"}),
        sort_keys=True,
    )


def _prepare(cls: type[Generator], job: JobSpec, artifacts: ObjectStore) -> dict[str, Any]:
    """The run's ``prepare`` step (``prepare_generator``), here: a fit, or a cached one."""
    return cls.prepare(job, artifacts)


def preview(spec: SpecLike, n: int = DEFAULT_ROWS, *, seed: int | None = None) -> PreviewResult:
    """``n`` rows of ``spec``, once (load, generate, drop the model): ``Previewer`` keeps
    the model for the next call."""
    return Previewer(spec, seed=seed).preview(n)


def status(message: str) -> AbstractContextManager[Any]:
    """A spinner with ``message`` on a terminal's stderr; nothing otherwise (pipes, tests)."""
    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(message)


# -- results ------------------------------------------------------------------------------


def combine(job: JobSpec, outputs: list[Any], **timings: Any) -> PreviewResult:
    """The shards' outputs as one result (sidecar columns dropped, stats summed)."""
    import pyarrow as pa

    def joined(tables: list[pa.Table]) -> pa.Table | None:
        tables = [public_columns(t) for t in tables if t is not None]
        if not tables:
            return None
        if len(tables) == 1:
            return tables[0]
        return pa.concat_tables(tables, promote_options="permissive")

    rows = joined([o.table for o in outputs])
    assert rows is not None
    rejected = joined([o.rejected for o in outputs])
    stats: dict[str, float] = {}
    for out in outputs:
        for key, value in (out.stats or {}).items():
            stats[key] = stats.get(key, 0.0) + float(value)
    # a relational generator's tables, the root (``table``, the rows) first: the others
    names = [name for out in outputs for name in list(out.tables or {})[1:]]
    tables: dict[str, pa.Table] = {}
    for name in dict.fromkeys(names):
        found = joined([o.tables[name] for o in outputs if name in (o.tables or {})])
        if found is not None:
            tables[name] = found
    return PreviewResult(job, rows, rejected, stats, tables=tables, **timings)
