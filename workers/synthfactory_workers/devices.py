"""Which device and dtype a model runs on: the one place 'auto', 'cpu' and 'cuda' (and a
model's 'auto' dtype) are resolved. Every engine, generator, metric task and preview asks
here, so a GPU is chosen (or refused, with the fix) the same way everywhere.

- ``requested_device``: what a job's resources ask of a task ('cuda' with GPUs, else 'cpu');
- ``detect_device``: what Ray gave this actor (the hint the others take);
- ``resolve_device``: a spec's ``device`` field as a torch device, on this worker;
- ``local_device``: the device a run's actor would get, asked on this machine (preview);
- ``engine_device``: the device an engine that places itself (vLLM) is built for;
- ``resolve_dtype`` / ``resolve_device_dtype``: a spec's ``dtype`` field as a torch dtype.

torch is imported inside the functions that need it (never by importing this module)."""

from __future__ import annotations

from typing import Any

from synthfactory.errors import ConfigError


def requested_device(num_gpus: float) -> str:
    """The device a task asks for from its resources: 'cuda' when it holds GPUs."""
    return "cuda" if num_gpus > 0 else "cpu"


def detect_device() -> str:
    """'cuda' when Ray gave this actor (or task) a GPU, else 'cpu'."""
    try:
        import ray

        if ray.is_initialized() and ray.get_gpu_ids():
            return "cuda"
    except Exception:  # outside Ray (direct use) there are no GPU ids to ask for
        pass
    return "cpu"


def resolve_device(wanted: str, hint: str | None = None, field: str = "device") -> str:
    """``wanted`` as a torch device. 'auto' is CUDA when it is available and ``hint`` (the
    device Ray gave the actor, if known) allows it, else the CPU. An explicit 'cuda' on a
    worker without CUDA is a ConfigError naming ``field``."""
    import torch

    if wanted == "auto":
        allowed = hint is None or hint.startswith("cuda")
        return "cuda" if allowed and torch.cuda.is_available() else "cpu"
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"{field} is {wanted!r} but this worker has no GPU (CUDA is not available)",
            fix="set resources.num_gpus > 0 so the work lands on a GPU node, or use 'auto'/'cpu'",
        )
    return wanted


def local_device(num_gpus: float) -> str:
    """The device a run's actor would be given, asked on this machine: a GPU when the
    resources ask for one and this machine has one (without torch: the CPU)."""
    if not num_gpus:
        return "cpu"
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def engine_device(wanted: str, hint: str, gpus_elsewhere: bool = False) -> str:
    """'cuda' or 'cpu' for an engine that places itself (vLLM: its build decides where it
    runs). ``gpus_elsewhere``: the engine's workers hold GPUs the actor does not (tensor
    parallel), so Ray's hint says 'cpu' although the engine is on CUDA."""
    if gpus_elsewhere or wanted == "cuda":
        return "cuda"
    if wanted == "cpu":
        return "cpu"
    return "cuda" if hint.startswith("cuda") else "cpu"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX512-BF16)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(wanted: str, device: str, prefer_bf16: bool = False) -> Any:
    """``wanted`` ('auto' or a torch dtype's name) as a torch dtype on ``device``. 'auto'
    is float16 on CUDA and float32 on the CPU; with ``prefer_bf16`` (language models)
    bfloat16 where the card supports it, and on a CPU with fast bf16 (measured on a 2-core
    AVX512-BF16/AMX CPU: bf16 ~1.6x the tokens/s of fp32 at batch 8)."""
    import torch

    if wanted != "auto":
        return getattr(torch, wanted)
    if device == "cuda":
        bf16 = prefer_bf16 and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if bf16 else torch.float16
    return torch.bfloat16 if prefer_bf16 and cpu_has_fast_bf16() else torch.float32


def resolve_device_dtype(
    device: str,
    dtype: str,
    hint: str | None = None,
    field: str = "generator.device",
    prefer_bf16: bool = False,
) -> tuple[str, Any]:
    """A spec's ``device`` and ``dtype`` fields as a torch device and dtype."""
    resolved = resolve_device(device, hint, field)
    return resolved, resolve_dtype(dtype, resolved, prefer_bf16)
