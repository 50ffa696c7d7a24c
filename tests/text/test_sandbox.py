"""The sandbox of the ``validate`` column's ``run: true`` against code that tries to get out.

Every attack is a program run through the real sandbox (bubblewrap), the way a model's
completion would be. An attack program exits 0 when nothing it tried worked and raises
``SystemExit('ESCAPED: ...')`` when something did; wherever the host can see the effect
(a file written, a process killed or left running, a connection made) the test checks from
outside as well. Then the positive side (a correct program passes, an assert fails with
python_failed, timeouts, memory) and the refusal without a sandbox (preflight and run time).

Where bubblewrap is missing these tests skip, unless SYNTHFACTORY_REQUIRE_SANDBOX=1 (set by
scripts/test.sh, which installs bubblewrap): then they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from synthfactory.errors import ConfigError
from synthfactory.spec import JobSpec, load_spec
from synthfactory.spec.columns import ValidateColumn
from synthfactory.spec.generators.text import LLMConfig
from synthfactory_flows.preflight import preflight
from synthfactory_workers.text import sandbox
from synthfactory_workers.text.preflight import check_pipeline
from synthfactory_workers.text.validators import validate

REQUIRED = os.environ.get("SYNTHFACTORY_REQUIRE_SANDBOX") == "1"
WHY = sandbox.unavailable()
needs_sandbox = pytest.mark.skipif(
    WHY is not None and not REQUIRED, reason=f"no sandbox here: {WHY}"
)


def vcol(**options: Any) -> ValidateColumn:
    return ValidateColumn.model_validate(
        {"name": "ok", "column": "code", "check": "python", "run": True, **options}
    )


def attempt(code: str, timeout_s: float = 10.0, memory_mb: int = 256) -> tuple[bool, str | None]:
    return validate(vcol(timeout_s=timeout_s, memory_mb=memory_mb), textwrap.dedent(code))


def assert_contained(result: tuple[bool, str | None], *secrets: str) -> None:
    """The attack ran to its end and found every door shut."""
    ok, why = result
    assert (ok, why) == (True, None), why
    for secret in secrets:
        assert secret not in str(why)


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A world-writable directory on the host: only the sandbox's mounts keep code out."""
    path = Path(tempfile.mkdtemp(prefix="sf-sandbox-test-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def marked(marker: str) -> list[psutil.Process]:
    """Host processes (zombies aside) whose name or command line holds ``marker``."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        if process.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        cmdline = process.info.get("cmdline") or []
        if marker in (process.info.get("name") or "") or any(marker in a for a in cmdline):
            found.append(process)
    return found


def assert_none_left(marker: str) -> None:
    deadline = time.monotonic() + 2
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marked(marker) == [], f"processes outlived the validator: {marked(marker)}"


# -- it works --------------------------------------------------------------------------------


@needs_sandbox
def test_sandbox_is_available_where_required() -> None:
    assert WHY is None, WHY


@needs_sandbox
def test_a_correct_program_passes_and_a_failing_one_says_why() -> None:
    code = "def add(a, b):\n    return a + b\n"
    column = vcol(test="assert add(2, 3) == 5")
    assert validate(column, f"```python\n{code}```") == (True, None)
    ok, why = validate(column, "def add(a, b):\n    return 0\n")
    assert not ok and str(why).startswith("python_failed") and "AssertionError" in str(why)
    ok, why = validate(column, "def add(a, b) return")
    assert not ok and str(why).startswith("syntax_error")
    # the standard library is there; exit() works without site
    stdlib = "import json, hashlib, sqlite3, decimal, re, collections\nexit(0)\n"
    assert validate(vcol(), stdlib) == (True, None)
    ok, why = validate(vcol(), "import sys\nsys.exit('bad row')")
    assert (ok, why) == (False, "python_failed: bad row")


@needs_sandbox
def test_timeout_and_memory_limits() -> None:
    started = time.monotonic()
    ok, why = attempt("while True:\n    pass\n", timeout_s=1)
    assert (ok, why) == (False, "python_timeout: over 1 s")
    assert time.monotonic() - started < 6
    ok, why = attempt("x = bytearray(2**30)\n", memory_mb=128)
    assert not ok and "MemoryError" in str(why)
    assert attempt("x = bytearray(2**20)\n", memory_mb=128) == (True, None)


# -- files -----------------------------------------------------------------------------------


@needs_sandbox
def test_no_write_outside_its_tmp(host_dir: Path) -> None:
    name = f"sf-escape-{uuid.uuid4().hex}"
    host_targets = [
        host_dir / name,
        Path("/root") / name,
        Path("/work") / name,
        Path(sys.prefix) / name,  # the venv
        Path(sys.base_prefix) / name,  # the interpreter (bound read-only when not root)
        Path("/usr") / name,
        Path("/etc") / name,
        Path("/") / name,
        Path(tempfile.gettempdir()) / name,
    ]
    inside_only = ["/sandbox/" + name, "/dev/" + name, "/proc/" + name]
    paths = [str(p) for p in host_targets] + inside_only
    paths += [f"/proc/self/root{host_dir}/{name}", f"/proc/1/root{host_dir}/{name}"]
    code = f"""
        import os
        wrote = []
        for path in {paths!r}:
            try:
                with open(path, "w") as fh:
                    fh.write("pwned")
            except OSError:
                continue
            if not path.startswith("/tmp/"):
                wrote.append(path)
        try:
            os.makedirs("/usr/lib/{name}")
            wrote.append("/usr/lib/{name}")
        except OSError:
            pass
        with open("/tmp/scratch", "w") as fh:  # its own tmp is writable
            fh.write("fine")
        if wrote:
            raise SystemExit(f"ESCAPED: wrote {{wrote}}")
    """
    assert_contained(attempt(code))
    for target in host_targets:
        assert not target.exists(), target
    assert not (Path("/usr/lib") / name).exists()


@needs_sandbox
def test_no_read_of_host_secrets(host_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = uuid.uuid4().hex
    key = uuid.uuid4().hex
    (host_dir / "secret").write_text(secret)
    (host_dir / "secret").chmod(0o644)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key)
    assert Path("/etc/shadow").exists()  # there is something to steal on the host
    me = os.getpid()
    setup = sandbox._setup()
    binds = list(setup.binds) if isinstance(setup, sandbox._Setup) else []
    paths = [
        f"{host_dir}/secret",
        f"/proc/self/root{host_dir}/secret",
        f"/proc/1/root{host_dir}/secret",
        f"/proc/{me}/root{host_dir}/secret",
        "/etc/shadow",
        "/proc/1/root/etc/shadow",
        f"/proc/{me}/environ",
        f"/proc/{me}/cmdline",
        "/proc/self/environ",
        "/proc/1/environ",
        "/root/.bash_history",
        os.path.expanduser("~/.aws/credentials"),
    ]
    code = f"""
        import os
        leaks = []
        for name, value in os.environ.items():
            if name not in ("PATH", "HOME", "TMPDIR", "LANG", "PWD"):
                leaks.append("env " + name)
            if {secret!r} in value or {key!r} in value:
                leaks.append("env value " + name)
        candidates = list({paths!r})
        candidates += [f"/proc/{{p}}/environ" for p in os.listdir("/proc") if p.isdigit()]
        for path in candidates:
            try:
                with open(path, "rb") as fh:
                    data = fh.read().decode(errors="replace")
            except OSError:
                continue
            if {secret!r} in data or {key!r} in data or "root:" in data:
                leaks.append(path)
        with open("/etc/passwd") as fh:
            if "root" in fh.read():
                leaks.append("/etc/passwd is the host's")
        binds = {binds!r}  # the interpreter's prefix may sit under /root or /home
        for path in ("/work", "/root", "/home", "/sys/class", "/run", "/var", "/etc/shadow"):
            if os.path.exists(path) and not any(b.startswith(path + "/") for b in binds):
                leaks.append("sees " + path)
        if leaks:
            raise SystemExit(f"ESCAPED: {{leaks}}")
    """
    assert_contained(attempt(code), secret, key)


# -- processes -------------------------------------------------------------------------------


@needs_sandbox
def test_no_signal_or_ptrace_of_a_host_process() -> None:
    victim = subprocess.Popen(["sleep", "60"])
    try:
        code = f"""
            import ctypes, os, signal
            done = []
            for pid in ({victim.pid}, {os.getpid()}, {os.getppid()}):
                try:
                    os.kill(pid, signal.SIGKILL)
                    done.append(f"kill {{pid}}")
                except OSError:
                    pass
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.ptrace(16, {victim.pid}, 0, 0) == 0:  # PTRACE_ATTACH
                done.append("ptrace")
            try:
                with open("/proc/{victim.pid}/mem", "rb") as fh:
                    done.append("mem")
            except OSError:
                pass
            seen = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
            if max(seen) > 10 or len(seen) > 5:  # its own pid namespace: init and itself
                done.append(f"sees pids {{seen}}")
            if done:
                raise SystemExit(f"ESCAPED: {{done}}")
        """
        assert_contained(attempt(code))
        time.sleep(0.2)
        assert victim.poll() is None, "the host's sleep was killed"
        status = Path(f"/proc/{victim.pid}/status").read_text()
        assert "TracerPid:\t0" in status
    finally:
        victim.kill()
        victim.wait()


@needs_sandbox
def test_a_fork_bomb_is_capped_and_cleaned_up() -> None:
    marker = "sfb" + uuid.uuid4().hex[:10]
    counted = f"""
        import ctypes, os, time
        ctypes.CDLL(None).prctl(15, {marker.encode()!r}, 0, 0, 0)  # PR_SET_NAME, inherited
        n = 0
        while n < 500:
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                time.sleep(60)
                os._exit(0)
            n += 1
        if n >= 64:
            raise SystemExit(f"ESCAPED: forked {{n}} processes")
    """
    assert_contained(attempt(counted))
    assert_none_left(marker)
    bomb = f"""
        import ctypes, os
        ctypes.CDLL(None).prctl(15, {marker.encode()!r}, 0, 0, 0)
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """
    started = time.monotonic()
    assert attempt(bomb, timeout_s=2) == (False, "python_timeout: over 2 s")
    assert time.monotonic() - started < 8
    assert_none_left(marker)
    assert validate(vcol(), "x = 1") == (True, None)  # the host still forks fine


@needs_sandbox
@pytest.mark.parametrize("then", ["exit", "hang"])
def test_a_double_forked_grandchild_dies_with_the_run(then: str) -> None:
    marker = "sf-grandchild-" + uuid.uuid4().hex
    code = f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                script = "import time\\ntime.sleep(60)"
                os.execv(sys.executable, [sys.executable, "-c", script, {marker!r}])
            os._exit(0)
        os.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            running = False
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{{pid}}/cmdline", "rb") as fh:
                        running = running or {marker.encode()!r} in fh.read()
                except OSError:
                    pass
            if running:
                break
            time.sleep(0.05)
        else:
            raise SystemExit("the grandchild never started")
        while {then!r} == "hang":
            time.sleep(1)
    """
    if then == "exit":
        assert attempt(code) == (True, None)
    else:
        assert attempt(code, timeout_s=2) == (False, "python_timeout: over 2 s")
    assert_none_left(marker)
    time.sleep(0.5)
    assert marked(marker) == []


# -- network ---------------------------------------------------------------------------------


@needs_sandbox
def test_no_network() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    abstract = f"\0sf-sandbox-{uuid.uuid4().hex}"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(abstract)
    unix.listen()
    try:
        code = f"""
            import socket
            got = []
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
                got.append("tcp to the host")
            except OSError:
                pass
            for name in ("example.com", "pypi.org"):
                try:
                    socket.getaddrinfo(name, 443)
                    got.append("dns " + name)
                except OSError:
                    pass
            try:
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.sendto(b"x", ("1.1.1.1", 53))
                got.append("udp out")
            except OSError:
                pass
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect({abstract!r})
                got.append("abstract unix socket of the host")
            except OSError:
                pass
            names = [n for _, n in socket.if_nameindex()]
            if names != ["lo"]:
                got.append(f"interfaces {{names}}")
            if got:
                raise SystemExit(f"ESCAPED: {{got}}")
        """
        assert_contained(attempt(code))
        for listener in (server, unix):
            listener.settimeout(0.2)
            with pytest.raises(TimeoutError):
                listener.accept()
    finally:
        server.close()
        unix.close()


# -- privileges and /proc ----------------------------------------------------------------------


@needs_sandbox
def test_no_privileges_and_no_way_to_get_them() -> None:
    code = """
        import ctypes, os, subprocess
        got = []
        with open("/proc/self/status") as fh:
            status = dict(line.split(":", 1) for line in fh.read().splitlines())
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            if int(status[cap].strip(), 16):
                got.append(cap)
        if status["NoNewPrivs"].strip() != "1":
            got.append("setuid binaries would work")
        if os.getuid() != 65534 or os.geteuid() != 65534 or os.getgroups() not in ([], [65534]):
            got.append("ids")
        for call in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.chroot("/tmp"),
                     lambda: os.setresuid(0, 0, 0)):
            try:
                call()
                got.append("became root")
            except OSError:
                pass
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER: a nested user namespace
            got.append("unshare user")
        if libc.unshare(0x00020000) == 0:  # CLONE_NEWNS
            got.append("unshare mount")
        if libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0:
            got.append("mount")
        for path in ("/proc/sysrq-trigger", "/proc/sys/kernel/hostname"):
            try:
                with open(path, "w") as fh:
                    fh.write("1")
                got.append("wrote " + path)
            except OSError:
                pass
        for dev in ("/dev/mem", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/nvme0n1"):
            if os.path.exists(dev):
                got.append("sees " + dev)
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                fields = line.split()
                if fields[4] == "/usr" and "nosuid" not in fields[5]:
                    got.append("/usr allows setuid")
        for su in ("/usr/bin/su", "/bin/su", "/usr/bin/sudo"):
            if os.path.exists(su):
                done = subprocess.run([su, "-c", "id -u"], capture_output=True, timeout=5,
                                      stdin=subprocess.DEVNULL, check=False)
                if done.returncode == 0:
                    got.append(su + " worked")
        if got:
            raise SystemExit(f"ESCAPED: {got}")
    """
    assert_contained(attempt(code))


# -- resources -------------------------------------------------------------------------------


@needs_sandbox
def test_file_size_disk_and_open_file_limits() -> None:
    code = """
        import os
        got = []
        try:
            with open("/tmp/big", "wb") as fh:
                for _ in range(32):
                    fh.write(b"x" * (1 << 20))
            got.append("a 32 MiB file")
        except OSError:
            pass
        os.remove("/tmp/big")
        written = 0
        try:
            for n in range(20):
                with open(f"/tmp/fill{n}", "wb") as fh:
                    for _ in range(15):
                        fh.write(b"x" * (1 << 20))
                        written += 1
        except OSError:
            pass
        if written > 64:
            got.append(f"{written} MiB in /tmp")
        files = []
        try:
            for n in range(500):
                files.append(open("/dev/null"))
        except OSError:
            pass
        if len(files) >= 64:
            got.append(f"{len(files)} open files")
        if got:
            raise SystemExit(f"ESCAPED: {got}")
    """
    assert_contained(attempt(code, memory_mb=512))


# -- no sandbox: refused -----------------------------------------------------------------------


def job(tmp_path: Path, run: bool) -> JobSpec:
    columns = [
        {"kind": "llm_text", "name": "code", "template": "Write add(a, b)"},
        {"kind": "validate", "name": "passes", "column": "code", "check": "python", "run": run},
    ]
    return load_spec(
        {
            "name": "sandboxed",
            "modality": "text",
            "rows": 2,
            "output": str(tmp_path / "out"),
            "generator": {"kind": "llm", "model": "builtin:smollm2", "columns": columns},
        }
    )


def test_preflight_refuses_run_true_without_a_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sandbox.OVERRIDE, "unavailable")
    with pytest.raises(ConfigError) as caught:
        preflight(job(tmp_path, run=True))  # what `synthfactory validate` and `run` call
    assert caught.value.message.startswith("generator.columns[passes].run: ")
    assert "sandbox" in caught.value.message
    assert caught.value.fix is not None
    assert "bubblewrap" in caught.value.fix and "run: false" in caught.value.fix
    config = job(tmp_path, run=True).generator
    assert isinstance(config, LLMConfig)
    with pytest.raises(ConfigError, match=r"generator\.columns\[passes\]\.run"):
        check_pipeline(config, None)
    preflight(job(tmp_path, run=False))  # parsing only: no sandbox needed


def test_the_validator_refuses_to_run_code_without_a_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(sandbox.OVERRIDE, "unavailable")

    def no_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a process was started")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    with pytest.raises(ConfigError, match=r"generator\.columns\[ok\]\.run"):
        validate(vcol(), "open('/tmp/x', 'w')")
    with pytest.raises(ConfigError):
        sandbox.run("x = 1", 1, 64)
    assert validate(vcol(run=False), "x = 1") == (True, None)
    ok, why = validate(vcol(), "def f(:")  # a syntax error needs no run
    assert not ok and str(why).startswith("syntax_error")


def test_missing_bwrap_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    sandbox._setup_cached.cache_clear()
    try:
        setup = sandbox._setup()
    finally:
        sandbox._setup_cached.cache_clear()
    assert setup == "bubblewrap (bwrap) is not installed"


def test_kill_tree_ends_every_descendant() -> None:
    """The timeout path's cleanup, on an unsandboxed tree of the test's own processes."""
    marker = "sf-tree-" + uuid.uuid4().hex
    script = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}])\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, marker], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(marked(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(marked(marker)) == 2
    sandbox._kill_tree(process)
    assert process.returncode == -signal.SIGKILL
    assert_none_left(marker)
