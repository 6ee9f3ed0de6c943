"""The command modules parse options, call named store and service functions, and format the
answer: none of them imports SQLAlchemy or SQLModel or opens a session of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLI = Path(__file__).resolve().parents[2] / "monitor" / "cli"
FORBIDDEN_PACKAGES = ("sqlalchemy", "sqlmodel")
FORBIDDEN_CALLS = ("Session", "session_scope")

# (module, imported name) pairs allowed under `if TYPE_CHECKING:` only: annotations, never run.
TYPE_ONLY_ALLOWED = {
    # AppContext hands the engine to store functions and must name its type.
    ("context.py", "Engine"),
}


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the statements inside `if TYPE_CHECKING:` blocks."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and (
            (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
            or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
        ):
            for statement in node.body:
                inside.update(id(n) for n in ast.walk(statement))
    return inside


def violations(source: str, filename: str) -> list[str]:
    """What in this module's source reaches past the store's functions into SQL."""
    tree = ast.parse(source, filename)
    type_only = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [(alias.name, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [(node.module, alias.name) for alias in node.names]
        else:
            modules = []
        for module, name in modules:
            if module.split(".")[0] in FORBIDDEN_PACKAGES:
                if id(node) in type_only and (filename, name) in TYPE_ONLY_ALLOWED:
                    continue
                found.append(f"{filename}:{node.lineno} imports {name} from {module}")
            elif name in FORBIDDEN_CALLS:
                found.append(f"{filename}:{node.lineno} imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called in FORBIDDEN_CALLS:
                found.append(f"{filename}:{node.lineno} calls {called}")
    return found


@pytest.mark.parametrize("path", sorted(CLI.glob("*.py")), ids=lambda p: p.name)
def test_command_module_leaves_sql_to_the_store(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), path.name) == []


def test_the_check_can_fail() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from sqlalchemy import Engine\n"
        "def f(engine):\n"
        "    from sqlalchemy.orm import Session\n"
        "    import sqlmodel\n"
        "    from monitor.store.db import session_scope\n"
        "    with Session(engine) as s, session_scope(engine) as t:\n"
        "        pass\n"
    )
    assert sorted(violations(source, "alerts.py")) == [
        "alerts.py:3 imports Engine from sqlalchemy",  # type-only, but not in context.py
        "alerts.py:5 imports Session from sqlalchemy.orm",
        "alerts.py:6 imports sqlmodel from sqlmodel",
        "alerts.py:7 imports session_scope",
        "alerts.py:8 calls Session",
        "alerts.py:8 calls session_scope",
    ]
    # The one type-only import allowed, where it is allowed.
    assert violations(source.split("def f")[0], "context.py") == []
