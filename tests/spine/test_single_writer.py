"""One writer per version: compare-and-swap on both stores, the lease built on it, and a
publish that leaves ``data/`` holding exactly the manifest's files."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

import pytest

from synthfactory.dataset import layout
from synthfactory.dataset.catalog import unfinished_status
from synthfactory.dataset.lease import Lease, LeaseLostError, read_holder
from synthfactory.storage import ObjectStore, open_store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return open_store(str(tmp_path / "v"))
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"{bucket}/ds/v")


def test_put_if_is_compare_and_swap(store: ObjectStore) -> None:
    assert store.read_tagged("k") is None
    assert store.put_if("k", b"one", None)
    assert not store.put_if("k", b"two", None), "created twice"
    got = store.read_tagged("k")
    assert got is not None and got[0] == b"one"
    assert not store.put_if("k", b"two", "not-the-tag")
    assert store.put_if("k", b"three", got[1])
    assert not store.put_if("k", b"four", got[1]), "a stale tag won"
    assert not store.delete_if("k", got[1])
    now = store.read_tagged("k")
    assert now is not None and now[0] == b"three"
    assert store.delete_if("k", now[1]) and store.read_tagged("k") is None


def test_racing_creators_one_wins(store: ObjectStore) -> None:
    wins: list[int] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        barrier.wait()
        if store.put_if("race", str(i).encode(), None):
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    got = store.read_tagged("race")
    assert got is not None and got[0] == str(wins[0]).encode()


def test_lease_is_exclusive_until_it_expires(store: ObjectStore) -> None:
    first, second = Lease(store, ttl=1.5), Lease(store, ttl=1.5)
    assert first.try_acquire() is None
    holder = second.try_acquire()
    assert holder is not None and holder.owner == first.owner
    assert read_holder(store) == holder
    time.sleep(1.7)  # first stops renewing (a killed run): its lease expires
    assert second.try_acquire() is None, "an expired lease was not taken over"
    assert not first.renew() and first.lost
    with pytest.raises(LeaseLostError, match="took over"):
        first.check()
    first.release()  # must not delete the new holder's lease
    holder = read_holder(store)
    assert holder is not None and holder.owner == second.owner
    second.check()
    second.release()
    assert store.read_tagged(layout.LEASE) is None


def test_a_renewed_lease_stays(store: ObjectStore) -> None:
    lease = Lease(store, ttl=1.2)
    assert lease.try_acquire() is None
    lease.start_renewing()
    try:
        time.sleep(2.0)
        other = Lease(store, ttl=1.2)
        assert other.try_acquire() is not None, "a live, renewed lease was taken"
        lease.check()
    finally:
        lease.release()
    body = json.loads(store.get_bytes(layout.LEASE)) if store.exists(layout.LEASE) else None
    assert body is None


def test_an_unreadable_lease_counts_as_expired(store: ObjectStore) -> None:
    store.put_bytes(layout.LEASE, b"{not json")
    lease = Lease(store, ttl=5)
    assert lease.try_acquire() is None
    lease.release()


def test_a_dead_holder_on_this_machine_is_taken_over_at_once(store: ObjectStore) -> None:
    """A SIGKILLed run on this machine (same boot, same pid namespace, pid gone) does not
    hold its version for the whole ttl; a holder elsewhere, or alive, still does."""
    import subprocess
    import sys

    from synthfactory.dataset.lease import machine_id

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    def left_by(pid: int, machine: str) -> None:
        body = {
            "owner": "x" * 32,
            "host": "h",
            "pid": pid,
            "acquired_at": time.time(),
            "expires_at": time.time() + 600,
            "machine": machine,
        }
        store.put_bytes(layout.LEASE, json.dumps(body).encode())

    left_by(gone.pid, "another-boot:1")  # pids of another machine say nothing here
    assert Lease(store).try_acquire() is not None
    left_by(os.getpid(), machine_id())  # alive
    assert Lease(store).try_acquire() is not None
    left_by(gone.pid, machine_id())
    raw = json.loads(store.get_bytes(layout.LEASE))
    assert unfinished_status(None, raw, time.time()) == "crashed"  # the catalog agrees
    lease = Lease(store)
    assert lease.try_acquire() is None, "a dead holder's lease was not taken over"
    lease.release()


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_a_run_takes_over_a_version_whose_writer_died(tmp_path: Path) -> None:
    """A lease left by a killed run (never renewed, never released) holds the version
    until it expires; then the next run takes over and publishes."""
    from synthfactory.dataset import open_dataset
    from synthfactory_flows.generate import run_job

    from .helpers import sequence_spec

    out = tmp_path / "out"
    dead = Lease(open_store(str(out / "fixed")), ttl=3)
    assert dead.try_acquire() is None  # ... and its run is SIGKILLed: nothing renews it
    said: list[str] = []

    class Said(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    handler = Said()
    flow_logs = logging.getLogger("prefect.flow_runs")  # where get_run_logger writes
    flow_logs.addHandler(handler)
    started = time.monotonic()
    try:
        result = run_job(sequence_spec(str(out), rows=100, shard_rows=50), version="fixed")
    finally:
        flow_logs.removeHandler(handler)
    assert time.monotonic() - started >= 2.5, "the live lease was not waited for"
    assert result["rows"] == 100 and not result["already_complete"]
    text = "\n".join(said)
    assert "following it" in text and "took over" in text, text
    assert open_dataset(str(out)).manifest.rows == 100
    assert not (out / "fixed" / layout.LEASE).exists()


@pytest.mark.usefixtures("ray_local", "prefect_server")
def test_running_into_a_version_with_a_broken_manifest_is_a_named_error(tmp_path: Path) -> None:
    from synthfactory.dataset.manifest import BrokenManifestError
    from synthfactory_flows.generate import run_job

    from .helpers import sequence_spec

    out = tmp_path / "out"
    (out / "fixed").mkdir(parents=True)
    (out / "fixed" / "manifest.json").write_text('{"format": "synthfactory.data')
    with pytest.raises(BrokenManifestError, match="not a readable manifest") as caught:
        run_job(sequence_spec(str(out), rows=20, shard_rows=10), version="fixed")
    assert caught.value.fix and "delete the version folder" in caught.value.fix
