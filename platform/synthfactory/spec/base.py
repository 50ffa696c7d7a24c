"""What every spec model builds on: the strict base models and the generator registry."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from synthfactory.registry import Registry

Modality = Literal["tabular", "text", "image"]


class Strict(BaseModel):
    """A spec section: unknown keys are errors (a misspelt field never passes silently)."""

    model_config = ConfigDict(extra="forbid")


class Frozen(Strict):
    """A spec section that is also immutable once validated (generator settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: generator kind -> worker class ('module:Class'), registered by each config class
GENERATORS = Registry("generator")


class GeneratorConfigBase(Frozen):
    """Register a subclass with ``@GENERATORS.register("package.module:GeneratorClass")``;
    the class is imported only where it runs (on workers)."""

    modalities: ClassVar[tuple[str, ...]]
    default_shard_rows: ClassVar[int] = 10_000
    """``shard_rows`` when the spec leaves it out: a shard should take seconds (each one is
    a Prefect task, ≈ 30 to 50 ms of bookkeeping) but not hours (it is the unit of retry)."""
    path_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding local paths; relative ones are resolved against the spec file's folder."""
    maybe_path_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding a local path *or* a name (a Hugging Face id): resolved only if the path
    exists relative to the spec file's folder."""
