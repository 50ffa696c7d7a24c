"""The ``llm_judge_pairwise`` column: which of two earlier columns is the better answer.

Each row is asked twice in one batch, the second time with the two candidates swapped
(its own seed), so a judge that prefers a position cannot make a winner: ``winner`` is the
verdict both calls agree on, else "tie" (``consistent`` false). The reply is JSON
``{"winner": "A" | "B" | "tie", "reason": ...}`` (its schema is the structured output of
backends that constrain decoding); a lenient reading also takes ``winner: A``. With logprobs,
``prob_a`` is the probability that the first candidate is better, read at the verdict
token of each call (ties count half) and averaged over both orders.
"""

from __future__ import annotations

import json
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.spec.columns import LLMJudgePairwiseColumn
from synthfactory_workers.text.backend import Completion, Request, TokenLogprob
from synthfactory_workers.text.kinds.base import Row, messages
from synthfactory_workers.text.kinds.llm import LLMKind, judge_types
from synthfactory_workers.text.logprobs import TOP_LOGPROBS
from synthfactory_workers.text.rubrics import (
    JUDGE_SYSTEM,
    REASON_CHARS,
    label_key,
    token_at,
    token_text,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from synthfactory_workers.contract import ShardTask

Key = tuple[int, int]
"""(row index, order): order 0 shows the candidates as [a, b], order 1 as [b, a]."""
Verdict = tuple[str, str, dict[str, float] | None]
"""(verdict in candidate terms "a" | "b" | "tie", reason, label probabilities or None)."""


def pairwise_schema(column: LLMJudgePairwiseColumn) -> dict[str, Any]:
    labels = ["A", "B", "tie"] if column.ties else ["A", "B"]
    return {
        "type": "object",
        "properties": {
            "winner": {"enum": labels},
            "reason": {"type": "string", "maxLength": REASON_CHARS},
        },
        "required": ["winner", "reason"],
    }


def pairwise_prompt(column: LLMJudgePairwiseColumn, context: str, first: str, second: str) -> str:
    labels = '"A", "B" or "tie" (equally good)' if column.ties else '"A" or "B"'
    example = json.dumps({"winner": "A", "reason": "one short sentence"})
    return "\n\n".join(
        [
            context.strip(),
            f"Response A:\n{first.strip()}",
            f"Response B:\n{second.strip()}",
            f"{column.criterion.strip()} The winner is {labels}.",
            "Reply with JSON only, in this form:\n" + example,
        ]
    )


def _label(value: Any, ties: bool) -> str | None:
    """ "A", "B" or "tie" from a reply's value ("a", "Response B", "Tie."), else None."""
    key = re.sub(r"^(response|answer)\s+", "", str(value).strip().strip(".\"'").lower())
    if key in ("a", "b"):
        return key.upper()
    return "tie" if ties and key == "tie" else None


def parse_verdict(column: LLMJudgePairwiseColumn, text: str) -> tuple[str | None, str]:
    """("A" | "B" | "tie", reason), or (None, why the reply cannot be read)."""
    from synthfactory_workers.text.filters import extract_json

    try:
        value = extract_json(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        label = _label(lowered.get("winner", ""), column.ties)
        if label is not None:
            return label, str(lowered.get("reason") or "")[:500]
    match = list(re.finditer(r"winner\W{0,5}(?:response\s+)?(A|B|tie)\b", text, re.I))
    if match:
        label = _label(match[-1].group(1), column.ties)
        if label is not None:
            return label, ""
    return None, "judge_unreadable: no winner (A, B" + (" or tie)" if column.ties else ")")


def verdict_probabilities(
    logprobs: tuple[TokenLogprob, ...] | None, label: str, ties: bool
) -> dict[str, float] | None:
    """{A, B, tie: probability}, normalised over the labels, at the token where the judge
    wrote its (last) verdict; None without logprobs or when that token is not the label."""
    if not logprobs:
        return None
    text, starts = token_text(logprobs)
    found = list(re.finditer(r"winner\W{0,5}(?:response\s+)?(A|B|tie)\b", text, re.I))
    if not found or _label(found[-1].group(1), ties) != label:
        return None
    token = logprobs[token_at(starts, found[-1].start(1))]
    if _token_label(token.token, ties) != label:
        return None
    probs = dict.fromkeys(("A", "B", "tie"), 0.0)
    for alternative, logprob in token.top:
        name = _token_label(alternative, ties)
        if name is not None and math.isfinite(logprob):
            probs[name] += math.exp(logprob)
    mass = sum(probs.values())
    return {k: v / mass for k, v in probs.items()} if mass > 0 else None


def _token_label(token: str, ties: bool) -> str | None:
    """The label a verdict token starts: "a", "b", or a start of "tie" ("t", "ti")."""
    key = label_key(token).lower()
    if key in ("a", "b"):
        return key.upper()
    return "tie" if ties and key and "tie".startswith(key) else None


def pair_seed(shard_seed: int, row: int, column: int, order: int, attempt: int) -> int:
    state = np.random.SeedSequence([shard_seed, row, column, attempt, order, 0x9A1B])
    words = state.generate_state(2)
    return int(words[0]) << 32 | int(words[1])


def in_candidate_terms(label: str, order: int) -> str:
    """A call's verdict as "a", "b" or "tie" (order 1 showed b as A)."""
    if label == "tie":
        return "tie"
    return ("a" if label == "A" else "b") if order == 0 else ("b" if label == "A" else "a")


def prob_a(probs: dict[str, float] | None, order: int) -> float | None:
    if probs is None:
        return None
    first = probs["A"] if order == 0 else probs["B"]
    return first + probs["tie"] / 2


class PairwiseJudge(LLMKind):
    """The worker of ``llm_judge_pairwise`` columns."""

    def arrow_types(self) -> dict[str, pa.DataType]:
        import pyarrow as pa

        types = {**super().arrow_types(), **judge_types(self.column)}
        types[f"{self.name}__source"] = pa.string()
        return types

    def run(self, ci: int, rows: list[Row], shard: ShardTask, stats: dict[str, float]) -> None:
        run_pairwise(self, ci, rows, int(shard.seed), stats)
        self.pipe.engine.requests.check_failures(shard, stats, self.backend)


def run_pairwise(
    kind: PairwiseJudge, ci: int, rows: list[Row], seed: int, stats: dict[str, float]
) -> None:
    """Both orders of every row in one batch, unreadable replies retried; then the row's
    fields (``store``)."""
    column: LLMJudgePairwiseColumn = kind.column
    name = column.name
    prompts: dict[Key, str] = {}
    for row in rows:
        try:
            context = kind.template.render(**row.ctx)
            a, b = (str(row.ctx[c]) for c in column.candidates)
        except Exception as exc:  # jinja2 errors, a missing candidate
            row.reject(name, f"template_error: {exc}")
            continue
        prompts[(row.index, 0)] = pairwise_prompt(column, context, a, b)
        prompts[(row.index, 1)] = pairwise_prompt(column, context, b, a)
    by_index = {r.index: r for r in rows}
    system = column.system_prompt or JUDGE_SYSTEM
    k = TOP_LOGPROBS if column.scores_from == "probability" else 0
    verdicts: dict[Key, Verdict] = {}
    with kind.settings(pairwise_schema(column)) as backend:
        pending = list(prompts)
        for attempt in range(column.max_retries + 1):
            pending = [p for p in pending if by_index[p[0]].reason is None]
            if not pending:
                break
            requests = [
                Request(messages(system, prompts[p]), pair_seed(seed, p[0], ci, p[1], attempt), k)
                for p in pending
            ]
            completions = kind.send(requests, stats, backend)
            last = attempt == column.max_retries
            pending, read = _read(
                kind, by_index, pending, requests, completions, attempt, last, stats
            )
            verdicts.update(read)
    for row in rows:
        if row.reason is None and (row.index, 0) in verdicts and (row.index, 1) in verdicts:
            store(row, name, verdicts[(row.index, 0)], verdicts[(row.index, 1)])


def _read(
    kind: PairwiseJudge,
    by_index: dict[int, Row],
    keys: list[Key],
    requests: list[Request],
    completions: list[Completion],
    attempt: int,
    last: bool,
    stats: dict[str, float],
) -> tuple[list[Key], dict[Key, Verdict]]:
    """Account each completion and read its verdict: (the keys to ask again, the verdicts)."""
    column: LLMJudgePairwiseColumn = kind.column
    again: list[Key] = []
    verdicts: dict[Key, Verdict] = {}
    for key, request, completion in zip(keys, requests, completions, strict=True):
        row = by_index[key[0]]
        kind.account(row, request, completion, attempt, stats)
        if completion.error is not None:
            row.reject(column.name, f"request_failed: {completion.error}")
            continue
        label, reason = parse_verdict(column, completion.text)
        if label is None:
            if last:
                row.out[f"{column.name}__raw"] = completion.text
                row.reject(column.name, reason)
            else:
                again.append(key)
            continue
        probs = verdict_probabilities(completion.logprobs, label, column.ties)
        verdicts[key] = (in_candidate_terms(label, key[1]), reason, probs)
    return again, verdicts


def store(row: Row, name: str, first: Verdict, second: Verdict) -> None:
    """The row's fields from the verdicts of both orders (each in candidate terms)."""
    winner = first[0] if first[0] == second[0] else "tie"
    p_first, p_second = prob_a(first[2], 0), prob_a(second[2], 1)
    chance = None if p_first is None or p_second is None else (p_first + p_second) / 2
    value = {
        "winner": winner,
        "first": first[0],
        "second": second[0],
        "consistent": first[0] == second[0],
        "prob_a": chance,
        "reason": first[1],
    }
    row.ctx[name] = value
    for key, item in value.items():
        row.out[f"{name}.{key}"] = item
    row.out[f"{name}__source"] = "sampled" if chance is None else "probability"
