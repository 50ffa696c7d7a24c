"""vLLM in-process: one ``vllm.LLM`` engine per Ray actor, a shard's requests sent to it
in one call (its scheduler batches them continuously, with a paged KV cache).

vLLM usually needs its own Python environment (its pins conflict with Prefect's): name
its interpreter in ``python`` and the pool runs these actors on it (a Ray ``runtime_env``
with ``py_executable``). ``scripts/install_vllm.sh`` builds one (``.venv-vllm``); the
``gpu-worker`` image stage in ``infra/docker/Dockerfile`` has vLLM in the worker's own
environment (leave ``python`` unset).

The generator's ``model`` must be a Hugging Face id or a local Hugging Face folder (with
``config.json``): a ``.gguf`` model is refused at preflight (export it with transformers'
``save_pretrained`` first, as ``tests/text/servers.py`` does)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from synthfactory.spec.backends import BACKENDS
from synthfactory.spec.base import Frozen


@BACKENDS.register("synthfactory_workers.text.vllm_backend:VLLMBackend")
class VLLMBackendConfig(Frozen):
    """A ``vllm.LLM`` engine in each actor (continuous batching, prefix caching, guided
    decoding); tensor parallelism over the GPUs of one placement group."""

    RUN_SETTINGS: ClassVar[tuple[str, ...]] = ("python", "journal", "preflight_timeout_seconds")
    """Where the engine runs and bookkeeping, not what it generates: left out of the content hash
    (engine sizes stay in: batch composition changes floating-point results)."""

    kind: Literal["vllm"] = Field("vllm", description="vLLM's offline engine, one per actor.")
    python: str | None = Field(
        None,
        description="Path of the Python executable of an environment with vLLM, ray (the "
        "driver's version) and synthfactory installed (e.g. .venv-vllm/bin/python from "
        "scripts/install_vllm.sh): the actors run on it. None: the actor's own interpreter "
        "(a worker image with vLLM, e.g. the gpu-worker stage).",
        min_length=1,
    )
    tensor_parallel_size: int = Field(
        1,
        ge=1,
        le=64,
        description="GPUs one engine spans. Above 1 each actor reserves that many GPUs in "
        "one STRICT_PACK placement group (one node) and vLLM runs its workers on them with "
        "the Ray executor; `resources.num_gpus` is then ignored.",
    )
    gpu_memory_utilization: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Fraction of each GPU's memory vLLM may take (weights + KV cache).",
    )
    max_model_len: int | None = Field(
        None,
        ge=16,
        description="Longest prompt + completion in tokens (sizes the KV cache); None: the "
        "model's own context length.",
    )
    max_num_seqs: int | None = Field(
        None,
        ge=1,
        description="Most sequences the scheduler runs at once; None: vLLM's default.",
    )
    enforce_eager: bool = Field(
        False,
        description="Skip CUDA graph capture (faster start, slower decode); on CPU it skips "
        "torch.compile.",
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] | None = Field(
        None,
        description="Weights and activations; None: the generator's `dtype` (whose auto is "
        "vLLM's auto: the model's dtype, fp16 for fp32 models on GPU).",
    )
    enable_prefix_caching: bool = Field(
        True,
        description="Reuse the KV cache of shared prompt prefixes (system prompt, template).",
    )
    kv_cache_space_gb: int | None = Field(
        None,
        gt=0,
        description="CPU only: GiB of memory for the KV cache (VLLM_CPU_KVCACHE_SPACE); None: "
        "vLLM's default.",
    )
    guided_decoding: bool = Field(
        True,
        description="With a json_schema: constrain decoding to the schema (vLLM's structured "
        "outputs), so completions parse; off: they are only validated and retried.",
    )
    journal: bool = Field(
        False,
        description="Keep a per-shard journal of completions on the dataset's storage so a "
        "retried shard does not generate them again.",
    )
    preflight_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=600,
        description="How long preflight waits for `python -c 'import vllm'`.",
    )
