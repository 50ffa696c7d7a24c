"""Run by bench/tabular_argn.py with .venv-mostly's Python: fit mostlyai-engine's TabularARGN
(defaults: MOSTLY_AI/Medium, up to 100 epochs with early stopping, flexible generation) on
a Parquet table and sample rows; prints one JSON line with the timings. No synthfactory
import here (that environment has none).

    .venv-mostly/bin/python bench/_mostly_argn.py TRAIN.parquet OUT.parquet SEED THREADS
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    train_path, out_path, seed, threads = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
    )
    import pandas as pd
    import torch
    from mostlyai import engine

    torch.set_num_threads(threads)
    logging.disable(logging.WARNING)
    train = pd.read_parquet(train_path)
    ws = Path(tempfile.mkdtemp(prefix="sf-bench-mostly-"))
    engine.set_random_state(seed)
    t0 = time.perf_counter()
    engine.split(tgt_data=train, model_type="TABULAR", workspace_dir=ws)
    engine.analyze(workspace_dir=ws)
    engine.encode(workspace_dir=ws)
    engine.train(workspace_dir=ws, device="cpu")
    t1 = time.perf_counter()
    engine.generate(sample_size=len(train), device="cpu", workspace_dir=ws)
    t2 = time.perf_counter()
    syn = pd.read_parquet(ws / "SyntheticData")
    syn.to_parquet(out_path, index=False)
    print(json.dumps({"fit_seconds": t1 - t0, "sample_seconds": t2 - t1, "rows": len(syn)}))


if __name__ == "__main__":
    main()
