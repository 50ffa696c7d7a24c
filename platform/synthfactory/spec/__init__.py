"""The job spec: models, loading and validation."""

from synthfactory.spec.generators import (
    GaussianCopulaConfig,
    GeneratorConfig,
    PythonGeneratorConfig,
)
from synthfactory.spec.load import as_job, json_schema, load_spec
from synthfactory.spec.model import JobSpec, Resources, RetryPolicy, StorageOptions

__all__ = [
    "GaussianCopulaConfig",
    "GeneratorConfig",
    "JobSpec",
    "PythonGeneratorConfig",
    "Resources",
    "RetryPolicy",
    "StorageOptions",
    "as_job",
    "json_schema",
    "load_spec",
]
