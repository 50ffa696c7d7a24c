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
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from synthfactory.spec.base import Frozen
from synthfactory.spec.judges import (
    JUDGE_FIELDS,
    NEEDS_SOURCE,  # noqa: F401  (re-exported)
    PAIRWISE_FIELDS,
    RUBRIC_PRESETS,
    Criterion,
)
from synthfactory.spec.limits import MAX_TEXT_CHARS

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

_NAME = Field(
    pattern=NAME_PATTERN,
    description="Column name (a Jinja identifier: letters, digits, _); later templates use it "
    "as a variable.",
)


class ColumnBase(Frozen):
    name: str = _NAME


# -- samplers ----------------------------------------------------------------------------


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


class UUIDColumn(ColumnBase):
    """A random UUID (version 4 layout) drawn from the row's seed: reproducible."""

    kind: Literal["uuid"] = Field("uuid", description="A seeded UUID string.")


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

    @field_validator("choices")
    @classmethod
    def _non_empty(cls, choices: dict[str, Any]) -> dict[str, Any]:
        if not choices or any(not options for options in choices.values()):
            raise ValueError("every value needs at least one option")
        return choices


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


PERSON_FIELDS = ("name", "first_name", "last_name", "sex", "age", "locale", "occupation", "city")


class SourceColumn(ColumnBase):
    """A column of the source table (``generator.source``): the row that belongs to this
    prompt (sequential or random, ``generator.source_order``)."""

    kind: Literal["source"] = Field("source", description="A column of the source table.")
    column: str | None = Field(None, description="Source column to read (default: `name`).")

    @property
    def source_column(self) -> str:
        return self.column or self.name


# -- LLM columns ---------------------------------------------------------------------------


class SamplingOverride(Frozen):
    """Decoding settings of one column; unset fields keep the job's ``sampling``."""

    greedy: bool | None = Field(None, description="Always take the most likely token.")
    temperature: float | None = Field(None, gt=0, le=5, description="Softmax temperature.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int | None = Field(None, ge=0, description="0 disables top-k.")
    max_new_tokens: int | None = Field(
        None, ge=1, le=32768, description="Most tokens generated per completion."
    )
    repetition_penalty: float | None = Field(
        None, ge=1.0, le=3.0, description="Penalty on already generated tokens."
    )
    stop: list[str] | None = Field(None, description="Stop strings.")


class LLMColumnBase(ColumnBase):
    system_prompt: str | None = Field(
        None,
        max_length=MAX_TEXT_CHARS,
        description="System message of this column (default: generator.system_prompt).",
    )
    sampling: SamplingOverride = Field(
        default_factory=SamplingOverride,  # type: ignore[arg-type]
        description="Decoding settings of this column over the job's sampling.",
    )
    model: str | None = Field(
        None,
        description="The model of this column: a name from generator.models, or a model "
        "(Hugging Face id, local folder, builtin:smollm2) run with the job's backend, device "
        "and dtype. Default: generator.model. Each model other than generator.model runs in "
        "its own actor pool, sized by resources.models.<this value>.",
    )


class LLMTextColumn(LLMColumnBase):
    """Free text: the completion of a Jinja template over earlier columns."""

    kind: Literal["llm_text"] = Field("llm_text", description="A completion.")
    template: str = Field(
        max_length=MAX_TEXT_CHARS,
        description="Jinja template of the user prompt, e.g. 'Answer: {{ instruction }}'.",
    )


class LLMStructuredColumn(LLMColumnBase):
    """A JSON object valid against ``json_schema``; each top-level property becomes a typed
    column ``<name>.<property>`` (invalid replies are retried, then rejected)."""

    kind: Literal["llm_structured"] = Field("llm_structured", description="A JSON object.")
    template: str = Field(
        max_length=MAX_TEXT_CHARS, description="Jinja template of the user prompt."
    )
    json_schema: dict[str, Any] = Field(
        description="JSON Schema of the reply: an object with `properties`."
    )
    max_retries: int = Field(2, ge=0, le=20, description="New tries for an invalid reply.")

    @field_validator("json_schema")
    @classmethod
    def _schema_is_valid(cls, schema: dict[str, Any]) -> dict[str, Any]:
        import jsonschema

        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
            raise ValueError("json_schema must be an object schema with properties")
        json.dumps(schema)
        return schema


class LLMJudgeColumn(LLMColumnBase):
    """An LLM judge: for each criterion of the rubric an integer score (1..N) and a short
    reason, as fields ``<name>.<criterion>.score`` and ``<name>.<criterion>.reason``."""

    kind: Literal["llm_judge"] = Field("llm_judge", description="Scores against a rubric.")
    template: str = Field(
        max_length=MAX_TEXT_CHARS,
        description="Jinja template of what the judge sees, e.g. "
        "'Instruction: {{ instruction }}\\nResponse: {{ response }}'.",
    )
    rubric: list[str | Criterion] = Field(
        min_length=1,
        description="Criteria: preset names (helpfulness, correctness, harmlessness, "
        "coherence, faithfulness) or {name, description, levels}.",
    )
    source_column: str | None = Field(
        None,
        description="Earlier column holding the grounding text (needed by `faithfulness`): "
        "shown to the judge as the source.",
    )
    max_retries: int = Field(2, ge=0, le=20, description="New tries for an unreadable reply.")
    lenient: bool = Field(
        True,
        description="Accept replies that are not JSON when a score per criterion can still be "
        "read (e.g. 'correctness: 4', or a quoted rubric level '4: Mostly correct'), and ask "
        "the retries of an unreadable reply for 'criterion: score' lines instead of JSON; "
        "small models rarely write exact JSON.",
    )

    scores_from: Literal["probability", "sampled"] = Field(
        "probability",
        description="probability: each criterion also gets the expected score over its "
        "levels from the judge's token probabilities where it wrote the score (G-Eval): "
        "fields <criterion>.expected, .mass (probability on allowed scores) and .std; a "
        "backend that returns no logprobs gives the sampled score there (lineage "
        "<name>__<criterion>__source says which). sampled: no logprobs are asked for; "
        "expected is the sampled score.",
    )

    @field_validator("rubric")
    @classmethod
    def _known_presets(cls, rubric: list[str | Criterion]) -> list[str | Criterion]:
        unknown = [c for c in rubric if isinstance(c, str) and c not in RUBRIC_PRESETS]
        if unknown:
            raise ValueError(
                f"unknown rubric preset {unknown[0]!r}: use one of {sorted(RUBRIC_PRESETS)} "
                "or write the criterion as {name, description, levels}"
            )
        return rubric


class LLMJudgePairwiseColumn(LLMColumnBase):
    """A pairwise judge: which of two earlier columns is the better answer. It is asked
    twice, the second time with the two swapped, so position bias shows: fields
    ``<name>.first`` and ``<name>.second`` (each call's verdict, "a", "b" or "tie", where a
    is the first candidate), ``<name>.winner`` (the verdict both calls agree on, else
    "tie"), ``<name>.consistent``, ``<name>.prob_a`` (probability that a is better, from
    the verdict tokens' probabilities averaged over both orders, ties counted half; null
    without logprobs) and ``<name>.reason`` (the first call's)."""

    kind: Literal["llm_judge_pairwise"] = Field(
        "llm_judge_pairwise", description="Which of two answers is better."
    )
    template: str = Field(
        max_length=MAX_TEXT_CHARS,
        description="Jinja template of what both answers respond to, e.g. "
        "'Instruction: {{ instruction }}'.",
    )
    candidates: list[str] = Field(
        min_length=2,
        max_length=2,
        description="The two earlier columns to compare: [a, b].",
    )
    criterion: str = Field(
        "Which response follows the instruction better: more helpful, correct and clear?",
        max_length=MAX_TEXT_CHARS,
        description="The question the judge answers about the two responses.",
    )
    ties: bool = Field(True, description="The judge may answer 'tie'.")
    max_retries: int = Field(2, ge=0, le=20, description="New tries for an unreadable reply.")
    scores_from: Literal["probability", "sampled"] = Field(
        "probability",
        description="probability: ask for logprobs and report prob_a; sampled: do not.",
    )

    @field_validator("candidates")
    @classmethod
    def _two_columns(cls, candidates: list[str]) -> list[str]:
        if candidates[0] == candidates[1]:
            raise ValueError("candidates must be two different columns")
        return candidates


# -- computed columns ------------------------------------------------------------------------


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


class ValidateColumn(ColumnBase):
    """A check of an earlier column: the column is a boolean (passed) and ``<name>_error``
    says why not."""

    kind: Literal["validate"] = Field("validate", description="A validator.")
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


Column = Annotated[
    ChoiceColumn
    | RangeColumn
    | UUIDColumn
    | DatetimeColumn
    | CategoryByColumn
    | PersonColumn
    | SourceColumn
    | LLMTextColumn
    | LLMStructuredColumn
    | LLMJudgeColumn
    | LLMJudgePairwiseColumn
    | ExpressionColumn
    | ValidateColumn,
    Field(discriminator="kind"),
]

LLM_COLUMNS = (LLMTextColumn, LLMStructuredColumn, LLMJudgeColumn, LLMJudgePairwiseColumn)


def parse_column(data: dict[str, Any]) -> Any:
    """One column from its spec mapping (a ValueError when it is not a valid column)."""
    from pydantic import TypeAdapter

    return TypeAdapter(Column).validate_python(data)


def criteria(column: LLMJudgeColumn) -> list[Criterion]:
    """The judge's criteria with presets expanded (the spec rejects unknown presets)."""
    return [RUBRIC_PRESETS[c] if isinstance(c, str) else c for c in column.rubric]


def column_fields(column: Any) -> list[str]:
    """The flat data columns a column produces (``name`` or ``name.field``)."""
    if isinstance(column, PersonColumn):
        return [f"{column.name}.{f}" for f in PERSON_FIELDS]
    if isinstance(column, LLMStructuredColumn):
        return [f"{column.name}.{p}" for p in column.json_schema["properties"]]
    if isinstance(column, LLMJudgeColumn):
        names = [c if isinstance(c, str) else c.name for c in column.rubric]
        return [f"{column.name}.{n}.{part}" for n in names for part in JUDGE_FIELDS]
    if isinstance(column, LLMJudgePairwiseColumn):
        return [f"{column.name}.{part}" for part in PAIRWISE_FIELDS]
    if isinstance(column, ValidateColumn):
        return [column.name, f"{column.name}_error"]
    return [column.name]
