"""Parquet encoding shared by every writer, tuned so pyarrow, fastparquet and DuckDB agree.

fastparquet reads nulls for strings of a column whose dictionary page overflowed and fell
back to plain encoding. We dictionary-encode a string column only when its distinct values
fit comfortably in one dictionary page, so that fallback never happens.
"""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

DICTIONARY_PAGE_LIMIT = 1 << 20  # pyarrow's default dictionary_pagesize_limit
_SAFE_DICTIONARY_BYTES = DICTIONARY_PAGE_LIMIT // 2


def dictionary_columns(table: pa.Table) -> list[str]:
    import pyarrow as pa
    import pyarrow.compute as pc

    keep: list[str] = []
    for field in table.schema:
        column = table.column(field.name)
        if not (
            pa.types.is_string(field.type)
            or pa.types.is_large_string(field.type)
            or pa.types.is_binary(field.type)
            or pa.types.is_large_binary(field.type)
        ):
            if not pa.types.is_nested(field.type):
                keep.append(field.name)
            continue
        if column.null_count == len(column):
            keep.append(field.name)
            continue
        unique = pc.unique(column.drop_null())
        size = int(pc.sum(pc.binary_length(unique)).as_py() or 0) + 4 * len(unique)
        if size <= _SAFE_DICTIONARY_BYTES:
            keep.append(field.name)
    return keep


def encode(table: pa.Table, row_group_rows: int | None = None) -> bytes:
    """Parquet bytes (zstd), readable identically by pyarrow, fastparquet and DuckDB."""
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=dictionary_columns(table),
        row_group_size=row_group_rows or row_group_size(table),
        write_statistics=True,
    )
    return sink.getvalue()


def row_group_size(table: pa.Table, target_bytes: int = 64 << 20) -> int:
    """Rows per row group: ~64 MiB of data, at most 128k rows (images make rows big)."""
    per_row = max(1, table.nbytes // max(1, len(table)))
    return max(1, min(len(table), 128 * 1024, target_bytes // per_row))


def decode(data: bytes) -> pa.Table:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
