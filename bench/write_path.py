"""Write path: the same Arrow table through the dataset store to S3 (moto on loopback) vs
the same work done bare: our Parquet encoder (``dataset.parquet.encode``) and one boto3
put_object to the same endpoint with one client, so the ratio is the store's own cost
(checksum, commit marker, a new version's store each repeat). Separate lines: pyarrow's
default encoding (our encoder picks dictionary columns) and Arrow's own S3 filesystem
(another transport). Goal >= 0.8.

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
from synthfactory.dataset import parquet, write_shard
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
    client = boto3.client("s3")
    raw, defaults, bare, ours = [], [], [], []
    for i in range(args.repeats):
        t0 = time.perf_counter()
        pq.write_table(table, f"bench/raw/part-{i}.parquet", filesystem=fs, compression="zstd")
        raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        blob = sink.getvalue().to_pybytes()
        client.put_object(Bucket="bench", Key=f"defaults/part-{i}.parquet", Body=blob)
        defaults.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        client.put_object(Bucket="bench", Key=f"bare/part-{i}.parquet", Body=parquet.encode(table))
        bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        write_shard(
            store.child(f"v{i}"), index=0, row_start=0, seed=0, max_rows=args.rows, table=table
        )
        ours.append(time.perf_counter() - t0)
    server.stop()
    r, d, b, o = (float(np.median(x)) for x in (raw, defaults, bare, ours))
    mb = table.nbytes / 1e6
    print(f"table: {args.rows:,} rows, {mb:.0f} MB in memory; median of {args.repeats}")
    print(f"pq.write_table via Arrow's S3 filesystem:        {r:.3f}s ({mb / r:.0f} MB/s)")
    print(f"pq.write_table (defaults) + boto3 put_object:    {d:.3f}s ({mb / d:.0f} MB/s)")
    print(f"bare: our encoder + one boto3 put_object:        {b:.3f}s ({mb / b:.0f} MB/s)")
    print(f"dataset store write_shard (+checksum, marker):   {o:.3f}s ({mb / o:.0f} MB/s)")
    print(
        f"separate lines: Arrow's S3 filesystem / store {r / o:.3f}; pyarrow's default "
        f"encoding / ours {d / b:.3f}"
    )
    print(
        f"ratio (store throughput / bare, same encoder and transport): {b / o:.3f}  (goal >= 0.8)"
    )


if __name__ == "__main__":
    main()
