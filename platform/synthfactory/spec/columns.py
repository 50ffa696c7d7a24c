"""Text datasets as a pipeline of typed columns (``generator.columns``).

Each row is built column by column, in the order written: samplers (``choice``, ``range``,
``uuid``, ``datetime``, ``category_by``, ``person``, ``source``) draw values; LLM columns
(``llm_text``, ``llm_structured``, ``llm_judge``, ``llm_judge_pairwise``) render a Jinja
template over the earlier columns and ask their model (the job's, or their own ``model``,
served by its own actor pool); ``expression`` computes a value; ``validate`` checks an
earlier column (JSON Schema, regex, Python, SQL). ``generator.keep`` then decides which rows
are kept; the others go to ``rejected/`` with the column and the reason.

In templates an earlier column is a variable: ``{{ persona.name }}``,
``{{ judge.correctness.score }}``, ``{{ code_ok }}``. In the data, fields of a column are
flat columns ``<name>.<field>`` (``persona.age``, ``judge.correctness.score``).

Column kinds are a registry (``COLUMNS``, ``column_kinds.py``): each kind is one config class
that declares what it reads (``templates``, ``reads``) and writes (``fields``, ``defines``),
registered with the import path of the worker class that computes it
(``synthfactory_workers.text.kinds``): samplers in ``sampler_columns.py``, LLM columns in
``llm_columns.py``, computed columns here. This module is the one to import from.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from synthfactory.spec.column_kinds import COLUMNS, KINDS, ColumnBase, as_expression
from synthfactory.spec.judges import NEEDS_SOURCE, RUBRIC_PRESETS, Criterion
from synthfactory.spec.limits import MAX_TEXT_CHARS

# the kinds register in this order (samplers, LLM columns, then the computed ones below):
# the order of the ``Column`` union and of its JSON Schema
# isort: off
from synthfactory.spec.sampler_columns import (
    PERSON_FIELDS,
    CategoryByColumn,
    ChoiceColumn,
    DatetimeColumn,
    PersonColumn,
    RangeColumn,
    SourceColumn,
    UUIDColumn,
)
from synthfactory.spec.llm_columns import (
    LLMColumnBase,
    LLMJudgeColumn,
    LLMJudgePairwiseColumn,
    LLMStructuredColumn,
    LLMTextColumn,
    SamplingOverride,
    criteria,
)
# isort: on

__all__ = [
    "COLUMNS",
    "NEEDS_SOURCE",
    "PERSON_FIELDS",
    "RUBRIC_PRESETS",
    "CategoryByColumn",
    "ChoiceColumn",
    "Column",
    "ColumnBase",
    "Criterion",
    "DatetimeColumn",
    "ExpressionColumn",
    "LLMColumnBase",
    "LLMJudgeColumn",
    "LLMJudgePairwiseColumn",
    "LLMStructuredColumn",
    "LLMTextColumn",
    "PersonColumn",
    "RangeColumn",
    "SamplingOverride",
    "SourceColumn",
    "UUIDColumn",
    "ValidateColumn",
    "as_expression",
    "column_fields",
    "criteria",
    "parse_column",
]


# -- computed columns ------------------------------------------------------------------------


@COLUMNS.register(f"{KINDS}.computed:Expression")
class ExpressionColumn(ColumnBase):
    """A value computed from earlier columns: a Jinja expression (``"{{ a * 2 }}"`` keeps
    its type) or a template (text)."""

    kind: Literal["expression"] = Field("expression", description="A Jinja expression.")
    expr: str = Field(
        max_length=MAX_TEXT_CHARS,
        description="'{{ expression }}' (typed value) or a Jinja template (text).",
    )
    dtype: Literal["auto", "string", "int", "float", "bool"] = Field(
        "auto", description="Cast of the value (auto: as computed)."
    )

    def templates(self) -> list[tuple[str, str, bool]]:
        inner = as_expression(self.expr)
        return [("expr", inner if inner is not None else self.expr, inner is not None)]


@COLUMNS.register(f"{KINDS}.computed:Validate")
class ValidateColumn(ColumnBase):
    """A check of an earlier column: the column is a boolean (passed) and ``<name>_error``
    says why not."""

    kind: Literal["validate"] = Field("validate", description="A validator.")
    reports: ClassVar[str | None] = "validator"
    column: str = Field(description="The earlier column to check.")
    check: Literal["json_schema", "regex", "python", "sql"] = Field(
        description="json_schema: the text parses as JSON valid against `json_schema`; "
        "regex: `pattern` matches; python: the code parses (and runs, with `run`); "
        "sql: sqlglot parses it in `dialect`."
    )
    json_schema: dict[str, Any] | None = Field(None, description="Schema (check: json_schema).")
    pattern: str | None = Field(None, description="Regular expression (check: regex).")
    full_match: bool = Field(False, description="regex: the whole text must match.")
    extract_code: bool = Field(
        True,
        description="python/sql/json_schema: check the first fenced code block when the text "
        "has one (models wrap code in ``` fences).",
    )
    run: bool = Field(
        False,
        description="python: also run the code (plus `test`) in a subprocess with time and "
        "memory limits and no network.",
    )
    test: str | None = Field(
        None,
        max_length=MAX_TEXT_CHARS,
        description="python: code run after the checked code (e.g. asserts); a Jinja "
        "template over earlier columns, e.g. '{{ test }}' for a test per row.",
    )
    timeout_s: float = Field(5.0, gt=0, le=600, description="python run: wall-clock limit.")
    memory_mb: int = Field(512, ge=64, le=65536, description="python run: address-space limit.")
    dialect: str | None = Field(None, description="sql: sqlglot dialect (e.g. sqlite, postgres).")

    @model_validator(mode="after")
    def _options(self) -> ValidateColumn:
        if self.check == "json_schema":
            import jsonschema

            if self.json_schema is None:
                raise ValueError("check json_schema needs json_schema")
            try:
                jsonschema.Draft202012Validator.check_schema(self.json_schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if self.check == "regex" and not self.pattern:
            raise ValueError("check regex needs pattern")
        return self

    def fields(self) -> list[str]:
        return [self.name, f"{self.name}_error"]

    def defines(self) -> list[str]:
        return [self.name, f"{self.name}_error"]

    def templates(self) -> list[tuple[str, str, bool]]:
        return [("test", self.test, False)] if self.test else []

    def reads(self) -> set[str]:
        return {self.column}


#: every registered column kind, discriminated on ``kind`` (in registration order)


Column: Any = COLUMNS.union()


def parse_column(data: dict[str, Any]) -> Any:
    """One column from its spec mapping (a ValueError when it is not a valid column)."""
    from pydantic import TypeAdapter

    return TypeAdapter(Column).validate_python(data)


def column_fields(column: ColumnBase) -> list[str]:
    """The flat data columns a column produces (``name`` or ``name.field``)."""
    return column.fields()
