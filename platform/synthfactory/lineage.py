"""What produced a dataset: library versions and the code version."""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED = (
    "synthfactory",
    "ray",
    "prefect",
    "pyarrow",
    "numpy",
    "pandas",
    "scipy",
    "torch",
    "transformers",
    "diffusers",
    "boto3",
)


def library_versions() -> dict[str, str]:
    versions = {}
    for name in TRACKED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def code_version() -> str:
    """The git commit of the checkout the package runs from (+'-dirty'), else the version."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "synthfactory-" + metadata.version("synthfactory")


def lineage() -> dict[str, Any]:
    return {
        "code_version": code_version(),
        "python": platform.python_version(),
        "libraries": library_versions(),
    }
