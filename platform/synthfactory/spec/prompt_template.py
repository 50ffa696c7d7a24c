"""Prompt templates and the variables that fill them (shared by text and image generators)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from synthfactory.spec.base import Frozen
from synthfactory.spec.limits import MAX_TEXT_CHARS


class ChoiceSampler(Frozen):
    """Pick one value: uniformly from a list, or by weight from a mapping."""

    choices: list[str | int | float] | dict[str, float] = Field(
        description="A list (uniform) or {value: weight}."
    )

    @model_validator(mode="after")
    def _non_empty(self) -> ChoiceSampler:
        if not self.choices:
            raise ValueError("choices must not be empty")
        if isinstance(self.choices, dict) and any(w < 0 for w in self.choices.values()):
            raise ValueError("weights must be >= 0")
        return self


class RangeSampler(Frozen):
    """A number drawn uniformly from [low, high] (integers when `integer`)."""

    range: tuple[float, float] = Field(description="[low, high]")
    integer: bool = Field(False, description="Draw whole numbers instead of floats.")


class ColumnSampler(Frozen):
    """A value from a column of the source dataset (the row that belongs to this prompt)."""

    column: str = Field(description="Column of the prompt source whose value is used.")


Sampler = Annotated[
    ChoiceSampler | RangeSampler | ColumnSampler | list[str | int | float],
    Field(description="A list, {choices: ...}, {range: [lo, hi]} or {column: name}."),
]


class PromptConfig(Frozen):
    """A Jinja template and where its variables come from."""

    template: str = Field(
        max_length=MAX_TEXT_CHARS,
        description="Jinja template of the user prompt, e.g. 'Write a "
        "{{ tone }} review of {{ product }}.'",
    )
    variables: dict[str, Sampler] = Field(
        default_factory=dict,
        description="Template variables and how each is drawn per row: choice, range "
        "or source column.",
    )
    source: str | None = Field(
        None,
        description="Source dataset (Parquet, CSV, JSONL; local or s3://) whose columns "
        "fill {column: ...} variables and may be used directly in the template.",
    )
    source_order: Literal["sequential", "random"] = Field(
        "sequential",
        description="sequential: prompt i uses source row i (wrapping); random: a seeded pick.",
    )
