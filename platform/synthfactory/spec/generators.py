"""Generator configurations: one model per generator kind, selected by ``kind``.

Each config names the worker class that implements it (``implementation``) as an
import path, so reading or validating a spec never imports a model library.
To add a generator: a config module beside this one, then one entry in the union below.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from synthfactory.spec.base import GeneratorConfigBase, Modality
from synthfactory.spec.image import DiffusionConfig
from synthfactory.spec.tabular import CTGANConfig, GaussianCopulaConfig, TVAEConfig
from synthfactory.spec.text import LLMConfig


class PythonGeneratorConfig(GeneratorConfigBase):
    """Your own generator: a class or factory importable on every worker."""

    implementation: ClassVar[str] = "synthfactory_workers.custom:PythonGenerator"
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "text", "image")

    kind: Literal["python"] = "python"
    factory: str = Field(
        description="'package.module:attribute' returning an object with "
        "load() and generate(shard) -> pyarrow.Table."
    )
    options: dict[str, object] = Field(
        default_factory=dict, description="Keyword arguments passed to the factory."
    )

    @field_validator("factory")
    @classmethod
    def _import_path(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", value):
            raise ValueError("must look like 'package.module:attribute'")
        return value


GeneratorConfig = Annotated[
    GaussianCopulaConfig
    | CTGANConfig
    | TVAEConfig
    | LLMConfig
    | DiffusionConfig
    | PythonGeneratorConfig,
    Field(discriminator="kind"),
]

#: kind -> config model (keep in step with the union above)
GENERATOR_CONFIGS: dict[str, type[GeneratorConfigBase]] = {
    model.model_fields["kind"].default: model
    for model in (
        GaussianCopulaConfig,
        CTGANConfig,
        TVAEConfig,
        LLMConfig,
        DiffusionConfig,
        PythonGeneratorConfig,
    )
}

__all__ = ["GENERATOR_CONFIGS", "GeneratorConfig", "GeneratorConfigBase", "Modality"]
