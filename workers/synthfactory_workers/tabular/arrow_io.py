"""pandas frames to Arrow tables in the source's schema, and Arrow schemas as text (kept in
a fit's meta, so every worker writes the source's types)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def output_schema(schema: pa.Schema, pii_columns: dict[str, str]) -> pa.Schema:
    """The source's Arrow schema, with personal-data columns as strings (fake values)."""
    import pyarrow as pa

    for column in pii_columns:
        i = schema.get_field_index(column)
        schema = schema.set(i, pa.field(column, pa.string()))
    return schema.remove_metadata()


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    arrays = []
    for field in schema:
        try:
            arrays.append(pa.array(df[field.name], from_pandas=True).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            arrays.append(
                pa.array(df[field.name].astype(str), from_pandas=True).cast(field.type, safe=False)
            )
    return pa.Table.from_arrays(arrays, schema=schema)


def schema_text(schema: pa.Schema) -> str:
    return bytes(schema.serialize()).hex()


def read_schema(text: str) -> pa.Schema:
    """The schema ``schema_text`` wrote."""
    import pyarrow as pa

    return pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(text)))
