"""`validate` tells every mistake at once, not one stage per round."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_three_mistakes_in_three_stages_are_told_together(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    spec = {
        "name": "three",
        "modality": "tabular",
        "rows": 100,
        "output": str(blocker / "out"),  # under a file: cannot be written
        "generator": {
            "kind": "gaussian_copula",
            "source": str(ROOT / "examples/data/penguins.csv"),
        },
        "metrics": {"target_column": "specie"},  # the column is `species`
        "gates": {"quality.overal": ">= 0.5"},  # the metric is `quality.overall`
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "synthfactory_flows.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "3 problems" in out, out
    assert "quality.overal" in out and "'specie'" in out and "a-file" in out, out
    assert "species" in out and "Traceback" not in out
