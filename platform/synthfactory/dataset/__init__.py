"""Datasets on object storage: shards, manifests, versions and the catalog."""

from synthfactory.dataset.catalog import Dataset, VersionInfo, list_versions, open_dataset
from synthfactory.dataset.manifest import Manifest, ShardEntry
from synthfactory.dataset.shards import write_shard
from synthfactory.dataset.version import DatasetVersion

__all__ = [
    "Dataset",
    "DatasetVersion",
    "Manifest",
    "ShardEntry",
    "VersionInfo",
    "list_versions",
    "open_dataset",
    "write_shard",
]
