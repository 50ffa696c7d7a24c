"""What a tabular spec's source can refute before anything is fitted: unknown columns,
empty columns, conditions the training rows never hold, too few rows to fit, a label that
cannot be balanced. Each is a ConfigError that names the field and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthfactory.errors import ConfigError
from synthfactory.spec.generators.tabular import TabularConfigBase

if TYPE_CHECKING:
    import pandas as pd

BALANCE_TYPES = ("categorical", "boolean")
#: rows every tabular synthesizer needs to fit (after the holdout is split off)
MIN_FIT_ROWS = 2


def check_columns(
    config: TabularConfigBase, df: pd.DataFrame
) -> tuple[dict[str, str], dict[str, str]]:
    """Everything about the spec that the source alone can refute; returns the column types
    and the personal-data columns."""
    from synthfactory.column_detection import detect_types
    from synthfactory_workers.tabular import constraints, dp_checks
    from synthfactory_workers.tabular.metadata import detect_pii

    columns = [str(c) for c in df.columns]
    for field in ("column_types", "pii_columns", "conditions"):
        unknown = sorted(set(getattr(config, field)) - set(columns))
        if unknown:
            raise ConfigError(
                f"generator.{field} names column(s) not in {config.source}: {unknown}",
                fix=f"use the source's columns: {columns}",
            )
    types = detect_types(df, dict(config.column_types))
    if config.privacy is not None:  # refusals first: detection would read every value
        dp_checks.check(config, types, dict(config.pii_columns))
    detect = config.detect_pii and config.privacy is None  # under DP: declared columns only
    personal = detect_pii(df, dict(config.pii_columns), detect, skip=set(config.column_types))
    constraints.validate(list(config.constraints), types, set(personal))
    if personal:
        from synthfactory_workers.tabular.pii import check_locale

        check_locale(config.pii_locale)
    for name in config.conditions:
        if name in personal or types[name] == "id":
            raise ConfigError(
                f"condition on {name!r}: its values are regenerated, never sampled",
                fix="drop the condition",
            )
    if config.augment is not None:
        label = config.augment.balance
        if label not in types:
            raise ConfigError(
                f"generator.augment.balance names {label!r}, which is not in {config.source}",
                fix=f"use one of the source's columns: {columns}",
            )
        if types[label] not in BALANCE_TYPES or label in personal:
            raise ConfigError(
                f"generator.augment.balance needs a categorical column; {label!r} is "
                f"{types[label]}",
                fix=f"set generator.column_types.{label}: categorical",
            )
    return types, personal


def check_has_values(df: pd.DataFrame, source: str, field: str) -> None:
    """Every column of a source must hold at least one value: an all-null column has no
    distribution to learn (and nothing the card could plot)."""
    empty = [str(c) for c in df.columns if not df[c].notna().any()]
    if empty:
        raise ConfigError(
            f"{field} {source}: column(s) {empty} hold no values (every row is null)",
            fix="drop the column(s) from the source table, or fill them",
        )


def check_conditions(config: TabularConfigBase, train: pd.DataFrame, types: dict[str, str]) -> None:
    """Each ``generator.conditions`` value must occur in (numbers: lie within the range of)
    the rows the synthesizer is fitted on, as the fitted model will require."""
    import pandas as pd

    from synthfactory.jsonsafe import plain
    from synthfactory_workers.tabular.column_types import NUMERIC_TYPES, as_float, key

    for name, value in config.conditions.items():
        where = f"generator.conditions.{name}"
        values = train[name].dropna()
        if values.empty:
            raise ConfigError(
                f"{where}: the column holds no values in the rows the model is fitted on",
                fix="drop the condition",
            )
        kind = types[name]
        if kind in NUMERIC_TYPES:
            try:
                number = float(pd.Timestamp(value).value) if kind == "datetime" else float(value)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{where}: {value!r} is not a {kind} value",
                    fix="give a number (or a date for a datetime column)",
                ) from None
            known = as_float(values, datetime=kind == "datetime")
            low, high = float(pd.Series(known).min()), float(pd.Series(known).max())
            if not low <= number <= high:
                shown = (
                    f"[{pd.Timestamp(int(low))}, {pd.Timestamp(int(high))}]"
                    if kind == "datetime"
                    else f"[{low:g}, {high:g}]"
                )
                raise ConfigError(
                    f"{where}: {value!r} is outside the source's range {shown}",
                    fix="condition on a value the source contains",
                )
            continue
        options = list(pd.unique(values.astype(object)))
        wanted = key(plain(value))
        if not any(key(plain(v)) == wanted for v in options) and not any(
            str(v).lower() == str(value).lower() for v in options
        ):
            raise ConfigError(
                f"{where}: {value!r} never occurs in {config.source} (in the rows the model "
                "is fitted on)",
                fix=f"use one of the source's values: {[plain(v) for v in options[:20]]}",
            )


def check_fit_rows(config: TabularConfigBase, rows: int, train: int) -> None:
    """The rows left to fit on (``train`` of the source's ``rows``, after the holdout)."""
    if train >= MIN_FIT_ROWS:
        return
    held = f", {rows - train} held out by metrics.holdout" if train < rows else ""
    raise ConfigError(
        f"generator.source {config.source} has {rows} row(s){held}; "
        f"{config.kind} needs at least {MIN_FIT_ROWS} rows to fit",
        fix="use a source table with more rows" + (" or lower metrics.holdout" if held else ""),
    )


def check_balance(
    config: TabularConfigBase, plan: list[tuple[Any, int]], expected: int, rows: int | None
) -> None:
    """``augment.balance``: the label is not balanced yet, and the spec's ``rows`` (when
    set) are the ``expected`` rows the balancing ``plan`` takes."""
    assert config.augment is not None
    if not sum(n for _, n in plan):
        raise ConfigError(
            f"{config.augment.balance!r} is already balanced in the source",
            fix="drop generator.augment",
        )
    if rows and rows != expected:
        what = ", ".join(f"{v}: +{n}" for v, n in plan)
        raise ConfigError(
            f"balancing {config.augment.balance!r} takes exactly {expected} rows "
            f"({what}{', plus the source rows' if config.augment.combined else ''}); "
            f"the spec asks for {rows}",
            fix=f"set rows: {expected}, or leave rows out to have it derived",
        )
