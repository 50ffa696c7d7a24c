"""Parquet encoding shared by every writer, tuned so pyarrow, fastparquet and DuckDB agree.

fastparquet reads nulls for strings of a column whose dictionary page overflowed and fell
back to plain encoding. We dictionary-encode a string column only when its distinct values
fit comfortably in one dictionary page, so that fallback never happens.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

DICTIONARY_PAGE_LIMIT = 1 << 20  # pyarrow's default dictionary_pagesize_limit
_SAFE_DICTIONARY_BYTES = DICTIONARY_PAGE_LIMIT // 2


def _is_stringlike(field: pa.Field) -> bool:
    import pyarrow as pa

    t = field.type
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    )


def dictionary_columns(table: pa.Table, sample: int = 4096) -> list[str]:
    """Columns to dictionary-encode: all flat non-string columns, and string columns whose
    distinct values fit safely in one dictionary page (checked cheaply: total size first,
    then a sample to rule out high-cardinality columns, then the exact distinct size)."""
    import pyarrow.compute as pc

    keep: list[str] = []
    for field in table.schema:
        if pa_nested(field):
            continue
        column = table.column(field.name)
        head = column.slice(0, sample)
        if len(head) > 64 and len(pc.unique(head)) > 0.5 * len(head):
            continue  # high cardinality: a dictionary buys little and costs time
        if not _is_stringlike(field):
            keep.append(field.name)
            continue
        total = int(pc.sum(pc.binary_length(column)).as_py() or 0) + 4 * len(column)
        if total <= _SAFE_DICTIONARY_BYTES:
            keep.append(field.name)
            continue
        unique = pc.unique(column.drop_null())
        size = int(pc.sum(pc.binary_length(unique)).as_py() or 0) + 4 * len(unique)
        if size <= _SAFE_DICTIONARY_BYTES:
            keep.append(field.name)
    return keep


def pa_nested(field: pa.Field) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_nested(field.type))


def encode(table: pa.Table, row_group_rows: int | None = None) -> bytes:
    """Parquet bytes (zstd), readable identically by pyarrow, fastparquet and DuckDB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()  # Arrow's own buffer, not a Python file (see decode)
    pq.write_table(
        table,
        sink,
        compression="zstd",
        use_dictionary=dictionary_columns(table),
        row_group_size=row_group_rows or row_group_size(table),
        write_statistics=True,
    )
    return bytes(sink.getvalue().to_pybytes())


def row_group_size(table: pa.Table, target_bytes: int = 64 << 20) -> int:
    """Rows per row group: ~64 MiB of data, at most 128k rows (images make rows big)."""
    per_row = max(1, table.nbytes // max(1, len(table)))
    return max(1, min(len(table), 128 * 1024, target_bytes // per_row))


def arrow_buffer(data: bytes) -> pa.Buffer:
    """``data`` copied into memory Arrow owns. Arrow's reader threads may drop their last
    reference to the file after the interpreter began to exit; if that reference holds a
    Python object (a ``BytesIO``, or ``bytes`` wrapped zero-copy) its destructor needs the
    GIL from a dying thread and the process aborts (SIGABRT, apache/arrow#34314). A copy
    costs ~10 ms per 100 MB; a CLI that exits 134 after printing its output costs more."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    sink.write(data)
    return sink.getvalue()


def decode(data: bytes, columns: list[str] | None = None) -> pa.Table:
    """A table from Parquet bytes (read from an Arrow-owned copy: see ``arrow_buffer``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pq.read_table(pa.BufferReader(arrow_buffer(data)), columns=columns)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
