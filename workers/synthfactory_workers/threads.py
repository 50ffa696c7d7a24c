"""Math-library threads per actor: OMP/MKL/OpenBLAS read their environment variables, which
the pool sets; torch keeps its own intra-op pool, sized here from the same setting."""

from __future__ import annotations

import os
import sys


def limit_torch_threads() -> None:
    """Apply ``SYNTHFACTORY_TORCH_THREADS`` (the job's ``math_threads``) to torch, if this
    process has imported it (never imports torch itself)."""
    threads = os.environ.get("SYNTHFACTORY_TORCH_THREADS")
    torch = sys.modules.get("torch")
    if threads and torch is not None and torch.get_num_threads() != int(threads):
        torch.set_num_threads(int(threads))
