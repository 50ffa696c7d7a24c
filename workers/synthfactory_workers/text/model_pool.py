"""Several models in one text pipeline: every model other than ``generator.model`` is served
by its own Ray actor pool, sized by ``resources.models.<model>``.

The shard's own actor (``ShardWorker``) still runs the pipeline: it samples, renders each
column's prompts, keeps the request journal and decides ``keep``. For a column on another
model it hands the column's requests to that model's pool through a ``PooledBackend`` (a
``TextBackend`` like any other), in chunks of the pool's ``batch_size``; the chunks run on
the pool's actors at once and their answers are journaled as each chunk comes back. So a
shard flows through the models in column order while other shards keep every pool busy.

Chunks are cut by ``batch_size`` alone, never by how many actors there are, so the data is
the same with one model actor or ten. A model actor that dies is restarted by Ray
(``max_restarts``) and the call it was running is sent again (``max_task_retries``); the
model is reloaded on the restarted actor's first call. A pool's actors hold no state a
shard needs, so nothing is lost with them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError, WorkerLostError
from synthfactory_workers.telemetry import METER
from synthfactory_workers.text.backend import (
    Completion,
    OnResult,
    Request,
    TextBackend,
    open_backend,
)

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec
    from synthfactory.spec.generators.text import LLMConfig

#: a killed model actor is restarted this often, and the call it ran is sent again
MAX_RESTARTS = -1
MAX_TASK_RETRIES = 3


def model_spec(spec: JobSpec, key: str) -> JobSpec:
    """The job as pool ``key`` sees it: that model in place of generator.model, and the
    pool's resources (``resources.models.<key>`` over the job's)."""
    from synthfactory.spec.generators.text import LLMConfig

    config = spec.generator
    assert isinstance(config, LLMConfig)
    return spec.model_copy(
        update={"generator": config.for_model(key), "resources": spec.resources.for_model(key)}
    )


def pool_field(config: LLMConfig, key: str) -> str:
    """The spec field a pool's model comes from (for error messages)."""
    if key in config.models:
        return f"generator.models.{key}"
    for column in config.llm_columns:
        if config.column_model(column) == key:
            return f"generator.columns[{column.name}].model"
    return "generator.model"


def _apply(backend: TextBackend, overrides: dict[str, Any]) -> Any:
    """Put a column's sampling and schema into the backend's config; the config before."""
    previous = getattr(backend, "config", None)
    if previous is not None and overrides:
        from synthfactory.spec.generators.text import SamplingConfig

        update = dict(overrides)
        if isinstance(update.get("sampling"), dict):
            update["sampling"] = SamplingConfig.model_validate(update["sampling"])
        backend.config = previous.model_copy(update=update)  # type: ignore[attr-defined]
    return previous


class ModelWorker:
    """One actor of a model's pool (wrapped with ``ray.remote``): loads the engine once
    (again after a restart, on its first call) and completes requests."""

    def __init__(self, spec: Any, key: str) -> None:
        from synthfactory.spec import as_job
        from synthfactory_workers import credentials
        from synthfactory_workers.devices import detect_device

        credentials.receive()  # a restarted actor runs this again: it receives them again
        self.spec = as_job(spec)
        self.key = key
        self.device = detect_device()
        self.backend: TextBackend | None = None
        self.name = f"model:{key}:{socket.gethostname()}:{os.getpid()}"

    def _loaded(self) -> TextBackend:
        if self.backend is None:
            from synthfactory.spec.generators.text import LLMConfig
            from synthfactory_workers.threads import limit_torch_threads

            config = self.spec.generator
            assert isinstance(config, LLMConfig)
            backend = open_backend(config, self.device)
            backend.load()
            limit_torch_threads()
            self.backend = backend
        return self.backend

    def setup(self, telemetry: Any = None) -> dict[str, Any]:
        """Load the model; count live requests into ``telemetry`` (the job's collector).
        The collector comes here, not to the constructor: a restarted actor must not
        depend on an object-store copy of its constructor's arguments (a handle is one), so
        every call brings the collector again for a restarted actor to report to."""
        self._attach(telemetry)
        started = time.perf_counter()
        backend = self._loaded()
        return {
            "worker": self.name,
            "pid": os.getpid(),
            "device": self.device,
            "model_id": backend.model_id,
            "revision": backend.revision,
            "max_error_rate": backend.max_error_rate,
            "load_seconds": time.perf_counter() - started,
        }

    def _attach(self, telemetry: Any) -> None:
        if telemetry is not None and METER.sink is None:
            METER.attach(telemetry, self.name)

    def keys(self, requests: list[Request], overrides: dict[str, Any]) -> list[str]:
        """The journal keys of these requests under a column's settings."""
        backend = self._loaded()
        previous = _apply(backend, overrides)
        try:
            return [backend.request_key(r) for r in requests]
        finally:
            if previous is not None:
                backend.config = previous  # type: ignore[attr-defined]

    def generate(
        self,
        requests: list[Request],
        batch_size: int,
        max_failures: int | None,
        overrides: dict[str, Any],
        telemetry: Any = None,
    ) -> tuple[list[Completion], dict[str, float]]:
        self._attach(telemetry)
        backend = self._loaded()
        previous = _apply(backend, overrides)
        try:
            backend.take_stats()
            out = backend.generate(requests, batch_size, max_failures=max_failures)
            return out, backend.take_stats()
        finally:
            if previous is not None:
                backend.config = previous  # type: ignore[attr-defined]

    def pid(self) -> int:
        return os.getpid()

    def __repr__(self) -> str:  # Ray's name for the actor (its logs, `ray list actors`)
        return f"ModelWorker[{self.key}]"


@dataclass
class ModelPool:
    """A model's actors as the shard actors see them (picklable: handles and facts)."""

    key: str
    actors: list[Any]
    batch_size: int
    info: dict[str, Any] = field(default_factory=dict)
    telemetry: Any = None
    """The job's live-counter collector, sent with every call."""


class ModelPools:
    """Every extra model's pool of a job, started before the shard actors (which call
    them) and stopped after them."""

    def __init__(self, spec: JobSpec, telemetry: Any = None) -> None:
        from synthfactory.spec.generators.text import LLMConfig

        assert isinstance(spec.generator, LLMConfig)
        self.spec = spec
        self.telemetry = telemetry
        self.keys = spec.generator.pool_models
        self.pools: dict[str, ModelPool] = {}
        self._spawners: list[Any] = []  # one per model (its options)

    def start(self) -> dict[str, ModelPool]:
        """Start every pool's actors and load their models in parallel; fail fast, naming
        the model, when one cannot load."""
        import ray

        from synthfactory_workers.pool import start_timeout, unwrap

        pending: dict[str, list[Any]] = {}
        try:
            for key in self.keys:
                pending[key] = self._spawn(key)
            for key, actors in pending.items():
                try:
                    calls = [a.setup.remote(self.telemetry) for a in actors]
                    infos = ray.get(calls, timeout=start_timeout())
                except Exception as exc:
                    cause = unwrap(exc)
                    where = pool_field(self.spec.generator, key)
                    raise ConfigError(
                        f"{where}: model {key!r} did not load in its actor pool: {cause}",
                        fix="check the model (a local folder, builtin:smollm2, an id the "
                        "backend serves) and resources.models." + key,
                    ) from None
                size = self.spec.resources.for_model(key).batch_size
                self.pools[key] = ModelPool(key, actors, size, dict(infos[0]), self.telemetry)
        except BaseException:
            self._release()
            raise
        return self.pools

    def _spawn(self, key: str) -> list[Any]:
        """Pool ``key``'s actors (not yet set up)."""
        from synthfactory_workers.pool import Spawner, actor_options, placement_bundles

        spec = model_spec(self.spec, key)
        options = actor_options(spec)
        options.update(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)
        spawner = Spawner(ModelWorker, options, placement_bundles(spec))
        self._spawners.append(spawner)
        # the spec as plain JSON: small enough to travel inline with the actor, so a
        # restart never depends on an object-store copy of its arguments
        args = (spec.model_dump(mode="json", by_alias=True), key)
        return [spawner.spawn(*args) for _ in range(spec.resources.actors)]

    def _release(self) -> None:
        """Kill every started actor for good and free the placement groups."""
        for spawner in self._spawners:
            for actor in list(spawner.started.values()):
                spawner.kill(actor)
            spawner.release()
        self._spawners = []

    def stop(self) -> None:
        self._release()
        self.pools = {}


class PooledBackend(TextBackend):
    """A model served by its pool, as a backend of the shard's actor. ``config`` holds the
    column's sampling and schema (the pipeline sets it per column, as for a local engine);
    every call sends them along."""

    def __init__(self, config: LLMConfig, pool: ModelPool) -> None:
        self.config = config
        self.pool = pool
        self.model_id = str(pool.info.get("model_id", config.model))
        self.revision = str(pool.info.get("revision", ""))
        self.max_error_rate = float(pool.info.get("max_error_rate", 0.0))
        self._stats: dict[str, float] = {}
        self._turn = os.getpid()  # shard actors start their chunks on different actors

    def load(self) -> None:  # the pool's actors loaded the model
        return None

    def _overrides(self) -> dict[str, Any]:
        return {
            "sampling": self.config.sampling.model_dump(mode="json"),
            "json_schema": self.config.json_schema,
        }

    def request_keys(self, requests: list[Request]) -> list[str]:
        import ray

        if not requests:
            return []
        actor = self.pool.actors[self._turn % len(self.pool.actors)]
        keys: list[str] = ray.get(actor.keys.remote(requests, self._overrides()))
        return keys

    def request_key(self, request: Request) -> str:
        return self.request_keys([request])[0]

    def generate(
        self,
        requests: list[Request],
        batch_size: int,
        on_result: OnResult | None = None,
        max_failures: int | None = None,
    ) -> list[Completion]:
        """Chunks of the pool's batch size on the pool's actors at once; each chunk's
        answers reach ``on_result`` as soon as it is back. ``batch_size`` (the job's) is
        not used: the pool has its own."""
        import ray

        size = self.pool.batch_size
        chunks = [
            list(range(i, min(i + size, len(requests)))) for i in range(0, len(requests), size)
        ]
        overrides = self._overrides()
        actors = self.pool.actors
        refs: dict[Any, list[int]] = {}
        for n, chunk in enumerate(chunks):
            actor = actors[(self._turn + n) % len(actors)]
            chosen = [requests[i] for i in chunk]
            ref = actor.generate.remote(chosen, size, max_failures, overrides, self.pool.telemetry)
            refs[ref] = chunk
        self._turn += max(1, len(chunks))
        out: list[Completion | None] = [None] * len(requests)
        waiting = list(refs)
        try:
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                completions, stats = ray.get(ready[0])
                for key, value in stats.items():
                    self._stats[key] = self._stats.get(key, 0.0) + value
                for i, completion in zip(refs[ready[0]], completions, strict=True):
                    out[i] = completion
                    if on_result is not None:
                        on_result(i, completion)
        except BaseException as exc:
            for ref in waiting:
                # a chunk that already runs finishes; nothing waits on it
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            from ray.exceptions import RayActorError

            if isinstance(exc, RayActorError):  # restarts and resends used up: retry the shard
                raise WorkerLostError(
                    f"an actor of model {self.pool.key!r}'s pool died and its call could not "
                    f"be resent ({type(exc).__name__}); the shard will be retried",
                    fix=f"check resources.models.{self.pool.key} fits the cluster",
                ) from None
            raise
        return [c for c in out if c is not None]

    def take_stats(self) -> dict[str, float]:
        stats, self._stats = self._stats, {}
        return stats
