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
