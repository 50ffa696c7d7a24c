"""A graceful stop, inside an actor: send nothing new, let what is in flight land.

The driver, told to stop (SIGTERM, Ctrl-C), asks each actor to ``drain``. That sets
``STOP`` in the actor's process: backends stop sending requests (an unsent request is a
failed completion marked ``not sent``), the answers already on their way arrive and are
journaled as usual, and the shard ends with ``ShardStopped`` instead of committing. A
re-run reads the journal and pays for nothing twice.
"""

from __future__ import annotations

import threading

from synthfactory.errors import SynthfactoryError

STOP = threading.Event()

NOT_SENT = "not sent: the job is stopping"


class ShardStopped(SynthfactoryError):
    """The job was stopped while this shard ran: nothing committed, answers journaled."""

    transient = False


def stopping() -> bool:
    return STOP.is_set()
