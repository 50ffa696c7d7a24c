"""Extension points: each maps a key (a config's ``kind``, a URI scheme, a modality) to
the implementation as an import path, imported only where it runs.

There is one registry per extension point:

- ``synthfactory.spec.base.GENERATORS``: generator config -> worker class
  (``synthfactory_workers...:SomeGenerator``); tabular synthesizers are generators too;
- ``synthfactory.spec.columns.COLUMNS``: text pipeline column kind -> column worker class
  (``synthfactory_workers.text.kinds...``);
- ``synthfactory.spec.backends.BACKENDS``: text backend config -> backend class;
- ``synthfactory.metrics.evaluators.EVALUATORS``: modality -> metric evaluator;
- ``synthfactory.spec.storage.STORES``: URI scheme -> object store class (its settings
  model is the class's ``Options``).

A config class registers itself with a decorator; the spec's discriminated unions (and so
its JSON Schema) are built from what registered, so a new kind is declared in one place.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union, cast

from pydantic import BaseModel, Field

from synthfactory.errors import ConfigError

C = TypeVar("C", bound=type)


def import_object(path: str) -> object:
    """``'package.module:attr.sub'`` -> the object; a ConfigError says what is missing."""
    module_name, _, attr = path.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"cannot import {module_name!r} ({exc})",
            fix="install the package that provides it on the driver and every worker",
        ) from None
    for part in attr.split(".") if attr else ():
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{module_name!r} has no attribute {attr!r}") from None
    return obj


class Registry:
    """Keys -> import paths, plus the config classes registered for them (if any)."""

    def __init__(self, name: str, key: str = "kind") -> None:
        self.name = name
        self.key = key
        self._paths: dict[str, str] = {}
        self._configs: dict[str, type[BaseModel]] = {}

    def register(self, implementation: str) -> Callable[[C], C]:
        """Class decorator: the config's ``kind`` default is its key."""

        def decorate(config: C) -> C:
            model = cast(type[BaseModel], config)
            key = model.model_fields[self.key].default
            if not isinstance(key, str):
                raise TypeError(f"{model.__name__}.{self.key} needs a string default")
            self.add(key, implementation)
            self._configs[key] = model
            return config

        return decorate

    def add(self, key: str, implementation: str) -> None:
        if key in self._paths and self._paths[key] != implementation:
            raise ValueError(f"{self.name} {key!r} is registered twice")
        self._paths[key] = implementation

    def remove(self, key: str) -> None:
        """Undo ``register``/``add`` (a plugin unloaded, a test's toy kind); a spec union
        built before keeps the config until it is rebuilt."""
        self._paths.pop(key, None)
        self._configs.pop(key, None)

    def kinds(self) -> list[str]:
        return list(self._paths)

    def configs(self) -> list[type[BaseModel]]:
        return list(self._configs.values())

    def config(self, key: str) -> type[BaseModel] | None:
        return self._configs.get(key)

    def path(self, key: str) -> str:
        if key not in self._paths:
            raise ConfigError(
                f"unknown {self.name} {key!r}", fix=f"use one of {', '.join(self._paths)}"
            )
        return self._paths[key]

    def load(self, key: str) -> Any:
        """The implementation registered for ``key`` (imported now)."""
        return import_object(self.path(key))

    def union(self) -> Any:
        """The registered configs as a pydantic discriminated union on ``key``."""
        configs = tuple(self._configs.values())
        if not configs:
            raise RuntimeError(f"no {self.name} is registered")
        if len(configs) == 1:
            return configs[0]
        return Annotated[Union[configs], Field(discriminator=self.key)]  # noqa: UP007
