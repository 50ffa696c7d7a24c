"""What every spec model builds on: the strict base models and the generator registry."""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, model_validator

from synthfactory.registry import Registry

Modality = Literal["tabular", "text", "image"]


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of a (possibly Optional, Union or Annotated) annotation."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return [alt for arg in get_args(annotation) for alt in _unwrap(arg)]
    return [annotation]


def _bool_as_number(annotation: Any, value: Any) -> bool:
    """Whether ``value`` holds a boolean where ``annotation`` wants a number (pydantic's lax
    mode would read true as 1), looking inside lists, tuples and mappings."""
    alternatives = _unwrap(annotation)
    if any(alt in (Any, object) for alt in alternatives):
        return False
    if isinstance(value, bool):
        scalars = {alt for alt in alternatives if isinstance(alt, type)}
        literal = [v for alt in alternatives if get_origin(alt) is Literal for v in get_args(alt)]
        return bool(scalars & {int, float}) and bool not in scalars and value not in literal
    if isinstance(value, Mapping):
        wanted = [a for a in alternatives if get_origin(a) in (dict, Mapping)]
        return bool(wanted) and all(
            any(_bool_as_number(get_args(a)[1], v) for v in value.values())
            for a in wanted
            if len(get_args(a)) == 2
        )
    if isinstance(value, list | tuple):
        wanted = [a for a in alternatives if get_origin(a) in (list, tuple, set, frozenset)]
        if not wanted:
            return False
        for a in wanted:
            args = get_args(a)
            if get_origin(a) is tuple and args and args[-1] is not Ellipsis:
                pairs = list(zip(args, value, strict=False))
            else:
                pairs = [(args[0] if args else Any, v) for v in value]
            if not any(_bool_as_number(t, v) for t, v in pairs):
                return False
        return True
    return False


class Strict(BaseModel):
    """A spec section: unknown keys are errors (a misspelt field never passes silently),
    numbers are finite, and a boolean is never read as a number (``rows: true`` is not 1)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_boolean_numbers(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                if field is not None and _bool_as_number(field.annotation, value):
                    raise ValueError(
                        f"{name}: true/false is not a number: write a number (YAML reads "
                        "yes/no/on/off as booleans too; quote them for text)"
                    )
        return data


class Frozen(Strict):
    """A spec section that is also immutable once validated (generator settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


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

    # -- capabilities: what generic code (pools, placement, manifests) may ask any generator.
    # Methods, not properties, so a subclass field of a similar name never clashes. The
    # defaults answer "none"; the configs it applies to override them (text: engines and
    # pools; tabular: augment; relational and sequential: tables and keys).

    def backend_configs(self) -> dict[tuple[str, ...], Any]:
        """Every engine config the generator names, by its path under ``generator`` in the
        spec: ``("backend",)`` for the shard actors' own engine, ``("models", key,
        "backend")`` for an extra model's. Empty for generators without engines."""
        return {}

    def actor_backend(self) -> Any | None:
        """The engine config the shard actors run (None: no engine of its own)."""
        return self.backend_configs().get(("backend",))

    def pool_model_keys(self) -> list[str]:
        """The models served by actor pools of their own (a text pipeline's other models),
        in the order they are first used. Empty by default."""
        return []

    def derives_rows(self) -> bool:
        """Whether the generator derives the row count itself (tabular ``augment``), so
        the spec's ``rows`` may be left out."""
        return False

    def relationship_keys(self) -> list[dict[str, str]]:
        """A multi-table generator's relationships as the manifest records them (parent,
        child, foreign_key). Empty for single-table generators."""
        return []

    def primary_keys(self) -> dict[str, str | None]:
        """A multi-table generator's tables and each one's primary key (None: none)."""
        return {}
