"""A large spec reaches the flow by reference: stored under ``{output}/_specs/`` for the
run, not sent as a Prefect flow parameter (the API refuses parameters over 512 KB)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import Any

from synthfactory.spec import JobSpec
from synthfactory.storage import ObjectStore, open_store, split_uri

#: a spec whose JSON is larger than this goes to the flow by reference, not as a parameter
#: (Prefect's API refuses flow parameters over 512 KB, and logs them)
SPEC_BY_REFERENCE_BYTES = 64 * 1024
SPEC_REF = "spec_ref"
SPECS = "_specs"


@contextlib.contextmanager
def spec_parameter(job: JobSpec, root: ObjectStore) -> Iterator[JobSpec | dict[str, Any]]:
    """The flow's ``spec`` parameter: the model itself, or for a large spec a reference
    ``{"spec_ref": uri}`` to its JSON stored under ``{output}/_specs/`` for the run."""
    text = job.model_dump_json()
    if len(text) <= SPEC_BY_REFERENCE_BYTES:
        yield job
        return
    key = f"{SPECS}/{hashlib.sha256(text.encode()).hexdigest()}.json"
    root.put_text(key, text)
    try:
        yield {SPEC_REF: root.url(key), "storage": job.storage.model_dump(mode="json")}
    finally:
        with contextlib.suppress(Exception):  # a leftover copy is harmless
            root.delete(key)


def dereference(spec: dict[str, Any]) -> dict[str, Any]:
    """A spec passed by reference (``spec_parameter``) read back; any other dict as it is."""
    if set(spec) != {SPEC_REF, "storage"}:
        return spec
    from synthfactory.spec.storage import StorageOptions

    folder, name = split_uri(str(spec[SPEC_REF]))
    store = open_store(folder, StorageOptions.model_validate(spec["storage"]))
    loaded: dict[str, Any] = json.loads(store.get_bytes(name))
    return loaded
