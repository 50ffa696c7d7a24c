"""A spec too large for a Prefect flow parameter goes to the flow by reference."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from synthfactory.dataset import open_dataset
from synthfactory_flows import spec_ref
from synthfactory_flows.generate import SPEC_REF, run_job

from .helpers import sequence_spec


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_a_large_spec_runs_and_is_not_a_flow_parameter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # specs may hold up to 1 MiB, Prefect takes 512 KB of parameters: the threshold is
    # lowered here so the test need not build a megabyte of valid fields
    monkeypatch.setattr(spec_ref, "SPEC_BY_REFERENCE_BYTES", 4096)
    spec = sequence_spec(str(tmp_path / "out"), rows=20, shard_rows=10)
    spec["description"] = "A long description. " * 500  # 10 KB
    result = run_job(spec)
    ds = open_dataset(result["uri"])
    assert ds.manifest.rows == 20
    assert ds.manifest.spec["description"] == spec["description"]
    assert not list((tmp_path / "out").glob("_specs/*")), "the run's copy was left behind"
    from prefect.client.orchestration import get_client

    async def parameters() -> dict[str, object]:
        async with get_client() as client:
            run = await client.read_flow_run(ds.manifest.flow_run["id"])
            return dict(run.parameters)

    sent = asyncio.run(parameters())
    assert set(sent["spec"]) == {SPEC_REF, "storage"}  # type: ignore[arg-type]
