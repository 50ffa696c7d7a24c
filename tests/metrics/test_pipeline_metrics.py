"""Judge and validator metrics of a column pipeline, with known answers: counted over kept
and rejected rows, merged across shards by summing, named so gates can check them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from synthfactory.dataset import parquet
from synthfactory.metrics.evaluators import evaluator_class, unknown_gates
from synthfactory.metrics.text.pipeline import PipelineSummary, metric_names
from synthfactory.spec import load_spec
from synthfactory.storage import LocalStore


def test_counts_over_kept_and_rejected_rows_merge_across_shards(tmp_path: Path) -> None:
    import pyarrow as pa

    store = LocalStore(tmp_path)
    # shard 0: kept scores 4, 5; rejected 1, 2 and a row the judge never reached (null)
    rejected = pd.DataFrame({"j.c.score": [1, 2, None], "ok": [False, None, True]})
    store.put_bytes("rejected/r0.parquet", parquet.encode(pa.Table.from_pandas(rejected)))
    summary = PipelineSummary(
        {"j": {"c": 5}}, ["ok"], str(tmp_path), {}, {0: "rejected/r0.parquet"}
    )
    first = summary.partial(pd.DataFrame({"j.c.score": [4, 5], "ok": [True, True]}), 0)
    second = summary.partial(pd.DataFrame({"j.c.score": [3], "ok": [False]}), 1)
    report = summary.finish(PipelineSummary.merge([first, second]))
    judge = report["j"]["c"]
    assert judge["mean"] == pytest.approx((4 + 5 + 3) / 3)
    assert judge["mean_all"] == pytest.approx((4 + 5 + 3 + 1 + 2) / 5)
    assert judge["scored"] == 5 and judge["kept_share"] == pytest.approx(3 / 5)
    assert judge["histogram"] == {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1}
    # validator: kept True, True, False; rejected False, True (the null row never got there)
    assert report["ok"] == {"pass_rate": 3 / 5, "pass_rate_kept": 2 / 3, "checked": 5}
    assert report["pipeline"] == {"kept": 3, "rejected": 3, "kept_rate": 0.5}


def test_out_of_scale_scores_are_not_counted() -> None:
    summary = PipelineSummary({"j": {"c": 3}}, [])
    report = summary.finish(summary.partial(pd.DataFrame({"j.c.score": [0, 2, 7, None]}), 0))
    assert report["j"]["c"]["scored"] == 1 and report["j"]["c"]["mean"] == 2.0


def spec(tmp: Path, gates: dict[str, str]) -> object:
    return load_spec(
        {
            "name": "p",
            "modality": "text",
            "rows": 4,
            "output": str(tmp),
            "generator": {
                "kind": "llm",
                "model": "builtin:smollm2",
                "columns": [
                    {"kind": "llm_text", "name": "answer", "template": "hi"},
                    {
                        "kind": "validate",
                        "name": "ok",
                        "column": "answer",
                        "check": "regex",
                        "pattern": "a",
                    },
                    {
                        "kind": "llm_judge",
                        "name": "judge",
                        "template": "{{ answer }}",
                        "rubric": ["correctness"],
                    },
                ],
            },
            "gates": gates,
        }
    )


def test_gates_on_judge_and_validator_metrics_are_checked_by_name(tmp_path: Path) -> None:
    job = spec(tmp_path, {"judge.correctness.mean": ">= 3.5", "ok.pass_rate": ">= 0.5"})
    assert unknown_gates("text", job.gates, job) == []  # type: ignore[attr-defined]
    assert evaluator_class("text").knows("judge.correctness.histogram.5", job)  # type: ignore[arg-type]
    assert "ok.checked" in metric_names(job)  # type: ignore[arg-type]
    (message,) = unknown_gates("text", {"judge.corectness.mean": ">= 3"}, job)  # type: ignore[arg-type]
    assert "did you mean 'judge.correctness.mean'" in message
    # without the job, the modality alone does not know the pipeline's columns
    assert unknown_gates("text", {"judge.correctness.mean": ">= 3"}) != []


def test_text_metrics_follow_the_pipelines_text_column() -> None:
    """Shard and model-based metrics score generator.text_column (here not the last llm_text
    column); with nothing to score they are not applicable, never a perfect 1.0. No JSON
    was requested, so no JSON-valid rate."""
    from synthfactory_workers.metrics.minilm import MINILM
    from synthfactory_workers.metrics.tasks import text_model_metrics

    job: Any = load_spec(
        {
            "name": "p",
            "modality": "text",
            "rows": 6,
            "output": "/tmp/unused",
            "generator": {
                "kind": "llm",
                "model": "builtin:smollm2",
                "text_column": "draft",
                "columns": [
                    {"kind": "llm_text", "name": "draft", "template": "write"},
                    {"kind": "llm_text", "name": "answer", "template": "{{ draft }}"},
                ],
            },
        }
    )
    drafts = [
        "The harbour was quiet at dawn.",
        "Quarterly revenue grew by four percent.",
        "Mix the flour and butter until crumbly.",
        "The defendant appealed the ruling.",
        "A comet passed close to Jupiter last night.",
        "Tie the bowline knot around the post.",
    ]
    df = pd.DataFrame({"draft": drafts, "answer": ["same"] * 6, "json_attempt": [0] * 6})
    evaluator = evaluator_class("text")(job, list(df.columns), {0: 6})
    assert evaluator.not_applicable() is None
    summary = evaluator.summary()
    merged = type(summary).merge([summary.partial(df, 0)])
    models = text_model_metrics(job, merged["sample"], None, "cpu")
    report = evaluator.report(merged, models)
    quality = report["quality"]
    assert quality["embedding"]["embedded"] == 6
    assert 0 < quality["embedding"]["diversity"] < 1
    assert quality["words_mean"] == pytest.approx(sum(len(d.split()) for d in drafts) / 6)
    assert "json_valid_rate" not in quality
    empty = text_model_metrics(job, merged["sample"].iloc[:0], None, "cpu")
    assert empty["embedding"] == {
        "not_applicable": "no texts to embed",
        "embedded": 0,
        "model": MINILM,
    }
    assert empty["perplexity"] == {"not_applicable": "no texts to score"}
    nothing = evaluator.plan.finish(type(summary).merge([summary.partial(df.iloc[:0], 0)]))
    assert nothing["quality"]["distinct_1"] is None and nothing["privacy"]["pii_email_rate"] is None
    assert nothing["quality"]["not_applicable"] == "no rows with a 'draft' text"


def test_json_valid_rate_only_for_jobs_that_request_json() -> None:
    from synthfactory.metrics.text.sharded import TextSummary, json_columns

    base = {
        "name": "p",
        "modality": "text",
        "rows": 4,
        "output": "/tmp/unused",
        "generator": {"kind": "llm", "model": "builtin:smollm2", "prompt": {"template": "hi"}},
    }
    plain: Any = load_spec(base)
    assert json_columns(plain) is None
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    asked: Any = load_spec({**base, "generator": {**base["generator"], "json_schema": schema}})
    assert json_columns(asked) == ["json_a", "json_value"]
    df = pd.DataFrame({"completion": ["{}", "{}", "x", "y"], "json_attempt": [0, 0, 1, 2]})
    for job, expected in ((plain, None), (asked, 0.5)):
        summary = evaluator_class("text")(job, list(df.columns), {0: 4}).summary()
        assert isinstance(summary, TextSummary)
        rows = df.assign(json_a=["v", "w", None, None]) if expected else df
        quality = summary.finish(TextSummary.merge([summary.partial(rows, 0)]))["quality"]
        assert quality.get("json_valid_rate") == expected
