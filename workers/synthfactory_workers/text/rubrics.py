"""The ``llm_judge`` column: the judge's prompt from a rubric, the JSON Schema of its reply
(used as structured output by backends that enforce one), and the reply's parsing."""

from __future__ import annotations

import json
import re
from typing import Any

from synthfactory.spec.columns import Criterion, LLMJudgeColumn, criteria

JUDGE_SYSTEM = (
    "You are a strict, fair evaluator. You rate a response against a rubric and reply "
    "with JSON only."
)
JUDGE_SYSTEM_PLAIN = "You are a strict, fair evaluator. You rate a response against a rubric."


def judge_schema(column: LLMJudgeColumn) -> dict[str, Any]:
    props = {
        c.name: {
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": len(c.levels)},
                "reason": {"type": "string"},
            },
            "required": ["score", "reason"],
        }
        for c in criteria(column)
    }
    return {"type": "object", "properties": props, "required": list(props)}


def judge_prompt(
    column: LLMJudgeColumn, rendered: str, source: str | None, plain: bool = False
) -> str:
    """What the judge is asked. ``plain``: the retry of a lenient judge whose JSON reply
    could not be read asks for ``criterion: score`` lines instead (small models that never
    write JSON often can); the reply is read by the same parser."""
    parts = [f"Source:\n{source}"] if source is not None else []
    parts.append(rendered.strip())
    lines = ["Rate the response on each criterion:"]
    for c in criteria(column):
        lines.append(f"\n{c.name} (1 to {len(c.levels)}): {c.description}")
        lines += [f"  {score}: {level}" for score, level in enumerate(c.levels, start=1)]
    parts.append("\n".join(lines))
    if plain:
        names = ", ".join(c.name for c in criteria(column))
        parts.append(
            f"For each criterion ({names}), reply with one line: the criterion's name, a "
            "colon and the score you give, then one short reason."
        )
        return "\n\n".join(parts)
    example = {
        c.name: {"score": len(c.levels) // 2 + 1, "reason": "one short sentence"}
        for c in criteria(column)
    }
    parts.append("Reply with JSON only, in this form:\n" + json.dumps(example))
    return "\n\n".join(parts)


def _quoted_level(text: str, criterion: Criterion) -> re.Match[str] | None:
    """The first ``N: <level N's words>`` in the reply: the judge quoted a rubric level."""
    for match in re.finditer(r"\b(\d+)\s*[:.)-]\s*([A-Za-z][^\n]{0,40})", text):
        score = int(match.group(1))
        if 1 <= score <= len(criterion.levels):
            words = criterion.levels[score - 1].lower().split()[:2]
            if words and match.group(2).lower().startswith(" ".join(words)):
                return match
    return None


def _score(value: Any, criterion: Criterion) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer():
        score = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        score = int(value.strip())
    else:
        return None
    return score if 1 <= score <= len(criterion.levels) else None


def parse_judgement(
    column: LLMJudgeColumn, text: str
) -> tuple[dict[str, dict[str, Any]] | None, str | None]:
    """({criterion: {score, reason}}, None) or (None, why the reply cannot be read).

    JSON first (``{"c": {"score": 4, "reason": ".."}}`` or ``{"c": 4}``); when ``lenient``,
    criteria it lacks are read from text such as ``c: 4`` or ``"c": {"score": 4``, and a
    one-criterion rubric also accepts ``score: 4`` or a lone number in range."""
    from synthfactory_workers.text.generator import extract_json

    wanted = criteria(column)
    found: dict[str, dict[str, Any]] = {}
    problem = ""
    try:
        value = extract_json(text)
    except ValueError as exc:
        value, problem = None, f"invalid_json: {exc}"
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        for c in wanted:
            entry = lowered.get(c.name.lower())
            if isinstance(entry, dict):
                score, reason = _score(entry.get("score"), c), entry.get("reason", "")
            else:
                score, reason = _score(entry, c), lowered.get(f"{c.name.lower()}_reason", "")
            if score is not None:
                found[c.name] = {"score": score, "reason": str(reason or "")[:500]}
        if len(wanted) == 1 and not found and "score" in lowered:
            score = _score(lowered["score"], wanted[0])
            if score is not None:
                found[wanted[0].name] = {
                    "score": score,
                    "reason": str(lowered.get("reason", ""))[:500],
                }
    elif value is not None:
        problem = "invalid_json: not an object"
    if column.lenient:
        for c in wanted:
            if c.name in found:
                continue
            name = re.escape(c.name)
            match = re.search(
                rf"{name}\W{{0,30}}?(?:score\W{{0,5}})?(\d+)(?!\s*(?:to|-|\u2013)\s*\d)",
                text,
                re.I | re.S,
            )
            if match is None and len(wanted) == 1:
                match = (
                    re.search(r"score\W{0,5}(\d+)", text, re.I)
                    or re.search(r"\b(\d+)\s*(?:/|out of)\s*\d+\b", text)
                    or _quoted_level(text, c)
                )
                if match is None:
                    lone = re.findall(r"\b(\d+)\b", text)
                    match = re.search(rf"\b({lone[0]})\b", text) if len(lone) == 1 else None
            score = _score(match.group(1), c) if match else None
            if score is not None:
                found[c.name] = {"score": score, "reason": ""}
    missing = [c.name for c in wanted if c.name not in found]
    if missing:
        return None, (problem + "; " if problem else "") + f"no score for {missing}"
    return found, None
