"""Judges scored from probabilities (G-Eval) and the pairwise judge, without a model: the
scoring arithmetic, the pipeline's fields, keep on either score, the journal, and the
openai backend against the stub server answering with logprobs."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synthfactory.spec.columns import LLMJudgeColumn
from synthfactory_workers.contract import ShardTask
from synthfactory_workers.text.backend import Completion, Request, TokenLogprob
from synthfactory_workers.text.logprobs import from_record, to_record
from synthfactory_workers.text.rubrics import score_distribution, weighted_scores

from .builders import FakeBackend, make, user
from .fault_proxy import FaultProxy
from .test_openai_unit import loaded, spec_for

TOKEN = re.compile(r"\d+|\w+|\s+|[^\w\s]")


def tokens_with(text: str, alternatives: dict[int, list[tuple[str, float]]]) -> Any:
    """``text`` as TokenLogprobs (digit runs, words, spaces, marks); the n-th number or
    verdict (A, B, tie) token gets ``alternatives[n]`` (probabilities), every other token
    is certain."""
    out, number = [], 0
    for token in TOKEN.findall(text):
        top: list[tuple[str, float]] = [(token, 1.0)]
        if token.isdigit() or token in ("A", "B", "tie"):
            top = alternatives.get(number, top)
            number += 1
        out.append(TokenLogprob(token, 0.0, tuple((t, math.log(p)) for t, p in top)))
    return tuple(out)


def judge(**extra: Any) -> LLMJudgeColumn:
    return LLMJudgeColumn.model_validate(
        {"kind": "llm_judge", "name": "j", "template": "{{ a }}", "rubric": ["coherence"]} | extra
    )


# -- the arithmetic ----------------------------------------------------------------------------


def test_expected_score_mass_and_spread_over_allowed_levels() -> None:
    top = (
        ("4", math.log(0.5)),
        (" 4", math.log(0.1)),  # the same score, spelled with a space
        ("2", math.log(0.3)),
        ("9", math.log(0.05)),  # not a level of a 1..5 rubric: dropped
        ("The", math.log(0.05)),
    )
    found = score_distribution(top, 5)
    assert found is not None
    expected, mass, std = found
    assert mass == pytest.approx(0.9)
    assert expected == pytest.approx((4 * 0.6 + 2 * 0.3) / 0.9)
    assert std == pytest.approx(
        math.sqrt((0.6 * (4 - expected) ** 2 + 0.3 * (2 - expected) ** 2) / 0.9)
    )
    assert score_distribution((("x", 0.0),), 5) is None


def test_the_score_is_read_at_the_last_place_the_judge_wrote_it() -> None:
    """JSON whose reason repeats numbers: the probabilities are those at the criterion's
    value; a reply read by the lenient parser is scored at its last ``criterion N``."""
    column = judge(rubric=["coherence", "correctness"])
    text = '{"coherence": {"score": 4, "reason": "2 of 3 ok"}, "correctness": {"score": 2}}'
    # numbers in order: 4, 2 (reason), 3 (reason), 2 (correctness)
    logprobs = tokens_with(
        text, {0: [("4", 0.8), ("5", 0.2)], 1: [("1", 1.0)], 3: [("2", 0.5), ("3", 0.5)]}
    )
    scores = {"coherence": {"score": 4, "reason": ""}, "correctness": {"score": 2, "reason": ""}}
    out = weighted_scores(column, scores, logprobs)
    assert out["coherence"]["expected"] == pytest.approx(4.2)
    assert out["coherence"]["source"] == "probability"
    assert out["correctness"]["expected"] == pytest.approx(2.5)
    assert out["correctness"]["std"] == pytest.approx(0.5)
    plain = "Coherence: 3 because 1 thing. Correctness: 5"
    logprobs = tokens_with(plain, {0: [("3", 0.5), ("4", 0.5)], 2: [("5", 0.9), ("4", 0.1)]})
    scores = {"coherence": {"score": 3, "reason": ""}, "correctness": {"score": 5, "reason": ""}}
    out = weighted_scores(column, scores, logprobs)
    assert out["coherence"]["expected"] == pytest.approx(3.5)
    assert out["correctness"]["expected"] == pytest.approx(4.9)


def test_without_logprobs_or_a_matching_token_the_score_is_the_sampled_one() -> None:
    column = judge()
    scores = {"coherence": {"score": 3, "reason": "r"}}
    for logprobs in (None, tokens_with('{"coherence": 5}', {0: [("5", 1.0)]})):
        out = weighted_scores(column, scores, logprobs)["coherence"]
        assert out == {
            "score": 3,
            "reason": "r",
            "expected": 3.0,
            "mass": None,
            "std": None,
            "source": "sampled",
        }


def test_the_journal_keeps_alternatives_where_judges_read_them() -> None:
    logprobs = tokens_with('{"coherence": 4, "reason": "because"}', {0: [("4", 0.6), ("5", 0.4)]})
    back = from_record(json.loads(json.dumps(to_record(logprobs))))
    assert back is not None and [t.token for t in back] == [t.token for t in logprobs]
    four = next(t for t in back if t.token == "4")
    assert [a for a, _ in four.top] == ["4", "5"]
    assert not next(t for t in back if t.token == "because").top  # long words: dropped
    assert from_record(None) is None


# -- the pipeline --------------------------------------------------------------------------


class LogprobBackend(FakeBackend):
    """The fake backend that also returns logprobs (``tokens_with``) when asked."""

    def __init__(self, config: Any, script: Any, alternatives: Any) -> None:
        super().__init__(config, script)
        self.alternatives = alternatives

    def reply(self, request: Request) -> Completion:
        self.sent.append(request)
        text = self.script(request.messages, request.seed)
        logprobs = None
        if request.top_logprobs:
            logprobs = tokens_with(text, self.alternatives(request, text))
        return Completion(text, 10, len(text.split()), "stop", logprobs=logprobs)


def judge_pipeline(
    tmp: Path, journal: Path | None = None, **judge_options: Any
) -> tuple[Any, LogprobBackend]:
    def script(messages: list[dict[str, str]], seed: int) -> str:
        if "Rate the response" not in user(messages):
            return "good" if seed % 2 else "bad"
        score = 4 if "good" in user(messages) else 2
        return json.dumps({"coherence": {"score": score, "reason": "r"}})

    def alternatives(request: Request, text: str) -> dict[int, list[tuple[str, float]]]:
        if '"score": 4' in text:
            return {0: [("4", 0.6), ("5", 0.3), ("The", 0.1)]}
        return {0: [("2", 0.5), ("1", 0.5)]}

    columns = [
        {"kind": "llm_text", "name": "a", "template": "Say"},
        {"kind": "llm_judge", "name": "j", "template": "{{ a }}", "rubric": ["coherence"]}
        | judge_options,
    ]
    backend = {"kind": "transformers", "journal": journal is not None}
    gen, _ = make(
        tmp, columns, script, journal=journal, keep="j.coherence.expected > 3", backend=backend
    )
    fake = LogprobBackend(gen.config, script, alternatives)
    gen.backend = fake
    return gen, fake


def test_judge_rows_carry_both_scores_and_keep_uses_the_expected_one(tmp_path: Path) -> None:
    gen, backend = judge_pipeline(tmp_path)
    out = gen.generate(ShardTask(0, 0, 4, 1))
    rows = out.table.to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert row["j.coherence.score"] == 4
        assert row["j.coherence.expected"] == pytest.approx((4 * 0.6 + 5 * 0.3) / 0.9)
        assert row["j.coherence.mass"] == pytest.approx(0.9)
        assert row["j__coherence__source"] == "probability"
    assert out.table.schema.field("j.coherence.expected").type == "double"
    assert {r["reason"] for r in out.rejected.to_pylist()} == {"keep: j.coherence.expected > 3"}
    asked = {(user(r.messages).startswith("Say"), r.top_logprobs) for r in backend.sent}
    assert asked == {(True, 0), (False, 20)}  # only the judge asks for logprobs


def test_a_judge_scoring_from_samples_asks_for_no_logprobs(tmp_path: Path) -> None:
    gen, backend = judge_pipeline(tmp_path, scores_from="sampled")
    rows = gen.generate(ShardTask(0, 0, 4, 1)).table.to_pylist()
    assert {r.top_logprobs for r in backend.sent} == {0}
    assert {(r["j.coherence.expected"], r["j__coherence__source"]) for r in rows} == {
        (4.0, "sampled")
    }
    key = backend.request_key(Request([{"role": "user", "content": "x"}], 1))
    assert key != backend.request_key(Request([{"role": "user", "content": "x"}], 1, 20))


def test_a_resumed_judge_scores_the_same_from_its_journal(tmp_path: Path) -> None:
    first, _ = judge_pipeline(tmp_path / "1", journal=tmp_path / "journal")
    before = first.generate(ShardTask(0, 0, 4, 1)).table.to_pylist()
    second, backend = judge_pipeline(tmp_path / "2", journal=tmp_path / "journal")
    out = second.generate(ShardTask(0, 0, 4, 1))
    assert out.stats["journal_hits"] > 0 and not backend.sent
    assert out.table.to_pylist() == before


# -- pairwise ----------------------------------------------------------------------------------


def pairwise(tmp: Path, verdict: Any, probs: Any, **options: Any) -> Any:
    """``probs(chosen label)``: the verdict token's alternatives."""

    def script(messages: list[dict[str, str]], seed: int) -> str:
        text = user(messages)
        if text == "x":
            return "good answer"
        if text == "y":
            return "bad answer"
        assert "Response A:" in text and "Response B:" in text and "tie" in text
        return verdict(text, seed)

    def alternatives(request: Request, text: str) -> dict[int, list[tuple[str, float]]]:
        chosen = json.loads(text)["winner"]
        table = probs(chosen)
        return {0: [(chosen, table[chosen]), *((k, v) for k, v in table.items() if k != chosen)]}

    columns = [
        {"kind": "llm_text", "name": "x", "template": "x"},
        {"kind": "llm_text", "name": "y", "template": "y"},
        {
            "kind": "llm_judge_pairwise",
            "name": "pick",
            "template": "Instruction: answer",
            "candidates": ["x", "y"],
            **options,
        },
    ]
    gen, _ = make(tmp, columns, script)
    fake = LogprobBackend(gen.config, script, alternatives)
    gen.backend = fake
    return gen, fake


def test_a_judge_that_prefers_a_position_names_no_winner(tmp_path: Path) -> None:
    gen, fake = pairwise(
        tmp_path,
        lambda text, seed: '{"winner": "A", "reason": "first"}',
        lambda chosen: {"A": 0.7, "B": 0.2, "t": 0.1},
    )
    rows = gen.generate(ShardTask(0, 0, 4, 1)).table.to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert (row["pick.first"], row["pick.second"], row["pick.winner"]) == ("a", "b", "tie")
        assert row["pick.consistent"] is False
        # order [x, y]: P(x better) = 0.7 + 0.1 / 2; order [y, x]: 0.2 + 0.1 / 2
        assert row["pick.prob_a"] == pytest.approx(0.5)
        assert row["pick__source"] == "probability"
    judged = [r for r in fake.sent if "Response A" in user(r.messages)]
    assert len(judged) == 8 and len({r.seed for r in judged}) == 8
    shown_first = {user(r.messages).split("Response A:\n")[1].split("\n")[0] for r in judged}
    assert shown_first == {"good answer", "bad answer"}  # both orders asked


def test_a_consistent_judge_names_the_better_candidate(tmp_path: Path) -> None:
    tries: dict[str, int] = {}

    def verdict(text: str, seed: int) -> str:
        tries[text] = tries.get(text, 0) + 1
        if tries[text] == 1 and seed % 3 == 0:
            return "I think both are fine"  # unreadable: asked again
        first = text.split("Response A:\n")[1].split("\n")[0]
        return json.dumps({"winner": "A" if first == "good answer" else "B", "reason": "good"})

    gen, _ = pairwise(
        tmp_path, verdict, lambda chosen: {chosen: 0.9, "AB".replace(chosen, ""): 0.1}
    )
    rows = gen.generate(ShardTask(0, 0, 4, 1)).table.to_pylist()
    assert {(r["pick.winner"], r["pick.consistent"]) for r in rows} == {("a", True)}
    assert [r["pick.prob_a"] for r in rows] == pytest.approx([0.9] * 4)
    assert {r["pick.reason"] for r in rows} == {"good"}


def test_pairwise_spec_checks(tmp_path: Path) -> None:
    from synthfactory.errors import ConfigError
    from synthfactory.spec.columns import parse_column

    from .test_pipeline_unit import check

    pick = {"kind": "llm_judge_pairwise", "name": "p", "template": "t", "candidates": ["a", "b"]}
    with pytest.raises(ConfigError, match=r"columns\[p\] uses 'b', which is no column"):
        check(tmp_path, [{"kind": "llm_text", "name": "a", "template": "x"}, pick])
    with pytest.raises(ConfigError, match="move column 'b' before 'p'"):
        check(
            tmp_path,
            [
                {"kind": "llm_text", "name": "a", "template": "x"},
                pick,
                {"kind": "llm_text", "name": "b", "template": "y"},
            ],
        )

    with pytest.raises(ValueError, match="two different columns"):
        parse_column(
            {"kind": "llm_judge_pairwise", "name": "p", "template": "t", "candidates": ["a", "a"]}
        )
    with pytest.raises(ValueError):
        parse_column(
            {"kind": "llm_judge_pairwise", "name": "p", "template": "t", "candidates": ["a"]}
        )


# -- the openai backend against the stub server ------------------------------------------------


@pytest.fixture
def stub() -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream=None)
    yield proxy
    proxy.stop()


@pytest.mark.parametrize("api", ["chat", "completions"])
def test_openai_judge_scores_from_the_servers_logprobs(
    tmp_path: Path, stub: FaultProxy, api: str
) -> None:
    columns = [
        {"kind": "llm_text", "name": "a", "template": "Say something."},
        {"kind": "llm_judge", "name": "j", "template": "{{ a }}", "rubric": ["coherence"]},
    ]
    job = spec_for(
        tmp_path, stub.base_url, rows=4, api=api, generator={"columns": columns, "prompt": None}
    )
    out = loaded(tmp_path, job).generate(ShardTask(0, 0, 4, 1))
    rows = out.table.to_pylist()
    assert len(rows) == 4
    for row in rows:
        score = row["j.coherence.score"]
        other = 2 if score == 1 else 1  # the stub's alternatives (fault_proxy.stub_logprobs)
        assert row["j.coherence.expected"] == pytest.approx((0.8 * score + 0.1 * other) / 0.9)
        assert row["j.coherence.mass"] == pytest.approx(0.9)
        assert row["j__coherence__source"] == "probability"
    bodies = list(stub.bodies.values())
    judged = [b for b in bodies if "Rate the response" in json.dumps(b)]
    assert len(judged) == 4 and len(bodies) == 8
    wanted = {"logprobs": True, "top_logprobs": 20} if api == "chat" else {"logprobs": 20}
    assert all(b.items() >= wanted.items() for b in judged)
    assert not any("logprobs" in b for b in bodies if b not in judged)


def test_an_answer_without_logprobs_has_none(tmp_path: Path, stub: FaultProxy) -> None:
    from synthfactory_workers.text.openai_backend import OpenAIBackend

    backend = OpenAIBackend(spec_for(tmp_path, stub.base_url, rows=1).generator)
    payload = {
        "choices": [{"message": {"content": '{"coherence": 3}'}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 5},
    }
    assert backend._parse(payload).logprobs is None
    payload["choices"][0]["logprobs"] = None  # type: ignore[index]
    assert backend._parse(payload).logprobs is None


def test_metrics_report_the_expected_scores_for_gates() -> None:
    import pandas as pd

    from synthfactory.metrics.text.pipeline import PipelineSummary

    kept = pd.DataFrame(
        {
            "j.coherence.score": [4, 5],
            "j.coherence.expected": [3.5, 4.5],
            "j__coherence__source": ["probability", "sampled"],
        }
    )
    summary = PipelineSummary({"j": {"coherence": 5}}, [])
    report = summary.finish(summary.merge([summary.partial(kept, 0)]))["j"]["coherence"]
    assert report["mean"] == 4.5 and report["expected_mean"] == 4.0
    assert report["expected_mean_all"] == 4.0 and report["probability_share"] == 0.5
