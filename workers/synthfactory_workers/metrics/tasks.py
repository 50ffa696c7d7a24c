"""The metric work that runs on the Ray cluster: one summary per shard (in parallel), and
the model-based metrics on the merged sample (in one task that loads the models)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthfactory.spec import JobSpec, as_job

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.metrics.evaluators import ShardSummary


def summarize_shard(
    summary: ShardSummary, uri: str, storage: dict[str, Any], path: str, index: int
) -> dict[str, Any]:
    """Read one committed shard and summarise it."""
    from synthfactory.dataset import parquet
    from synthfactory.spec.storage import StorageOptions
    from synthfactory.storage import open_store
    from synthfactory_workers import credentials

    credentials.receive()
    store = open_store(uri, StorageOptions.model_validate(storage))
    df = parquet.decode(store.get_bytes(path)).to_pandas()
    df = df[[c for c in df.columns if not str(c).startswith("__")]]
    return summary.partial(df, index)


def prepare_model_task() -> None:
    """What every model-metrics task does first: receive the credentials (a judge model's API
    key, a reference set on S3) and cap torch's threads at the job's math_threads, as actors do."""
    import os

    from synthfactory_workers import credentials

    credentials.receive()
    if os.environ.get("SYNTHFACTORY_TORCH_THREADS"):
        import torch  # noqa: F401

        from synthfactory_workers.threads import limit_torch_threads

        limit_torch_threads()


def text_model_metrics(
    spec: JobSpec | dict[str, Any],
    sample: pd.DataFrame,
    reference: list[Any] | None,
    device_hint: str,
) -> dict[str, Any]:
    """The text evaluator's ``model_task``: MiniLM embedding diversity (and similarity to the
    reference), perplexity and the counterfactual bias test on the seeded sample; each part
    says why when it cannot be computed."""
    from synthfactory.metrics.text.sharded import job_text_column
    from synthfactory_workers.metrics.minilm import embedding_diversity

    prepare_model_task()
    job = as_job(spec)
    config = job.metrics
    out: dict[str, Any] = {}
    # the column the shard metrics scored (a pipeline's text_column), never a guess
    column = job_text_column(job, [str(c) for c in sample.columns])
    texts = [str(t) for t in sample[column].fillna("")] if column is not None else []
    if column is None:
        out["embedding"] = {"not_applicable": "the sample has no text column", "embedded": 0}
    else:
        out["embedding"] = embedding_diversity(
            texts, reference, sample=len(texts) or 1, seed=config.seed
        )
    out["perplexity"] = _perplexity(texts, config.perplexity_model, device_hint)
    out["counterfactual"] = _counterfactual(job, sample, device_hint)
    return out


def _perplexity(texts: list[str], model: str | None, device_hint: str) -> dict[str, Any]:
    if not texts:
        return {"not_applicable": "no texts to score"}
    if not model:
        return {"not_applicable": "set metrics.perplexity_model"}
    from synthfactory_workers.metrics.perplexity import perplexity

    scored = perplexity(texts, model, device=device_hint)
    scored.pop("per_text", None)
    return scored


def image_model_metrics(
    spec: JobSpec | dict[str, Any],
    sample: pd.DataFrame,
    reference: list[Any] | None,
    device_hint: str,
) -> dict[str, Any]:
    """The image evaluator's ``model_task``: encoder diversity, Fréchet distance to the
    reference images and CLIP score on the seeded sample; each part says why when it cannot
    be computed."""
    prepare_model_task()
    config = as_job(spec).metrics
    if not config.image_encoder:
        return {
            "embedding": {"not_applicable": "set metrics.image_encoder"},
            "clip_score": {
                "not_applicable": "set metrics.image_encoder to a CLIP model (vision and text)"
            },
        }
    from synthfactory.metrics.image.sharded import image_bytes
    from synthfactory_workers.metrics.image_embeddings import image_embedding_metrics

    prompts = None
    if "prompt" in sample.columns:
        prompts = [p if isinstance(p, str) else None for p in sample["prompt"]]
    return image_embedding_metrics(
        [image_bytes(v) for v in sample["image"]],
        config.image_encoder,
        device=device_hint,
        reference=reference,
        prompts=prompts,
        seed=config.seed,
    )


def _counterfactual(job: Any, sample: pd.DataFrame, device_hint: str) -> dict[str, Any]:
    config = job.metrics
    if not config.groups:
        return {"not_applicable": "no metrics.groups declared"}
    if not config.counterfactual_prompts:
        return {"not_applicable": "metrics.counterfactual_prompts is 0"}
    if job.generator.kind != "llm":
        return {"not_applicable": f"the {job.generator.kind} generator takes no prompts"}
    if "prompt" not in sample.columns:
        return {"not_applicable": "the dataset has no prompt column"}
    from synthfactory_workers.metrics.counterfactual import counterfactual_bias

    prompts = [str(p) for p in sample["prompt"].dropna().unique()]
    result: dict[str, Any] = counterfactual_bias(
        job, prompts, config.groups, device_hint=device_hint, seed=config.seed
    )
    return result
