"""Tabular generator configurations: the shared source/metadata/constraint options and one
config per synthesizer (Gaussian copula, CTGAN, TVAE, TabularARGN)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from synthfactory.spec.base import GENERATORS, Frozen, GeneratorConfigBase

ColumnType = Literal["numerical", "categorical", "boolean", "datetime", "id", "text"]
Distribution = Literal["empirical", "auto", "norm", "beta", "truncnorm", "uniform", "gamma"]
PiiKind = Literal[
    "name", "first_name", "last_name", "email", "phone", "address", "ssn", "ip_address"
]
Scalar = str | int | float | bool


class RangeConstraint(Frozen):
    """Every row has ``min <= column <= max`` (either bound may be left out)."""

    kind: Literal["range"] = Field("range", description="Keeps a numeric column inside [min, max].")
    column: str = Field(description="The numeric column it bounds.")
    min: float | str | None = Field(None, description="Lower bound (a number or a date).")
    max: float | str | None = Field(None, description="Upper bound (a number or a date).")
    strict: bool = Field(False, description="Exclude the bounds themselves.")


class InequalityConstraint(Frozen):
    """Every row has ``low < high`` (``<=`` when not strict), e.g. start < end."""

    kind: Literal["inequality"] = Field(
        "inequality", description="low < high (or <=) on every row."
    )
    low: str = Field(description="Column that must be the smaller.")
    high: str = Field(description="Column that must be the larger.")
    strict: bool = Field(True, description="true: low < high; false: low <= high.")


class FixedCombinationsConstraint(Frozen):
    """Only combinations of these columns' values that occur in the source appear."""

    kind: Literal["fixed_combinations"] = Field(
        "fixed_combinations", description="Only combinations of these columns seen in the source."
    )
    columns: list[str] = Field(
        min_length=2,
        description="Two or more columns whose joint values must appear in the source.",
    )


class UniqueConstraint(Frozen):
    """No two rows of a shard share these columns' values (id columns are unique anyway:
    they are regenerated from global row numbers)."""

    kind: Literal["unique"] = Field(
        "unique", description="No two rows of the dataset share these values."
    )
    columns: list[str] = Field(
        min_length=1,
        description="Columns whose combined values are unique across the whole dataset.",
    )


class RoundingConstraint(Frozen):
    """Round a numerical column to ``digits`` decimal places (a transform, never a rejection)."""

    kind: Literal["rounding"] = Field(
        "rounding", description="Round a numeric column (a transform, not a filter)."
    )
    column: str = Field(description="The numeric column to round.")
    digits: int = Field(ge=0, le=12, description="Decimal places kept.")


Constraint = Annotated[
    RangeConstraint
    | InequalityConstraint
    | FixedCombinationsConstraint
    | UniqueConstraint
    | RoundingConstraint,
    Field(discriminator="kind"),
]


class AugmentConfig(Frozen):
    """Class balancing: generate exactly the rows that bring every class of ``balance`` up to
    the largest class's count in the source."""

    balance: str = Field(description="The label column whose classes are balanced.")
    combined: bool = Field(
        False,
        description="Write source + synthetic rows as one dataset with an `is_synthetic` "
        "column (the job's rows are then source rows + rows needed).",
    )


class PrivacyConfig(Frozen):
    """Differential privacy for the fit (gaussian_copula only): every statistic the model
    keeps is released by a noise mechanism, and the mechanisms' (epsilon, delta) add up to
    this budget (basic composition). Neighbouring tables differ in one row's values; the
    row count and the column schema (names, types) are treated as public."""

    epsilon: float = Field(
        gt=0, le=1000, description="Total privacy budget epsilon spent on the fit."
    )
    delta: float = Field(
        1e-6,
        ge=0,
        lt=0.01,
        description="Total delta: the Gaussian mechanism of the correlation and the "
        "thresholds of categories not listed in `categories` spend it (0: Laplace only).",
    )
    bounds: dict[str, tuple[float | str, float | str]] = Field(
        default_factory=dict,
        description="Public [min, max] per numerical/datetime column, e.g. {age: [0, 120]}; "
        "a range constraint with both bounds is used when a column has none here. Never "
        "taken from the data; values outside are clipped to them.",
    )
    categories: dict[str, list[Scalar]] = Field(
        default_factory=dict,
        description="Public list of values per categorical column (nulls are always "
        "allowed); columns not listed keep only the values whose noisy count clears a "
        "threshold, so rare values are never released.",
    )
    bins: int = Field(
        32, ge=2, le=4096, description="Histogram bins of a numerical column's noisy marginal."
    )
    clip: float = Field(
        3.0,
        gt=0,
        le=10,
        description="Normal scores are clipped to [-clip, clip] before their covariance "
        "is released (bounds its sensitivity).",
    )
    correlation_share: float = Field(
        0.3,
        gt=0,
        lt=1,
        description="Share of epsilon for the correlation of normal scores; the rest is "
        "split equally over the columns' marginals.",
    )
    missing_share: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Share of a numerical column's epsilon for its noisy missing-value rate.",
    )
    noise: Literal["secret", "fit_seed"] = Field(
        "secret",
        description="'secret': noise drawn from the OS's secure random source (use this in "
        "production); 'fit_seed': reproducible noise from fit_seed, for tests and "
        "benchmarks only: the seed is in the spec, and whoever knows it can remove the noise.",
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> PrivacyConfig:
        for column, (low, high) in self.bounds.items():
            if isinstance(low, int | float) and isinstance(high, int | float) and low >= high:
                raise ValueError(f"privacy.bounds.{column}: min ({low}) must be below max")
        return self


class TabularConfigBase(GeneratorConfigBase):
    """What every tabular synthesizer shares: the source, column metadata, personal data,
    constraints, conditions and augmentation."""

    modalities: ClassVar[tuple[str, ...]] = ("tabular",)
    path_fields: ClassVar[tuple[str, ...]] = ("source",)

    kind: str
    source: str = Field(
        description="Table to fit on: a CSV, Parquet or JSONL file, local path or s3:// URI."
    )
    column_types: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Override detected column types, e.g. {zip: categorical, id: id}.",
    )
    pii_columns: dict[str, PiiKind] = Field(
        default_factory=dict,
        description="Columns holding personal data and what they hold, e.g. {mail: email}; "
        "they are replaced with fake values, never copied.",
    )
    detect_pii: bool = Field(
        True, description="Also detect names, emails, phone numbers and addresses by content."
    )
    pii_locale: str = Field("en_US", description="Faker locale for fake personal data.")
    enforce_min_max: bool = Field(True, description="Clip numbers to the source's range.")
    fit_seed: int = Field(0, ge=0, description="Seed for fitting (part of the model's key).")
    constraints: list[Constraint] = Field(
        default_factory=list,
        description="Rules every output row satisfies; candidates breaking them are rejected "
        "and counted.",
    )
    conditions: dict[str, Scalar] = Field(
        default_factory=dict,
        description="Fixed column values for every generated row, e.g. {label: fraud}.",
    )
    augment: AugmentConfig | None = Field(
        None, description="Balance a label's classes, e.g. {balance: label}."
    )
    privacy: PrivacyConfig | None = Field(
        None,
        description="Differentially private fit, e.g. {epsilon: 1.0, delta: 1e-6} "
        "(gaussian_copula only); part of the model's key.",
    )

    def derives_rows(self) -> bool:
        return self.augment is not None  # balancing decides how many rows it adds

    @model_validator(mode="after")
    def _conditions_or_augment(self) -> TabularConfigBase:
        if self.augment is not None and self.conditions:
            raise ValueError("use either 'conditions' or 'augment', not both")
        return self

    @classmethod
    def option_names(cls) -> list[str]:
        """The model's own options (network sizes, rates, epochs...: every field below the
        shared tabular ones, but ``device``), in declaration order."""
        shared = set(TabularConfigBase.model_fields) | {"device"}
        return [name for name in cls.model_fields if name not in shared]

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return {
            name: cls.model_fields[name].get_default(call_default_factory=True)
            for name in cls.option_names()
        }

    def options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.option_names()}

    #: fields that change the fitted model (the rest only change how it is sampled)
    FIT_EXCLUDE: ClassVar[set[str]] = {
        "source",
        "constraints",
        "conditions",
        "augment",
        "pii_locale",
        "device",
    }


@GENERATORS.register("synthfactory_workers.tabular.copula:CopulaGenerator")
class GaussianCopulaConfig(TabularConfigBase):
    """Gaussian copula over per-column marginals (Patki et al. 2016, the SDV method)."""

    default_shard_rows: ClassVar[int] = 500_000  # ≈ 0.6 s of sampling on one CPU core

    kind: Literal["gaussian_copula"] = Field(
        "gaussian_copula", description="Gaussian copula (Patki et al. 2016)."
    )
    default_distribution: Distribution = Field(
        "empirical",
        description="Marginal for numerical columns: 'empirical' (interpolated quantiles, "
        "reproduces any shape), 'auto' (best parametric family by KS statistic) or a "
        "named family.",
    )


def _layers(width: int, network: str) -> Any:
    """A list of hidden layer sizes, by default two of ``width``."""
    return Field(
        default_factory=lambda: [width, width],
        min_length=1,
        description=f"Hidden layer sizes of {network}.",
    )


class _NeuralConfig(TabularConfigBase):
    """What CTGAN and TVAE share; every field below the shared tabular ones is a model option."""

    default_shard_rows: ClassVar[int] = 200_000  # CPU: TVAE ≈ 0.5 s, CTGAN ≈ 5 s

    epochs: int = Field(300, ge=1, le=100_000, description="Training epochs.")
    batch_size: int = Field(500, ge=2, description="Training batch size.")
    embedding_dim: int = Field(128, ge=1, description="Size of the noise / latent vector.")
    max_modes: int = Field(
        10, ge=1, le=50, description="Most modes per continuous column (Bayesian GMM)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to train and sample: 'auto' uses a GPU when there is one."
    )


@GENERATORS.register("synthfactory_workers.tabular.ctgan:CTGANGenerator")
class CTGANConfig(_NeuralConfig):
    """Conditional tabular GAN (Xu et al. 2019): mode-specific normalisation, conditional
    vector with training-by-sampling, PacGAN discriminator, WGAN-GP loss."""

    kind: Literal["ctgan"] = Field("ctgan", description="Conditional tabular GAN (Xu et al. 2019).")
    generator_dims: list[int] = _layers(256, "the generator's residual blocks")
    discriminator_dims: list[int] = _layers(256, "the discriminator (critic)")
    generator_lr: float = Field(2e-4, gt=0, description="Adam learning rate of the generator.")
    discriminator_lr: float = Field(
        2e-4, gt=0, description="Adam learning rate of the discriminator."
    )
    generator_decay: float = Field(1e-6, ge=0, description="Adam weight decay of the generator.")
    discriminator_decay: float = Field(
        1e-6, ge=0, description="Adam weight decay of the discriminator."
    )
    discriminator_steps: int = Field(
        1, ge=1, le=20, description="Discriminator updates per generator update."
    )
    pac: int = Field(10, ge=1, le=64, description="Rows the discriminator judges together.")

    @model_validator(mode="after")
    def _batch_multiple_of_pac(self) -> CTGANConfig:
        if self.batch_size % self.pac:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of pac ({self.pac})"
            )
        return self


@GENERATORS.register("synthfactory_workers.tabular.tvae:TVAEGenerator")
class TVAEConfig(_NeuralConfig):
    """Tabular VAE (Xu et al. 2019): the same data transform, a Gaussian encoder and a
    decoder with per-column output distributions."""

    kind: Literal["tvae"] = Field(
        "tvae", description="Tabular variational autoencoder (Xu et al. 2019)."
    )
    compress_dims: list[int] = _layers(128, "the encoder")
    decompress_dims: list[int] = _layers(128, "the decoder")
    learning_rate: float = Field(1e-3, gt=0, description="Adam learning rate.")
    l2scale: float = Field(1e-5, ge=0, description="Adam weight decay.")
    loss_factor: float = Field(
        2.0, gt=0, description="Weight of the reconstruction loss against the KL term."
    )


@GENERATORS.register("synthfactory_workers.tabular.argn:ArgnGenerator")
class ArgnConfig(TabularConfigBase):
    """TabularARGN (Tiwald et al. 2025): every column as tokens, per-column embeddings and
    a shared network that predicts a column from any set of others (trained on random
    column orders), sampled column by column; exact conditions."""

    default_shard_rows: ClassVar[int] = 200_000

    kind: Literal["argn"] = Field(
        "argn", description="Any-order autoregressive network (TabularARGN, Tiwald et al. 2025)."
    )
    epochs: int = Field(
        200, ge=1, le=100_000, description="Most training epochs (early stopping ends sooner)."
    )
    batch_size: int = Field(
        512, ge=2, description="Largest batch (small tables use an eighth of their rows)."
    )
    embedding_dim: int = Field(16, ge=1, le=512, description="Embedding size per column.")
    hidden_dims: list[int] | None = Field(
        None,
        min_length=1,
        description="Hidden layer sizes of the shared network; by default two layers of "
        "64 (under 20,000 fit rows) or 128.",
    )
    bins: int = Field(
        64,
        ge=2,
        le=4096,
        description="Quantile bins per numerical column (exact values "
        "for columns with at most this many distinct values).",
    )
    rare_min: int = Field(
        2,
        ge=1,
        description="Categories seen fewer times share one 'rare' token (sampled back in "
        "proportion to their source counts).",
    )
    learning_rate: float = Field(2e-3, gt=0, description="Adam learning rate.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout in the shared network.")
    validation: float = Field(
        0.1, ge=0, lt=0.5, description="Share of the fit rows held for early stopping."
    )
    patience: int = Field(
        10, ge=1, description="Epochs without a better validation loss before stopping."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where to train and sample: 'auto' uses a GPU when there is one."
    )
