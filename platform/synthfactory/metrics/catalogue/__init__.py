"""Every metric name, declared once per modality: what it means (the text the dataset card
shows), whether the CLI lists it, whether a gate may name it, and which jobs report it.

The evaluators' gate checks (``knows``, ``unknown_gates`` and their "did you mean"), the
card's Metrics table and the CLI's and Prefect's metric listings all read these
declarations, so a new metric is one ``Metric`` line in its modality's module (``tabular``,
``text``, ``image``) beside the code that computes it; ``tests/metrics/test_catalogue.py``
checks that every name a report holds is declared and every declared name is reported.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass
from functools import cache

MODULES = {
    "tabular": "synthfactory.metrics.catalogue.tabular",
    "text": "synthfactory.metrics.catalogue.text",
    "image": "synthfactory.metrics.catalogue.image",
}
"""modality -> the module whose ``METRICS`` declares its names."""


@dataclass(frozen=True, slots=True)
class Metric:
    """One name a report may hold: a dotted path, where ``*`` stands for one or more parts
    (a column, a table, a group)."""

    name: str
    meaning: str = ""
    """What the number means: the text of the card's Metrics table for a shown metric."""
    shown: bool = False
    """Whether the card's Metrics table shows it (the report and ``synthfactory metrics``
    hold every metric)."""
    listed: bool = True
    """False for per-column details that ``synthfactory metrics`` and the Prefect table
    leave out of their listings (metrics.json keeps them)."""
    gateable: bool = True
    """Whether a spec's gate may name it."""
    when: str = ""
    """Which jobs report it, when not every scored job of the modality does (a relational
    job, a target column, a reference): the catalogue test does not expect it everywhere."""

    def __post_init__(self) -> None:
        if self.shown and not self.meaning:
            raise ValueError(f"metric {self.name}: a metric the card shows needs its meaning")

    def matches(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.name)


def shown(name: str, meaning: str, *, when: str = "") -> Metric:
    """A metric the card shows, with its meaning."""
    return Metric(name, meaning, shown=True, when=when)


def hidden(
    name: str, meaning: str = "", *, listed: bool = True, gateable: bool = True, when: str = ""
) -> Metric:
    """A metric the report holds but the card does not show."""
    return Metric(name, meaning, listed=listed, gateable=gateable, when=when)


@cache
def metrics(modality: str) -> tuple[Metric, ...]:
    """The modality's declarations, in the card's order; () for an unknown modality."""
    module = MODULES.get(modality)
    if module is None:
        return ()
    declared: tuple[Metric, ...] = importlib.import_module(module).METRICS
    return declared


def meanings(modality: str) -> dict[str, str]:
    """The card's metrics for the modality, in order: name -> meaning."""
    return {m.name: m.meaning for m in metrics(modality) if m.shown}


def gateable(modality: str) -> tuple[str, ...]:
    """The names (and patterns) a gate on the modality's datasets may use."""
    return tuple(m.name for m in metrics(modality) if m.gateable)


def knows(names: tuple[str, ...], metric: str) -> bool:
    """Whether ``metric`` is one of ``names`` or matches one of its patterns."""
    return any(fnmatch.fnmatchcase(metric, name) for name in names)


def closest(names: tuple[str, ...], metric: str) -> str | None:
    """The plain name (no pattern) nearest to a misspelt ``metric``, if any is near."""
    plain = [n for n in names if "*" not in n]
    close = difflib.get_close_matches(metric, plain, n=1, cutoff=0.6)
    return close[0] if close else None


def listed(name: str) -> bool:
    """Whether the CLI and the Prefect table list ``name`` (per-column details are not)."""
    return not any(
        m.matches(name) for modality in MODULES for m in metrics(modality) if not m.listed
    )


def markdown(modality: str) -> str:
    """The card's metrics of ``modality`` as a markdown table (name, meaning), the way the
    README lists them: ``python -c "from synthfactory.metrics.catalogue import markdown;
    print(markdown('tabular'))"``."""
    rows = [
        f"| `{name}` | {meaning.replace('|', chr(92) + '|')} |"
        for name, meaning in meanings(modality).items()
    ]
    return "\n".join(["| metric | meaning |", "| --- | --- |", *rows])
