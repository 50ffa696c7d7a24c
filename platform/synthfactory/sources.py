"""Read source tables (CSV, Parquet, JSONL; from any storage scheme) and fingerprint them.

Inside ``job_cache()`` (the flow, the fit and each actor hold one for a job's life) a
source is read from storage once and parsed once, keyed by its bytes' sha256; outside it
every call reads afresh, so a changed file is seen by the next job."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from synthfactory.errors import ConfigError
from synthfactory.spec.storage import StorageOptions
from synthfactory.storage import open_store, split_uri

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".json": "json",
}


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.data: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.tables: dict[str, pa.Table] = {}
        self.reads = 0  # storage reads, for tests


_CACHE = _Cache()


@contextlib.contextmanager
def job_cache() -> Iterator[None]:
    """Keep sources read inside this block (nestable, thread-safe) until it ends."""
    with _CACHE.lock:
        _CACHE.depth += 1
    try:
        yield
    finally:
        with _CACHE.lock:
            _CACHE.depth -= 1
            if _CACHE.depth == 0:
                _CACHE.data.clear()
                _CACHE.tables.clear()


def _read(uri: str, options: StorageOptions | None) -> tuple[bytes, str]:
    """(bytes, sha256) of a source, from the job cache when one is open."""
    key = (uri, options.model_dump_json() if options else "")
    with _CACHE.lock:
        if _CACHE.depth and key in _CACHE.data:
            return _CACHE.data[key]
    data = _read_uncached(uri, options)
    found = (data, hashlib.sha256(data).hexdigest())
    with _CACHE.lock:
        _CACHE.reads += 1
        if _CACHE.depth:
            _CACHE.data[key] = found
    return found


def read_source_bytes(uri: str, options: StorageOptions | None = None) -> bytes:
    return _read(uri, options)[0]


def _read_uncached(uri: str, options: StorageOptions | None) -> bytes:
    parent, name = split_uri(uri)
    try:
        return open_store(parent, options).get_bytes(name)
    except (FileNotFoundError, IsADirectoryError):
        raise ConfigError(
            f"source {uri} does not exist", fix="check the path or s3:// URI of the source"
        ) from None
    except OSError as exc:  # a name too long, a folder not readable
        raise ConfigError(
            f"cannot read source {uri}: {exc.strerror or exc}",
            fix="check the path of the source and its permissions",
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

    from synthfactory.dataset.parquet import arrow_buffer

    fmt = source_format(uri)
    data, digest = _read(uri, options)
    with _CACHE.lock:
        cached = _CACHE.tables.get(f"{fmt}:{digest}") if _CACHE.depth else None
    if cached is not None:
        return cached
    not_utf8 = ConfigError(
        f"source {uri} is not UTF-8 text", fix="save it as UTF-8 (e.g. `iconv -t UTF-8`)"
    )
    if fmt != "parquet" and data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise not_utf8  # a UTF-16 byte order mark
    try:
        if fmt == "csv":
            table = pyarrow.csv.read_csv(
                pa.BufferReader(arrow_buffer(data)),
                convert_options=pyarrow.csv.ConvertOptions(
                    null_values=["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"],
                    strings_can_be_null=True,
                ),
            )
        elif fmt == "parquet":
            table = pq.read_table(pa.BufferReader(arrow_buffer(data)))
        else:
            table = pyarrow.json.read_json(pa.BufferReader(arrow_buffer(data)))
        names = [str(c) for c in table.column_names]
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConfigError(
            f"cannot read source {uri}: {exc}", fix=f"check it is valid {fmt}"
        ) from None
    except UnicodeDecodeError:
        raise not_utf8 from None
    if fmt == "csv":  # a CSV column of bytes that are not UTF-8 is read as binary
        binary = [f.name for f in table.schema if pa.types.is_binary(f.type)]
        if binary:
            raise ConfigError(
                f"source {uri} is not UTF-8 text (in column(s) {binary})",
                fix="save it as UTF-8 (e.g. `iconv -t UTF-8`)",
            )
    if table.num_rows == 0:
        raise ConfigError(f"source {uri} has no rows", fix="point at a table with data")
    check_column_names(uri, names)
    with _CACHE.lock:
        if _CACHE.depth:
            _CACHE.tables[f"{fmt}:{digest}"] = table
    return table


def check_column_names(uri: str, names: list[str]) -> None:
    """Column names must be unique: with a repeated header every reader picks one of the
    columns silently, or fails later."""
    from collections import Counter

    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        raise ConfigError(
            f"source {uri} has repeated column name(s) {repeated}",
            fix="give every column of the source a distinct name",
        )


def fingerprint(uri: str, options: StorageOptions | None = None) -> str:
    """sha256 of the source bytes: a changed source means a new dataset version."""
    return _read(uri, options)[1]
