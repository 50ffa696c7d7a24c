"""Column pipelines with a scripted fake backend: dependence between columns, structured
and judge parsing, keep/reject with reasons, validators, preflight graph checks, lineage,
the request journal. No model, no Ray."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from synthfactory.errors import ConfigError, SpecError
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.contract import ShardTask
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.kinds.base import column_seed
from synthfactory_workers.text.preflight import check_pipeline
from synthfactory_workers.text.rubrics import parse_judgement
from synthfactory_workers.text.validators import validate

from .builders import make, spec, user


def _needs_sandbox() -> pytest.MarkDecorator:
    """``run: true`` needs the validator sandbox (bubblewrap): skip without it, unless
    SYNTHFACTORY_REQUIRE_SANDBOX=1 (CI), where the run's refusal fails the test."""
    from synthfactory_workers.text import sandbox

    why = sandbox.unavailable()
    required = os.environ.get("SYNTHFACTORY_REQUIRE_SANDBOX") == "1"
    return pytest.mark.skipif(why is not None and not required, reason=f"no sandbox: {why}")


def rejected_reasons(output: Any) -> list[tuple[str, str]]:
    if output.rejected is None:
        return []
    table = output.rejected.to_pylist()
    return [(r["rejected_column"], r["reason"]) for r in table]


# -- columns depend on each other ------------------------------------------------------------


def test_columns_see_earlier_columns_and_lineage_is_recorded(tmp_path: Path) -> None:
    def script(messages: list[dict[str, str]], seed: int) -> str:
        text = user(messages)
        if text.startswith("Topic"):
            return f"What is {text.split(': ')[1]}?"
        return f"ANSWER to <{text}>"

    gen, backend = make(
        tmp_path,
        [
            {"kind": "choice", "name": "topic", "choices": {"cats": 1, "dogs": 0}},
            {"kind": "range", "name": "n", "low": 1, "high": 3, "integer": True},
            {"kind": "llm_text", "name": "question", "template": "Topic: {{ topic }}"},
            {
                "kind": "llm_text",
                "name": "answer",
                "template": "{{ question }}",
                "system_prompt": "Be brief.",
                "sampling": {"max_new_tokens": 7, "temperature": 0.5},
            },
            {"kind": "expression", "name": "double", "expr": "{{ n * 2 }}"},
            {"kind": "expression", "name": "label", "expr": "{{ topic }}-{{ n }}"},
        ],
        script,
    )
    out = gen.generate(ShardTask(0, 0, 4, 11))
    rows = out.table.to_pylist()
    assert len(rows) == 4 and out.rejected is None
    for row in rows:
        assert row["question"] == "What is cats?"
        assert row["answer"] == "ANSWER to <What is cats?>"
        assert row["double"] == 2 * row["n"] and row["label"] == f"cats-{row['n']}"
        assert 1 <= row["n"] <= 3
        for col in ("question", "answer"):
            assert row[f"{col}__model"] == "fake/model" and row[f"{col}__revision"] == "r1"
            assert len(row[f"{col}__template_sha"]) == 16
            assert row[f"{col}__prompt_tokens"] == 10 and row[f"{col}__completion_tokens"] > 0
        assert row["answer__seed"] == column_seed(11, row["prompt_index"], 3, 0) & (2**63 - 1)
        assert row["prompt_tokens"] == 20
    assert out.table.schema.field("n").type == pa.int64()
    assert out.table.schema.field("double").type == pa.int64()
    # one batch per LLM column: 4 questions, then 4 answers; per-column sampling and system
    assert [user(r.messages)[:5] for r in backend.sent] == ["Topic"] * 4 + ["What "] * 4
    assert backend.sent[4].messages[0] == {"role": "system", "content": "Be brief."}
    assert backend.samplings[0].max_new_tokens == 128
    assert backend.samplings[4].max_new_tokens == 7 and backend.samplings[4].temperature == 0.5
    assert gen.config.sampling.max_new_tokens == 128  # restored after the column
    assert len({r.seed for r in backend.sent}) == 8
    assert out.stats["pipeline.generated"] == 4 and out.stats["pipeline.kept"] == 4


def test_same_seed_same_rows(tmp_path: Path) -> None:
    columns = [
        {"kind": "person", "name": "p", "locales": ["en_US", "de_DE"], "age": [30, 40]},
        {"kind": "uuid", "name": "id"},
        {"kind": "datetime", "name": "day", "start": "2024-01-01", "end": "2024-12-31"},
        {"kind": "llm_text", "name": "bio", "template": "{{ p.name }} ({{ p.age }})"},
    ]
    gen, _ = make(tmp_path, columns, lambda m, s: f"bio {s % 97}")
    a = gen.generate(ShardTask(0, 0, 4, 5)).table.to_pylist()
    b = gen.generate(ShardTask(0, 0, 4, 5)).table.to_pylist()
    c = gen.generate(ShardTask(0, 0, 4, 6)).table.to_pylist()
    assert a == b and a != c
    for row in a:
        assert 30 <= row["p.age"] <= 40 and row["p.sex"] in ("female", "male")
        assert row["p.locale"] in ("en_US", "de_DE") and row["p.city"] and row["p.occupation"]
        assert row["bio__prompt"] == f"{row['p.name']} ({row['p.age']})"
        assert re.fullmatch(r"[0-9a-f-]{36}", row["id"]) and row["day"].startswith("2024-")


def test_category_by_and_source_columns(tmp_path: Path) -> None:
    source = pa.table({"passage": ["Alpha text.", "Beta text."], "lang": ["en", "fr"]})
    columns = [
        {"kind": "source", "name": "passage"},
        {"kind": "source", "name": "language", "column": "lang"},
        {
            "kind": "category_by",
            "name": "greeting",
            "column": "language",
            "choices": {"en": ["hello"], "fr": {"bonjour": 1, "salut": 0}},
        },
        {"kind": "llm_text", "name": "q", "template": "{{ greeting }}: {{ passage }}"},
    ]
    gen, _ = make(tmp_path, columns, lambda m, s: user(m).upper(), source=source)
    rows = gen.generate(ShardTask(0, 0, 4, 5)).table.to_pylist()
    assert [r["source_row"] for r in rows] == [0, 1, 0, 1]
    assert [r["q"] for r in rows] == ["HELLO: ALPHA TEXT.", "BONJOUR: BETA TEXT."] * 2


# -- structured output and judges ------------------------------------------------------------


def test_structured_retries_then_typed_columns_and_rejects(tmp_path: Path) -> None:
    calls: dict[str, int] = {}

    def script(messages: list[dict[str, str]], seed: int) -> str:
        key = user(messages)
        calls[key] = calls.get(key, 0) + 1
        if "never" in key:
            return "no json here"
        if calls[key] == 1:
            return '{"title": "x"}'  # misses a required field: retried
        return 'Sure! ```json\n{"title": "Cats", "year": 2001}\n```'

    columns = [
        {"kind": "choice", "name": "mode", "choices": ["ok", "never"]},
        {
            "kind": "llm_structured",
            "name": "book",
            "template": "Book, {{ mode }}",
            "json_schema": {
                "type": "object",
                "required": ["title", "year"],
                "properties": {"title": {"type": "string"}, "year": {"type": "integer"}},
            },
            "max_retries": 1,
        },
        {"kind": "expression", "name": "y", "expr": "{{ book.year + 1 }}"},
    ]
    gen, _ = make(tmp_path, columns, script, max_attempts_per_row=3)
    out = gen.generate(ShardTask(0, 0, 4, 1))
    rows = out.table.to_pylist()
    assert len(rows) == 4
    assert all(r["book.title"] == "Cats" and r["book.year"] == 2001 for r in rows)
    assert all(r["y"] == 2002 for r in rows)
    assert rows[0]["book__attempt"] == 1  # the first reply missed `year`: retried
    assert out.table.schema.field("book.year").type == pa.int64()
    reasons = rejected_reasons(out)
    assert reasons and all(c == "book" and r.startswith("invalid_json") for c, r in reasons)
    raw = out.rejected.to_pylist()[0]  # type: ignore[union-attr]
    assert raw["book__raw"] == "no json here" and raw["mode"] == "never"


def judge_column(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "llm_judge",
        "name": "judge",
        "template": "Q: {{ q }}",
        "rubric": [
            "correctness",
            {"name": "brevity", "description": "Short?", "levels": ["long", "ok", "short"]},
        ],
        **extra,
    }


def test_judge_parsing_json_and_lenient() -> None:
    from synthfactory.spec.columns import LLMJudgeColumn

    col = LLMJudgeColumn.model_validate(judge_column())
    ok, _ = parse_judgement(
        col, '{"correctness": {"score": 4, "reason": "fine"}, "brevity": {"score": 3}}'
    )
    assert ok == {
        "correctness": {"score": 4, "reason": "fine"},
        "brevity": {"score": 3, "reason": ""},
    }
    ok, _ = parse_judgement(col, '{"correctness": 5, "brevity": "2"}')
    assert ok is not None and ok["correctness"]["score"] == 5 and ok["brevity"]["score"] == 2
    ok, _ = parse_judgement(col, "Correctness: 2/5. Brevity - 1")
    assert ok is not None and (ok["correctness"]["score"], ok["brevity"]["score"]) == (2, 1)
    bad, why = parse_judgement(col, '{"correctness": 9, "brevity": 1}')  # out of range
    assert bad is None and "correctness" in str(why)
    strict = LLMJudgeColumn.model_validate(judge_column(lenient=False))
    bad, why = parse_judgement(strict, "Correctness: 2. Brevity: 1")
    assert bad is None and "invalid_json" in str(why)
    one = LLMJudgeColumn.model_validate(judge_column(rubric=["coherence"]))
    ok, _ = parse_judgement(one, "I would give it a 4.")
    assert ok == {"coherence": {"score": 4, "reason": ""}}
    # a quoted rubric level ("N: <level N's words>") is a score; a number next to other
    # words is not
    faithful = LLMJudgeColumn.model_validate(judge_column(rubric=["faithfulness"]))
    from synthfactory.spec.columns import RUBRIC_PRESETS

    words = RUBRIC_PRESETS["faithfulness"].levels[3]
    ok, _ = parse_judgement(faithful, f"The answer is 4: {words} Then 2: none.")
    assert ok == {"faithfulness": {"score": 4, "reason": ""}}
    bad, _ = parse_judgement(faithful, "Step 4: read it. Step 2: think.")
    assert bad is None


def test_a_lenient_judge_retries_in_plain_form(tmp_path: Path) -> None:
    """A reply with no JSON is retried with a 'criterion: score' prompt (and a system
    prompt that does not ask for JSON); the retry's score is kept, its attempt recorded."""

    def script(messages: list[dict[str, str]], seed: int) -> str:
        if "Rate" not in user(messages):
            return "an answer"
        if "reply with one line" in user(messages):
            assert "JSON" not in messages[0]["content"]
            return "coherence: 4"
        return "I cannot write JSON."

    columns = [
        {"kind": "llm_text", "name": "q", "template": "ask"},
        judge_column(template="{{ q }}", rubric=["coherence"]),
    ]
    gen, _ = make(tmp_path, columns, script)
    out = gen.generate(ShardTask(0, 0, 4, 1))
    rows = out.table.to_pylist()
    assert [r["judge.coherence.score"] for r in rows] == [4] * 4
    assert {r["judge__attempt"] for r in rows} == {1}


def test_judge_keep_and_reject_with_reasons(tmp_path: Path) -> None:
    def script(messages: list[dict[str, str]], seed: int) -> str:
        text = user(messages)
        if text.startswith("Ask"):
            return "good question" if seed % 2 else "bad question"
        assert "Rate the response" in text and "correctness (1 to 5)" in text
        assert messages[0]["role"] == "system" and "evaluator" in messages[0]["content"]
        score = 5 if "good" in text else 1
        return json.dumps(
            {
                "correctness": {"score": score, "reason": "r"},
                "brevity": {"score": 3, "reason": "s"},
            }
        )

    columns = [
        {"kind": "llm_text", "name": "q", "template": "Ask"},
        judge_column(),
    ]
    gen, _ = make(
        tmp_path,
        columns,
        script,
        keep=["{{ judge.correctness.score >= 3 }}", "judge.brevity.score > 1"],
        max_attempts_per_row=10,
    )
    out = gen.generate(ShardTask(0, 0, 4, 3))
    rows = out.table.to_pylist()
    assert len(rows) == 4 and all(r["q"] == "good question" for r in rows)
    assert all(r["judge.correctness.score"] == 5 for r in rows)
    assert all(r["judge.correctness.reason"] == "r" for r in rows)
    reasons = rejected_reasons(out)
    assert reasons and set(reasons) == {("keep", "keep: judge.correctness.score >= 3")}
    surplus = out.stats.get("pipeline.surplus", 0)
    assert out.stats["pipeline.generated"] == 4 + len(reasons) + surplus
    assert out.rejected.to_pylist()[0]["judge.correctness.score"] == 1  # type: ignore[union-attr]


def test_faithfulness_judge_sees_the_source(tmp_path: Path) -> None:
    seen: list[str] = []

    def script(messages: list[dict[str, str]], seed: int) -> str:
        seen.append(user(messages))
        return '{"faithfulness": {"score": 4, "reason": "ok"}}' if "Rate" in user(messages) else "a"

    columns = [
        {"kind": "choice", "name": "passage", "choices": ["The sky is green."]},
        {"kind": "llm_text", "name": "a", "template": "Answer from {{ passage }}"},
        {
            "kind": "llm_judge",
            "name": "faith",
            "template": "Answer: {{ a }}",
            "rubric": ["faithfulness"],
            "source_column": "passage",
        },
    ]
    gen, _ = make(tmp_path, columns, script)
    rows = gen.generate(ShardTask(0, 0, 2, 3)).table.to_pylist()
    assert [r["faith.faithfulness.score"] for r in rows] == [4, 4]
    assert "Source:\nThe sky is green." in seen[-1]


# -- validators ------------------------------------------------------------------------------


def vcol(**options: Any) -> Any:
    from synthfactory.spec.columns import ValidateColumn

    return ValidateColumn.model_validate({"name": "ok", "column": "x", **options})


@_needs_sandbox()
def test_validators_each_kind() -> None:
    schema = {"type": "object", "required": ["a"]}
    assert validate(vcol(check="json_schema", json_schema=schema), '{"a": 1}') == (True, None)
    ok, why = validate(vcol(check="json_schema", json_schema=schema), '{"b": 1}')
    assert not ok and str(why).startswith("schema_violation")
    assert validate(vcol(check="regex", pattern=r"\d+"), "a 12") == (True, None)
    assert not validate(vcol(check="regex", pattern=r"\d+", full_match=True), "a 12")[0]
    assert validate(vcol(check="sql"), "```sql\nSELECT a FROM t WHERE b = 1\n```")[0]
    ok, why = validate(vcol(check="sql"), "SELEC a FRM")
    assert not ok and str(why).startswith("sql_")
    assert validate(vcol(check="sql", dialect="sqlite"), "CREATE TABLE t (a INTEGER)")[0]
    code = "```python\ndef add(a, b):\n    return a + b\n```"
    assert validate(vcol(check="python"), code) == (True, None)
    ok, why = validate(vcol(check="python"), "def add(a, b) return")
    assert not ok and str(why).startswith("syntax_error")
    test = "assert add(2, 3) == 5"
    assert validate(vcol(check="python", run=True, test=test), code) == (True, None)
    ok, why = validate(vcol(check="python", run=True, test=test), "def add(a, b):\n  return 0")
    assert not ok and "AssertionError" in str(why)


@_needs_sandbox()
def test_python_sandbox_limits() -> None:
    ok, why = validate(vcol(check="python", run=True, timeout_s=1), "while True:\n    pass")
    assert not ok and str(why).startswith("python_timeout")
    ok, why = validate(vcol(check="python", run=True, memory_mb=128), "x = bytearray(2**30)")
    assert not ok and "MemoryError" in str(why)
    net = "import socket\nsocket.create_connection(('1.1.1.1', 53))"
    ok, why = validate(vcol(check="python", run=True), net)
    assert not ok and "network" in str(why).lower()
    ok, why = validate(
        vcol(check="python", run=True), "import os\nassert 'HTTP_PROXY' in os.environ"
    )
    assert not ok  # the child's environment has no proxies


def test_validate_column_feeds_keep(tmp_path: Path) -> None:
    def script(messages: list[dict[str, str]], seed: int) -> str:
        return "def f():\n    return 1\n" if seed % 2 else "def f(:\n"

    columns = [
        {"kind": "llm_text", "name": "code", "template": "Write f"},
        {"kind": "validate", "name": "code_ok", "column": "code", "check": "python"},
    ]
    gen, _ = make(tmp_path, columns, script, keep="{{ code_ok }}", max_attempts_per_row=10)
    out = gen.generate(ShardTask(0, 0, 3, 9))
    rows = out.table.to_pylist()
    assert len(rows) == 3 and all(r["code_ok"] and r["code_ok_error"] is None for r in rows)
    rejected = out.rejected.to_pylist()  # type: ignore[union-attr]
    assert rejected and all(not r["code_ok"] for r in rejected)
    assert all(r["code_ok_error"].startswith("syntax_error") for r in rejected)
    surplus = out.stats.get("pipeline.surplus", 0)
    assert out.stats["validate.code_ok.checked"] == 3 + len(rejected) + surplus
    assert out.stats["validate.code_ok.passed"] == 3 + surplus


# -- filters, budget, journal ------------------------------------------------------------------


def test_budget_ends_a_shard_short_and_filters_apply_to_the_text_column(tmp_path: Path) -> None:
    columns = [{"kind": "llm_text", "name": "t", "template": "x"}]
    gen, backend = make(
        tmp_path, columns, lambda m, s: "tiny", filters={"min_chars": 10}, max_attempts_per_row=2
    )
    out = gen.generate(ShardTask(0, 0, 3, 1))
    assert out.table.num_rows == 0 and "t" in out.table.column_names
    assert len(backend.sent) == 6  # 2 attempts per wanted row, then the flow tops up
    assert set(rejected_reasons(out)) == {("t", "too_short: 4 < 10 chars")}


def test_the_journal_covers_every_llm_column(tmp_path: Path) -> None:
    columns = [
        {"kind": "llm_text", "name": "a", "template": "first"},
        {"kind": "llm_text", "name": "b", "template": "second {{ a }}"},
        judge_column(template="{{ b }}", rubric=["coherence"]),
    ]

    def script(messages: list[dict[str, str]], seed: int) -> str:
        return '{"coherence": 3}' if "Rate" in user(messages) else f"t{seed % 1000}"

    backend_config = {"kind": "transformers", "journal": True}
    gen, first = make(tmp_path, columns, script, journal=tmp_path / "j", backend=backend_config)
    a = gen.generate(ShardTask(2, 0, 3, 4))
    assert len(first.sent) == 9
    again, second = make(tmp_path, columns, script, journal=tmp_path / "j", backend=backend_config)
    b = again.generate(ShardTask(2, 0, 3, 4))
    assert second.sent == [] and b.stats["journal_hits"] == 9
    assert a.table.to_pylist() == b.table.to_pylist()


# -- preflight ---------------------------------------------------------------------------------


def check(tmp: Path, columns: list[dict[str, Any]], **generator: Any) -> None:
    config = spec(tmp, columns, **generator).generator
    assert isinstance(config, LLMConfig)
    check_pipeline(config, None)


@pytest.mark.parametrize(
    ("columns", "keep", "message"),
    [
        (
            [{"kind": "llm_text", "name": "a", "template": "{{ nope }}"}],
            None,
            r"columns\[a\] uses 'nope', which is no column",
        ),
        (
            [
                {"kind": "llm_text", "name": "a", "template": "{{ b }}"},
                {"kind": "llm_text", "name": "b", "template": "hi"},
            ],
            None,
            r"columns\[a\] uses 'b', which comes after it",
        ),
        (
            [
                {"kind": "llm_text", "name": "a", "template": "{{ b }}"},
                {"kind": "llm_text", "name": "b", "template": "{{ a }}"},
            ],
            None,
            r"a -> b -> a form a cycle",
        ),
        (
            [
                {"kind": "llm_text", "name": "a", "template": "x"},
                {"kind": "llm_text", "name": "a", "template": "y"},
            ],
            None,
            r"two columns are named 'a'",
        ),
        (
            [{"kind": "llm_text", "name": "a", "template": "x"}],
            "{{ judge.score > 2 }}",
            r"keep\[0\] uses 'judge', which is no column",
        ),
        (
            [
                {"kind": "llm_text", "name": "a", "template": "x"},
                {
                    "kind": "llm_judge",
                    "name": "j",
                    "template": "{{ a }}",
                    "rubric": ["faithfulness"],
                },
            ],
            None,
            r"source_column is not set",
        ),
        (
            [{"kind": "llm_text", "name": "a", "template": "{{ a "}],
            None,
            r"columns\[a\]\.template does not parse",
        ),
        (
            [
                {"kind": "llm_text", "name": "a", "template": "x"},
                {"kind": "validate", "name": "v", "column": "zzz", "check": "python"},
            ],
            None,
            r"columns\[v\] uses 'zzz'",
        ),
        (
            [{"kind": "source", "name": "s"}, {"kind": "llm_text", "name": "a", "template": "x"}],
            None,
            r"generator.source is not set",
        ),
        (
            [{"kind": "choice", "name": "c", "choices": ["a"]}],
            None,
            r"no LLM column",
        ),
    ],
)
def test_preflight_graph_checks(
    tmp_path: Path, columns: list[dict[str, Any]], keep: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check(tmp_path, columns, keep=keep)


def test_preflight_accepts_the_same_model_and_runs_through_the_generator(tmp_path: Path) -> None:
    columns = [{"kind": "llm_text", "name": "a", "template": "x", "model": "builtin:smollm2"}]
    LLMGenerator.preflight(spec(tmp_path, columns))
    other = spec(tmp_path, [{**columns[0], "model": "gpt2"}])
    LLMGenerator.preflight(other)  # another model: its own pool (test_model_pools_unit.py)
    assert other.generator.pool_models == ["gpt2"]
    with pytest.raises(ConfigError, match=r"columns\[a\]\.model: model folder"):
        LLMGenerator.preflight(spec(tmp_path, [{**columns[0], "model": str(tmp_path / "x")}]))


def test_spec_shapes(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="either prompt"):
        spec(
            tmp_path, [{"kind": "llm_text", "name": "a", "template": "x"}], prompt={"template": "y"}
        )
    with pytest.raises(SpecError):
        spec(tmp_path, [{"kind": "llm_text", "name": "bad name", "template": "x"}])
    with pytest.raises(SpecError, match="json_schema"):
        spec(tmp_path, [{"kind": "validate", "name": "v", "column": "a", "check": "json_schema"}])
    judge = {"kind": "llm_judge", "name": "j", "template": "{{ a }}", "rubric": ["wit"]}
    with pytest.raises(SpecError, match=r"rubric: unknown rubric preset 'wit': use one of"):
        spec(tmp_path, [{"kind": "llm_text", "name": "a", "template": "x"}, judge])
    config = spec(tmp_path, [{"kind": "llm_text", "name": "a", "template": "x"}]).generator
    assert config.main_text_column == "a" and config.prompt is None


def test_card_shows_whole_pipeline_rows_and_the_judge_numbers() -> None:
    import pandas as pd

    from synthfactory.dataset.manifest import Manifest, SchemaInfo
    from synthfactory.metrics.card import render

    columns = [
        {"kind": "choice", "name": "topic", "choices": ["rain"]},
        {"kind": "llm_text", "name": "answer", "template": "{{ topic }}"},
        {"kind": "llm_judge", "name": "grade", "template": "{{ answer }}", "rubric": ["coherence"]},
        {"kind": "validate", "name": "ok", "column": "answer", "check": "regex", "pattern": "a"},
    ]
    manifest = Manifest(
        name="p",
        version="v1",
        modality="text",
        rows=2,
        shards=[],
        schema=SchemaInfo(fields=[], arrow=""),
        spec={"generator": {"kind": "llm", "model": "m", "columns": columns}},
        spec_hash="0" * 16,
    )
    long_answer = "It rains.\nA lot. " + "x" * 500
    sample = pd.DataFrame(
        {
            "topic": ["rain", "rain"],
            "answer": [long_answer, "Drizzle | mist"],
            "answer__prompt": ["rain", "rain"],  # lineage: not shown
            "grade.coherence.score": [4, 2],
            "grade.coherence.reason": ["clear", "vague"],
            "ok": [True, False],
            "ok_error": [None, "no match"],
        }
    )
    report = {
        "pipeline": {"kept": 2, "rejected": 6, "kept_rate": 0.25},
        "grade": {"coherence": {"mean": 3.0, "mean_all": 2.5, "scored": 8, "kept_share": 0.25}},
        "ok": {"pass_rate": 0.5, "pass_rate_kept": 1.0, "checked": 8},
    }
    card = render(manifest, report, sample, [])
    rows = card.split("## Sample rows")[1]
    assert "**Row 1**" in rows and "**Row 2**" in rows
    assert "- `answer`: It rains. A lot. x" in rows and "…" in rows  # one line, capped
    assert "- `grade.coherence.score`: 4" in rows and "- `ok_error`: no match" in rows
    assert "Drizzle \\| mist" in rows and "answer__prompt" not in rows
    assert "| `pipeline.kept_rate` | 0.2500 |" in card
    assert "| `grade.coherence.mean` | 3.0000 |" in card and "| `ok.checked` | 8 |" in card
