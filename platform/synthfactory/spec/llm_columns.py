"""LLM column kinds: ``llm_text``, ``llm_structured``, ``llm_judge`` and
``llm_judge_pairwise`` render a Jinja template over earlier columns and ask their model."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from synthfactory.spec.base import Frozen
from synthfactory.spec.column_kinds import COLUMNS, KINDS, ColumnBase
from synthfactory.spec.judges import JUDGE_FIELDS, PAIRWISE_FIELDS, RUBRIC_PRESETS, Criterion
from synthfactory.spec.limits import MAX_TEXT_CHARS


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

    llm: ClassVar[bool] = True
    structured: ClassVar[bool] = True

    def templates(self) -> list[tuple[str, str, bool]]:
        template: str = self.template  # type: ignore[attr-defined]  # every LLM kind has one
        out = [("template", template, False)]
        if self.system_prompt:
            out.append(("system_prompt", self.system_prompt, False))
        return out


@COLUMNS.register(f"{KINDS}.llm:LLMText")
class LLMTextColumn(LLMColumnBase):
    """Free text: the completion of a Jinja template over earlier columns."""

    kind: Literal["llm_text"] = Field("llm_text", description="A completion.")
    text: ClassVar[bool] = True
    structured: ClassVar[bool] = False
    template: str = Field(
        max_length=MAX_TEXT_CHARS,
        description="Jinja template of the user prompt, e.g. 'Answer: {{ instruction }}'.",
    )


@COLUMNS.register(f"{KINDS}.llm:LLMStructured")
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

    def fields(self) -> list[str]:
        return [f"{self.name}.{p}" for p in self.json_schema["properties"]]

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


@COLUMNS.register(f"{KINDS}.llm:LLMJudge")
class LLMJudgeColumn(LLMColumnBase):
    """An LLM judge: for each criterion of the rubric an integer score (1..N) and a short
    reason, as fields ``<name>.<criterion>.score`` and ``<name>.<criterion>.reason``."""

    kind: Literal["llm_judge"] = Field("llm_judge", description="Scores against a rubric.")
    reports: ClassVar[str | None] = "judge"
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

    def fields(self) -> list[str]:
        names = [c if isinstance(c, str) else c.name for c in self.rubric]
        return [f"{self.name}.{n}.{part}" for n in names for part in JUDGE_FIELDS]

    def reads(self) -> set[str]:
        return {self.source_column} if self.source_column else set()

    def levels(self) -> dict[str, int]:
        """Criterion -> its number of score levels (what the metrics report scores on)."""
        return {c.name: len(c.levels) for c in criteria(self)}


@COLUMNS.register(f"{KINDS}.pairwise:PairwiseJudge")
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

    def fields(self) -> list[str]:
        return [f"{self.name}.{part}" for part in PAIRWISE_FIELDS]

    def reads(self) -> set[str]:
        return set(self.candidates)


def criteria(column: LLMJudgeColumn) -> list[Criterion]:
    """The judge's criteria with presets expanded (the spec rejects unknown presets)."""
    return [RUBRIC_PRESETS[c] if isinstance(c, str) else c for c in column.rubric]
