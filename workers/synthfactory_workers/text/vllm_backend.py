"""The vllm backend: one ``vllm.LLM`` engine per actor.

A shard's requests go to the engine in ONE ``LLM.chat`` (or ``LLM.generate``) call, each
with its own ``SamplingParams`` (its own seed): no fixed batches, the engine's scheduler
batches continuously (paged KV cache, prefix caching). ``batch_size`` is ignored; the
engine's ``max_num_seqs`` bounds what runs at once. A json_schema becomes vLLM's structured
outputs (``StructuredOutputsParams(json=...)``; ``GuidedDecodingParams`` on older vLLM),
so completions parse; they are validated (and retried) by the generator all the same.

Completions come back when the call returns, so ``on_result`` (the journal) sees them all
at the end of the call: a shard that dies inside the call regenerates all of it.

vLLM is imported in ``load()`` only: this module is importable without it, and the pure
functions here (``sampling_kwargs``, ``engine_kwargs``) are tested without it. Preflight
(``check_vllm``) runs in the driver, which usually has no vLLM: it asks the backend's
interpreter in a subprocess.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory_workers import devices
from synthfactory_workers.contract import ActorEngine
from synthfactory_workers.telemetry import METER
from synthfactory_workers.text.backend import Completion, OnResult, Request, TextBackend
from synthfactory_workers.text.logprobs import from_vllm

if TYPE_CHECKING:
    from synthfactory.spec import JobSpec
    from synthfactory.spec.backends.vllm import VLLMBackendConfig
    from synthfactory.spec.generators.text import LLMConfig, SamplingConfig

SEED_MASK = 2**63 - 1


def sampling_kwargs(
    sampling: SamplingConfig,
    seed: int,
    json_schema: dict[str, Any] | None = None,
    guided: bool = True,
    logprobs: int = 0,
) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments for one request (plain values: testable without
    vLLM). ``structured_outputs`` is a dict of ``StructuredOutputsParams`` arguments."""
    kwargs: dict[str, Any] = {
        "n": 1,
        "seed": seed & SEED_MASK,
        "max_tokens": sampling.max_new_tokens,
        "repetition_penalty": sampling.repetition_penalty,
    }
    if sampling.greedy:
        kwargs.update(temperature=0.0, top_p=1.0, top_k=-1)
    else:
        kwargs.update(
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k if sampling.top_k > 0 else -1,
        )
    if sampling.stop:
        kwargs["stop"] = list(sampling.stop)
    if json_schema is not None and guided:
        kwargs["structured_outputs"] = {"json": json_schema}
    if logprobs:  # a judge scoring from probabilities: top alternatives per token
        kwargs["logprobs"] = logprobs
    return kwargs


def engine_kwargs(config: LLMConfig, device: str = "cpu") -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments from the generator and backend configs."""
    backend = options(config)
    dtype = backend.dtype or config.dtype
    kwargs: dict[str, Any] = {
        "model": config.model,
        "dtype": dtype,
        "enforce_eager": backend.enforce_eager,
        "enable_prefix_caching": backend.enable_prefix_caching,
        "tensor_parallel_size": backend.tensor_parallel_size,
        "seed": 0,
    }
    if config.revision:
        kwargs["revision"] = config.revision
    if backend.max_model_len is not None:
        kwargs["max_model_len"] = backend.max_model_len
    if backend.max_num_seqs is not None:
        kwargs["max_num_seqs"] = backend.max_num_seqs
    if device == "cuda":
        kwargs["gpu_memory_utilization"] = backend.gpu_memory_utilization
    if backend.tensor_parallel_size > 1:
        # the engine's workers run as Ray actors in the actor's placement group
        kwargs["distributed_executor_backend"] = "ray"
    return kwargs


def engine_device(config: LLMConfig, hint: str) -> str:
    """'cuda' or 'cpu', for the engine's GPU settings (``devices.engine_device``). A
    tensor-parallel actor holds no GPU itself (its engine's workers hold the placement
    group's), so Ray's hint says 'cpu' there."""
    return devices.engine_device(config.device, hint, options(config).tensor_parallel_size > 1)


def options(config: LLMConfig) -> VLLMBackendConfig:
    from synthfactory.spec.backends.vllm import VLLMBackendConfig

    assert isinstance(config.backend, VLLMBackendConfig)
    return config.backend


def finish(reason: str | None) -> str:
    return "length" if reason == "length" else "stop"


class VLLMBackend(TextBackend, ActorEngine):
    @classmethod
    def actor_options(cls, spec: JobSpec, env: dict[str, str]) -> dict[str, Any]:
        """What vLLM changes in its actors' options:

        - ``python``: the actors run on that interpreter, through the runtime_env's
          ``py_executable`` (its environment has vLLM, ray and synthfactory; the driver's
          does not);
        - ``kv_cache_space_gb``: VLLM_CPU_KVCACHE_SPACE in the actors' environment;
        - ``tensor_parallel_size`` > 1: the actor takes no GPU itself; its engine's workers
          take the GPUs of the actor's placement group (``placement_bundles``)."""
        backend = spec.generator.actor_backend()
        env = {"VLLM_NO_USAGE_STATS": "1", **env}
        if backend.kv_cache_space_gb is not None:
            env["VLLM_CPU_KVCACHE_SPACE"] = str(backend.kv_cache_space_gb)
        runtime_env: dict[str, Any] = {"env_vars": env}
        if backend.python:
            runtime_env["py_executable"] = backend.python
        out: dict[str, Any] = {"runtime_env": runtime_env}
        if backend.tensor_parallel_size > 1:
            out["num_gpus"] = 0
        return out

    @classmethod
    def placement_bundles(cls, spec: JobSpec) -> list[dict[str, float]] | None:
        """A tensor-parallel engine's group: one bundle per GPU, packed on one node; the
        first bundle also holds the actor's CPUs."""
        size = spec.generator.actor_backend().tensor_parallel_size
        if size <= 1:
            return None
        bundles: list[dict[str, float]] = [{"GPU": 1.0} for _ in range(size)]
        if spec.resources.num_cpus:
            bundles[0]["CPU"] = float(spec.resources.num_cpus)
        return bundles

    def __init__(self, config: LLMConfig, device_hint: str = "cpu") -> None:
        self.config = config
        self.options = options(config)
        self.device_hint = device_hint
        self.model_id = config.model
        self.revision = config.revision or "unknown"
        self.llm: Any = None
        self._chat = True

    def load(self) -> None:
        if self.options.kv_cache_space_gb is not None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.options.kv_cache_space_gb))
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        try:
            import vllm
        except ImportError as exc:
            raise ConfigError(
                f"the vllm backend cannot import vllm in this actor ({exc})",
                fix="set backend.python to an environment with vLLM (bash "
                "scripts/install_vllm.sh builds .venv-vllm) or use a worker image with vLLM",
            ) from None
        device = engine_device(self.config, self.device_hint)
        self.llm = vllm.LLM(**engine_kwargs(self.config, device))
        tokenizer = self.llm.get_tokenizer()
        self._chat = bool(getattr(tokenizer, "chat_template", None))
        self.revision = self.config.revision or engine_revision(self.config.model)
        self._params_class, self._structured = structured_outputs_api()

    def request_body(self, request: Request) -> dict[str, Any]:
        body = super().request_body(request)
        body["revision"] = self.revision
        body["sampling"] = self.config.sampling.model_dump(mode="json")
        body["guided"] = bool(self.config.json_schema is not None and self.options.guided_decoding)
        return body

    def request_kwargs(self, request: Request) -> dict[str, Any]:
        """``sampling_kwargs`` of this request under the current config (a column's sampling
        and reply schema: judges and structured columns are constrained to theirs)."""
        return sampling_kwargs(
            self.config.sampling,
            request.seed,
            self.config.json_schema,
            self.options.guided_decoding,
            request.top_logprobs,
        )

    def sampling_params(self, request: Request) -> Any:
        from vllm import SamplingParams

        kwargs = self.request_kwargs(request)
        structured = kwargs.pop("structured_outputs", None)
        if structured is not None:
            kwargs[self._structured] = self._params_class(**structured)
        return SamplingParams(**kwargs)

    def complete(
        self,
        requests: list[Request],
        batch_size: int,
        on_result: OnResult | None,
        max_failures: int | None,
    ) -> list[Completion]:
        assert self.llm is not None, "load() first"
        params = [self.sampling_params(r) for r in requests]
        METER.started(len(requests))
        try:
            if self._chat:
                outputs = self.llm.chat([r.messages for r in requests], params, use_tqdm=False)
            else:
                prompts = ["\n\n".join(m["content"] for m in r.messages) for r in requests]
                outputs = self.llm.generate(prompts, params, use_tqdm=False)
        finally:
            METER.finished(len(requests))
        completions = []
        for index, output in enumerate(outputs):
            first = output.outputs[0]
            completion = Completion(
                text=first.text.strip(),
                prompt_tokens=len(output.prompt_token_ids or ()),
                completion_tokens=len(first.token_ids),
                finish_reason=finish(first.finish_reason),
                logprobs=from_vllm(first.token_ids, first.logprobs),
            )
            completions.append(completion)
            METER.finished(0, completion.completion_tokens)
            if on_result is not None:
                on_result(index, completion)
        return completions


def structured_outputs_api() -> tuple[type, str]:
    """(params class, SamplingParams field) for structured outputs in the installed vLLM:
    ``StructuredOutputsParams`` / ``structured_outputs`` (0.11+), else the older
    ``GuidedDecodingParams`` / ``guided_decoding``."""
    from vllm import sampling_params

    cls = getattr(sampling_params, "StructuredOutputsParams", None)
    if cls is not None:
        return cls, "structured_outputs"
    return sampling_params.GuidedDecodingParams, "guided_decoding"


def engine_revision(model: str) -> str:
    """A local folder's revision: the hash of its config and weights' sizes/mtimes (a
    Hugging Face id without a pinned revision: 'unknown')."""
    folder = Path(model)
    if not folder.is_dir():
        return "unknown"
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return "local-" + digest.hexdigest()[:16]


# -- preflight (the driver; no vLLM here) --------------------------------------------------

PROBE = """
import json, ray, vllm
import synthfactory_workers.text.vllm_backend
print(json.dumps({"vllm": vllm.__version__, "ray": ray.__version__}))
"""


def check_model(config: LLMConfig) -> None:
    """vLLM loads a Hugging Face id or folder: a .gguf (or the gguf builtin) is refused."""
    from synthfactory_workers.text.models import resolve

    _, gguf, _ = resolve(config.model, config.gguf_file)  # a missing local path raises
    if gguf:
        raise ConfigError(
            f"the vllm backend needs a Hugging Face model folder or id, not the GGUF "
            f"{config.model!r}",
            fix="export it once with transformers (AutoModelForCausalLM.from_pretrained(folder, "
            "gguf_file=...).save_pretrained(dir), dropping hf_quantizer and "
            "config.quantization_config, as tests/text/servers.py does) and set "
            "generator.model to that folder",
        )
    path = Path(config.model).expanduser()
    if path.exists() and not (path / "config.json").is_file():
        raise ConfigError(
            f"{config.model} is not a Hugging Face model folder (no config.json)",
            fix="point generator.model at a folder with config.json and the weights",
        )


def check_vllm(config: LLMConfig) -> dict[str, str]:
    """Preflight of a vllm backend: the model is one vLLM loads, and the interpreter named
    in ``backend.python`` exists and has vLLM, Ray (the driver's version) and synthfactory.
    Raises ConfigError with the fix; returns the versions found."""
    check_model(config)
    backend = options(config)
    if backend.python is None:
        return {}  # the workers' own interpreter: checked when the actor loads
    python = Path(backend.python)
    fix_env = (
        "build it with `bash scripts/install_vllm.sh` (.venv-vllm/bin/python) or point "
        "backend.python at an environment with vllm, ray and synthfactory"
    )
    if not python.is_absolute():
        raise ConfigError(
            f"backend.python must be an absolute path, not {backend.python!r} (actors start "
            "in their own working directory)",
            fix=f"use {Path(backend.python).absolute()}",
        )
    if not python.is_file() or not os.access(python, os.X_OK):
        raise ConfigError(f"backend.python {python} does not exist", fix=fix_env)
    key = (str(python), python.stat().st_mtime_ns)
    if key not in _PROBED:
        _PROBED[key] = probe_environment(python, backend.preflight_timeout_seconds, fix_env)
    found = _PROBED[key]
    driver_ray = importlib.metadata.version("ray")
    if found.get("ray") != driver_ray:
        raise ConfigError(
            f"backend.python {python} has ray {found.get('ray')}, the driver ray {driver_ray}: "
            "a worker of another Ray version cannot join the cluster",
            fix=f"{python} -m pip install ray=={driver_ray}",
        )
    return {"vllm_version": found.get("vllm", "")}


_PROBED: dict[tuple[str, int], dict[str, str]] = {}
"""Environments that passed the probe in this process (importing vLLM takes seconds)."""


def probe_environment(python: Path, timeout: float, fix_env: str) -> dict[str, str]:
    """Versions of vllm and ray in that interpreter's environment, or a ConfigError."""
    try:
        probe = subprocess.run(
            [str(python), "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "VLLM_NO_USAGE_STATS": "1"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"`{python} -c 'import vllm'` did not finish in {timeout:g} s",
            fix="check that environment (or raise backend.preflight_timeout_seconds)",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot run backend.python {python} ({exc})", fix=fix_env) from None
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(
            f"the environment of backend.python {python} cannot run the vllm backend: {last}",
            fix=fix_env,
        )
    try:
        found: dict[str, str] = json.loads(probe.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ConfigError(f"unexpected output from {python}: {probe.stdout[-200:]!r}") from None
    return found
