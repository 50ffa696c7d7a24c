"""Relational (multi-table) generator configuration: several source tables linked by
primary and foreign keys, synthesised parent first with one synthesizer per table.

Structure checks that need no data (unknown tables, a table with two parents, cycles, more
than one root) live in ``structure`` and run in the generator's preflight, beside the checks
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


@GENERATORS.register("synthfactory_workers.tabular.relational:RelationalGenerator")
class RelationalConfig(GeneratorConfigBase):
    """Multi-table synthesis (the idea of HMA, simplified): each parent row carries its
    number of children per child table as extra columns of its copula; each child table is
    modelled joined with its parent's columns and sampled conditioned on its synthetic
    parent's values. ``rows`` counts rows of the root table."""

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
        "data/customers.parquet, primary_key: customer_id}}; each becomes data/<name>/.",
    )
    relationships: list[Relationship] = Field(
        default_factory=list,
        description="Parent-child links, e.g. [{parent: customers, child: accounts, "
        "foreign_key: customer_id}]; each table has at most one parent.",
    )
    default_distribution: Distribution = Field(
        "empirical",
        description="Marginal for numerical columns (as gaussian_copula's option).",
    )
    enforce_min_max: bool = Field(True, description="Clip numbers to the source's range.")
    fit_seed: int = Field(0, ge=0, description="Seed for fitting (part of the model's key).")

    @property
    def root(self) -> str:
        """The table no relationship has as child (the first such, in spec order)."""
        children = {r.child for r in self.relationships}
        return next((t for t in self.tables if t not in children), next(iter(self.tables)))

    @property
    def source(self) -> str:
        """The root table's source: what the tabular metrics compare the root table with."""
        return self.tables[self.root].source

    def parent_of(self, table: str) -> Relationship | None:
        return next((r for r in self.relationships if r.child == table), None)

    def children_of(self, table: str) -> list[Relationship]:
        return [r for r in self.relationships if r.parent == table]

    def order(self) -> list[str]:
        """Tables parents first (depth-first from the root, children in spec order)."""
        out: list[str] = []

        def visit(table: str) -> None:
            out.append(table)
            for rel in self.children_of(table):
                visit(rel.child)

        visit(self.root)
        return out


def structure(config: RelationalConfig) -> None:
    """The checks the spec alone can refute: named ConfigErrors."""
    names = list(config.tables)
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
    parents: dict[str, list[str]] = {}
    for rel in config.relationships:
        parents.setdefault(rel.child, []).append(rel.parent)
    for child, of in parents.items():
        if len(of) > 1:
            raise ConfigError(
                f"table {child!r} has {len(of)} parents ({', '.join(of)}): a table with two "
                "parents is not supported in this version",
                fix="keep one relationship per child table (model the other key as a "
                "categorical column)",
            )
    for start in names:  # with one parent each, a cycle is a parent chain that comes back
        seen = [start]
        table = start
        while table in parents:
            table = parents[table][0]
            if table in seen:
                loop = " -> ".join([*seen[seen.index(table) :], table])
                raise ConfigError(
                    f"generator.relationships form a cycle: {loop}",
                    fix="relationships must form a tree: remove one link of the cycle",
                )
            seen.append(table)
    roots = [t for t in names if t not in parents]
    if len(roots) != 1:
        raise ConfigError(
            f"the tables must form one tree with one root table; roots: {roots}",
            fix="link every table to a parent except one (the root, whose row count is "
            "`rows`), or generate unrelated tables as separate jobs",
        )
    for rel in config.relationships:
        if config.tables[rel.parent].primary_key is None:
            raise ConfigError(
                f"table {rel.parent!r} is a parent (of {rel.child!r}) but has no primary_key",
                fix=f"set generator.tables.{rel.parent}.primary_key",
            )
