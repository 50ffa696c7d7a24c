"""``synthfactory preview`` on the shipped SmolLM2 text job: the command end to end, and a
``Previewer`` that keeps its model while the prompt changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthfactory.spec import load_spec
from synthfactory_flows.plan import shard_seed
from synthfactory_flows.preview import Previewer
from synthfactory_workers.prompt_sampler import PromptSampler

ROOT = Path(__file__).resolve().parents[2]
REVIEWS = ROOT / "examples" / "text_reviews.yaml"

pytestmark = pytest.mark.slow


def files(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


def test_cli_previews_text_reviews(tmp_path: Path) -> None:
    output = ROOT / "out" / "reviews"  # the spec's output (../out/reviews)
    before = files(output)
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "preview", str(REVIEWS), "-n", "2"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},  # 80: a panel per row
        cwd=tmp_path,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "reviews: 2 row(s)" in text and "row 0" in text and "row 1" in text
    assert text.count("one-sentence review of a") == 2  # each row's rendered prompt
    for column in ("completion", "var_tone", "var_product", "var_price"):
        assert column in text
    assert "model_revision" not in text  # bookkeeping stays out of the table
    summary = text.strip().splitlines()[-1]
    assert summary.startswith("2 kept, ") and "tokens" in summary and "load" in summary
    assert "Traceback" not in out.stderr and "Loading weights" not in out.stderr
    print(f"preview -n 2 of text_reviews.yaml: {seconds:.1f} s; {summary}")
    assert files(output) == before, "the preview wrote under the spec's output"


def test_previewer_keeps_the_model_across_prompt_edits() -> None:
    job = load_spec(REVIEWS)
    previewer = Previewer(job)
    first = previewer.preview(2)
    assert first.loaded and first.load_seconds > 0
    assert first.rows.num_rows == 2 and first.tokens[1] > 0
    # the run's prompts: shard 0's seed, rows 0 and 1
    sampler = PromptSampler(job.generator.prompt, None)
    seed = shard_seed(job.seed, 0)
    prompts = [sampler.render(i, seed).text for i in range(2)]
    kept = first.rows.to_pylist() + (first.rejected.to_pylist() if first.rejected else [])
    assert {r["prompt"] for r in kept} >= set(prompts)
    backend = previewer.generator.backend  # type: ignore[union-attr]

    config = job.generator.model_dump(mode="json", exclude_unset=True)
    config["prompt"]["template"] = "Write a {{ tone }} haiku about a {{ product }}."
    config["sampling"] = {"max_new_tokens": 24, "temperature": 0.5}
    edited = previewer.preview(2, spec=load_spec(job, generator=config))
    assert not edited.loaded, "an edited prompt must not load the model again"
    assert previewer.generator.backend is backend  # type: ignore[union-attr]
    assert backend.config.sampling.max_new_tokens == 24
    assert all("haiku" in r["prompt"] for r in edited.rows.to_pylist())
    assert "model reused" in edited.summary()
    lines = [json.loads(x) for x in edited.json_lines(["prompt", "completion"])]
    assert {"prompt", "completion", "_status"} <= set(lines[0])


def test_previewer_runs_a_judge_pipeline_with_both_models_in_process() -> None:
    """persona -> instruction -> response -> judge (on its own model, which a run serves
    from an actor pool): here both load in this process; rows and rejections carry the
    judge's verdicts and reasons (≈ 2.5 min on 2 busy cores)."""
    previewer = Previewer(ROOT / "examples" / "text_instruct_judge.yaml")
    result = previewer.preview(2)
    backends = previewer.generator.backends  # type: ignore[union-attr]
    assert set(backends) == {None, "judge"}
    assert {type(b).__name__ for b in backends.values()} == {"TransformersBackend"}
    generated = result.rows.num_rows + result.rejected_rows
    assert generated >= 2 and result.tokens[1] > 0
    records = list(result.records())
    assert all(r["instruction"] and r["persona.first_name"] for r in records)
    for record in records:
        if record["_status"] == "kept":
            assert record["judge.helpfulness.score"] >= 3
        else:
            assert record["reason"] and record["rejected_column"]
    assert result.stats["pipeline.generated"] >= generated  # plus any surplus rows
