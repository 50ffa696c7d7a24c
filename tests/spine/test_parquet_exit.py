"""Reading Parquet bytes must never abort the process at exit.

Arrow's reader threads may drop the last reference to the file they read after the
interpreter began to exit. When that reference held a Python object (a ``BytesIO`` or
``bytes`` wrapped zero-copy), its destructor asked for the GIL from a dying thread and the
process died with SIGABRT after printing its output (``datasets show`` in CI, exit 134;
apache/arrow#34314). ``decode`` and the source reader now hand Arrow a copy in its own
memory."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
import pytest

from synthfactory.dataset import parquet
from synthfactory.dataset.parquet import decode, encode
from synthfactory.sources import read_table


def test_arrow_buffer_is_a_copy_in_arrows_memory() -> None:
    data = bytes(range(256)) * 4096
    before = pa.total_allocated_bytes()
    buf = parquet.arrow_buffer(data)
    assert pa.total_allocated_bytes() - before >= len(data)  # Arrow allocated it
    assert buf.to_pybytes() == data
    del buf
    assert pa.total_allocated_bytes() - before < len(data)  # and frees it with the buffer
    wrapped = pa.py_buffer(data)  # what Arrow did before: a view of the Python object
    assert pa.total_allocated_bytes() - before < len(data)
    del wrapped


def test_decode_round_trips() -> None:
    table = pa.table({"a": list(range(1000)), "s": [f"x{i}" for i in range(1000)]})
    assert decode(encode(table)).equals(table)
    assert decode(encode(table), columns=["s"]).column_names == ["s"]


def address(data: bytes) -> int:
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value or 0


def test_a_zero_copy_wrap_would_point_at_the_python_object() -> None:
    data = b"x" * 4096
    assert pa.py_buffer(data).address == address(data)  # the test can see the old bug
    assert parquet.arrow_buffer(data).address != address(data)


def spy(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[object]:
    seen: list[object] = []
    real = getattr(module, name)

    def wrapper(source: object, *args: object, **kwargs: object) -> object:
        seen.append(source)
        return real(source, *args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return seen


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_readers_get_arrow_memory_not_python_objects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    table = pa.table({"a": list(range(100)), "s": [f"x{i}" for i in range(100)]})
    data = {
        "parquet": encode(table),
        "csv": b"a,s\n" + b"".join(b"%d,x%d\n" % (i, i) for i in range(100)),
        "json": b"".join(b'{"a": %d, "s": "x%d"}\n' % (i, i) for i in range(100)),
    }[fmt]
    path = tmp_path / f"source.{fmt}"
    path.write_bytes(data)
    reader = {
        "parquet": (pq, "read_table"),
        "csv": (pacsv, "read_csv"),
        "json": (pajson, "read_json"),
    }
    seen = spy(monkeypatch, *reader[fmt])
    assert read_table(str(path)).num_rows == 100
    if fmt == "parquet":
        assert decode(data).num_rows == 100
    assert seen
    for source in seen:
        assert isinstance(source, pa.NativeFile), source  # not a BytesIO
        source.seek(0)
        head = source.read_buffer(4)
        assert head.to_pybytes() == data[:4]
        assert head.address != address(data)  # not a view of the Python bytes
