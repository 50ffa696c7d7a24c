"""Overhead of the openai backend: a whole platform job (Prefect flow, Ray actor, journal,
Parquet) vs a bare async httpx loop sending the very same request bodies at the same
concurrency to the same OpenAI-compatible server. Ratio = platform / bare completion
tokens per second (generation time only, start-up excluded as in text_overhead.py).

    .venv/bin/python bench/openai_backend.py [--base-url http://host:port/v1]
        [--prompts 32] [--tokens 16] [--concurrency 16]

Without --base-url it starts the tests' vLLM server (SmolLM2 on CPU, needs .venv-vllm).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import run_platform

ROOT = Path(__file__).resolve().parents[1]


def job_spec(base_url: str, prompts: int, tokens: int, concurrency: int) -> Any:
    from synthfactory.spec import load_spec

    return load_spec(
        {
            "name": "bench-openai",
            "modality": "text",
            "rows": prompts,
            "shard_rows": prompts,
            "seed": 1,
            "output": tempfile.mkdtemp(prefix="sf-bench-openai-"),
            "generator": {
                "kind": "llm",
                "model": "smollm2",
                "backend": {
                    "kind": "openai",
                    "base_url": base_url,
                    "max_concurrency": concurrency,
                },
                "prompt": {
                    "template": "Write a short review of a {{ p }} ({{ n }}).",
                    "variables": {
                        "p": ["mug", "lamp", "tent", "bike", "kettle", "desk"],
                        "n": {"range": [1, 10_000], "integer": True},
                    },
                },
                "sampling": {"max_new_tokens": tokens, "temperature": 0.8},
                "dedup": {"exact": False, "near": False},
                "filters": {"min_chars": 0},
            },
            "metrics": {"enabled": False},
            "top_up_rounds": 0,
            "resources": {"actors": 1, "num_cpus": 0.5},
        }
    )


def request_bodies(job: Any) -> list[dict[str, Any]]:
    """The bodies the platform will send for this job's first attempt at each row."""
    from synthfactory.storage import LocalStore
    from synthfactory_flows.plan import plan_shards
    from synthfactory_workers.contract import GeneratorContext
    from synthfactory_workers.text.backend import Request
    from synthfactory_workers.text.generator import LLMGenerator
    from synthfactory_workers.text.kinds.base import messages
    from synthfactory_workers.text.kinds.prompt import PromptKind, row_seed

    generator = LLMGenerator(job, GeneratorContext(artifacts=LocalStore(tempfile.mkdtemp())))
    generator.load()
    assert generator.backend is not None
    kind = generator.pipeline.kinds[0]
    assert isinstance(kind, PromptKind)
    bodies = []
    for shard in plan_shards(job):
        for i in range(shard.row_start, shard.row_start + shard.rows):
            text = kind.prompts.render(i, shard.seed).text
            user = messages(job.generator.system_prompt, text)
            request = Request(user, row_seed(shard.seed, i, 0, 0))
            bodies.append(generator.backend.request_body(request))
    return bodies


async def bare(base_url: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[int, float]:
    import httpx

    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=600, limits=limits) as client:

        async def one(body: dict[str, Any]) -> int:
            async with gate:
                response = await client.post("/chat/completions", json=body)
                response.raise_for_status()
                return int(response.json()["usage"]["completion_tokens"])

        started = time.perf_counter()
        tokens = await asyncio.gather(*(one(b) for b in bodies))
        return sum(tokens), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    server = None
    base_url = args.base_url
    if not base_url:
        sys.path.insert(0, str(ROOT / "tests" / "text"))
        from servers import start_vllm  # type: ignore[import-not-found]

        server = start_vllm(Path(tempfile.mkdtemp(prefix="sf-bench-vllm-")))
        base_url = server.base_url
    try:
        job = job_spec(base_url, args.prompts, args.tokens, args.concurrency)
        bodies = request_bodies(job)
        warm = [{**b, "max_tokens": 2} for b in bodies[: args.concurrency]]
        asyncio.run(bare(base_url, warm, args.concurrency))
        bare_tokens, bare_seconds = asyncio.run(bare(base_url, bodies, args.concurrency))
        result = run_platform(job)
        from synthfactory.dataset import open_dataset

        stats = open_dataset(job.output).manifest.stats
        platform_tokens = stats["completion_tokens"]
    finally:
        if server is not None:
            server.stop()
    bare_rate = bare_tokens / bare_seconds
    platform_rate = platform_tokens / result["generate_seconds"]
    print(
        f"{args.prompts} requests x {args.tokens} max tokens, concurrency {args.concurrency}, "
        f"{base_url}"
    )
    print(f"bare httpx loop: {bare_tokens} tokens in {bare_seconds:.1f}s = {bare_rate:.1f} tok/s")
    print(
        f"platform job:    {platform_tokens:.0f} tokens in {result['generate_seconds']:.1f}s = "
        f"{platform_rate:.1f} tok/s (start-up {result['startup_seconds']:.1f}s, "
        f"{stats.get('http_requests', 0):.0f} HTTP requests)"
    )
    print(f"ratio: {platform_rate / bare_rate:.3f}  (platform / bare)")


if __name__ == "__main__":
    main()
