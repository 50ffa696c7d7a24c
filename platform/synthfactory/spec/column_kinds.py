"""What every column kind of a text pipeline is (``ColumnBase``: the columns it reads and
writes) and the registry of kinds (``COLUMNS``: ``kind`` -> the worker class that computes
it, 'module:Class'). A kind is one config class registered with ``@COLUMNS.register(...)``
and one worker class (``synthfactory_workers.text.kinds``); the pipeline, its preflight and
the metrics call only these declarations, never switch on the kind."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field

from synthfactory.registry import Registry
from synthfactory.spec.base import Frozen

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)

#: column ``kind`` -> the worker class that computes it ('module:Class'), registered by
#: each config class (``@COLUMNS.register(...)``); the ``Column`` union is built from it
COLUMNS = Registry("column")
KINDS = "synthfactory_workers.text.kinds"
"""The package of the built-in kinds' workers."""


def as_expression(text: str) -> str | None:
    """The inside of a template that is exactly one ``{{ ... }}``, else None."""
    match = SINGLE_EXPRESSION.match(text)
    if match and "{{" not in match.group(1) and "}}" not in match.group(1):
        return match.group(1)
    return None


_NAME = Field(
    pattern=NAME_PATTERN,
    description="Column name (a Jinja identifier: letters, digits, _); later templates use it "
    "as a variable.",
)


class ColumnBase(Frozen):
    """What every column kind declares: the pipeline, its preflight and the metrics read
    these, never the kind."""

    llm: ClassVar[bool] = False
    """Whether the column asks a model (it then has ``template``, ``model``, ``sampling``)."""
    text: ClassVar[bool] = False
    """Whether the column is free text (filters, dedup and text metrics may apply to it)."""
    reports: ClassVar[str | None] = None
    """The metrics report group the column's scores go to ("judge", "validator"), if any."""
    structured: ClassVar[bool] = False
    """Whether the column asks its model for a reply against a JSON Schema (constrained
    where the backend can: structured output, judges)."""

    name: str = _NAME

    def fields(self) -> list[str]:
        """The flat data columns the column writes (``name`` or ``name.field``)."""
        return [self.name]

    def defines(self) -> list[str]:
        """The variables later templates may use because of this column."""
        return [self.name]

    def templates(self) -> list[tuple[str, str, bool]]:
        """(field, Jinja text, is_expression) of every template in the column; the names
        they use are columns the column reads."""
        return []

    def reads(self) -> set[str]:
        """The columns the column reads besides its templates' variables."""
        return set()
