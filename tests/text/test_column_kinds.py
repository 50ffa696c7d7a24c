"""Column kinds are a registry: a kind added from outside (``toy_upper.py``) passes the
pipeline's preflight, which reads only its declarations, and runs in a shard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from synthfactory.errors import ConfigError
from synthfactory.spec.columns import COLUMNS
from synthfactory_workers.contract import ShardTask
from synthfactory_workers.text.generator import LLMGenerator
from synthfactory_workers.text.pipeline import Pipeline
from synthfactory_workers.text.preflight import check_pipeline

from .builders import make, user
from .toy_upper import UpperColumn, register_upper


@pytest.fixture
def upper() -> Iterator[None]:
    """``kind: upper`` registered for one test (the registry is global)."""
    register_upper()
    yield
    COLUMNS.remove("upper")


COLUMNS_SPEC = [
    {"name": "topic", "kind": "choice", "choices": ["tea", "rain"]},
    {"name": "line", "kind": "llm_text", "template": "One line on {{ topic }}."},
]


def with_upper(tmp: Path, column: str = "line", keep: str = "{{ loud != line }}") -> LLMGenerator:
    """The generator of a pipeline whose third column is ``kind: upper`` (the spec's own
    union was built before the toy registered, so the config is added to the parsed job)."""
    gen, _ = make(tmp, COLUMNS_SPEC, lambda m, s: f"about {user(m).split()[-1]}", keep=keep)
    loud = UpperColumn(name="loud", column=column)
    config = gen.config.model_copy(update={"columns": [*gen.config.pipeline, loud]})
    gen.config = config
    gen.spec = gen.spec.model_copy(update={"generator": config})
    return gen


@pytest.mark.usefixtures("upper")
def test_a_registered_kind_parses_passes_preflight_and_runs(tmp_path: Path) -> None:
    assert COLUMNS.config("upper") is UpperColumn
    parsed = TypeAdapter(COLUMNS.union()).validate_python(
        {"name": "loud", "kind": "upper", "column": "line"}
    )
    assert isinstance(parsed, UpperColumn)
    gen = with_upper(tmp_path)
    check_pipeline(gen.config, None)
    gen.pipeline = Pipeline(gen, None)
    out = gen.generate(ShardTask(0, 0, 4, 5))
    rows = out.table.to_pylist()
    assert len(rows) == 4
    assert all(r["loud"] == r["line"].upper() for r in rows)
    assert out.table.schema.field("loud").type == "string"


@pytest.mark.usefixtures("upper")
def test_preflight_checks_what_a_new_kind_declares_it_reads(tmp_path: Path) -> None:
    gen = with_upper(tmp_path, column="nope")
    with pytest.raises(ConfigError, match=r"columns\[loud\] uses 'nope', which is no column"):
        check_pipeline(gen.config, None)


def test_every_built_in_kind_names_an_importable_worker() -> None:
    from synthfactory_workers.text.kinds.base import ColumnKind

    assert len(COLUMNS.kinds()) == 14
    # a prompt spec's own column: a worker, but no kind `columns` may name
    assert "prompt" in COLUMNS.kinds() and COLUMNS.config("prompt") is None
    for kind in COLUMNS.kinds():
        worker = COLUMNS.load(kind)
        assert isinstance(worker, type) and issubclass(worker, ColumnKind), kind
