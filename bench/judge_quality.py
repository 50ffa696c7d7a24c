"""Judge quality: scores read from probabilities (G-Eval) vs the sampled-and-parsed score.

A labelled set built here: questions with a known answer (sums, capitals, opposites), each
shown once with the correct answer (label 1) and once with a corrupted one (label 0). The
shipped SmolLM2 judges every row once through the real pipeline (``llm_judge`` column,
transformers backend, the job's default sampling, guided decoding where the backend has
it). Each row then has both scores from the SAME completion: ``score`` (the sampled token,
parsed; the baseline) and ``expected`` (the expected score over the allowed levels from the
probabilities at that token). Printed: AUC and Spearman of each against the label, and the
ratio of the AUCs (probabilities / sampled), measured in this one run.

    .venv/bin/python bench/judge_quality.py [--pairs 16] [--seed 7]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (env defaults)

CAPITALS = [
    ("France", "Paris", "Rome"),
    ("Italy", "Rome", "Madrid"),
    ("Spain", "Madrid", "Lisbon"),
    ("Germany", "Berlin", "Vienna"),
    ("Japan", "Tokyo", "Beijing"),
    ("Egypt", "Cairo", "Nairobi"),
    ("Canada", "Ottawa", "Chicago"),
    ("Russia", "Moscow", "Warsaw"),
]
OPPOSITES = [
    ("hot", "cold", "warm"),
    ("up", "down", "above"),
    ("big", "small", "large"),
    ("fast", "slow", "quick"),
    ("happy", "sad", "glad"),
    ("open", "closed", "opened"),
    ("light", "dark", "bright"),
    ("early", "late", "soon"),
]


def labelled(pairs: int) -> list[dict[str, Any]]:
    """``pairs`` questions, each with its correct answer (label 1) and a corrupted one
    (label 0): sums (off by 1 to 9), capitals (another country's), opposites (a synonym)."""
    items: list[tuple[str, str, str]] = []
    for i in range(pairs):
        kind = i % 3
        if kind == 0:
            a, b = 3 + 7 * i % 40, 5 + 11 * i % 50
            items.append((f"What is {a} + {b}?", str(a + b), str(a + b + 1 + i % 9)))
        elif kind == 1:
            country, right, wrong = CAPITALS[i // 3 % len(CAPITALS)]
            items.append((f"What is the capital of {country}?", right, wrong))
        else:
            word, right, wrong = OPPOSITES[i // 3 % len(OPPOSITES)]
            items.append((f"What is the opposite of '{word}'?", right, wrong))
    rows = []
    for question, right, wrong in items:
        rows.append({"question": question, "answer": right, "label": 1})
        rows.append({"question": question, "answer": wrong, "label": 0})
    return rows


def auc(scores: list[float], labels: list[int]) -> float:
    """Area under the ROC curve: P(a positive outscores a negative), ties counted half."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    negatives = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def spearman(x: list[float], y: list[int]) -> float:
    import warnings

    from scipy.stats import spearmanr

    with warnings.catch_warnings():  # a constant score has no rank correlation: nan
        warnings.simplefilter("ignore")
        value = spearmanr(x, y).statistic
    return float("nan") if value != value else float(value)


def job(source: Path, rows: int, seed: int, output: str) -> Any:
    from synthfactory.spec import load_spec

    return load_spec(
        {
            "name": "bench-judge-quality",
            "modality": "text",
            "rows": rows,
            "shard_rows": rows,
            "seed": seed,
            "output": output,
            "generator": {
                "kind": "llm",
                "model": "builtin:smollm2",
                "source": str(source),
                "sampling": {"max_new_tokens": 40},
                "columns": [
                    {"kind": "source", "name": "question"},
                    {"kind": "source", "name": "answer"},
                    {"kind": "source", "name": "label"},
                    {
                        "kind": "llm_judge",
                        "name": "judge",
                        "template": "Question: {{ question }}\nAnswer: {{ answer }}",
                        "rubric": ["correctness"],
                        "max_retries": 1,
                    },
                ],
                "max_attempts_per_row": 1,
                "dedup": {"exact": False, "near": False},
            },
            "metrics": {"enabled": False},
            "resources": {"actors": 1, "batch_size": 16},
        }
    )


def run(pairs: int, seed: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from synthfactory.storage import LocalStore
    from synthfactory_workers.contract import GeneratorContext, ShardTask
    from synthfactory_workers.text.generator import LLMGenerator

    rows = labelled(pairs)
    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-judge-"))
    pq.write_table(pa.Table.from_pylist(rows), tmp / "labelled.parquet")
    spec = job(tmp / "labelled.parquet", len(rows), seed, str(tmp / "out"))
    generator = LLMGenerator(spec, GeneratorContext(artifacts=LocalStore(tmp / "a")))
    t0 = time.perf_counter()
    generator.load()
    t1 = time.perf_counter()
    out = generator.generate(ShardTask(0, 0, len(rows), seed))
    t2 = time.perf_counter()
    judged = out.table.to_pylist()
    return {"rows": rows, "judged": judged, "load_s": t1 - t0, "judge_s": t2 - t1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=16, help="questions (2 rows each)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = run(args.pairs, args.seed)
    judged = result["judged"]
    labels = [int(r["label"]) for r in judged]
    sampled = [float(r["judge.correctness.score"]) for r in judged]
    expected = [float(r["judge.correctness.expected"]) for r in judged]
    from_probs = sum(r["judge__correctness__source"] == "probability" for r in judged)
    print(
        f"labelled rows {len(result['rows'])} ({args.pairs} correct, {args.pairs} corrupted); "
        f"judged {len(judged)}, scored from probabilities {from_probs}; "
        f"load {result['load_s']:.1f} s, judging {result['judge_s']:.1f} s"
    )
    if len(set(labels)) < 2:
        print("only one label among the judged rows: no AUC")
        return
    auc_sampled, auc_expected = auc(sampled, labels), auc(expected, labels)
    print(f"{'score':<34} {'AUC':>6} {'Spearman':>9} {'distinct values':>16}")
    for name, values, area in (
        ("sampled and parsed (baseline)", sampled, auc_sampled),
        ("probability-weighted (G-Eval)", expected, auc_expected),
    ):
        print(f"{name:<34} {area:6.3f} {spearman(values, labels):9.3f} {len(set(values)):16d}")
    print(f"AUC ratio, probabilities / sampled: {auc_expected / auc_sampled:.2f}x")


if __name__ == "__main__":
    main()
