"""The same job as tabular_penguins.yaml, written in Python and sent to S3.

AWS_ENDPOINT_URL=http://127.0.0.1:9000 synthfactory run examples/tabular_penguins_s3.py
"""

from pathlib import Path

from synthfactory.spec import JobSpec

spec = JobSpec.model_validate(
    {
        "name": "penguins",
        "modality": "tabular",
        "generator": {
            "kind": "gaussian_copula",
            "source": str(Path(__file__).parent / "data" / "penguins.csv"),
        },
        "rows": 1_000_000,
        "shard_rows": 100_000,
        "seed": 42,
        "output": "s3://my-bucket/synthetic/penguins",
        "storage": {"addressing_style": "path"},
        "resources": {"actors": 2, "num_cpus": 1},
    }
)
