"""Relational (multi-table) generator configuration: several source tables linked by
primary and foreign keys, synthesised parent first with one synthesizer per table.

Structure checks that need no data (unknown tables, cycles, an ambiguous context parent,
unlinked tables) live in ``structure`` and run in the generator's preflight, beside the checks
that read the sources (columns, keys)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from synthfactory.errors import ConfigError
from synthfactory.spec.base import GENERATORS, Frozen, GeneratorConfigBase
from synthfactory.spec.generators.tabular import ColumnType, Distribution


class TableSource(Frozen):
    """One source table of a relational job."""

    source: str = Field(
        description="The table: a CSV, Parquet or JSONL file, local path or s3:// URI."
    )
    primary_key: str | None = Field(
        None,
        description="Column whose values identify a row (unique in the source); needed by "
        "every table that is a parent. Regenerated in the output, never copied.",
    )
    column_types: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Override detected column types of this table, e.g. {zip: categorical}.",
    )


class Relationship(Frozen):
    """``child.foreign_key`` holds values of ``parent``'s primary key."""

    parent: str = Field(description="The parent table (one of generator.tables).")
    child: str = Field(description="The child table (one of generator.tables).")
    foreign_key: str = Field(description="The child's column referencing the parent's primary key.")
    context: bool | None = Field(
        default=None,
        description="For a child with several parents: true on the one relationship whose "
        "parent the child is generated from (its context parent: children are drawn per "
        "parent row, conditioned on its columns). The other foreign keys are matched "
        "afterwards to a parent row whose columns fit, keeping each relationship's children-"
        "per-parent shape. Unset: a single parent is the context; of several parents on one "
        "ancestor line (clients under districts) the nearest one; otherwise set it.",
    )


@GENERATORS.register("synthfactory_workers.tabular.relational:RelationalGenerator")
class RelationalConfig(GeneratorConfigBase):
    """Multi-table synthesis (the idea of HMA, simplified, with mostlyai's context parents):
    each table is generated from one context parent; each parent row carries its number of
    children per child relationship as extra columns of its copula; each child table is
    modelled joined with its context parent's columns and sampled conditioned on its
    synthetic parent's values; the other foreign keys are matched to parent rows whose
    columns fit. ``rows`` counts rows of the root table."""

    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    path_fields: ClassVar[tuple[str, ...]] = ("tables.*.source",)
    default_shard_rows: ClassVar[int] = 10_000  # root rows, each with all its descendants

    kind: Literal["relational"] = Field(
        "relational", description="Several tables linked by keys, parents first."
    )
    synthesizer: Literal["gaussian_copula"] = Field(
        "gaussian_copula",
        description="The synthesizer fitted per table (first version: gaussian_copula).",
    )
    tables: dict[str, TableSource] = Field(
        min_length=1,
        description="Table name -> its source and primary key, e.g. {customers: {source: "
        "data/customers.parquet, primary_key: customer_id}}; each becomes data/<name>/. The "
        "first table without a parent is the root (`rows` counts its rows).",
    )
    relationships: list[Relationship] = Field(
        default_factory=list,
        description="Parent-child links, e.g. [{parent: customers, child: accounts, "
        "foreign_key: customer_id}]. A table may have several parents (one of them its "
        "context parent, see `context`). A table without a parent other than the root (a "
        "lookup table such as merchants) is generated whole, scaled to `rows`, and its rows "
        "are spread over the shards; other shards' rows may point to it.",
    )
    default_distribution: Distribution = Field(
        "empirical",
        description="Marginal for numerical columns (as gaussian_copula's option).",
    )
    enforce_min_max: bool = Field(True, description="Clip numbers to the source's range.")
    fit_seed: int = Field(0, ge=0, description="Seed for fitting (part of the model's key).")

    def primary_keys(self) -> dict[str, str | None]:
        return primary_keys_of(self.tables)

    def relationship_keys(self) -> list[dict[str, str]]:
        return relationship_keys_of(self.relationships)

    @property
    def root(self) -> str:
        """The first table, in spec order, that no relationship has as child."""
        children = {r.child for r in self.relationships}
        return next((t for t in self.tables if t not in children), next(iter(self.tables)))

    @property
    def source(self) -> str:
        """The root table's source: what the tabular metrics compare the root table with."""
        return self.tables[self.root].source

    def parents_of(self, table: str) -> list[Relationship]:
        return [r for r in self.relationships if r.child == table]

    def parent_of(self, table: str) -> Relationship | None:
        """The table's context relationship (None for a root table). Assumes
        ``structure`` passed."""
        return context_relationship(self, table)

    def others_of(self, table: str) -> list[Relationship]:
        """The table's non-context relationships (foreign keys matched after sampling)."""
        context = self.parent_of(table)
        return [r for r in self.parents_of(table) if r is not context]

    def children_of(self, table: str) -> list[Relationship]:
        """The relationships whose context parent is ``table``."""
        return [r for r in self.relationships if r.parent == table and self.parent_of(r.child) is r]

    def referrers_of(self, table: str) -> list[Relationship]:
        """The non-context relationships that point to ``table``."""
        return [
            r for r in self.relationships if r.parent == table and self.parent_of(r.child) is not r
        ]

    def component_root(self, table: str) -> str:
        """The root reached from ``table`` along context parents."""
        while (rel := self.parent_of(table)) is not None:
            table = rel.parent
        return table

    def is_whole(self, table: str) -> bool:
        """Generated whole in every shard (under a lookup root, not under the root)."""
        return self.component_root(table) != self.root

    def order(self) -> list[str]:
        """Every parent before its children (context or not), the root first; ties in
        spec order."""
        out: list[str] = []
        rest = [self.root, *(t for t in self.tables if t != self.root)]
        while rest:
            ready = next(t for t in rest if all(r.parent in out for r in self.parents_of(t)))
            out.append(ready)
            rest.remove(ready)
        return out


def primary_keys_of(tables: dict[str, TableSource]) -> dict[str, str | None]:
    """Each table's primary key (None: none), as the manifest records them."""
    return {name: table.primary_key for name, table in tables.items()}


def relationship_keys_of(relationships: list[Relationship]) -> list[dict[str, str]]:
    """The relationships as the manifest records them: parent, child, foreign_key."""
    return [
        {"parent": r.parent, "child": r.child, "foreign_key": r.foreign_key} for r in relationships
    ]


def ancestors(config: RelationalConfig, table: str) -> set[str]:
    """Every table reachable from ``table`` along parent links (acyclic links assumed)."""
    out: set[str] = set()
    todo = [r.parent for r in config.parents_of(table)]
    while todo:
        t = todo.pop()
        if t not in out:
            out.add(t)
            todo.extend(r.parent for r in config.parents_of(t))
    return out


def context_relationship(config: RelationalConfig, table: str) -> Relationship | None:
    """The marked relationship; else the only one; else the nearest parent when the
    parents lie on one ancestor line; None if there is none or the choice is ambiguous."""
    rels = config.parents_of(table)
    marked = [r for r in rels if r.context]
    if marked:
        return marked[0]
    candidates = [r for r in rels if r.context is None]
    if len(rels) == 1 and candidates:
        return rels[0]
    nearest = [
        r
        for r in candidates
        if all(o.parent in ancestors(config, r.parent) for o in rels if o is not r)
    ]
    return nearest[0] if len(nearest) == 1 else None


def structure(config: RelationalConfig) -> None:
    """The checks the spec alone can refute: named ConfigErrors."""
    _links(config)
    _cycles(config)
    _contexts(config)
    _connected(config)
    for rel in config.relationships:
        if config.tables[rel.parent].primary_key is None:
            raise ConfigError(
                f"table {rel.parent!r} is a parent (of {rel.child!r}) but has no primary_key",
                fix=f"set generator.tables.{rel.parent}.primary_key",
            )


def _links(config: RelationalConfig) -> None:
    names = list(config.tables)
    seen: dict[tuple[str, str], int] = {}
    for i, rel in enumerate(config.relationships):
        for role in ("parent", "child"):
            table = getattr(rel, role)
            if table not in config.tables:
                raise ConfigError(
                    f"generator.relationships[{i}].{role}: unknown table {table!r}",
                    fix=f"use one of generator.tables: {names}",
                )
        if rel.parent == rel.child:
            raise ConfigError(
                f"generator.relationships[{i}]: table {rel.child!r} is its own parent "
                "(a cycle); self-references are not supported",
                fix="drop the relationship",
            )
        if (rel.child, rel.foreign_key) in seen:
            raise ConfigError(
                f"generator.relationships[{i}]: {rel.child}.{rel.foreign_key} is already the "
                f"foreign key of generator.relationships[{seen[rel.child, rel.foreign_key]}]",
                fix="give each foreign key column one relationship",
            )
        seen[rel.child, rel.foreign_key] = i


def _cycles(config: RelationalConfig) -> None:
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(table: str, path: list[str]) -> None:
        state[table] = 1
        for rel in config.parents_of(table):
            if state.get(rel.parent) == 1:
                loop = [*path[path.index(rel.parent) :], rel.parent] if rel.parent in path else []
                raise ConfigError(
                    "generator.relationships form a cycle: " + " <- ".join(loop or [table]),
                    fix="relationships must not come back to a table: remove one link of the cycle",
                )
            if rel.parent not in state:
                visit(rel.parent, [*path, rel.parent])
        state[table] = 2

    for table in config.tables:
        if table not in state:
            visit(table, [table])


def _contexts(config: RelationalConfig) -> None:
    for table in config.tables:
        rels = config.parents_of(table)
        index = [config.relationships.index(r) for r in rels]
        marked = [i for i, r in zip(index, rels, strict=True) if r.context]
        if len(marked) > 1:
            raise ConfigError(
                f"table {table!r} has {len(marked)} context parents (generator."
                f"relationships{marked}.context: true)",
                fix="set context: true on one relationship per child table",
            )
        if len(rels) == 1 and rels[0].context is False:
            raise ConfigError(
                f"generator.relationships[{index[0]}].context: false, but it is the only "
                f"parent of {table!r}: a child table is generated from one context parent",
                fix="drop `context: false` (or set it to true)",
            )
        if rels and context_relationship(config, table) is None:
            parents = ", ".join(
                f"{r.parent} (relationships[{i}])" for i, r in zip(index, rels, strict=True)
            )
            raise ConfigError(
                f"table {table!r} has several parents ({parents}) and none is its context "
                "parent: they are not on one ancestor line, so the choice is ambiguous",
                fix=f"set context: true on the relationship whose parent {table!r} rows are "
                "generated from (generator.relationships[i].context); the other keys are matched",
            )


def _connected(config: RelationalConfig) -> None:
    names = list(config.tables)
    linked = {config.root}
    grew = True
    while grew:
        grew = False
        for rel in config.relationships:
            if (rel.parent in linked) != (rel.child in linked):
                linked |= {rel.parent, rel.child}
                grew = True
    alone = [t for t in names if t not in linked]
    if alone:
        raise ConfigError(
            f"the tables must form one schema with one root table ({config.root!r}); not "
            f"linked to it: {alone}",
            fix="link every table to a parent or child, or generate unrelated tables as "
            "separate jobs",
        )
    for rel in config.relationships:
        if config.is_whole(rel.child) and not config.is_whole(rel.parent):
            raise ConfigError(
                f"table {rel.child!r} is under the lookup table "
                f"{config.component_root(rel.child)!r} (generated whole) but references "
                f"{rel.parent!r} under the root {config.root!r} (generated per shard)",
                fix=f"put {config.component_root(rel.child)!r} under a parent, or list the "
                "intended root table first in generator.tables",
            )
