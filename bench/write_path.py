"""Write path: the same Arrow table through the dataset store to S3 (moto on loopback) vs a
raw pyarrow.parquet.write_table to the same endpoint. Goal >= 0.8.

    .venv/bin/python bench/write_path.py [--rows N]
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq
from moto.server import ThreadedMotoServer

import _common  # noqa: F401  (env defaults)
from synthfactory.dataset import write_shard
from synthfactory.storage import open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "id": np.arange(args.rows),
            "x": rng.normal(size=args.rows),
            "cat": rng.choice(["a", "b", "c", "d"], size=args.rows),
            "text": [f"row-{i}-{rng.integers(1e9)}" for i in range(args.rows)],
        }
    )
    fs = pyarrow.fs.S3FileSystem(
        endpoint_override=f"127.0.0.1:{port}",
        scheme="http",
        access_key="bench",
        secret_key="bench",
        region="us-east-1",
    )
    store = open_store("s3://bench/store")
    raw, ours = [], []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        pq.write_table(table, f"bench/raw/part-{i}.parquet", filesystem=fs, compression="zstd")
        raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        write_shard(
            store.child(f"v{i}"), index=0, row_start=0, seed=0, max_rows=args.rows, table=table
        )
        ours.append(time.perf_counter() - t0)
    server.stop()
    r, o = float(np.median(raw)), float(np.median(ours))
    mb = table.nbytes / 1e6
    print(f"table: {args.rows:,} rows, {mb:.0f} MB in memory; median of {args.repeats}")
    print(f"raw pq.write_table to S3:  {r:.3f}s ({mb / r:.0f} MB/s)")
    print(f"dataset store write_shard: {o:.3f}s ({mb / o:.0f} MB/s) incl. checksum + marker")
    print(f"ratio (store throughput / raw): {r / o:.3f}  (goal >= 0.8)")


if __name__ == "__main__":
    main()
