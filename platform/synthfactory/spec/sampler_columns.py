"""Sampler column kinds: values drawn from the row's seed (``choice``, ``range``, ``uuid``,
``datetime``, ``category_by``, ``person``) or read from the source table (``source``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from synthfactory.spec.column_kinds import COLUMNS, KINDS, ColumnBase


@COLUMNS.register(f"{KINDS}.samplers:Choice")
class ChoiceColumn(ColumnBase):
    """One value per row: uniformly from a list, or by weight from a mapping."""

    kind: Literal["choice"] = Field("choice", description="A (weighted) choice.")
    choices: list[str | int | float] | dict[str, float] = Field(
        description="A list (uniform) or {value: weight}."
    )

    @field_validator("choices")
    @classmethod
    def _non_empty(cls, choices: Any) -> Any:
        if not choices:
            raise ValueError("choices must not be empty")
        if isinstance(choices, dict) and (
            any(w < 0 for w in choices.values()) or not sum(choices.values())
        ):
            raise ValueError("weights must be >= 0 and not all 0")
        return choices


@COLUMNS.register(f"{KINDS}.samplers:Range")
class RangeColumn(ColumnBase):
    """A number drawn uniformly from [low, high]."""

    kind: Literal["range"] = Field("range", description="A uniform number.")
    low: float = Field(description="Smallest value.")
    high: float = Field(description="Largest value.")
    integer: bool = Field(False, description="Whole numbers (both ends included).")

    @model_validator(mode="after")
    def _ordered(self) -> RangeColumn:
        if self.high < self.low:
            raise ValueError("high must be >= low")
        return self


@COLUMNS.register(f"{KINDS}.samplers:UUIDKind")
class UUIDColumn(ColumnBase):
    """A random UUID (version 4 layout) drawn from the row's seed: reproducible."""

    kind: Literal["uuid"] = Field("uuid", description="A seeded UUID string.")


@COLUMNS.register(f"{KINDS}.samplers:Datetime")
class DatetimeColumn(ColumnBase):
    """A date/time drawn uniformly between ``start`` and ``end`` (ISO 8601)."""

    kind: Literal["datetime"] = Field("datetime", description="A uniform date/time.")
    start: str = Field(description="Earliest value, ISO 8601 (e.g. 2024-01-01).")
    end: str = Field(description="Latest value, ISO 8601.")
    format: str = Field(
        "%Y-%m-%d", description="strftime format of the value (e.g. %Y-%m-%dT%H:%M:%S)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> DatetimeColumn:
        from datetime import datetime

        try:
            start, end = datetime.fromisoformat(self.start), datetime.fromisoformat(self.end)
        except ValueError as exc:
            raise ValueError(f"start/end must be ISO 8601: {exc}") from None
        if end < start:
            raise ValueError("end must not be before start")
        return self


@COLUMNS.register(f"{KINDS}.samplers:CategoryBy")
class CategoryByColumn(ColumnBase):
    """A choice whose options depend on the value of an earlier column."""

    kind: Literal["category_by"] = Field("category_by", description="A conditional choice.")
    column: str = Field(description="The earlier column whose value selects the options.")
    choices: dict[str, list[str | int | float] | dict[str, float]] = Field(
        description="{value of `column`: a list (uniform) or {option: weight}}."
    )
    default: list[str | int | float] | dict[str, float] | None = Field(
        None, description="Options for values not listed (none: such a row is an error)."
    )

    def reads(self) -> set[str]:
        return {self.column}

    @field_validator("choices")
    @classmethod
    def _non_empty(cls, choices: dict[str, Any]) -> dict[str, Any]:
        if not choices or any(not options for options in choices.values()):
            raise ValueError("every value needs at least one option")
        return choices


@COLUMNS.register(f"{KINDS}.samplers:Person")
class PersonColumn(ColumnBase):
    """A synthetic person (Faker): fields ``name``, ``first_name``, ``last_name``, ``sex``,
    ``age``, ``locale``, ``occupation``, ``city``."""

    kind: Literal["person"] = Field("person", description="A Faker person.")
    locales: list[str] | dict[str, float] = Field(
        default_factory=lambda: ["en_US"],
        description="Faker locales: a list (uniform) or {locale: weight}.",
    )
    sex: dict[Literal["female", "male"], float] = Field(
        default_factory=lambda: {"female": 0.5, "male": 0.5},  # type: ignore[arg-type]
        description="Weights of the sexes.",
    )
    age: tuple[int, int] = Field((18, 80), description="[youngest, oldest], uniform.")

    @model_validator(mode="after")
    def _valid(self) -> PersonColumn:
        if not self.locales:
            raise ValueError("locales must not be empty")
        if not sum(self.sex.values()) or any(w < 0 for w in self.sex.values()):
            raise ValueError("sex weights must be >= 0 and not all 0")
        if not 0 <= self.age[0] <= self.age[1] <= 120:
            raise ValueError("age must be [lo, hi] with 0 <= lo <= hi <= 120")
        return self

    def fields(self) -> list[str]:
        return [f"{self.name}.{f}" for f in PERSON_FIELDS]


PERSON_FIELDS = ("name", "first_name", "last_name", "sex", "age", "locale", "occupation", "city")


@COLUMNS.register(f"{KINDS}.samplers:Source")
class SourceColumn(ColumnBase):
    """A column of the source table (``generator.source``): the row that belongs to this
    prompt (sequential or random, ``generator.source_order``)."""

    kind: Literal["source"] = Field("source", description="A column of the source table.")
    column: str | None = Field(None, description="Source column to read (default: `name`).")

    @property
    def source_column(self) -> str:
        return self.column or self.name
