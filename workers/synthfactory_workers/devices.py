"""Which device a model runs on: the one place 'auto', 'cpu' and 'cuda' are resolved."""

from __future__ import annotations

from synthfactory.errors import ConfigError


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
