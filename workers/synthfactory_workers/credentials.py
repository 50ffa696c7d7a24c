"""Credentials for the actors and tasks of a job, over a channel Ray writes to no file.

Ray writes every ``runtime_env`` it sets up, ``env_vars`` included, to its session's
``runtime_env_agent.log`` (readable by every user of the machine), and keeps it in GCS,
its task events and dashboard. So ``env_vars`` carry settings only; credentials (AWS keys,
the variable a text backend's ``api_key_env`` names) go another way:

- the driver gives the values to a *holder*: a small named Ray actor, one per set of
  values, living as long as the driver (its name is random; the values never leave
  memory);
- the actors' and tasks' ``env_vars`` carry only the holder's name (``HOLDER_VARIABLE``);
  every actor constructor and task function the pool's options are used for calls
  ``receive()`` first: it fetches the values from the holder and sets them in the
  worker's ``os.environ``, where boto3 and the openai backend read them (a restarted
  actor runs its constructor again, so it receives them again).

Ray's ``worker_process_setup_hook`` would spare those calls, but a hook cannot call an
actor: the worker has no job yet, and submitting a task there crashes it (Ray 2.60).

The values travel as the argument of one holder call and the return value of another:
a few hundred bytes, so inlined in Ray's RPCs (never the object store, which can spill to
disk). Unlike a constructor's arguments, which GCS keeps for restarts (in Redis, with GCS
fault tolerance), a call's arguments are kept nowhere, and Ray logs neither.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Mapping
from typing import Any

#: the worker environment variable naming the holder (a random name: no secret)
HOLDER_VARIABLE = "SYNTHFACTORY_CREDENTIALS"
#: the Ray namespace of every holder
NAMESPACE = "synthfactory-credentials"
#: seconds a starting worker waits for the holder
FETCH_TIMEOUT = 60.0

#: values -> (name, handle) of their holder; the handle keeps the actor alive (Ray stops
#: an actor, named or not, once no handle to it is left)
_holders: dict[tuple[tuple[str, str], ...], tuple[str, Any]] = {}
_lock = threading.Lock()
#: the holder this process received from (``receive``)
_received: str | None = None


class CredentialHolder:
    """The values, in memory, for the workers that ask (wrapped with ``ray.remote``)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def put(self, values: dict[str, str]) -> None:
        self._values = dict(values)

    def get(self) -> dict[str, str]:
        return dict(self._values)

    def __repr__(self) -> str:  # what Ray shows and logs for the actor: never the values
        return "CredentialHolder"


def worker_env(values: Mapping[str, str]) -> dict[str, str]:
    """The ``env_vars`` by which the workers of a task or actor find ``values``: the
    holder's name, no value. Empty when there is nothing to send or no Ray to send it
    through."""
    import ray

    if not values or not ray.is_initialized():
        return {}
    return {HOLDER_VARIABLE: holder_name(values)}


def holder_name(values: Mapping[str, str]) -> str:
    """The name of a live holder of exactly these values, started if there is none (the
    first holder died, or Ray was restarted since)."""
    import ray

    key = tuple(sorted(values.items()))
    with _lock:
        known = _holders.pop(key, None)
        if known is not None:
            try:
                ray.get_actor(known[0], namespace=NAMESPACE)
                _holders[key] = known
                return known[0]
            except ValueError:  # gone with its cluster or its node
                pass
        name = "holder-" + secrets.token_hex(12)
        holder: Any = (
            ray.remote(CredentialHolder)
            .options(name=name, namespace=NAMESPACE, num_cpus=0, max_restarts=0)
            .remote()
        )
        ray.get(holder.put.remote(dict(values)))
        _holders[key] = (name, holder)
        return name


def receive() -> None:
    """The holder's values into this worker's ``os.environ`` (once per process: a worker
    serves one runtime_env, so one holder). A no-op where no holder is named (the
    driver, a generator used outside Ray). A holder that is gone is an error naming it,
    never a value."""
    global _received
    name = os.environ.get(HOLDER_VARIABLE)
    if not name or name == _received:
        return
    import ray

    try:
        holder = ray.get_actor(name, namespace=NAMESPACE)
        reply: Any = ray.get(holder.get.remote(), timeout=FETCH_TIMEOUT)
    except Exception as exc:
        raise RuntimeError(
            f"this worker could not receive the job's credentials from {NAMESPACE}/{name} "
            f"({type(exc).__name__}): has the driver that started it gone?"
        ) from None
    os.environ.update({str(k): str(v) for k, v in dict(reply).items()})
    _received = name
