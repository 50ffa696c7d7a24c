"""Ties in the pairwise judge: a judge that answers "tie" in both orders is a consistent tie
(not the inconsistent tie of position bias), and ``ties: false`` takes "tie" out of the
reply's schema, the prompt and the verdict probabilities (a "tie" reply is unreadable:
asked again, then rejected). A scripted backend, no model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from synthfactory.spec.columns import LLMJudgePairwiseColumn
from synthfactory_workers.contract import ShardTask
from synthfactory_workers.text.kinds.pairwise import pairwise_prompt, pairwise_schema

from .builders import make, user
from .test_judge_scores import LogprobBackend, pairwise

PICK = {
    "kind": "llm_judge_pairwise",
    "name": "pick",
    "template": "Instruction: answer",
    "candidates": ["x", "y"],
}


def test_a_judge_that_calls_it_a_tie_both_ways_is_a_consistent_tie(tmp_path: Path) -> None:
    gen, fake = pairwise(
        tmp_path,
        lambda text, seed: '{"winner": "tie", "reason": "equally good"}',
        lambda chosen: {"tie": 0.6, "A": 0.3, "B": 0.1},
    )
    rows = gen.generate(ShardTask(0, 0, 4, 1)).table.to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert (row["pick.first"], row["pick.second"], row["pick.winner"]) == ("tie",) * 3
        assert row["pick.consistent"] is True  # a tie both calls agree on
        # order [x, y]: P(x better) = 0.3 + 0.6 / 2; order [y, x]: 0.1 + 0.6 / 2
        assert row["pick.prob_a"] == pytest.approx((0.6 + 0.4) / 2)
        assert row["pick.reason"] == "equally good"
        assert row["pick__source"] == "probability"
    assert len([r for r in fake.sent if "Response A" in user(r.messages)]) == 8


def test_without_ties_the_schema_prompt_and_probabilities_have_no_tie() -> None:
    column = LLMJudgePairwiseColumn.model_validate({**PICK, "ties": False})
    assert pairwise_schema(column)["properties"]["winner"] == {"enum": ["A", "B"]}
    prompt = pairwise_prompt(column, "Instruction: answer", "one", "two")
    assert '"A" or "B"' in prompt and "tie" not in prompt
    with_ties = LLMJudgePairwiseColumn.model_validate(PICK)  # the default
    assert pairwise_schema(with_ties)["properties"]["winner"] == {"enum": ["A", "B", "tie"]}
    assert '"A", "B" or "tie"' in pairwise_prompt(with_ties, "Instruction: answer", "a", "b")


def no_ties_pipeline(tmp: Path, max_retries: int) -> tuple[Any, LogprobBackend]:
    """x is the better answer; the judge says "tie" on its first try of each call (each
    row's prompts differ by its id), then names the better one (with a tie alternative at
    the verdict token)."""
    tries: dict[str, int] = {}

    def script(messages: list[dict[str, str]], seed: int) -> str:
        text = user(messages)
        if text in ("x", "y"):
            return {"x": "good answer", "y": "bad answer"}[text]
        tries[text] = tries.get(text, 0) + 1
        if tries[text] == 1:
            return '{"winner": "tie", "reason": "both"}'
        first = text.split("Response A:\n")[1].split("\n")[0]
        return json.dumps({"winner": "A" if first == "good answer" else "B", "reason": "r"})

    def alternatives(request: Any, text: str) -> dict[int, list[tuple[str, float]]]:
        chosen = json.loads(text)["winner"]
        other = {"A": "B", "B": "A"}.get(chosen, "A")
        return {0: [(chosen, 0.6), ("tie", 0.3), (other, 0.1)]}

    columns = [
        {"kind": "uuid", "name": "id"},
        {"kind": "llm_text", "name": "x", "template": "x"},
        {"kind": "llm_text", "name": "y", "template": "y"},
        {**PICK, "template": "Instruction {{ id }}", "ties": False, "max_retries": max_retries},
    ]
    gen, _ = make(tmp, columns, script)
    fake = LogprobBackend(gen.config, script, alternatives)
    gen.backend = fake
    return gen, fake


def test_without_ties_a_tie_reply_is_asked_again(tmp_path: Path) -> None:
    gen, fake = no_ties_pipeline(tmp_path, max_retries=2)
    rows = gen.generate(ShardTask(0, 0, 4, 1)).table.to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert (row["pick.first"], row["pick.second"], row["pick.winner"]) == ("a", "a", "a")
        assert row["pick.consistent"] is True
        # the tie alternative is no label here: P(A) = 0.6 / 0.7 in both orders
        assert row["pick.prob_a"] == pytest.approx(0.6 / 0.7)
    judged = [r for r in fake.sent if "Response A" in user(r.messages)]
    assert len(judged) == 16  # 4 rows x 2 orders, each asked twice
    assert len({r.seed for r in judged}) == 16  # a retry has its own seed


def test_without_ties_a_judge_that_only_says_tie_is_rejected(tmp_path: Path) -> None:
    gen, _ = no_ties_pipeline(tmp_path, max_retries=0)
    out = gen.generate(ShardTask(0, 0, 4, 1))
    assert out.table.num_rows == 0
    assert out.rejected is not None
    reasons = {r["reason"] for r in out.rejected.to_pylist()}
    assert reasons == {"judge_unreadable: no winner (A, B)"}
