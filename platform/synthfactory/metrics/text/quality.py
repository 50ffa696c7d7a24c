"""Text metrics: length and token statistics, distinct-n, near-duplicate rate and
self-similarity (MinHash), JSON-valid and refusal rates, PII found in outputs, verbatim
n-gram overlap with a source (embedding diversity, which loads MiniLM, is in
synthfactory_workers.metrics.minilm). The measures are in ``text_measures.py``; this module
is the report of one in-memory table (``text_report``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def text_report(
    synthetic: pd.DataFrame, reference: list[str] | None, seed: int = 0
) -> dict[str, Any]:
    """Every shard-summarised text metric on one in-memory table (a job computes the same
    shard by shard; the model-based ones are in ``synthfactory_workers.metrics``)."""
    from synthfactory.metrics.text.sharded import TextSummary, reference_grams, text_column

    column = text_column([str(c) for c in synthetic.columns])
    if column is None:
        return {"not_applicable": "no completion or text column"}
    parsed = [c for c in synthetic.columns if str(c).startswith("json_") and c != "json_attempt"]
    summary = TextSummary(
        column,
        {},
        seed,
        reference_grams(reference) if reference else None,
        json_columns=[str(c) for c in parsed] or None,
    )
    report: dict[str, Any] = {
        "modality": "text",
        **summary.finish(TextSummary.merge([summary.partial(synthetic, 0)])),
        "bias": {"not_applicable": "no metrics.groups declared"},
    }
    return report
