"""Your own generator, as a Python import path."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from synthfactory.spec.base import GENERATORS, GeneratorConfigBase


@GENERATORS.register("synthfactory_workers.python_generator:PythonGenerator")
class PythonGeneratorConfig(GeneratorConfigBase):
    """Your own generator: a class or factory importable on every worker."""

    modalities: ClassVar[tuple[str, ...]] = ("tabular", "text", "image")

    kind: Literal["python"] = Field("python", description="Your own generator class or factory.")
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
