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
        "import sys, synthfactory_flows.cli, synthfactory_flows.generate\n"
        "import synthfactory_workers.pool, synthfactory_flows.dashboard.app\n"
        "import synthfactory_flows.plan, synthfactory.spec, synthfactory.dataset\n"
        "heavy = [m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout}"


def test_every_registered_implementation_imports_lightly() -> None:
    from synthfactory.metrics.evaluators import EVALUATORS
    from synthfactory.spec.backends import BACKENDS
    from synthfactory.spec.generators import GENERATORS
    from synthfactory.storage import STORES

    registries = (GENERATORS, BACKENDS, EVALUATORS, STORES)
    paths = {r.path(kind) for r in registries for kind in r.kinds()}
    modules = sorted({path.partition(":")[0] for path in paths})
    assert len(GENERATORS.kinds()) >= 6 and len(BACKENDS.kinds()) >= 2 and len(modules) >= 10
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(','.join(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"heavy modules imported: {out.stdout}"


def test_hamming_dedup_matches_a_brute_force_scan() -> None:
    import numpy as np

    from synthfactory.dataset.dedup import hamming_duplicates

    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, 400, dtype=np.uint64)
    flips = rng.integers(0, 64, (200, 2))
    near = [base[i] ^ np.uint64(sum(1 << int(b) for b in set(f))) for i, f in enumerate(flips)]
    hashes = rng.permutation(np.concatenate([base, np.array(near, np.uint64)]))
    alive = rng.random(len(hashes)) > 0.1
    for distance in (2, 4):
        kept: list[int] = []
        want = np.zeros(len(hashes), bool)
        for i, h in enumerate(hashes):
            if not alive[i]:
                continue
            if any(int(h ^ hashes[j]).bit_count() <= distance for j in kept):
                want[i] = True
            else:
                kept.append(i)
        got = hamming_duplicates(hashes, distance, alive)
        assert got.tolist() == want.tolist() and want.sum() > 50
