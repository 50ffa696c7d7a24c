"""Read source tables (CSV, Parquet, JSONL; local or S3) and fingerprint them."""

from __future__ import annotations

import hashlib
import io
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from synthfactory.errors import ConfigError
from synthfactory.spec.model import StorageOptions
from synthfactory.storage import open_store

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".json": "json",
}


def _split(uri: str) -> tuple[str, str]:
    path = PurePosixPath(uri.removeprefix("s3://"))
    parent = str(path.parent)
    return (f"s3://{parent}" if uri.startswith("s3://") else parent), path.name


def read_source_bytes(uri: str, options: StorageOptions | None = None) -> bytes:
    parent, name = _split(uri)
    try:
        return open_store(parent, options).get_bytes(name)
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(
            f"source {uri} does not exist", fix="check the path or s3:// URI of the source"
        ) from None


def source_format(uri: str) -> str:
    suffix = PurePosixPath(uri).suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"source {uri} has an unknown format {suffix!r}",
            fix="use a .csv, .parquet or .jsonl file",
        )
    return FORMATS[suffix]


def read_table(uri: str, options: StorageOptions | None = None) -> pa.Table:
    """The whole source as an Arrow table. Raises ConfigError naming the file on failure."""
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.json
    import pyarrow.parquet as pq

    fmt = source_format(uri)
    data = read_source_bytes(uri, options)
    try:
        if fmt == "csv":
            table = pyarrow.csv.read_csv(
                io.BytesIO(data),
                convert_options=pyarrow.csv.ConvertOptions(
                    null_values=["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"],
                    strings_can_be_null=True,
                ),
            )
        elif fmt == "parquet":
            table = pq.read_table(io.BytesIO(data))
        else:
            table = pyarrow.json.read_json(io.BytesIO(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(
            f"cannot read source {uri}: {exc}", fix=f"check it is valid {fmt}"
        ) from None
    if table.num_rows == 0:
        raise ConfigError(f"source {uri} has no rows", fix="point at a table with data")
    return table


def fingerprint(uri: str, options: StorageOptions | None = None) -> str:
    """sha256 of the source bytes: a changed source means a new dataset version."""
    return hashlib.sha256(read_source_bytes(uri, options)).hexdigest()
