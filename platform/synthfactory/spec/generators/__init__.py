"""Generator configurations: one pydantic model per generator kind, selected by ``kind``.

Every module in this package is imported here, and each registers its configs with
``@GENERATORS.register("package.module:WorkerClass")``; the spec's ``generator`` field is
the union of whatever registered. Reading or validating a spec never imports a worker or a
model library. To add a generator: one module here (its config) and one in
``synthfactory_workers`` (its implementation); nothing else lists it.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from synthfactory.spec.base import GENERATORS, GeneratorConfigBase, Modality

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from synthfactory.spec.generators.image import DiffusionConfig  # noqa: E402
from synthfactory.spec.generators.python import PythonGeneratorConfig  # noqa: E402
from synthfactory.spec.generators.tabular import (  # noqa: E402
    CTGANConfig,
    GaussianCopulaConfig,
    TVAEConfig,
)
from synthfactory.spec.generators.text import LLMConfig  # noqa: E402

#: the ``generator`` field: a discriminated union (on ``kind``) of every registered config
GeneratorConfig: Any = GENERATORS.union()


def generator_config(kind: str) -> type[GeneratorConfigBase] | None:
    """The config class registered for a generator kind (None if there is none)."""
    config = GENERATORS.config(kind)
    return config if config is None or issubclass(config, GeneratorConfigBase) else None


__all__ = [
    "GENERATORS",
    "CTGANConfig",
    "DiffusionConfig",
    "GaussianCopulaConfig",
    "GeneratorConfig",
    "GeneratorConfigBase",
    "LLMConfig",
    "Modality",
    "PythonGeneratorConfig",
    "TVAEConfig",
    "generator_config",
]
