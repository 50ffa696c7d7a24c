"""``serve`` starts only what is missing: an existing Prefect server is used, not started."""

from __future__ import annotations

from pathlib import Path

from synthfactory_flows.serve import Services, start_backend


def test_an_existing_prefect_server_is_used_and_nothing_is_started(tmp_path: Path) -> None:
    services, said = Services(), []
    env = {"PREFECT_API_URL": "http://127.0.0.1:1/api"}
    start_backend(
        services,
        env,
        prefect_port=0,
        logs=tmp_path,
        worker=False,
        worker_limit=None,
        echo=said.append,
    )
    assert services.procs == []
    assert said == ["Prefect API:  http://127.0.0.1:1/api (existing server)"]
