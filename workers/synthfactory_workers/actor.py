"""The Ray actor: builds a generator once, then turns shard tasks into committed shards."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from synthfactory.dataset.shards import SCHEMA_KEY, schema_summary, write_shard
from synthfactory.spec import JobSpec, as_job
from synthfactory.storage import open_store
from synthfactory_workers import credentials, journal, stopping
from synthfactory_workers.contract import GeneratorContext, ShardOutput, ShardTask, generator_class
from synthfactory_workers.devices import detect_device
from synthfactory_workers.telemetry import METER
from synthfactory_workers.threads import limit_torch_threads


def node_id() -> str:
    """The Ray node this actor runs on ('' outside Ray)."""
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id()) if ray.is_initialized() else ""
    except Exception:  # outside a Ray worker there is no runtime context
        return ""


class ShardWorker:
    """Plain class (wrapped with ``ray.remote`` by the pool) so it is testable without Ray."""

    def __init__(
        self,
        spec: JobSpec | dict[str, Any],
        prepared: dict[str, Any],
        version_uri: str,
        artifacts_uri: str,
        telemetry: Any = None,
        companions: dict[str, Any] | None = None,
    ) -> None:
        credentials.receive()  # before anything opens a store or a backend
        self.spec = as_job(spec)
        self.version_store = open_store(version_uri, self.spec.storage)
        self.context = GeneratorContext(
            artifacts=open_store(artifacts_uri, self.spec.storage),
            prepared=prepared,
            device=detect_device(),
            journal=self.version_store.child(journal.PREFIX),
            companions=dict(companions or {}),
        )
        self.generator = generator_class(self.spec)(self.spec, self.context)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{node_id()[:12]}"
        if telemetry is not None:
            METER.attach(telemetry, self.name)
        self.load_seconds = 0.0

    def setup(self) -> dict[str, Any]:
        """Load the model. Separate from __init__ so load errors surface as ordinary errors."""
        import pyarrow as pa

        from synthfactory.dataset.parquet import encode

        started = time.perf_counter()
        self.generator.load()
        limit_torch_threads()
        encode(pa.table({"warm": [1]}))  # import the writer now, not during the first shard
        self.load_seconds = time.perf_counter() - started
        return {
            "worker": self.name,
            "device": self.context.device,
            "load_seconds": self.load_seconds,
            "identity": self.generator.identity(),
        }

    def run_shard(self, task: ShardTask) -> dict[str, Any]:
        import pyarrow as pa

        started = time.perf_counter()
        try:
            out = self.generator.generate(task)
        except Exception:
            if stopping.stopping():  # the unsent requests failed on purpose
                raise stopping.ShardStopped(f"shard {task.index} stopped") from None
            raise
        if stopping.stopping():  # whole, but asked to stop: the re-run reuses its journal
            raise stopping.ShardStopped(f"shard {task.index} stopped")
        if isinstance(out, pa.Table):
            out = ShardOutput(out)
        seconds = time.perf_counter() - started
        entry = write_shard(
            self.version_store,
            index=task.index,
            row_start=task.row_start,
            seed=task.seed,
            max_rows=task.rows,
            table=out.table,
            rejected=out.rejected,
            stats=out.stats,
            seconds=seconds,
            worker=self.name,
            tables=out.tables or None,
        )
        self._clear_journal(task.index)
        # computed while the shard is in memory, so the driver need not read it back
        return {**entry.model_dump(), SCHEMA_KEY: schema_summary(out.table)}

    def _clear_journal(self, index: int) -> None:
        """A committed shard is never generated again: its journal has served."""
        store = self.context.journal
        if store is None:
            return
        try:
            journal.Journal(store.child(journal.shard_prefix(index))).clear()
        except Exception:  # advisory: a leftover journal costs storage, not correctness
            logging.getLogger(__name__).warning("could not delete the journal of shard %d", index)

    def drain(self) -> int:
        """A graceful stop (called in the ``control`` concurrency group, beside a running
        shard): send nothing new; the running shard journals what arrives and stops."""
        stopping.STOP.set()
        return os.getpid()

    def pid(self) -> int:
        return os.getpid()
