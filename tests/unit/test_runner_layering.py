"""The runner and the daemon service write no SQL of their own: every statement they need is a
named function in monitor.store (runs, processes, writes). Checked on the source with `ast`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYERED = ["monitor/runner.py", "monitor/daemon/service.py"]

SQL_PACKAGES = ("sqlalchemy", "sqlmodel")
# What builds a statement or a clause of one.
QUERY_CONSTRUCTS = frozenset(
    {
        "select",
        "update",
        "delete",
        "insert",
        "text",
        "func",
        "col",
        "and_",
        "or_",
        "not_",
        "exists",
        "case",
        "literal",
        "literal_column",
        "bindparam",
        "tuple_",
    }
)
# What runs a statement.
EXECUTING = frozenset({"execute", "exec", "exec_driver_sql", "scalars", "scalar", "scalar_one"})
SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|PRAGMA|BEGIN|WITH)\s")


def is_sql_package(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in SQL_PACKAGES


def sql_of(source: str) -> list[str]:
    """Each place in `source` that builds or runs SQL itself, as `line: what`."""
    found: list[str] = []
    sql_modules: set[str] = set()  # local names bound to sqlalchemy/sqlmodel modules
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and is_sql_package(node.module):
            for alias in node.names:
                if alias.name in QUERY_CONSTRUCTS:
                    found.append(f"{node.lineno}: imports {alias.name} from {node.module}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if is_sql_package(alias.name):
                    sql_modules.add((alias.asname or alias.name).split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EXECUTING
        ):
            found.append(f"{node.lineno}: calls .{node.func.attr}()")
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL_TEXT.match(node.value)
        ):
            found.append(f"{node.lineno}: SQL text {node.value[:40]!r}")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in QUERY_CONSTRUCTS
            and isinstance(node.value, ast.Name)
            and node.value.id in sql_modules
        ):
            found.append(f"{node.lineno}: uses {node.value.id}.{node.attr}")
    return found


@pytest.mark.parametrize("path", LAYERED)
def test_module_builds_no_sql(path: str) -> None:
    assert sql_of((REPO / path).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy import select",
        "from sqlmodel import col",
        "from sqlalchemy.sql import update as u",
        "import sqlalchemy as sa\nq = sa.delete(x)",
        "session.execute(query)",
        "conn.exec_driver_sql('x')",
        "q = 'SELECT 1'",
        "q = '''\n    UPDATE run SET x = 1'''",
    ],
)
def test_the_check_finds_sql(source: str) -> None:
    assert sql_of(source) != []


def test_the_check_allows_what_the_modules_may_use() -> None:
    allowed = (
        "from sqlalchemy import Engine\n"
        "from sqlalchemy.exc import IntegrityError\n"
        '"""Update the run: select what to send."""\n'
        "counts.get('x'); seen.add(1)\n"
    )
    assert sql_of(allowed) == []
