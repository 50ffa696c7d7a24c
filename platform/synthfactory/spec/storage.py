"""The ``storage:`` section and the storage schemes it can configure.

``STORES`` maps a URI scheme to its ``ObjectStore`` class (``synthfactory.storage``); a URI
without a scheme is a local folder. A scheme's settings are its own: the store class names
a settings model (``ObjectStore.Options``) and the spec takes it as ``storage.<scheme>``
(``storage: {s3: {endpoint_url: ..., addressing_style: path}}``), validated by that model.
A setting only one scheme has may be written at the top of ``storage:`` too
(``storage: {addressing_style: path}``), which is how specs wrote S3 settings before.
To add a scheme: a module with the store class (and its settings model), and one
``STORES.add(scheme, "module:Class")`` line (here for a built-in one, anywhere for a plug-in).
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from synthfactory.registry import Registry
from synthfactory.spec.base import Strict

#: URI scheme -> ObjectStore class ('module:Class'), imported when a store is opened
STORES = Registry("storage scheme")
STORES.add("file", "synthfactory.storage.local:LocalStore")
STORES.add("s3", "synthfactory.storage.s3:S3Store")


def scheme_settings(scheme: str) -> type[BaseModel]:
    """The settings model of a registered scheme's store (its ``Options``)."""
    options = getattr(STORES.load(scheme), "Options", None)
    if not (isinstance(options, type) and issubclass(options, BaseModel)):
        raise TypeError(f"{STORES.path(scheme)}.Options is not a settings model")
    return options


def _documented_schemes(schema: dict[str, Any]) -> None:
    """``synthfactory schema`` lists each scheme's settings under its name."""
    for scheme in STORES.kinds():
        settings = scheme_settings(scheme)
        if settings.model_fields:
            schema.setdefault("properties", {})[scheme] = settings.model_json_schema()
    schema["additionalProperties"] = False


class StorageOptions(Strict):
    """Object-store settings: the artifact cache, and each scheme's own settings under its
    name (``s3:``). Credentials never go here: each scheme reads them from the environment."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_documented_schemes)

    artifacts: str | None = Field(
        None,
        description="Where fitted models are cached (./folder or s3://bucket/prefix); "
        "default {output}/_artifacts. Point several jobs here to share one fit.",
    )

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        """Each scheme's settings under its name; a top-level setting that only one
        scheme has moves into that scheme's section (the shorthand)."""
        if not isinstance(data, dict):
            return data
        out: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if key in cls.model_fields:
                out[key] = value
            elif key in STORES.kinds():
                if isinstance(value, BaseModel):
                    value = value.model_dump(exclude_unset=True)
                if not isinstance(value, dict):
                    raise ValueError(f"storage.{key} must be a mapping of {key} settings")
                sections.setdefault(key, {}).update(value)
            else:
                owners = [s for s in STORES.kinds() if key in scheme_settings(s).model_fields]
                if len(owners) > 1:
                    raise ValueError(
                        f"storage.{key} is a setting of {', '.join(owners)}: write it under "
                        f"the scheme it is for (storage.{owners[0]}.{key})"
                    )
                if not owners:
                    raise ValueError(_unknown(key))
                sections.setdefault(owners[0], {})[key] = value
        return {**out, **sections}

    @model_validator(mode="after")
    def _validate_sections(self) -> StorageOptions:
        extra = self.__pydantic_extra__ or {}
        for scheme, value in extra.items():
            try:
                extra[scheme] = scheme_settings(scheme).model_validate(value)
            except ValidationError as exc:
                raise ValueError(_problems(scheme, exc)) from None
        return self

    def settings(self, model: type[Any]) -> Any:
        """The settings of the scheme whose model is ``model`` (its defaults when the
        spec has no section for it)."""
        found = [v for v in (self.__pydantic_extra__ or {}).values() if isinstance(v, model)]
        return found[0] if found else model()


def _problems(scheme: str, exc: ValidationError) -> str:
    """A scheme section's errors, each naming its setting (never echoing a value: a
    credential put here by mistake must not reach a terminal or a log)."""
    fields = list(scheme_settings(scheme).model_fields)
    out = []
    for error in exc.errors(include_url=False):
        where = ".".join(map(str, error["loc"]))
        if error["type"] == "extra_forbidden":
            near = difflib.get_close_matches(where, fields, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (settings: {', '.join(fields)})"
            out.append(f"storage.{scheme}.{where} is not a setting{hint}")
        else:
            out.append(f"storage.{scheme}.{where}: {error['msg']}")
    return "; ".join(out)


def _unknown(key: str) -> str:
    settings = [f"{s}.{f}" for s in STORES.kinds() for f in scheme_settings(s).model_fields]
    near = difflib.get_close_matches(key, ["artifacts", *(s.split(".")[1] for s in settings)], 1)
    hint = f"did you mean {near[0]!r}? " if near else ""
    return (
        f"storage.{key} is not a setting: {hint}use artifacts, a scheme's section "
        f"({', '.join(STORES.kinds())}) or one of its settings ({', '.join(sorted(settings))}). "
        "Credentials never go in the spec: set them in the environment"
    )
