"""The design of relational synthesis: which rows each table's copula is fitted on (its
own columns, its context parent's columns, its children counts per relationship, the
columns of the parents its other keys reference) and what sampling needs to know about
each table. See ``relational`` for the method."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synthfactory.jsonsafe import plain
from synthfactory.spec.generators.relational import RelationalConfig, Relationship

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PARENT_PREFIX = "__parent__"
REF_PREFIX = "__ref__"
SAME_PREFIX = "__same__"
COUNT_PREFIX = "__n_"
#: parent categorical columns with at most this many values enter a child as indicators
MAX_INDICATORS = 16


def count_column(rel: Relationship, context: bool = True) -> str:
    """The parent's column counting its children through ``rel``."""
    if context:
        return f"{COUNT_PREFIX}{rel.child}"
    return f"{COUNT_PREFIX}{rel.child}__{rel.foreign_key}"


def link_id(rel: Relationship) -> str:
    return f"{rel.child}.{rel.foreign_key}"


def _known(parent: pd.DataFrame, key: str, values: pd.Series) -> np.ndarray:
    """Which ``values`` are one of the parent's ``key`` values."""
    import numpy as np

    ok = values.isin(set(parent[key].tolist())) & values.notna()
    return np.asarray(ok.to_numpy(), dtype=bool)


def keep_rows(
    config: RelationalConfig, frames: dict[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """The rows fitted: parents first, a row whose context parent is missing is left out
    (``orphans[table]``); a non-context key that points nowhere is counted
    (``orphans[<child>.<key>]``) and keeps its row."""
    kept: dict[str, pd.DataFrame] = {}
    orphans: dict[str, int] = {}
    for name in config.order():
        df = frames[name]
        rel = config.parent_of(name)
        if rel is not None:
            parent_key = config.tables[rel.parent].primary_key
            assert parent_key is not None
            ok = _known(kept[rel.parent], parent_key, df[rel.foreign_key])
            orphans[name] = int((~ok).sum())
            df = df[ok].reset_index(drop=True)
        kept[name] = df
    for name in config.order():
        for rel in config.others_of(name):
            parent_key = config.tables[rel.parent].primary_key
            assert parent_key is not None
            ok = _known(kept[rel.parent], parent_key, kept[name][rel.foreign_key])
            orphans[link_id(rel)] = int((~ok).sum())
    return kept, orphans


def joined_parent(
    config: RelationalConfig,
    rel: Relationship,
    kept: dict[str, pd.DataFrame],
    info: dict[str, dict[str, Any]],
    prefix: str,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, str]]:
    """The parent's columns on each child row (missing where the key points nowhere), as
    the child's copula sees them; what sampling needs to rebuild them; their types."""
    parent = kept[rel.parent]
    parent_key = config.tables[rel.parent].primary_key
    columns = list(info[rel.parent]["attributes"])
    ptypes = info[rel.parent]["types"]
    encodings: dict[str, list[Any]] = {}
    for c in columns:
        distinct = parent[c].dropna().unique().tolist()
        if ptypes[c] in ("categorical", "boolean") and 2 <= len(distinct) <= MAX_INDICATORS:
            encodings[c] = sorted((plain(v) for v in distinct), key=str)
    joined = parent.set_index(parent_key)[columns]
    joined = joined.reindex(kept[rel.child][rel.foreign_key].to_numpy()).reset_index(drop=True)
    given = parent_frame(joined, columns, encodings, prefix)
    types = {}
    for c in given.columns:
        original = str(c).removeprefix(prefix).split("==")[0]
        types[str(c)] = "boolean" if "==" in str(c) else ptypes[original]
    return given, {"columns": columns, "encodings": encodings, "prefix": prefix}, types


def add_counts(
    config: RelationalConfig,
    name: str,
    kept: dict[str, pd.DataFrame],
    model: pd.DataFrame,
    model_types: dict[str, str],
) -> dict[str, str]:
    """One children-count column per relationship the table is the parent of (context or
    not), added to ``model``; returns link id -> column."""
    key = config.tables[name].primary_key
    counts: dict[str, str] = {}
    for link in [r for r in config.relationships if r.parent == name]:
        assert key is not None
        column = count_column(link, config.parent_of(link.child) is link)
        per = kept[link.child][link.foreign_key].value_counts()
        model[column] = kept[name][key].map(per).fillna(0).astype("int64").to_numpy()
        model_types[column] = "numerical"
        counts[link_id(link)] = column
    return counts


def table_design(
    config: RelationalConfig,
    name: str,
    kept: dict[str, pd.DataFrame],
    info: dict[str, dict[str, Any]],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One table's fitted frame (context parent's columns, own columns, children counts,
    referenced parents' columns) and what sampling needs to know about it."""
    import pandas as pd

    from synthfactory.column_detection import detect_types

    table = config.tables[name]
    df = kept[name]
    keys = {table.primary_key} | {r.foreign_key for r in config.parents_of(name)}
    own = [str(c) for c in df.columns if str(c) not in keys]
    types = detect_types(df[own], dict(table.column_types))
    attributes = [c for c in own if types[c] != "id"]
    model = df[attributes].copy().reset_index(drop=True)
    model_types = {c: types[c] for c in attributes}
    counts = add_counts(config, name, kept, model, model_types)
    parts = [model]
    context: dict[str, Any] = {"columns": [], "encodings": {}}
    rel = config.parent_of(name)
    if rel is not None:
        given, context, given_types = joined_parent(config, rel, kept, info, PARENT_PREFIX)
        parts.insert(0, given)
        model_types.update(given_types)
    refs: dict[str, dict[str, Any]] = {}
    for other in config.others_of(name):
        prefix = f"{REF_PREFIX}{other.foreign_key}__"
        wanted, refs[link_id(other)], wanted_types = joined_parent(
            config, other, kept, info, prefix
        )
        parts.append(wanted)
        model_types.update(wanted_types)
        chain = lineage(config, other)
        if chain:
            column = f"{SAME_PREFIX}{other.foreign_key}"
            via = ancestor_keys(config, chain, df[chain[0].foreign_key], kept)
            same = df[other.foreign_key].to_numpy() == via.to_numpy()
            parts.append(pd.DataFrame({column: same}))
            model_types[column] = "boolean"
            refs[link_id(other)]["same"] = column
    return pd.concat(parts, axis=1), {
        "attributes": attributes,
        "types": types,
        "counts": counts,
        "max_counts": {link: int(model[col].max()) for link, col in counts.items()},
        "parent_columns": context["columns"],
        "encodings": context["encodings"],
        "refs": refs,
        "model_types": model_types,
        "ids": _id_starts(df, table.primary_key, [c for c in own if types[c] == "id"]),
        "source_rows": len(df),
    }


def design(
    config: RelationalConfig, frames: dict[str, pd.DataFrame]
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, Any]], dict[str, int]]:
    """Per table: the frame its copula is fitted on, what sampling needs to know about
    it, and the orphan rows left out (see ``keep_rows``)."""
    kept, orphans = keep_rows(config, frames)
    fitted: dict[str, pd.DataFrame] = {}
    info: dict[str, dict[str, Any]] = {}
    for name in config.order():
        fitted[name], info[name] = table_design(config, name, kept, info)
    return fitted, info, orphans


def parent_frame(
    rows: pd.DataFrame,
    columns: list[str],
    encodings: dict[str, list[Any]],
    prefix: str = PARENT_PREFIX,
) -> pd.DataFrame:
    """The parent's columns as the child's copula sees them: numbers as they are, a
    categorical column with few values as one indicator per value (``__parent__c==i``).

    A copula codes a category by its frequency interval, which orders categories
    arbitrarily: a child attribute that is high for the middle category (Gentoo body mass,
    between Adelie and Chinstrap in frequency) barely correlates with that code. An
    indicator per category gives each its own correlation."""
    import pandas as pd

    from synthfactory_workers.tabular.column_types import key

    out: dict[str, Any] = {}
    for c in columns:
        if c in encodings:
            lookup = {v: key(plain(v)) for v in rows[c].dropna().unique()}
            codes = rows[c].map(lookup)  # a key per distinct value, not per row
            for i, value in enumerate(encodings[c]):
                out[f"{prefix}{c}=={i}"] = (codes == key(value)).to_numpy()
        else:
            out[prefix + c] = rows[c].to_numpy()
    return pd.DataFrame(out, index=range(len(rows)))


def _id_starts(df: pd.DataFrame, primary: str | None, others: list[str]) -> dict[str, int | None]:
    """Per generated key column: the first integer (past the source's largest) or None for
    text keys."""
    import pandas as pd

    out: dict[str, int | None] = {}
    for column in [c for c in (primary, *others) if c]:
        series = df[column]
        numeric = pd.api.types.is_integer_dtype(series.dtype) and series.notna().any()
        out[column] = int(series.max()) + 1 if numeric else None
    return out


def lineage(config: RelationalConfig, rel: Relationship) -> list[Relationship]:
    """The context links from ``rel.child`` up to ``rel.parent`` when the referenced
    parent is a context ancestor of the child (accounts -> clients -> districts for an
    account's branch district), else []."""
    chain: list[Relationship] = []
    table = rel.child
    while (up := config.parent_of(table)) is not None:
        chain.append(up)
        if up.parent == rel.parent:
            return chain
        table = up.parent
    return []


def ancestor_keys(
    config: RelationalConfig,
    chain: list[Relationship],
    start: pd.Series,
    frames: dict[str, pd.DataFrame],
) -> pd.Series:
    """The key of the ancestor at the end of ``chain`` for each context foreign key in
    ``start`` (the child's keys of ``chain[0].parent``), following context keys upward.

    A non-context key often repeats an ancestor's key (the branch is the owner's own
    district; the disposition's client is the account's owner): the child's copula models
    ``__same__<key>`` (the two agree), and a child that draws it takes that ancestor."""
    values = start.reset_index(drop=True)
    for link in chain[1:]:
        key = config.tables[link.child].primary_key
        values = values.map(frames[link.child].set_index(key)[link.foreign_key])
    return values
