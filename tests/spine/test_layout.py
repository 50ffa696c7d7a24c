"""The repo layout must not shadow the stdlib, and light imports must stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stdlib_platform_works_from_repo_root() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    out = subprocess.run(
        [sys.executable, "-c", "import platform; print(platform.system())"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() in ("Linux", "Darwin", "Windows")


def test_python_m_pytest_works_from_repo_root() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/spine/test_layout.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test_stdlib_platform_works_from_repo_root" in out.stdout


def test_flows_and_cli_do_not_import_model_libraries() -> None:
    code = (
        "import sys, synthfactory.cli, synthfactory_flows.generate, synthfactory_workers.pool\n"
        "import synthfactory_flows.plan, synthfactory.spec, synthfactory.dataset\n"
        "heavy = [m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout}"


def test_every_registered_generator_imports_lightly() -> None:
    from synthfactory.spec.generators import GENERATOR_CONFIGS

    modules = sorted({c.implementation.partition(":")[0] for c in GENERATOR_CONFIGS.values()})
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(','.join(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout}"
