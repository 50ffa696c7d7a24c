"""Bind Prefect's ephemeral server to the life of the process that started it.

Without ``PREFECT_API_URL`` a flow run starts a temporary Prefect server (a ``uvicorn``
subprocess) and stops it at exit. A driver killed with SIGKILL (the OOM killer, ``kill
-9``) runs no exit handler, and the server would keep running, holding its port and its
database. ``install()`` makes every such server start under a watchdog: a small process
that holds the read end of a pipe whose write end only the driver has. When the driver
dies, however it dies, the pipe closes, and the watchdog stops each server it was told
about (SIGTERM, then SIGKILL after a grace period) unless the driver stopped it first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

#: the watchdog: reads "+pid start" / "-pid" lines until EOF, then stops what is left
WATCHDOG = r"""
import os, signal, sys, time

def started(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None if not os.path.isdir("/proc") else ""

def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

fd, guarded, buf = int(sys.argv[1]), {}, b""
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    chunk = os.read(fd, 4096)
    if not chunk:
        break
    buf += chunk
    *lines, buf = buf.split(b"\n")
    for line in lines:
        op, _, rest = line.decode().partition(" ")
        if op.startswith("+"):
            guarded[int(op[1:])] = rest
        elif op.startswith("-"):
            guarded.pop(int(op[1:]), None)
# the driver is gone: stop the servers it left, and never a process that reused a pid
mine = [p for p, start in guarded.items() if alive(p) and started(p) in (start, None)]
for pid in mine:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
deadline = time.monotonic() + 5
while any(alive(p) for p in mine) and time.monotonic() < deadline:
    time.sleep(0.05)
for pid in mine:
    if alive(pid) and started(pid) in (guarded[pid], None):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def _start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (Linux; empty elsewhere): with the pid it names
    one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


class _Watchdog:
    """The driver's end: started on the first server, kept until the driver exits."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.fd: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def _send(self, line: str) -> None:
        with self.lock:
            if self.fd is None:
                read, self.fd = os.pipe()  # neither end is inherited by other children
                try:
                    self.proc = subprocess.Popen(
                        [sys.executable, "-c", WATCHDOG, str(read)],
                        pass_fds=(read,),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,  # a Ctrl-C of the driver's group spares it
                    )
                finally:
                    os.close(read)
            os.write(self.fd, f"{line}\n".encode())

    def guard(self, pid: int) -> None:
        self._send(f"+{pid} {_start_time(pid)}")

    def release(self, pid: int) -> None:
        if self.fd is not None:
            self._send(f"-{pid}")


_WATCHDOG = _Watchdog()
_installed = False


def install() -> None:
    """Start every ephemeral Prefect server of this process under the watchdog (idempotent;
    costs nothing until a server starts)."""
    global _installed
    if _installed:
        return
    from prefect.server.api.server import SubprocessASGIServer

    spawn = SubprocessASGIServer._run_uvicorn_command
    stop = SubprocessASGIServer.stop

    def guarded_spawn(self: SubprocessASGIServer) -> subprocess.Popen[Any]:
        proc = spawn(self)
        _WATCHDOG.guard(proc.pid)
        return proc

    def released_stop(self: SubprocessASGIServer) -> None:
        proc = self.server_process
        try:
            stop(self)
        finally:
            if proc is not None:
                _WATCHDOG.release(proc.pid)

    SubprocessASGIServer._run_uvicorn_command = guarded_spawn  # type: ignore[method-assign]
    SubprocessASGIServer.stop = released_stop  # type: ignore[method-assign]
    _installed = True
