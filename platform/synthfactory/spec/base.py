"""The base every generator config extends."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

Modality = Literal["tabular", "text", "image"]


class GeneratorConfigBase(BaseModel):
    """``implementation`` is the worker class as 'module:Class', imported only on workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    implementation: ClassVar[str]
    modalities: ClassVar[tuple[str, ...]]
    default_shard_rows: ClassVar[int] = 10_000
    """``shard_rows`` when the spec leaves it out: a shard should take seconds (each one is
    a Prefect task, ≈ 30 to 50 ms of bookkeeping) but not hours (it is the unit of retry)."""
    path_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding local paths; relative ones are resolved against the spec file's folder."""
    maybe_path_fields: ClassVar[tuple[str, ...]] = ()
    """Fields holding a local path *or* a name (a Hugging Face id): resolved only if the path
    exists relative to the spec file's folder."""
