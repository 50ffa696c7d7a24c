"""Several models in one text pipeline, each model other than generator.model in its own
real Ray actor pool: lineage per column, the same data with one model actor or two, and a
model actor SIGKILLed in the middle of its work (Ray restarts it and resends the call; the
dataset equals an uninterrupted run's)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synthfactory.dataset import open_dataset
from synthfactory_flows.generate import run_job

from .tiny_llm import tiny_llm_folder

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_local", "prefect_server")]

SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"


def spec(output: Path, tiny: Path, judge_actors: int) -> dict[str, Any]:
    """Drafts on the job's SmolLM2 (the shard's actor), answers on a second model (the
    tiny one, its own pool) and judges on SmolLM2 again under the name ``judge`` (a third
    pool: a named model always gets its own)."""
    return {
        "name": "three-models",
        "modality": "text",
        "rows": 6,
        "shard_rows": 2,
        "seed": 11,
        "output": str(output),
        "generator": {
            "kind": "llm",
            "model": "builtin:smollm2",
            "backend": {"kind": "transformers", "journal": True},
            "models": {"judge": {"model": "builtin:smollm2"}},
            "columns": [
                {"kind": "choice", "name": "topic", "choices": ["rain", "maps", "bread"]},
                {"kind": "llm_text", "name": "question", "template": "Ask about {{ topic }}."},
                {
                    "kind": "llm_text",
                    "name": "answer",
                    "template": "Answer briefly: {{ question }}",
                    "model": str(tiny),
                },
                {
                    "kind": "llm_text",
                    "name": "verdict",
                    "template": "Is this a good answer? {{ answer }}",
                    "model": "judge",
                    "sampling": {"max_new_tokens": 24},
                },
            ],
            "sampling": {"max_new_tokens": 8, "temperature": 1.0},
            "dedup": {"exact": False, "near": False},
        },
        "resources": {
            "actors": 1,
            "num_cpus": 1,
            "batch_size": 2,
            "models": {
                str(tiny): {"actors": 1, "num_cpus": 0.25},
                "judge": {"actors": judge_actors, "num_cpus": 0.75 / judge_actors},
            },
        },
        "metrics": {"enabled": False},
    }


class Watcher:
    """Every model actor process seen while it runs (``ray::ModelWorker...`` titles); with
    ``kill`` set, SIGKILLs one that is in the middle of a call once a shard is committed."""

    def __init__(self, output: Path, own: Callable[[str], list[Any]], kill: bool = False) -> None:
        self.output, self.kill, self.own = output, kill, own
        self.seen: dict[int, str] = {}
        self.killed: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        import psutil

        while not self._stop.is_set():
            for proc in self.own("ray::ModelWorker"):
                try:
                    title = " ".join(proc.cmdline())
                except psutil.Error:
                    continue
                self.seen.setdefault(proc.pid, title)
                committed = list(self.output.glob("*/_shards/*.json"))
                if self.kill and not self.killed and committed and ".generate" in title:
                    self.killed.append(proc.pid)
                    proc.kill()
            time.sleep(0.02)


def rows_of(uri: str) -> list[dict[str, Any]]:
    rows = open_dataset(uri).to_arrow().to_pylist()
    return sorted(rows, key=lambda r: str(r["row_id"]))


def test_each_model_has_its_pool_and_a_killed_model_actor_changes_nothing(
    tmp_path: Path, own_processes: Callable[[str], list[Any]]
) -> None:
    tiny = tiny_llm_folder()
    with Watcher(tmp_path / "one", own_processes) as watch:
        first = run_job(spec(tmp_path / "one", tiny, judge_actors=1))
    rows = rows_of(first["uri"])
    assert len(rows) == 6 and len({r["row_id"] for r in rows}) == 6
    for row in rows:
        assert row["question__model"].startswith(SMOLLM2_ID)
        assert row["answer__model"] == str(tiny)
        assert row["verdict__model"].startswith(SMOLLM2_ID)
        # each column saw the one before it
        assert row["question"] in row["answer__prompt"] and row["answer"] in row["verdict__prompt"]
        assert row["verdict__completion_tokens"] > 0
    identity = open_dataset(first["uri"]).manifest.generator
    assert f"{tiny}={tiny}@" in identity["column_models"] and "judge=" in identity["column_models"]
    assert len(watch.seen) == 2, watch.seen  # the tiny model's pool and the judge's

    # two judge actors, and a model actor SIGKILLed in the middle of a call
    with Watcher(tmp_path / "two", own_processes, kill=True) as watch:
        second = run_job(spec(tmp_path / "two", tiny, judge_actors=2))
    assert watch.killed, "no model actor was killed in the middle of a call"
    assert len(watch.seen) >= 4, watch.seen  # 1 + 2 actors, and the killed one restarted
    again = rows_of(second["uri"])
    data = ("row_id", "topic", "question", "answer", "verdict", "verdict__seed")
    # same rows, same text: chunks are cut by batch_size, not by how many actors serve
    assert [{k: r[k] for k in data} for r in again] == [{k: r[k] for k in data} for r in rows]


def test_pooled_backend_chunks_streams_and_names_a_pool_that_is_gone() -> None:
    """The shard actor's view of a pool: requests in chunks of the pool's batch size,
    each answer handed on as its chunk returns, journal keys asked of the pool, and a
    pool whose actor is gone for good a transient error (the shard is retried)."""
    import ray

    from synthfactory.errors import WorkerLostError
    from synthfactory.spec import load_spec
    from synthfactory_workers.text.backend import Request
    from synthfactory_workers.text.model_pool import ModelPools, PooledBackend

    tiny = tiny_llm_folder()
    data = spec(Path("/tmp/unused-pooled"), tiny, judge_actors=1)
    data["resources"]["models"] = {str(tiny): {"actors": 1, "num_cpus": 0.5, "batch_size": 2}}
    data["generator"]["columns"] = data["generator"]["columns"][:3]
    data["generator"]["models"] = {}
    job = load_spec(data)
    pools = ModelPools(job)
    try:
        (pool,) = pools.start().values()
        backend = PooledBackend(job.generator.for_model(str(tiny)), pool)  # type: ignore[union-attr]
        assert backend.model_id == str(tiny)
        requests = [Request([{"role": "user", "content": f"hi {i}"}], seed=i) for i in range(3)]
        seen: list[int] = []
        out = backend.generate(requests, 99, on_result=lambda i, c: seen.append(i))
        assert len(out) == 3 and sorted(seen) == [0, 1, 2] and all(c.text for c in out)
        keys = backend.request_keys(requests)
        assert len(set(keys)) == 3 and keys == backend.request_keys(requests)
        ray.kill(pool.actors[0], no_restart=True)
        with pytest.raises(WorkerLostError, match="pool died"):
            backend.generate(requests, 99)
    finally:
        pools.stop()
