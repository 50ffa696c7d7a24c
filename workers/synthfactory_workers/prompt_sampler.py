"""Deterministic prompt rendering: variables sampled from the row seed, inserted as data.

Prompt-injection safety: the template is compiled once from the spec in a sandboxed Jinja
environment; variable values (including source-dataset text) are passed as plain strings and
never compiled, so text such as "ignore previous instructions" in a source row stays inside
the user message; the system prompt comes only from the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.spec.prompt_template import (
    ChoiceSampler,
    ColumnSampler,
    PromptConfig,
    RangeSampler,
)

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    text: str
    variables: dict[str, Any]
    source_row: int | None


def template_variables(template: str) -> set[str]:
    from jinja2 import meta
    from jinja2.sandbox import SandboxedEnvironment

    try:
        return set(meta.find_undeclared_variables(SandboxedEnvironment().parse(template)))
    except Exception as exc:  # jinja2.TemplateSyntaxError and friends
        raise ConfigError(
            f"the prompt template does not parse: {exc}",
            fix="fix the Jinja syntax of generator.prompt.template",
        ) from None


def check(config: PromptConfig, source_columns: list[str] | None) -> None:
    """Every template variable must be defined; every column sampler must exist."""
    known = set(config.variables) | set(source_columns or [])
    unknown = sorted(template_variables(config.template) - known)
    if unknown:
        raise ConfigError(
            f"the prompt template uses undefined variable(s) {unknown}",
            fix="define them under generator.prompt.variables or add a source dataset "
            f"with those columns (known: {sorted(known)})",
        )
    for name, sampler in config.variables.items():
        if isinstance(sampler, ColumnSampler):
            if source_columns is None:
                raise ConfigError(
                    f"variable {name!r} reads column {sampler.column!r} but "
                    "there is no prompt.source",
                    fix="set generator.prompt.source",
                )
            if sampler.column not in source_columns:
                raise ConfigError(
                    f"variable {name!r}: column {sampler.column!r} is not in the source",
                    fix=f"use one of {source_columns}",
                )


class PromptSampler:
    def __init__(
        self, config: PromptConfig, source: pa.Table | list[dict[str, Any]] | None = None
    ) -> None:
        """``source``: the table (or its rows) ``{column: ...}`` variables read."""
        from jinja2 import StrictUndefined
        from jinja2.sandbox import SandboxedEnvironment

        self.config = config
        self.template = SandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False
        ).from_string(config.template)
        self.source = source if source is None or isinstance(source, list) else source.to_pylist()

    def render(self, row_index: int, seed: int) -> RenderedPrompt:
        rng = np.random.default_rng([seed, row_index])
        row: dict[str, Any] = {}
        source_row = None
        if self.source:
            if self.config.source_order == "sequential":
                source_row = row_index % len(self.source)
            else:
                source_row = int(rng.integers(len(self.source)))
            row = self.source[source_row]
        values: dict[str, Any] = {}
        for name, sampler in self.config.variables.items():
            values[name] = _draw(sampler, rng, row)
        context = {k: ("" if v is None else str(v)) for k, v in {**row, **values}.items()}
        return RenderedPrompt(self.template.render(**context), values, source_row)


def _draw(sampler: Any, rng: np.random.Generator, row: dict[str, Any]) -> Any:
    if isinstance(sampler, list):
        return sampler[int(rng.integers(len(sampler)))]
    if isinstance(sampler, ChoiceSampler):
        if isinstance(sampler.choices, dict):
            keys = list(sampler.choices)
            weights = np.asarray(list(sampler.choices.values()), dtype=float)
            return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]
        return sampler.choices[int(rng.integers(len(sampler.choices)))]
    if isinstance(sampler, RangeSampler):
        lo, hi = sampler.range
        return (
            int(rng.integers(int(lo), int(hi) + 1))
            if sampler.integer
            else float(rng.uniform(lo, hi))
        )
    if isinstance(sampler, ColumnSampler):
        return row.get(sampler.column)
    raise ConfigError(f"unknown sampler {sampler!r}")
