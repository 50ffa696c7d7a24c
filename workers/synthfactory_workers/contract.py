"""The generator contract every modality implements.

A generator is built from its spec, checked cheaply in the driver (``preflight``),
prepared once per job (``prepare``: fit a synthesizer, validate a model), loaded once
per actor (``load``) and then asked for shards (``generate``). Heavy libraries are
imported inside ``prepare``/``load``/``generate``, never at module import.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from synthfactory.errors import ConfigError
from synthfactory.jsonsafe import plain
from synthfactory.spec.base import GENERATORS

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory.spec import JobSpec
    from synthfactory.storage import ObjectStore


@dataclass(frozen=True, slots=True)
class ShardTask:
    """Shard ``index`` covers rows [row_start, row_start + rows) and is generated from ``seed``."""

    index: int
    row_start: int
    rows: int
    seed: int
    conditions: tuple[tuple[str, Any], ...] = ()
    """Values every row of this shard takes (top-up shards of a class quota)."""


def quota_key(value: Any) -> str:
    """One spelling of a class value however it was read (pandas, numpy or Arrow):
    JSON of the plain scalar, NaN and NA as null."""
    return json.dumps(plain(value), default=str)


@dataclass(frozen=True, slots=True)
class Quotas:
    """The dataset must hold exactly ``counts[quota_key(v)]`` rows whose ``column`` is v
    (class balancing). Shards lost to whole-dataset checks are topped up class by class."""

    column: str
    counts: dict[str, int]


@dataclass(slots=True)
class ShardOutput:
    """A generated shard: the accepted rows, rows rejected with a ``reason`` column, counters.

    A relational generator also returns ``tables``: every table of the shard by name, the
    root table first (``table`` is that root table: the shard's rows). Each is written to
    ``data/<name>/``; the flow never drops rows of such a shard (it must hold exactly
    ``shard.rows`` root rows), since a dropped parent would orphan its children."""

    table: pa.Table
    rejected: pa.Table | None = None
    stats: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pa.Table] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GeneratorContext:
    """What a generator gets besides its spec."""

    artifacts: ObjectStore
    """Where ``prepare`` may cache job-wide artifacts (fitted models), shared by all actors."""
    prepared: dict[str, Any] = field(default_factory=dict)
    """What ``prepare`` returned."""
    device: str = "cpu"
    """'cuda' when the actor was given a GPU, else 'cpu'."""
    journal: ObjectStore | None = None
    """The dataset version's ``_journal/`` prefix: a generator may record what it paid for
    (completions) under ``shard-NNNNN/`` so a retry of that shard reuses it; the actor
    deletes a shard's journal once the shard is committed. None outside a job."""
    companions: dict[str, Any] = field(default_factory=dict)
    """What the generator's companion pools (``Generator.companions``) gave its actors:
    e.g. a text pipeline's other models, by name. Empty when it has none."""


class Companions(Protocol):
    """Actor pools a generator's actors call (started before them, stopped after)."""

    def start(self) -> dict[str, Any]:
        """Start the pools; what every shard actor gets as ``context.companions``."""

    def stop(self) -> None: ...


class ActorEngine:
    """What an engine (a text backend) decides of the actors that run it, beside the spec's
    resources: an interpreter, environment variables, GPUs held by its own workers. The pool
    asks the generator's engine (``pool.actor_engine``) and knows no engine itself; this
    base adds nothing."""

    @classmethod
    def actor_options(cls, spec: JobSpec, env: dict[str, str]) -> dict[str, Any]:
        """Ray actor options merged over the pool's; ``env`` is every actor's environment
        (threads, forwarded settings), for an engine that sets a ``runtime_env`` of its own."""
        return {}

    @classmethod
    def placement_bundles(cls, spec: JobSpec) -> list[dict[str, float]] | None:
        """The placement group one actor reserves for its engine's workers (packed on one
        node, the actor in bundle 0), or None when it needs none."""
        return None


class Generator(ABC):
    """Base class for generators. Subclasses live one per file, registered by spec kind."""

    def __init__(self, spec: JobSpec, context: GeneratorContext) -> None:
        self.spec = spec
        self.context = context

    @classmethod
    def preflight(cls, spec: JobSpec) -> dict[str, str]:
        """Cheap checks in the driver before anything starts (paths exist, templates parse).

        Raise ConfigError with a fix. Return facts that decide the data but are not in
        the spec (e.g. a source file's checksum); they join the dataset's content hash.
        """
        return {}

    @classmethod
    def derived_rows(cls, spec: JobSpec) -> int | None:
        """The dataset's row count when the generator decides it (e.g. class balancing);
        None when the spec's ``rows`` does."""
        return None

    @classmethod
    def quotas(cls, spec: JobSpec) -> Quotas | None:
        """Exact rows per class the dataset must hold, when the generator decides them
        (class balancing); None when any rows will do."""
        return None

    @classmethod
    def companions(cls, spec: JobSpec, telemetry: Any = None) -> Companions | None:
        """Other actor pools this generator's actors call (not yet started), or None.
        ``telemetry`` is the job's live-counter collector, for their actors to report to."""
        return None

    @classmethod
    def prepare(cls, spec: JobSpec, artifacts: ObjectStore) -> dict[str, Any]:
        """Run once per job, before actors start, with one actor's resources."""
        return {}

    @classmethod
    def has_own_prepare(cls) -> bool:
        """Whether this generator defines its own one-off preparation (overrides
        ``prepare``): a synthesizer's fit, named so in the run's progress."""
        own = cls.__mro__[: cls.__mro__.index(Generator)]
        return any("prepare" in vars(k) for k in own)

    @abstractmethod
    def load(self) -> None:
        """Load models into this process. Called once per actor."""

    @abstractmethod
    def generate(self, shard: ShardTask) -> ShardOutput:
        """Produce exactly ``shard.rows`` accepted rows, deterministically from ``shard.seed``."""

    def loaded_engines(self) -> dict[str | None, Any]:
        """The engines this generator has loaded, by pool key (None: its own model), that a
        generator rebuilt for an edited spec may take over when their settings are unchanged
        (the preview's ``load(reuse=...)``). None by default (a text generator has them)."""
        return {}

    def identity(self) -> dict[str, str]:
        """Generator and model identity for lineage (model id, revision, ...)."""
        return {"generator": self.spec.generator.kind}


# -- from a spec to its generator class (the one generator registry) --------------------


def generator_class(spec: JobSpec) -> type[Generator]:
    cls = GENERATORS.load(spec.generator.kind)
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise ConfigError(f"{GENERATORS.path(spec.generator.kind)} is not a Generator class")
    return cls


def with_derived_rows(spec: JobSpec) -> JobSpec:
    """The spec with ``rows`` filled in when the generator derives it (``rows`` left out)."""
    if spec.rows:
        return spec
    rows = generator_class(spec).derived_rows(spec)
    if not rows:
        raise ConfigError(
            f"generator {spec.generator.kind!r} cannot derive the row count",
            fix="set rows: N in the spec",
        )
    return spec.model_copy(update={"rows": rows})
