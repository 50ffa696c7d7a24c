"""What a sequential spec's source can refute (``check_source``), each a ConfigError naming
the field and the fix, and which columns are an entity's context (``context_of``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from synthfactory.errors import ConfigError
from synthfactory.sequences import constant_columns, index_kind, index_numbers, varying_entity
from synthfactory.spec.generators.sequential import LENGTH_COLUMN, SequentialConfig

if TYPE_CHECKING:
    import pandas as pd


def column_names(df: pd.DataFrame) -> list[str]:
    return [str(c) for c in df.columns]


def context_of(config: SequentialConfig, df: pd.DataFrame) -> list[str]:
    """The context columns: the spec's, else those constant within every entity."""
    if config.context_columns is not None:
        return list(config.context_columns)
    others = [c for c in column_names(df) if c not in (config.sequence_key, config.sequence_index)]
    return constant_columns(df, config.sequence_key, others)


def check_source(config: SequentialConfig, df: pd.DataFrame) -> None:
    """What the source can refute, each a ConfigError naming the field and the fix."""
    columns = column_names(df)
    reserved = [c for c in columns if c.startswith("__")]
    if reserved:
        raise ConfigError(
            f"{config.source} has column(s) starting with '__' (reserved): {reserved}",
            fix="rename them",
        )
    _check_key(config, df)
    if config.sequence_index is not None:
        _check_index(config, df)
    _check_named_columns(config, df)
    context = context_of(config, df)
    if LENGTH_COLUMN in context:
        raise ConfigError(
            f"context column {LENGTH_COLUMN!r} would clash with the entity table's column "
            "of sequence lengths",
            fix=f"rename {LENGTH_COLUMN!r} in {config.source}",
        )
    _check_lengths(config, df)
    steps = [c for c in columns if c not in (config.sequence_key, config.sequence_index, *context)]
    _check_steps(config, df, steps)


def _check_key(config: SequentialConfig, df: pd.DataFrame) -> None:
    key, columns = config.sequence_key, column_names(df)
    if key not in columns:
        raise ConfigError(
            f"generator.sequence_key {key!r} is not a column of {config.source}",
            fix=f"name the column that identifies the entity, one of {columns}",
        )
    if df[key].isna().any():
        raise ConfigError(
            f"generator.sequence_key {key!r} is null in {int(df[key].isna().sum())} row(s) "
            f"of {config.source}: a step must belong to an entity",
            fix="drop those rows or fill in their entity",
        )


def _check_index(config: SequentialConfig, df: pd.DataFrame) -> None:
    index, columns = config.sequence_index, column_names(df)
    if index not in columns:
        raise ConfigError(
            f"generator.sequence_index {index!r} is not a column of {config.source}",
            fix=f"name the column that orders the steps, one of {columns}, or leave "
            "sequence_index unset to keep the source's row order",
        )
    if index_kind(df[index]) is None:
        raise ConfigError(
            f"generator.sequence_index {index!r} holds {df[index].dtype} values, not "
            "numbers or datetimes",
            fix="use a numeric or datetime column (store dates as Parquet timestamps "
            "or ISO dates), or leave sequence_index unset to keep the source's row order",
        )
    if np.isnan(index_numbers(df[index])).any():
        raise ConfigError(
            f"generator.sequence_index {index!r} is null or unreadable in some rows of "
            f"{config.source}",
            fix="fill in every step's index, or drop those rows",
        )


def _check_named_columns(config: SequentialConfig, df: pd.DataFrame) -> None:
    """``column_types`` and ``context_columns`` name the source's columns; a context column
    is constant within every entity."""
    columns = column_names(df)
    named = config.context_columns or []
    unknown = {
        "column_types": sorted(set(config.column_types) - set(columns)),
        "context_columns": [c for c in named if c not in columns],
    }
    for field, names in unknown.items():
        if names:
            raise ConfigError(
                f"generator.{field} names column(s) not in {config.source}: {names}",
                fix=f"use the table's columns: {columns}",
            )
    key = config.sequence_key
    for column in named:
        entity = varying_entity(df, key, column)
        if entity is not None:
            values = df.loc[df[key] == entity, column].nunique(dropna=False)
            raise ConfigError(
                f"generator.context_columns: {column!r} is not constant within entity "
                f"{entity!r} (it takes {values} values there); a context column holds one "
                "value per entity",
                fix=f"remove {column!r} from context_columns (it is then modelled step by "
                "step), or leave context_columns unset to use the columns constant within "
                "every entity",
            )


def _check_lengths(config: SequentialConfig, df: pd.DataFrame) -> None:
    key = config.sequence_key
    sizes = df.groupby(key, sort=False).size()
    if len(sizes) < 2:
        raise ConfigError(
            f"{config.source} holds {len(sizes)} entity (by {key!r}); at least 2 are needed to fit",
            fix="check generator.sequence_key names the entity column",
        )
    if int(sizes.max()) > config.max_length:
        raise ConfigError(
            f"entity {sizes.idxmax()!r} has {int(sizes.max())} steps, more than "
            f"generator.max_length ({config.max_length})",
            fix="raise generator.max_length, or split long sequences into several entities",
        )


def _check_steps(config: SequentialConfig, df: pd.DataFrame, steps: list[str]) -> None:
    """Step columns the model would copy value by value: ids, free text, personal data."""
    from synthfactory.column_detection import detect_types
    from synthfactory_workers.tabular.metadata import detect_pii

    types = detect_types(df[steps], dict(config.column_types))
    refused = {c: t for c, t in types.items() if t in ("id", "text")}
    if refused:
        raise ConfigError(
            f"step column(s) {refused} of {config.source} look like identifiers or free "
            "text, which the sequence model would copy value by value",
            fix="drop them, or set generator.column_types (e.g. categorical) if they are not",
        )
    personal = detect_pii(
        df.drop(columns=[config.sequence_key]), {}, True, set(config.column_types)
    )
    if personal:
        raise ConfigError(
            f"{config.source} holds personal data {personal}: sequential synthesis does not "
            "fake personal data yet, and would copy its values",
            fix="drop these columns from the source, or set their type in "
            "generator.column_types if they are not personal",
        )
