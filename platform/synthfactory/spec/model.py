"""The job spec: what to generate, how much, where to, with which resources."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import Field, field_validator, model_validator

from synthfactory.spec.base import Strict
from synthfactory.spec.gates import parse
from synthfactory.spec.generators import GeneratorConfig, Modality
from synthfactory.spec.limits import MAX_SHARDS, MAX_TEXT_CHARS
from synthfactory.spec.storage import StorageOptions


class ModelResources(Strict):
    """The actor pool of one model of a text pipeline (``resources.models.<model>``); a
    field left out takes the job's value."""

    actors: int = Field(1, ge=1, le=10_000, description="Actors serving this model.")
    num_cpus: float | None = Field(None, gt=0, description="CPUs per actor.")
    num_gpus: float | None = Field(None, ge=0, description="GPUs per actor.")
    batch_size: int | None = Field(
        None, ge=1, description="Requests per call to one of these actors (its engine batch)."
    )
    custom_resources: dict[str, float] | None = Field(
        None, description="Named Ray resources each of these actors needs."
    )
    math_threads: int | None = Field(
        None, ge=1, description="Cap BLAS/OpenMP/torch threads per actor (default: num_cpus)."
    )


class Resources(Strict):
    """Ray actor pool sizing. Becomes the actors' ``.options(...)``."""

    actors: int = Field(1, ge=1, le=10_000, description="Actors in the pool.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs reserved per actor (fractions allowed).")
    num_gpus: float = Field(
        0.0, ge=0, description="GPUs per actor; >0 places actors on GPU nodes and runs on CUDA."
    )
    batch_size: int = Field(256, ge=1, description="Items per model call inside an actor.")
    custom_resources: dict[str, float] = Field(
        default_factory=dict,
        description="Named Ray resources each actor needs, e.g. {A100: 1} to use only such nodes.",
    )
    math_threads: int | None = Field(
        None, ge=1, description="Cap BLAS/OpenMP/torch threads per actor (default: num_cpus)."
    )
    models: dict[str, ModelResources] = Field(
        default_factory=dict,
        description="Text pipelines: the pool of each model other than generator.model, "
        "keyed by the columns' `model` value (default: 1 actor with the job's resources).",
    )

    def for_model(self, key: str) -> Resources:
        """The resources of model ``key``'s pool: its own settings over the job's."""
        own = self.models.get(key)
        changes = {} if own is None else own.model_dump(exclude_none=True)
        return self.model_copy(update={**changes, "models": {}})


class RetryPolicy(Strict):
    shard_retries: int = Field(
        3, ge=0, le=100, description="Retries per shard for transient errors."
    )
    retry_delay_seconds: float = Field(
        1.0, ge=0, description="First retry delay; doubles on each retry."
    )


class ConcurrencyPolicy(Strict):
    """How many runs may go at once (enforced by Prefect when the job is deployed)."""

    limit: int | None = Field(None, ge=1, description="Runs of this job's deployment at once.")
    pool: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="A shared pool (e.g. 'gpu-a100') whose slots this job's runs occupy.",
    )
    pool_limit: int | None = Field(
        None, ge=1, description="Runs at once across every job in `pool` (sets the pool's limit)."
    )


class MetricsConfig(Strict):
    """Quality, privacy and bias metrics computed after generation (see the README)."""

    enabled: bool = Field(True, description="Compute metrics and write metrics.json.")
    reference: str | None = Field(
        None,
        description="Real table to compare with (CSV/Parquet/JSONL, local or s3://); "
        "defaults to the generator's source table.",
    )
    target_column: str | None = Field(
        None,
        description="Enables train-on-synthetic/test-on-holdout, augmentation lift and "
        "fairness metrics; the holdout is stratified by it.",
    )
    holdout: float | None = Field(
        None,
        ge=0,
        le=0.9,
        description="Fraction of the source (or metrics.reference) split off before fitting "
        "and never shown to the synthesizer; privacy and utility metrics compare synthetic "
        "rows with it. Unset: 0.2 when the table has at least 50 rows, else 0. 0 turns it "
        "off (privacy distances and utility are then reported not applicable). Seeded by "
        "`seed`, stratified by `target_column` (or `generator.augment.balance`).",
    )
    sensitive_columns: list[str] = Field(
        default_factory=list, description="Columns whose groups bias metrics compare."
    )
    max_rows: int = Field(
        1_000_000, ge=100, description="Rows read for metrics; larger datasets are sampled."
    )
    max_pairs: int = Field(500, ge=1, description="Column pairs scored (seeded sample).")
    privacy_sample: int = Field(5000, ge=10, description="Rows per side for distances.")
    seed: int = Field(0, ge=0, description="Seed for every sample a metric takes.")
    model_sample: int = Field(
        2000,
        ge=10,
        description="Texts or images scored by model-based metrics (embeddings, perplexity, "
        "near-duplicate pairs): a seeded sample drawn evenly from the shards.",
    )
    perplexity_model: str | None = Field(
        None,
        description="Reference causal LM for text perplexity: a Hugging Face id, local folder, "
        ".gguf file or builtin:smollm2; unset, perplexity is reported not applicable.",
    )
    image_encoder: str | None = Field(
        None,
        description="Image encoder for embedding diversity and the Frechet distance to the "
        "reference images (a CLIP model or any transformers vision model: Hugging Face id or "
        "local folder); a full CLIP checkpoint (vision and text towers) also gives the CLIP "
        "score of images against their prompts.",
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Text bias: group name -> terms naming it, e.g. {female: [she, her, "
        "woman], male: [he, him, man]}; mentions are counted and prompts are swapped.",
    )
    counterfactual_prompts: int = Field(
        32,
        ge=0,
        description="Text bias: prompts (containing a group term) regenerated once per group "
        "with the terms swapped; 0 turns the counterfactual test off.",
    )

    @field_validator("groups")
    @classmethod
    def _groups_have_terms(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, terms in groups.items():
            if not terms or any(not t.strip() for t in terms):
                raise ValueError(
                    f"group {name!r} needs non-blank terms, e.g. {{female: [she, her], "
                    "male: [he, him]}"
                )
        if len(groups) == 1:
            raise ValueError("name at least two groups to compare")
        return groups


class Budget(Strict):
    """What a job may spend on model requests. Reaching it stops the job (no new shard is
    started; those running finish and are kept) and quarantines the version with reason
    ``budget``; re-running with a larger budget resumes it and pays for nothing twice."""

    max_cost_usd: float | None = Field(
        None,
        gt=0,
        description="Dollars, as the backends count them (`price_per_million_tokens` of the "
        "openai backend): the job stops before a shard that would likely pass it.",
    )
    max_tokens: int | None = Field(
        None,
        gt=0,
        description="Prompt plus completion tokens over every model request of the job.",
    )

    @property
    def set(self) -> bool:
        return self.max_cost_usd is not None or self.max_tokens is not None


class JobSpec(Strict):
    """One synthetic dataset: the unit a flow run produces."""

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$",
        description="Dataset name: lowercase letters, digits, '.', '_', '-'.",
    )
    modality: Modality = Field(description="What rows hold: tabular, text or image.")
    generator: GeneratorConfig = Field(description="The generator and its settings.")
    rows: int | None = Field(
        None,
        ge=1,
        le=10_000_000_000,
        description="Rows in the finished dataset (relational: root rows; sequential: "
        "entities). Required, except with generator.augment, which derives it from the "
        "source when left out.",
    )
    shard_rows: int = Field(
        10_000,
        ge=1,
        description="Rows per shard: the unit of work, retry and resume. Left out: the "
        "generator's default (copula 500000, ctgan/tvae 200000, relational 10000, "
        "sequential 10000 entities, llm 256, diffusion 64, python 10000).",
    )
    seed: int = Field(0, ge=0, lt=2**63, description="Master seed; shard seeds derive from it.")
    output: str = Field(description="Where the dataset goes: ./folder or s3://bucket/prefix.")
    resources: Resources = Field(
        default_factory=Resources,  # type: ignore[arg-type]
        description="Ray actor pool sizing (actors, CPUs, GPUs, batch size).",
    )
    storage: StorageOptions = Field(
        default_factory=StorageOptions,  # type: ignore[arg-type]
        description="Object-store settings: the artifact cache and each scheme's own "
        "(storage.s3: endpoint, region, addressing).",
    )
    retries: RetryPolicy = Field(
        default_factory=RetryPolicy,  # type: ignore[arg-type]
        description="Retries of a shard on transient errors.",
    )
    description: str = Field(
        "", max_length=MAX_TEXT_CHARS, description="Free text for the dataset card."
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig,  # type: ignore[arg-type]
        description="Which metrics are computed after generation, and on what.",
    )
    gates: dict[str, str] = Field(
        default_factory=dict,
        description="Conditions a dataset must meet to be published, e.g. "
        "{quality.overall: '>= 0.8', privacy.exact_copy_rate: '== 0'}; a failing dataset is "
        "quarantined.",
    )
    concurrency: ConcurrencyPolicy = Field(
        default_factory=ConcurrencyPolicy,  # type: ignore[arg-type]
        description="How many runs of this job (or its pool) may go at once.",
    )
    top_up_rounds: int = Field(
        5,
        ge=0,
        le=100,
        description="When filters or dedup leave fewer than `rows` accepted rows, generate "
        "more shards up to this many times; then publish what there is and report it.",
    )
    budget: Budget = Field(
        default_factory=Budget,  # type: ignore[arg-type]
        description="Spending limits: {max_cost_usd, max_tokens}. Not part of the content "
        "hash: raising it resumes the same version.",
    )

    @model_validator(mode="after")
    def _modality_matches_generator(self) -> JobSpec:
        allowed = type(self.generator).modalities
        if self.modality not in allowed:
            raise ValueError(
                f"generator kind '{self.generator.kind}' makes {' or '.join(allowed)} data, "
                f"not {self.modality}: change 'modality' or 'generator.kind'"
            )
        return self

    @model_validator(mode="after")
    def _default_shard_rows(self) -> JobSpec:
        if "shard_rows" not in self.model_fields_set:
            self.shard_rows = type(self.generator).default_shard_rows
        return self

    @model_validator(mode="after")
    def _rows_given(self) -> JobSpec:
        if self.rows is None and not self.generator.derives_rows():
            raise ValueError(
                "rows: say how many rows the dataset has, e.g. 'rows: 1000' (only "
                "generator.augment derives the count)"
            )
        return self

    @model_validator(mode="after")
    def _shards_within_limit(self) -> JobSpec:
        problem = None if self.rows is None else shard_count_problem(self.rows, self.shard_rows)
        if problem:
            raise ValueError(f"rows: {problem}")
        return self

    @field_validator("gates")
    @classmethod
    def _gates_parse(cls, gates: dict[str, str]) -> dict[str, str]:
        for metric, condition in gates.items():
            parse(metric, condition)
        return gates

    @property
    def target_rows(self) -> int:
        """``rows``, once known (a derived count is filled in before a job runs)."""
        if self.rows is None:
            raise ValueError("rows is derived by the generator and not known yet")
        return self.rows

    @property
    def shard_count(self) -> int:
        return -(-self.target_rows // self.shard_rows)

    def content_hash(self, extra: dict[str, str] | None = None) -> str:
        """Hash of everything that decides the data (not where it goes or how it runs)."""
        payload = self.model_dump(
            mode="json",
            exclude={
                "output",
                "resources",
                "storage",
                "retries",
                "description",
                "top_up_rounds",
                "concurrency",
                "metrics",
                "gates",
                "budget",
            },
        )
        generator = payload.get("generator", {})
        for path, backend in self.generator.backend_configs().items():
            dumped: Any = generator
            for part in path:
                dumped = dumped.get(part) if isinstance(dumped, dict) else None
            if isinstance(dumped, dict):  # a default backend may dump as its kind alone
                for name in getattr(backend, "RUN_SETTINGS", ()):
                    dumped.pop(name, None)
        # batch composition changes floating-point results of model-based generators
        payload["_batch_size"] = self.resources.batch_size
        sizes = {k: v.batch_size for k, v in self.resources.models.items() if v.batch_size}
        if sizes:
            payload["_model_batch_sizes"] = sizes
        payload["_extra"] = extra or {}
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()


def shard_count_problem(rows: int, shard_rows: int) -> str | None:
    """Why ``rows`` in shards of ``shard_rows`` is too many shards (None when it is not): at
    most ``MAX_SHARDS`` per job, as each is a Prefect task, a commit marker and a manifest
    entry, and planning a million of them takes longer than generating small ones."""
    shards = -(-rows // shard_rows)
    if shards <= MAX_SHARDS:
        return None
    least = -(-rows // MAX_SHARDS)
    return (
        f"{rows} rows in shards of {shard_rows} make {shards} shards; a job may have at most "
        f"{MAX_SHARDS}: raise shard_rows to at least {least}"
    )
