"""The ``validate`` column: JSON Schema, regex, Python and SQL checks of an earlier column.

Each check returns ``(passed, error)``; the error is a short reason (None when it passed).

Python ``run: true`` executes the code (then ``test``) in a child process:

- time: ``timeout_s`` wall clock (the child is killed) and as much CPU time (RLIMIT_CPU);
- memory: ``memory_mb`` of address space (RLIMIT_AS), files written at most 16 MiB
  (RLIMIT_FSIZE), no core dumps;
- "no network" means: the child runs in an empty network namespace (``unshare -rn``: only
  a down loopback, no route anywhere) where user namespaces are allowed, which the check
  ``sandbox_network()`` reports; in every case its environment holds no proxies or
  credentials (only PATH, HOME=a fresh temp dir, LANG), Python runs isolated (``-I``: no
  user site, no PYTHON* variables) and a prelude replaces ``socket.socket``,
  ``socket.create_connection`` and ``socket.getaddrinfo`` with functions that raise.
  Without a network namespace this is a guard against accidents, not a security boundary
  against hostile code (code can re-import ``_socket``); run untrusted code only where
  ``sandbox_network()`` says ``namespace``.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from synthfactory.spec.columns import ValidateColumn

FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n(.*?)```", re.S)

PRELUDE = (
    "import socket as _sf_socket\n"
    "def _sf_blocked(*_a, **_k):\n"
    "    raise OSError('network is disabled in the synthfactory validator sandbox')\n"
    "_sf_socket.socket = _sf_blocked\n"
    "_sf_socket.create_connection = _sf_blocked\n"
    "_sf_socket.getaddrinfo = _sf_blocked\n"
    "del _sf_socket, _sf_blocked\n"
)
PRELUDE_LINES = PRELUDE.count("\n")


def code_block(text: str) -> str:
    """The first fenced code block of a completion, else the text itself; an opened but
    unclosed fence (a completion cut by max_new_tokens) counts from the fence on."""
    found = FENCE.search(text)
    if found:
        return found.group(1)
    opened = re.search(r"```[A-Za-z0-9_+-]*[ \t]*\n", text)
    return text[opened.end() :] if opened else text


def validate(
    column: ValidateColumn, value: Any, test: str | None = None
) -> tuple[bool, str | None]:
    """(passed, why not) of ``value``; ``test`` is the python run's test code as rendered
    for this row (default: ``column.test`` as written)."""
    if value is None:
        return False, "missing: no value"
    text = value if isinstance(value, str) else json.dumps(value)
    if column.extract_code and column.check in ("python", "sql", "json_schema"):
        text = code_block(text)
    if column.check == "regex":
        assert column.pattern is not None
        pattern = re.compile(column.pattern, re.S)
        found = pattern.fullmatch(text) if column.full_match else pattern.search(text)
        return (True, None) if found else (False, f"regex_mismatch: {column.pattern}")
    if column.check == "json_schema":
        return check_json(text, column.json_schema or {})
    if column.check == "sql":
        return check_sql(text, column.dialect)
    return check_python(text, column, test)


def check_json(text: str, schema: dict[str, Any]) -> tuple[bool, str | None]:
    import jsonschema

    from synthfactory_workers.text.generator import extract_json

    try:
        value = extract_json(text)
    except ValueError as exc:
        return False, f"invalid_json: {exc}"
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path)
    )
    return (False, f"schema_violation: {errors[0].message}") if errors else (True, None)


def check_sql(text: str, dialect: str | None) -> tuple[bool, str | None]:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return False, f"sql_parse_error: {first[:200]}"
    if not statements:
        return False, "sql_empty: no statement"
    for statement in statements:
        if not isinstance(statement, exp.Query | exp.DML | exp.DDL | exp.Command):
            return False, f"sql_not_a_statement: {type(statement).__name__}"
    return True, None


def check_python(
    code: str, column: ValidateColumn, test: str | None = None
) -> tuple[bool, str | None]:
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return False, f"syntax_error: line {exc.lineno}: {exc.msg}"
    except ValueError as exc:  # null bytes
        return False, f"syntax_error: {exc}"
    if not column.run:
        return True, None
    program = PRELUDE + code + "\n" + (test if test is not None else column.test or "") + "\n"
    return run_python(program, column.timeout_s, column.memory_mb)


@functools.cache
def sandbox_network() -> str:
    """'namespace' when children can get an empty network namespace here, else 'guard'."""
    if shutil.which("unshare") is None:
        return "guard"
    try:
        done = subprocess.run(
            ["unshare", "-rn", "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "guard"
    return "namespace" if done.returncode == 0 else "guard"


def _limits(timeout_s: float, memory_mb: int) -> Any:
    def apply() -> None:
        import resource

        memory = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(timeout_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.setsid()

    return apply


def run_python(program: str, timeout_s: float, memory_mb: int) -> tuple[bool, str | None]:
    with tempfile.TemporaryDirectory(prefix="sf-validate-") as tmp:
        path = os.path.join(tmp, "main.py")
        with open(path, "w") as fh:
            fh.write(program)
        command = [sys.executable, "-I", "-B", path]
        if sandbox_network() == "namespace":
            command = ["unshare", "-rn", *command]
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8"}
        try:
            done = subprocess.run(
                command,
                cwd=tmp,
                env=env,
                capture_output=True,
                timeout=timeout_s,
                preexec_fn=_limits(timeout_s, memory_mb),
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return False, f"python_timeout: over {timeout_s:g} s"
    if done.returncode == 0:
        return True, None
    lines = [ln for ln in done.stderr.decode(errors="replace").splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit status {done.returncode}"
    if done.returncode < 0:
        last = f"killed by signal {-done.returncode} ({last})"
    return False, f"python_failed: {last[:300]}"
