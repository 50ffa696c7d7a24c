"""The ``validate`` column: JSON Schema, regex, Python and SQL checks of an earlier column.

Each check returns ``(passed, error)``; the error is a short reason (None when it passed).

Python ``run: true`` executes code a model wrote (then ``test``), so it runs only inside
the bubblewrap sandbox of ``synthfactory_workers.text.sandbox`` (its docstring has the
details):

- isolation: new user, pid, mount, network, IPC and UTS namespaces, uid 65534, no
  capabilities, no_new_privs; a read-only view of ``/usr`` (the interpreter and its
  standard library) and nothing else of the host's files (no ``/etc/shadow``, ``/root``,
  ``/work``, venv or job files); a private tmpfs ``/tmp`` is the only writable place; a
  network namespace of its own (no route out, no DNS, not the host's loopback); an
  environment of PATH, HOME, TMPDIR and LANG only;
- time: ``timeout_s`` wall clock, then the whole process tree is killed (the pid namespace
  ends every child and grandchild when the run ends, timed out or not), and as much CPU
  time (RLIMIT_CPU);
- memory and more: ``memory_mb`` of address space (RLIMIT_AS), 64 processes (RLIMIT_NPROC,
  so a fork bomb stops), 64 open files, files of at most 16 MiB (RLIMIT_FSIZE), no core
  dumps.

Without a working sandbox (no ``bwrap``, user namespaces refused) ``run: true`` is refused:
at preflight (``check_pipeline``) and again here before anything runs (a ConfigError
naming ``generator.columns[<name>].run``). The code never runs unconfined.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from synthfactory.spec.columns import ValidateColumn

FENCE = re.compile(r"```[A-Za-z0-9_+-]*[ \t]*\n(.*?)```", re.S)


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

    from synthfactory_workers.text.filters import extract_json

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
    from synthfactory_workers.text import sandbox

    sandbox.require(f"generator.columns[{column.name}].run")
    program = code + "\n" + (test if test is not None else column.test or "") + "\n"
    return run_python(program, column.timeout_s, column.memory_mb)


def run_python(program: str, timeout_s: float, memory_mb: int) -> tuple[bool, str | None]:
    """(passed, why not) of running ``program`` in the sandbox; a ConfigError when there
    is none."""
    from synthfactory_workers.text import sandbox

    done = sandbox.run(program, timeout_s, memory_mb)
    if done.returncode is None:
        return False, f"python_timeout: over {timeout_s:g} s"
    if done.returncode == 0:
        return True, None
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    last = lines[-1] if lines else f"exit status {done.returncode}"
    if done.returncode > 128:  # bwrap reports a fatal signal N as 128 + N
        last = f"killed by signal {done.returncode - 128} ({last})"
    return False, f"python_failed: {last[:300]}"
