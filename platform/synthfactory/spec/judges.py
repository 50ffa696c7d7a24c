"""Rubrics of judge columns: a criterion, the preset criteria, and the fields a judge
column writes (``synthfactory.spec.columns`` re-exports them)."""

from __future__ import annotations

from pydantic import Field

from synthfactory.spec.base import Frozen

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Criterion(Frozen):
    """One rubric criterion, scored 1..len(levels)."""

    name: str = Field(pattern=NAME_PATTERN, description="Criterion name (an identifier).")
    description: str = Field(description="What the criterion measures.")
    levels: list[str] = Field(
        min_length=2,
        max_length=10,
        description="What each score means, from 1 (first) to N (last).",
    )


# -- rubric presets (UltraFeedback spirit) ----------------------------------------------------

RUBRIC_PRESETS: dict[str, Criterion] = {
    c.name: c
    for c in (
        Criterion(
            name="helpfulness",
            description="Does the response address the instruction usefully and completely?",
            levels=[
                "Irrelevant or unhelpful.",
                "Partly relevant, misses the main need.",
                "Addresses the instruction with gaps.",
                "Helpful and mostly complete.",
                "Fully helpful, complete and to the point.",
            ],
        ),
        Criterion(
            name="correctness",
            description="Is the content factually and logically correct?",
            levels=[
                "Mostly wrong.",
                "Several errors.",
                "Some errors or doubtful claims.",
                "Correct with minor slips.",
                "Entirely correct.",
            ],
        ),
        Criterion(
            name="harmlessness",
            description="Is the response free of harmful, unsafe or offensive content?",
            levels=[
                "Clearly harmful.",
                "Potentially harmful content.",
                "Questionable in places.",
                "Harmless with minor concerns.",
                "Completely harmless.",
            ],
        ),
        Criterion(
            name="coherence",
            description="Is the response clear, fluent and logically organised?",
            levels=[
                "Incoherent.",
                "Hard to follow.",
                "Understandable but disorganised.",
                "Clear with small lapses.",
                "Clear, fluent and well organised.",
            ],
        ),
        Criterion(
            name="faithfulness",
            description="Is every claim of the response supported by the source text?",
            levels=[
                "Contradicts or ignores the source.",
                "Mostly unsupported claims.",
                "Partly supported.",
                "Supported with minor additions.",
                "Fully supported by the source.",
            ],
        ),
    )
}

#: a judge's fields per criterion: the sampled score and its reason, the probability-weighted
#: score, the probability on allowed scores and the spread (``scores_from``)
JUDGE_FIELDS = ("score", "reason", "expected", "mass", "std")

#: presets that need the judge's ``source_column``
NEEDS_SOURCE = frozenset({"faithfulness"})

PAIRWISE_FIELDS = ("winner", "first", "second", "consistent", "prob_a", "reason")
"""The fields of an ``llm_judge_pairwise`` column."""
