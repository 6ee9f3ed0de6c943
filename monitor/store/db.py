"""Engines and sessions.

SQLite is opened for durability under a long-running daemon plus CLI readers: WAL journal,
`synchronous=FULL` (a committed result survives power loss), a busy timeout instead of instant
"database is locked" errors, foreign keys on, and `BEGIN IMMEDIATE` so a writer takes the write
lock at the start of its transaction instead of failing halfway through it.

A database that cannot be used as configured (SQLite: a missing or read-only folder or file;
PostgreSQL: a role or database that does not exist, a refused password) raises
`StorageSetupError`, exit code 2, naming the URL, where it was set and the cause, whether at the
first connection or at a write long after: retrying cannot fix it. A refused connection is not
one of these: the server may be coming up, and systemd restarts on exit code 1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from monitor.errors import StorageError, StorageSetupError

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Driver messages that no retry can fix; lowercased substrings.
SQLITE_SETUP_ERRORS = ("unable to open database file", "readonly database")
# Found at connect time only; a statement's `relation "x" does not exist` is not one of them.
POSTGRES_SETUP_ERRORS = re.compile(
    r"password authentication failed|no password supplied|no pg_hba\.conf entry|"
    r'(role|database) "[^"]*" does not exist',
    re.IGNORECASE,
)


def normalise_url(url: str) -> str:
    """Plain postgresql:// URLs use psycopg 3, the driver we install."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def hide_password(url: str) -> str:
    """The URL as it may be shown: any password replaced by ***; one without a password as
    written (rendering would escape a SQLite `file:` URI's colon)."""
    parsed = make_url(url)
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def make_engine(url: str, *, source: str | None = None, **kwargs: Any) -> Engine:
    """An engine for `url`; `source` says where the URL was set (`FILE:LINE: storage.url`,
    `--db`) for the StorageSetupError raised when the database cannot be used as configured."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(f"invalid storage URL {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
        )
        _configure_sqlite(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
    _explain_setup_errors(engine, url, source or "storage URL")
    return engine


def _explain_setup_errors(engine: Engine, url: str, source: str) -> None:
    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> BaseException | None:
        return setup_error(context.original_exception, url, source)


def setup_error(exc: BaseException, url: str, source: str) -> StorageSetupError | None:
    """The StorageSetupError `exc` (a driver error) amounts to, or None when it is not one:
    the message names where the URL was set, the URL (password hidden) and the cause."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = detail.lower()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not any(marker in lowered for marker in SQLITE_SETUP_ERRORS):
            return None
        cause = sqlite_problem(url)
        cause = f"{cause} (sqlite: {detail})" if cause else f"sqlite: {detail}"
        return StorageSetupError(
            f"{source}: cannot use the SQLite database {hide_password(url)}: {cause}"
        )
    if not POSTGRES_SETUP_ERRORS.search(detail):
        return None
    # psycopg prefixes where it tried to connect; the server's own words follow "FATAL:".
    cause = detail.split("FATAL:", 1)[-1].strip()
    return StorageSetupError(f"{source}: cannot use the database {hide_password(url)}: {cause}")


def sqlite_file(url: str) -> tuple[Path, bool] | None:
    """The file of a SQLite URL and whether the URL opens it read-only; None for other
    databases and for an in-memory one."""
    parsed = make_url(normalise_url(url))
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    read_only = False
    if database.startswith("file:") and str(parsed.query.get("uri", "")).lower() == "true":
        database, _, options = database.removeprefix("file:").partition("?")
        read_only = parsed.query.get("mode") == "ro" or "mode=ro" in options
        if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
            return None
    return Path(database), read_only


def sqlite_problem(url: str) -> str | None:
    """Why SQLite cannot open and write the database of `url`, found without opening it; None
    when nothing stops it (or `url` is not a SQLite file). Checked with the current user's
    rights: root passes every permission check."""
    found = sqlite_file(url)
    if found is None:
        return None
    path, read_only = found
    if read_only:
        return "the URL opens it read-only (mode=ro)"
    folder = path.parent
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    if path.exists():
        if not os.access(path, os.W_OK):
            return f"the file {path} is read-only"
        if not os.access(folder, os.W_OK | os.X_OK):
            return (
                f"the folder {folder} is not writable (SQLite writes its journal next to the file)"
            )
        return None
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                return f"{ancestor} is a file, not a folder"
            if ancestor != folder:
                break
            if not os.access(folder, os.W_OK | os.X_OK):
                return f"the folder {folder} is not writable"
            return None
    return f"the folder {folder} does not exist (driftmon does not create it)"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so we can BEGIN IMMEDIATE ourselves.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def ping(engine: Engine) -> None:
    """A round trip to the database; raises whatever the driver raises when it does not
    answer (the daemon's health check reports it)."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def check_reachable(engine: Engine) -> None:
    """Raise StorageError, with the driver's first line, when the database does not answer."""
    try:
        ping(engine)
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StorageError(f"the database does not answer: {detail}") from None


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A short transaction: committed on success, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
