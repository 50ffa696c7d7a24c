"""Run untrusted Python (code from model output) in a bubblewrap sandbox.

The ``validate`` column's ``check: python, run: true`` executes code a model wrote. That
code is hostile until proven otherwise, so it runs under Debian's ``bwrap`` (package
``bubblewrap``) with:

- namespaces: new user, pid, mount, network, IPC and UTS namespaces (and cgroup where the
  kernel has them), ``--disable-userns`` (no nested user namespaces), ``--new-session``
  (no terminal injection), ``--die-with-parent``, all capabilities dropped and
  ``no_new_privs`` set (setuid binaries give nothing); the code runs as uid/gid 65534;
- filesystem: a read-only bind of ``/usr`` (and the ``/bin``, ``/lib*`` links or dirs)
  and, when it lives elsewhere, the interpreter's prefix; a fresh ``/proc`` (only the
  sandbox's own processes), a minimal ``/dev``; ``/etc`` holds only a one-user ``passwd``
  and ``group``; the program is ``/sandbox/main.py`` (read-only). The only writable places
  are a private tmpfs ``/tmp`` (``TMP_BYTES``, the working directory and HOME) and
  ``/dev/shm`` (``SHM_BYTES``); everything else, ``/`` included, is read-only. The host's
  ``/root``, ``/home``, ``/work``, ``/etc/shadow``, the venv and the job's files are not
  there at all;
- network: a network namespace of its own: its own loopback only (the host's 127.0.0.1
  and abstract unix sockets are out of reach), no route out, no DNS;
- environment: only PATH, HOME, TMPDIR and LANG (bwrap itself is started with an empty
  environment, so not even ``/proc/1/environ`` holds a host variable); stdin is
  ``/dev/null``; no host file descriptor is inherited;
- limits, set inside the user namespace before the code starts: RLIMIT_AS (``memory_mb``),
  RLIMIT_CPU (``timeout_s`` + 1 s), RLIMIT_FSIZE (16 MiB), RLIMIT_NOFILE (64),
  RLIMIT_NPROC (64: it counts the processes of the sandbox's own user namespace, so a fork
  bomb stops there), RLIMIT_CORE (0); stderr is read back from a file (at most 16 MiB are
  written, the last 64 KiB are read);
- lifetime: ``timeout_s`` of wall clock. bwrap's process group is killed then, every
  process left under it too, and the sandbox's pid namespace dies with its init, so no
  child, grandchild or double-forked daemon outlives the call, on a timeout or not.

When the worker runs as root, bwrap itself is started as uid/gid 65534 (no supplementary
groups), so that the sandbox's processes belong to an unprivileged user on the host as
well: RLIMIT_NPROC does not apply to root's processes, and a kernel bug that let code out
of the namespaces would leave it as ``nobody``. That user cannot read an interpreter under
``/root`` (pyenv, uv): then the system ``/usr/bin/python3.X`` of the same version runs the
code (only the standard library is needed).

``unavailable()`` says why the sandbox cannot run here (None when it can): no ``bwrap``,
user namespaces refused by the kernel, no interpreter the sandbox user can run. Preflight
refuses ``run: true`` then, and ``run()`` raises: the code never runs unconfined.
``SYNTHFACTORY_SANDBOX=unavailable`` simulates that (for tests).
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from synthfactory.errors import ConfigError

SANDBOX_ID = 65534
"""uid and gid of the code inside the sandbox (and of bwrap on the host when run as root)."""
NPROC = 64
NOFILE = 64
FSIZE_BYTES = 16 << 20
TMP_BYTES = 64 << 20
SHM_BYTES = 16 << 20
STDERR_TAIL = 64 << 10
PROGRAM = "/sandbox/main.py"
OVERRIDE = "SYNTHFACTORY_SANDBOX"
"""``unavailable`` makes ``unavailable()`` report no sandbox (tests of the refusal)."""
FIX = (
    "install bubblewrap (apt-get install bubblewrap) and allow unprivileged user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0; in a "
    "container, a seccomp/AppArmor profile that permits them), or set run: false"
)

# Runs first inside the sandbox: the limits, then the program in a fresh interpreter.
LAUNCHER = f"""\
import os, resource, sys
memory, cpu = int(sys.argv[1]), int(sys.argv[2])
for which, value in (
    (resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, cpu),
    (resource.RLIMIT_FSIZE, {FSIZE_BYTES}), (resource.RLIMIT_NOFILE, {NOFILE}),
    (resource.RLIMIT_NPROC, {NPROC}), (resource.RLIMIT_CORE, 0),
):
    hard = resource.getrlimit(which)[1]
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
os.execv(sys.executable, [sys.executable, "-I", "-S", "-B", {PROGRAM!r}])
"""

# -S drops ``site`` (no site-packages, no .pth files); it also drops exit()/quit().
PRELUDE = (
    "import builtins as _sf_b, _sitebuiltins as _sf_s\n"
    "_sf_b.exit = _sf_s.Quitter('exit', 'Ctrl-D (i.e. EOF)')\n"
    "_sf_b.quit = _sf_s.Quitter('quit', 'Ctrl-D (i.e. EOF)')\n"
    "del _sf_b, _sf_s\n"
)


@dataclass(frozen=True)
class Result:
    """How a sandboxed run ended: ``returncode`` (128 + N for a signal N, as bwrap
    reports it; None on a timeout) and the tail of its stderr."""

    returncode: int | None
    stderr: str
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


@dataclass(frozen=True)
class _Setup:
    bwrap: str
    python: str
    binds: tuple[str, ...]


def unavailable() -> str | None:
    """Why Python cannot run sandboxed here, or None when it can (probed once)."""
    if os.environ.get(OVERRIDE, "").strip().lower() == "unavailable":
        return f"{OVERRIDE}=unavailable is set"
    return _probe()


def require(where: str = "validate.run") -> None:
    """A ConfigError naming ``where`` unless the sandbox works here."""
    why = unavailable()
    if why is not None:
        raise ConfigError(
            f"{where}: code from model output runs only in a sandbox, and none is "
            f"available here: {why}",
            fix=FIX,
        )


def run(program: str, timeout_s: float, memory_mb: int) -> Result:
    """Run ``program`` (Python source; the prelude is added) in the sandbox; raises
    ConfigError when there is no sandbox (never runs it unconfined)."""
    require()
    setup = _setup()
    assert isinstance(setup, _Setup)  # require() passed
    return _run(setup, PRELUDE + program, timeout_s, memory_mb)


# -- setup ----------------------------------------------------------------------------------


@functools.cache
def _probe() -> str | None:
    setup = _setup()
    if isinstance(setup, str):
        return setup
    try:
        trial = f"import os\nassert os.getuid() == {SANDBOX_ID}\n"
        done = _run(setup, PRELUDE + trial, 60, 256)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap could not start: {exc}"
    if done.timed_out:
        return "a trial run of the sandbox did not finish in 60 s"
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        return f"a trial run of bwrap failed: {lines[-1] if lines else done.returncode}"
    return None


def _setup() -> _Setup | str:
    """The bwrap binary, the interpreter and the read-only binds, or why there are none."""
    return _setup_cached(os.geteuid() == 0)


@functools.cache
def _setup_cached(as_root: bool) -> _Setup | str:
    bwrap = shutil.which("bwrap") or next(
        (p for p in ("/usr/bin/bwrap", "/usr/local/bin/bwrap") if os.access(p, os.X_OK)), None
    )
    if bwrap is None:
        return "bubblewrap (bwrap) is not installed"
    python = _interpreter(as_root)
    if python is None:
        version = "{}.{}".format(*sys.version_info[:2])
        return (
            f"no Python {version} that uid {SANDBOX_ID} may run (the worker runs as root and "
            f"{_base_executable()} is not readable by others; install python{version} "
            "system-wide or run the worker as a non-root user)"
        )
    binds = ["/usr"]
    prefix = os.path.realpath(sys.base_prefix)
    if python == _base_executable() and not _under(prefix, "/usr"):
        binds.append(prefix)
        if not _under(python, prefix):
            binds.append(python)
    return _Setup(bwrap, python, tuple(binds))


def _base_executable() -> str:
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _interpreter(as_root: bool) -> str | None:
    """The base interpreter (not the venv's: only the standard library is needed), or when
    root must drop to an unprivileged user that cannot reach it, a system one of the same
    version."""
    base = _base_executable()
    if not as_root:
        return base
    version = "{}.{}".format(*sys.version_info[:2])
    candidates = [base, f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if os.path.isfile(real) and _public(real):
            if real == base and not _public(os.path.realpath(sys.base_prefix)):
                continue
            return real
    return None


def _public(path: str) -> bool:
    """Whether others may reach ``path`` (every parent searchable, ``path`` itself readable
    and executable or searchable)."""
    parts = path.rstrip("/").split("/")
    for n in range(1, len(parts)):
        parent = "/".join(parts[:n]) or "/"
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IXOTH and mode & stat.S_IROTH)


def _command(setup: _Setup, memory_mb: int, cpu_s: int, fds: dict[str, int]) -> list[str]:
    args = [
        setup.bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        str(SANDBOX_ID),
        "--gid",
        str(SANDBOX_ID),
        "--hostname",
        "sandbox",
    ]
    for path in setup.binds:
        args += ["--ro-bind", path, path]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(TMP_BYTES), "--perms", "1777", "--tmpfs", "/tmp"]
    args += ["--size", str(SHM_BYTES), "--perms", "1777", "--tmpfs", "/dev/shm"]
    args += ["--ro-bind-data", str(fds["program"]), PROGRAM]
    args += ["--ro-bind-data", str(fds["passwd"]), "/etc/passwd"]
    args += ["--ro-bind-data", str(fds["group"]), "/etc/group"]
    # last: nothing outside /tmp and /dev/shm stays writable
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    args += ["--chdir", "/tmp", "--clearenv"]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
    for key, value in env.items():
        args += ["--setenv", key, value]
    memory = memory_mb * 1024 * 1024
    args += ["--", setup.python, "-I", "-S", "-B", "-c", LAUNCHER, str(memory), str(cpu_s)]
    return args


def _data(text: str) -> int:
    """A readable file descriptor (an unlinked temp file) holding ``text``."""
    with tempfile.TemporaryFile() as handle:
        handle.write(text.encode())
        handle.flush()
        fd = os.dup(handle.fileno())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _run(setup: _Setup, program: str, timeout_s: float, memory_mb: int) -> Result:
    sid = SANDBOX_ID
    fds = {
        "program": _data(program),
        "passwd": _data(f"sandbox:x:{sid}:{sid}:sandbox:/tmp:/usr/sbin/nologin\n"),
        "group": _data(f"sandbox:x:{sid}:\n"),
    }
    as_root = os.geteuid() == 0
    started = time.monotonic()
    try:
        with tempfile.TemporaryFile() as stderr:
            command = _command(setup, memory_mb, int(timeout_s) + 1, fds)
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={"PATH": "/usr/bin:/bin"},
                cwd="/",
                pass_fds=tuple(fds.values()),
                start_new_session=True,
                user=sid if as_root else None,
                group=sid if as_root else None,
                extra_groups=[] if as_root else None,
            )
            returncode: int | None
            try:
                returncode = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                _kill_tree(process)
            seconds = time.monotonic() - started
            size = stderr.seek(0, os.SEEK_END)
            stderr.seek(max(0, size - STDERR_TAIL))
            text = stderr.read().decode(errors="replace")
    finally:
        for fd in fds.values():
            os.close(fd)
    return Result(returncode, text, seconds)


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL bwrap's process group and every process under bwrap, and wait until they
    are gone. (The pid namespace already ends every sandboxed process when its init
    exits; this covers a timeout, where bwrap is still running.)"""
    if process.poll() is not None:
        return
    doomed = _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in doomed):
        time.sleep(0.01)


def _descendants(root: int) -> list[int]:
    """Host pids of every process under ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False
