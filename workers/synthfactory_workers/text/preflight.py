"""The checks of a columns pipeline that need no model (``check_pipeline``): names, what each
column reads (its declared templates and columns) and in which order, ``keep``, and each
kind's own checks (``ColumnKind.check``). Each failure is a ConfigError naming the column
and the fix."""

from __future__ import annotations

from typing import Any

from synthfactory.errors import ConfigError
from synthfactory.spec.columns import as_expression
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_workers.text.kinds.base import jinja_env, kind_of

BOOKKEEPING = (
    "prompt_index",
    "row_id",
    "source_row",
    "prompt_tokens",
    "completion_tokens",
    "model_id",
    "model_revision",
    "reason",
    "rejected_column",
)


def condition_source(text: str) -> str:
    """A keep condition as an expression: ``{{ x >= 3 }}`` or bare ``x >= 3``."""
    inner = as_expression(text)
    return inner if inner is not None else text


def keep_conditions(config: LLMConfig) -> list[str]:
    keep = config.keep
    items = [keep] if isinstance(keep, str) else list(keep or [])
    return [condition_source(k) for k in items]


def _references(text: str, expression: bool, where: str) -> set[str]:
    from jinja2 import TemplateSyntaxError, meta

    try:
        ast = jinja_env().parse("{{ " + text + " }}" if expression else text)
    except TemplateSyntaxError as exc:
        raise ConfigError(
            f"{where} does not parse as Jinja: {exc.message} (line {exc.lineno})",
            fix=f"fix the Jinja syntax of {where}",
        ) from None
    return set(meta.find_undeclared_variables(ast))


def dependencies(config: LLMConfig) -> dict[str, set[str]]:
    """Column name -> the names its templates, expressions and options read."""
    deps: dict[str, set[str]] = {}
    for column in config.pipeline:
        where = f"generator.columns[{column.name}]"
        names: set[str] = set(column.reads())
        for key, text, expression in column.templates():
            names |= _references(text, expression, f"{where}.{key}")
        deps[column.name] = names
    return deps


def context_names(config: LLMConfig) -> dict[str, str]:
    """Variable name templates may use -> the column that defines it."""
    return {name: c.name for c in config.pipeline for name in c.defines()}


def _cycle(deps: dict[str, set[str]], defined: dict[str, str]) -> list[str] | None:
    graph = {n: {defined[d] for d in ds if d in defined} for n, ds in deps.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def check_pipeline(config: LLMConfig, source_columns: list[str] | None) -> None:
    """Every check of a columns pipeline that needs no model: a ConfigError naming the
    column and the fix."""
    _check_names(config.pipeline)
    _check_order(config)
    for column in config.pipeline:
        kind_of(column).check(f"generator.columns[{column.name}]", source_columns)
    _check_text(config)


def _check_names(columns: list[Any]) -> None:
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise ConfigError(
                f"generator.columns: two columns are named {column.name!r}",
                fix="give every column its own name",
            )
        seen.add(column.name)
    fields = {f for c in columns for f in c.fields()}
    for reserved in BOOKKEEPING:
        if reserved in fields:
            raise ConfigError(
                f"generator.columns: {reserved!r} is a column the platform writes",
                fix=f"rename the column (reserved: {list(BOOKKEEPING)})",
            )
    for column in columns:
        if "__" in column.name:
            raise ConfigError(
                f"generator.columns[{column.name}]: names with '__' are reserved for lineage",
                fix="use a single underscore",
            )


def _check_order(config: LLMConfig) -> None:
    """Every name a column or ``keep`` reads is a column listed before it."""
    defined = context_names(config)
    deps = dependencies(config)
    cycle = _cycle(deps, defined)
    if cycle:
        raise ConfigError(
            "generator.columns: the columns " + " -> ".join(cycle) + " form a cycle",
            fix="a column may only use columns listed before it; break the cycle",
        )
    position = {c.name: i for i, c in enumerate(config.pipeline)}
    for column in config.pipeline:
        for name in sorted(deps[column.name]):
            owner = defined.get(name)
            if owner is None:
                raise ConfigError(
                    f"generator.columns[{column.name}] uses {name!r}, which is no column",
                    fix=f"define a column {name!r} before it or fix the name "
                    f"(columns: {sorted(defined)})",
                )
            if position[owner] >= position[column.name]:
                raise ConfigError(
                    f"generator.columns[{column.name}] uses {name!r}, which comes after it "
                    f"(column {position[owner]} vs {position[column.name]})",
                    fix=f"move column {owner!r} before {column.name!r}",
                )
    for n, condition in enumerate(keep_conditions(config)):
        for name in sorted(_references(condition, True, f"generator.keep[{n}]")):
            if name not in defined:
                raise ConfigError(
                    f"generator.keep[{n}] uses {name!r}, which is no column",
                    fix=f"use column names (columns: {sorted(defined)})",
                )


def _check_text(config: LLMConfig) -> None:
    """The text column filters apply to exists; some column asks a model."""
    columns = config.pipeline
    if config.text_column and config.text_column not in {c.name for c in columns}:
        raise ConfigError(
            f"generator.text_column {config.text_column!r} is no column",
            fix=f"use one of {[c.name for c in columns]}",
        )
    if config.main_text_column is None and (
        config.filters.require_regex or config.filters.blocklist
    ):
        raise ConfigError(
            "generator.filters need a text column and the pipeline has no llm_text column",
            fix="set generator.text_column",
        )
    if not any(c.llm for c in columns):
        raise ConfigError(
            "generator.columns has no LLM column (llm_text, llm_structured or llm_judge)",
            fix="add one, or use a tabular generator for sampled columns only",
        )
