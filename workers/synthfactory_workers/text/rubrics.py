"""The ``llm_judge`` column: the judge's prompt from a rubric, the JSON Schema of its reply
(used as structured output by backends that enforce one), and the reply's parsing."""

from __future__ import annotations

import bisect
import json
import math
import re
from typing import Any

from synthfactory.spec.columns import Criterion, LLMJudgeColumn, criteria
from synthfactory_workers.text.backend import TokenLogprob

JUDGE_SYSTEM = (
    "You are a strict, fair evaluator. You rate a response against a rubric and reply "
    "with JSON only."
)
JUDGE_SYSTEM_PLAIN = "You are a strict, fair evaluator. You rate a response against a rubric."


#: a reason's longest length in a judge's schema: under constrained decoding a judge cannot
#: spend its whole token budget on the first criterion's reason and leave the rest unscored
REASON_CHARS = 120


def judge_schema(column: LLMJudgeColumn) -> dict[str, Any]:
    props = {
        c.name: {
            "type": "object",
            "properties": {
                "score": {"type": "integer", "minimum": 1, "maximum": len(c.levels)},
                "reason": {"type": "string", "maxLength": REASON_CHARS},
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
    from synthfactory_workers.text.filters import extract_json

    wanted = criteria(column)
    found: dict[str, dict[str, Any]] = {}
    problem = ""
    try:
        value = extract_json(text)
    except ValueError as exc:
        value, problem = None, f"invalid_json: {exc}"
    if isinstance(value, dict):
        found.update(_json_scores(value, wanted))
    elif value is not None:
        problem = "invalid_json: not an object"
    if column.lenient:
        for c in wanted:
            score = None if c.name in found else _text_score(text, c, len(wanted) == 1)
            if score is not None:
                found[c.name] = {"score": score, "reason": ""}
    missing = [c.name for c in wanted if c.name not in found]
    if missing:
        return None, (problem + "; " if problem else "") + f"no score for {missing}"
    return found, None


def _json_scores(value: dict[Any, Any], wanted: list[Criterion]) -> dict[str, dict[str, Any]]:
    """The scores a JSON reply gives, by criterion (a one-criterion rubric may say
    ``{"score": 4, "reason": ...}``)."""
    found: dict[str, dict[str, Any]] = {}
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
    return found


def _text_score(text: str, c: Criterion, only: bool) -> int | None:
    """A criterion's score read from prose (``c: 4``); for the ``only`` criterion of a
    rubric also ``score: 4``, ``4/5``, a quoted level or a lone number."""
    name = re.escape(c.name)
    match = re.search(
        rf"{name}\W{{0,30}}?(?:score\W{{0,5}})?(\d+)(?!\s*(?:to|-|\u2013)\s*\d)",
        text,
        re.I | re.S,
    )
    if match is None and only:
        match = (
            re.search(r"score\W{0,5}(\d+)", text, re.I)
            or re.search(r"\b(\d+)\s*(?:/|out of)\s*\d+\b", text)
            or _quoted_level(text, c)
        )
        if match is None:
            lone = re.findall(r"\b(\d+)\b", text)
            match = re.search(rf"\b({lone[0]})\b", text) if len(lone) == 1 else None
    return _score(match.group(1), c) if match else None


# -- scores from probabilities (G-Eval) ---------------------------------------------------------


def token_text(logprobs: tuple[TokenLogprob, ...]) -> tuple[str, list[int]]:
    """The generated text as its tokens joined, and each token's start offset in it."""
    starts, at = [], 0
    for t in logprobs:
        starts.append(at)
        at += len(t.token)
    return "".join(t.token for t in logprobs), starts


def token_at(starts: list[int], offset: int) -> int:
    """The index of the token whose text covers ``offset``."""
    return bisect.bisect_right(starts, offset) - 1


def _value_span(text: str, criterion: Criterion, single: bool) -> tuple[int, int] | None:
    """Where the judge wrote this criterion's score in ``text``: its JSON value
    (``"c": {"score": N`` or ``"c": N``), else ``c ... N``, else (one criterion) ``score N``;
    the last such place, as the parser's reading of a reply that repeats itself."""
    name = re.escape(criterion.name)
    patterns = [
        rf'"{name}"\s*:\s*\{{[^{{}}]*?"score"\s*:\s*"?(\d+)',
        rf'"{name}"\s*:\s*"?(\d+)',
        rf"{name}\W{{0,30}}?(?:score\W{{0,5}})?(\d+)",
    ]
    if single:
        patterns.append(r"score\W{0,5}(\d+)")
    for pattern in patterns:
        matches = list(re.finditer(pattern, text, re.I | re.S))
        if matches:
            return matches[-1].span(1)
    return None


def label_key(token: str) -> str:
    """A token as a judge's value: without the spaces and quotes around it."""
    return token.strip().strip("\"'").strip()


def score_distribution(
    top: tuple[tuple[str, float], ...], levels: int
) -> tuple[float, float, float] | None:
    """(expected score, probability mass on the allowed scores 1..levels, std) from one
    position's alternatives; tokens that are no allowed score are dropped (spellings of one
    score, e.g. "4" and " 4", add up). None when no alternative is an allowed score."""
    probs: dict[int, float] = {}
    for token, logprob in top:
        key = label_key(token)
        if key.isdigit() and 1 <= int(key) <= levels and math.isfinite(logprob):
            probs[int(key)] = probs.get(int(key), 0.0) + math.exp(logprob)
    mass = sum(probs.values())
    if mass <= 0.0:
        return None
    mean = sum(s * p for s, p in probs.items()) / mass
    var = sum(p * (s - mean) ** 2 for s, p in probs.items()) / mass
    return mean, min(mass, 1.0), math.sqrt(max(var, 0.0))


def weighted_scores(
    column: LLMJudgeColumn,
    scores: dict[str, dict[str, Any]],
    logprobs: tuple[TokenLogprob, ...] | None,
) -> dict[str, dict[str, Any]]:
    """Each criterion's parsed entry with ``expected``, ``mass``, ``std`` and ``source``:
    from the probabilities at the score's token when the backend returned them and that
    token is the sampled score, else the sampled score (``source: sampled``, mass and std
    None)."""
    wanted = criteria(column)
    text, starts = token_text(logprobs) if logprobs else ("", [])
    out: dict[str, dict[str, Any]] = {}
    for c in wanted:
        entry = dict(scores[c.name])
        entry.update(expected=float(entry["score"]), mass=None, std=None, source="sampled")
        span = _value_span(text, c, len(wanted) == 1) if logprobs else None
        if logprobs and span is not None and int(text[span[0] : span[1]]) == entry["score"]:
            token = logprobs[token_at(starts, span[0])]
            if label_key(token.token) == text[span[0] : span[1]]:  # the whole number
                found = score_distribution(token.top, len(c.levels))
                if found is not None:
                    expected, mass, std = found
                    entry.update(expected=expected, mass=mass, std=std, source="probability")
        out[c.name] = entry
    return out
