"""Resources no node has are a named error in seconds, not an actor pending forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthfactory.errors import ConfigError
from synthfactory.spec import load_spec
from synthfactory_workers.placement import check_placeable

from .helpers import sequence_spec

NODES = [
    {"Alive": True, "Resources": {"CPU": 4.0, "memory": 1e9}},
    {"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0, "A100": 1.0}},
]


def spec(**resources: object) -> object:
    data = sequence_spec("/tmp/unused")
    data["resources"] = {"actors": 2, "num_cpus": 1, **resources}
    return load_spec(data)


def test_what_fits_what_does_not_and_what_takes_turns() -> None:
    assert check_placeable(spec(), NODES) == []  # type: ignore[arg-type]
    assert check_placeable(spec(num_gpus=1, actors=1), NODES) == []  # type: ignore[arg-type]
    [warning] = check_placeable(spec(num_gpus=1, actors=3), NODES)  # type: ignore[arg-type]
    assert "holds 1 of the 3 actors" in warning
    with pytest.raises(ConfigError, match=r"GPU 2.*largest node has CPU 4, GPU 1"):
        check_placeable(spec(num_gpus=2), NODES)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="H100 1"):
        check_placeable(spec(custom_resources={"H100": 1}), NODES)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="CPU 8"):
        check_placeable(spec(num_cpus=8), NODES)  # type: ignore[arg-type]


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_a_gpu_job_on_a_cpu_cluster_fails_instead_of_waiting(tmp_path: Path) -> None:
    """Without the check the actor would wait for a GPU forever (the suite's timeout)."""
    from synthfactory_flows.generate import run_job

    data = sequence_spec(str(tmp_path / "out"))
    data["resources"] = {"actors": 1, "num_cpus": 0.5, "num_gpus": 1}
    with pytest.raises(ConfigError, match="no node of the Ray cluster can hold one actor"):
        run_job(load_spec(data))
    assert not list((tmp_path / "out").rglob("manifest.json"))
