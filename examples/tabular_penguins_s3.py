"""The same job as tabular_penguins.yaml, written in Python and sent to S3 (any
S3-compatible store: MinIO, Ceph, R2; credentials from the standard AWS chain).

    AWS_ENDPOINT_URL=http://127.0.0.1:9000 synthfactory run examples/tabular_penguins_s3.py
    synthfactory run examples/tabular_penguins_s3.py --output s3://your-bucket/penguins

The bucket must exist: a missing one fails before anything is generated, naming it.
"""

from pathlib import Path

from synthfactory.spec import JobSpec

spec = JobSpec.model_validate(
    {
        "name": "penguins",
        "modality": "tabular",
        "generator": {
            "kind": "gaussian_copula",
            "source": str(Path(__file__).resolve().parent / "data" / "penguins.csv"),
        },
        "rows": 1_000_000,
        "shard_rows": 100_000,
        "seed": 42,
        "output": "s3://my-bucket/synthetic/penguins",
        "storage": {"s3": {"addressing_style": "path"}},
        "resources": {"actors": 2, "num_cpus": 1},
    }
)
