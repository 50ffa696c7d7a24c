"""The interface every modality's metrics implement, and the registry by modality.

An evaluation has three parts, run by the flow in this order:

1. ``summary()``: a mergeable shard summary. Ray runs its ``partial(df, shard)`` on every
   committed shard at once and ``merge`` folds the parts; exact counts (duplicates, copies,
   column shapes) come from here, over every row.
2. ``model_inputs(merged)``: what the model-based metrics need (a seeded sample and the
   reference values), or None. They run in one Ray task, ``model_task``, inside the workers
   layer, because they load torch models.
3. ``report(merged, models)``: the whole-dataset report, a nested dict.

The names a report can hold are declared once, in the modality's catalogue
(``synthfactory.metrics.catalogue``), so a spec's gates are checked against them before any
work starts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from synthfactory.metrics import catalogue
from synthfactory.registry import Registry

if TYPE_CHECKING:
    import pandas as pd

    from synthfactory.dataset.manifest import ShardEntry
    from synthfactory.spec import JobSpec

#: modality -> Evaluator class
EVALUATORS = Registry("metric evaluator", key="modality")


class ShardSummary(Protocol):
    def partial(self, df: pd.DataFrame, shard: int) -> dict[str, Any]: ...

    @staticmethod
    def merge(parts: list[dict[str, Any]]) -> dict[str, Any]: ...


class Evaluator(ABC):
    """The metrics of one modality for one job, over shards of ``sizes[index]`` rows."""

    modality: ClassVar[str]
    model_task: ClassVar[str | None] = None
    """'module:function' of the model-based metrics (run in a Ray task), if any."""
    figure_rows: ClassVar[int] = 200_000
    """Rows read to draw the card's plots (``figures``)."""

    def __init__(
        self,
        job: JobSpec,
        columns: list[str],
        sizes: dict[int, int],
        uri: str | None = None,
        entries: list[ShardEntry] | None = None,
    ) -> None:
        self.job = job
        self.config = job.metrics
        self.columns = columns
        self.sizes = sizes
        self.uri = uri
        """The dataset version being scored, when the flow gives it (relational metrics
        read the tables other than the root there)."""
        self.entries = entries or []

    def not_applicable(self) -> str | None:
        """Why no report can be made (None when one can)."""
        return None

    @abstractmethod
    def summary(self) -> ShardSummary:
        """The summary each shard task computes (built once, shipped to every task)."""

    def model_inputs(self, merged: dict[str, Any]) -> tuple[pd.DataFrame, list[Any] | None] | None:
        """(sample, reference values) for ``model_task``, or None to skip it."""
        return None

    @abstractmethod
    def report(self, merged: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
        """The report from the merged summary and the model-based results."""

    def figures(self, synthetic: pd.DataFrame) -> dict[str, bytes]:
        """PNG plots for the dataset card, by file name."""
        return {}

    @classmethod
    def job_names(cls, job: JobSpec) -> tuple[str, ...]:
        """Names that only some jobs report (a pipeline's judge and validator columns)."""
        return ()

    @classmethod
    def gateable(cls, job: JobSpec | None = None) -> tuple[str, ...]:
        """The names (``*``: one or more parts) a gate on this modality (and ``job``) may use:
        the modality's catalogue and the job's own names."""
        own = cls.job_names(job) if job is not None else ()
        return (*catalogue.gateable(cls.modality), *own)

    @classmethod
    def knows(cls, metric: str, job: JobSpec | None = None) -> bool:
        """Whether ``metric`` is a name this modality (and this job) reports."""
        return catalogue.knows(cls.gateable(job), metric)


def evaluator_class(modality: str) -> type[Evaluator]:
    cls = EVALUATORS.load(modality)
    if not (isinstance(cls, type) and issubclass(cls, Evaluator)):
        raise TypeError(f"{EVALUATORS.path(modality)} is not an Evaluator")
    return cls


def unknown_gates(modality: str, gates: dict[str, str], job: JobSpec | None = None) -> list[str]:
    """One message per gate naming a metric the modality (or ``job``) never reports, with
    the closest known name."""
    known = evaluator_class(modality).gateable(job)
    messages = []
    for metric in gates:
        if catalogue.knows(known, metric):
            continue
        close = catalogue.closest(known, metric)
        hint = f"; did you mean '{close}'?" if close else ""
        messages.append(f"gates.{metric}: {modality} datasets report no such metric{hint}")
    return messages


def reference_values(job: JobSpec, column: str) -> list[Any] | None:
    """The reference texts (or images) to compare with: ``metrics.reference``, else a text
    job's prompt source; its ``column``, else its text column. Images are sampled down to
    ``metrics.model_sample`` when there are many."""
    from synthfactory.metrics.text.sharded import text_column
    from synthfactory.sources import read_table
    from synthfactory.spec.generators.text import llm_config

    text = job.modality == "text"
    llm = llm_config(job.generator)
    prompt = llm.prompt if llm is not None else None
    uri = job.metrics.reference or (prompt.source if text and prompt is not None else None)
    if uri is None:
        return None
    table = read_table(uri, job.storage)
    names = [str(c) for c in table.column_names]
    name = column if column in names else text_column(names) if text else None
    if name is None:
        strings = [f.name for f in table.schema if str(f.type) in ("string", "large_string")]
        name = strings[0] if strings and text else None
    if name is None:
        return None
    values = table.column(name).to_pylist()
    if len(values) > job.metrics.model_sample * 10 and not text:
        import numpy as np

        rng = np.random.default_rng(job.metrics.seed)
        values = [values[i] for i in rng.choice(len(values), job.metrics.model_sample, False)]
    return values
