"""Tabular generator configurations."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from synthfactory.spec.base import GeneratorConfigBase

ColumnType = Literal["numerical", "categorical", "boolean", "datetime", "id", "text"]
Distribution = Literal["empirical", "auto", "norm", "beta", "truncnorm", "uniform", "gamma"]


class GaussianCopulaConfig(GeneratorConfigBase):
    """Gaussian copula over per-column marginals (Patki et al. 2016, the SDV method)."""

    implementation: ClassVar[str] = "synthfactory_workers.tabular.generator:CopulaGenerator"
    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    path_fields: ClassVar[tuple[str, ...]] = ("source",)

    kind: Literal["gaussian_copula"] = "gaussian_copula"
    source: str = Field(
        description="Table to fit on: a CSV or Parquet file, local path or s3:// URI."
    )
    column_types: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Override detected column types, e.g. {zip: categorical, id: id}.",
    )
    default_distribution: Distribution = Field(
        "empirical",
        description="Marginal for numerical columns: 'empirical' (interpolated quantiles, "
        "reproduces any shape), 'auto' (best parametric family by KS statistic) or a "
        "named family.",
    )
    enforce_min_max: bool = Field(True, description="Clip numbers to the source's range.")
