"""Schema migrations with Alembic, located inside the installed package.

The migration scripts ship in the wheel as `monitor.migrations`, so `pip install` followed by
`driftmon db upgrade` works outside a checkout. A database whose revision this code does not
know was migrated by a newer driftmon: we refuse to touch it rather than corrupt it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from monitor.errors import DatabaseTooNewError, StorageError

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration in migrations/versions. Every command checks the database against it
# with one query instead of loading Alembic's script directory (0.4 s at each start);
# tests/storage/test_migrations.py fails when a migration is added without updating it.
HEAD_REVISION = "0006"


def _script_location() -> str:
    return str(Path(str(resources.files("monitor.migrations"))))


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _script_location())
    # Alembic's config is a configparser: a literal % (URL-escaped passwords, file names)
    # must be doubled or it is taken for interpolation.
    url = engine.url.render_as_string(hide_password=False).replace("%", "%%")
    config.set_main_option("sqlalchemy.url", url)
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(_script_location())
    head = script.get_current_head()
    assert head is not None, "no migrations shipped"
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(_script_location())
    return {rev.revision for rev in script.walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _stored_revision(engine: Engine) -> str | None:
    """The revision in alembic_version by plain SQL; None when the table is missing/empty."""
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    except (OperationalError, ProgrammingError):
        return None
    return str(row[0]) if row else None


# Any constant shared by every driftmon: PostgreSQL advisory-lock key for schema changes.
_MIGRATION_LOCK_KEY = 0x64726966  # "drif"


def _lock_for_migration(conn: Connection) -> None:
    """Serialise schema changes between processes for the rest of this transaction.

    SQLite already holds the write lock (our engines BEGIN IMMEDIATE); PostgreSQL needs an
    advisory lock, or two commands starting on an empty database both create the tables.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})


def _upgrade_on(conn: Connection, engine: Engine, revision: str) -> None:
    from alembic import command

    config = alembic_config(engine)
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def upgrade(engine: Engine, revision: str = "head") -> None:
    check_not_newer(engine)
    with engine.begin() as conn:
        _lock_for_migration(conn)
        _upgrade_on(conn, engine, revision)


def check_not_newer(engine: Engine) -> None:
    current = current_revision(engine)
    if current is not None and current not in known_revisions():
        raise DatabaseTooNewError(
            f"the database is at migration {current}, which this driftmon does not know: it was "
            "upgraded by a newer version; upgrade driftmon instead of using this one"
        )


def ensure_schema(engine: Engine, *, create_if_empty: bool = True) -> None:
    """Make sure the schema is usable: initialise an empty database, refuse anything else
    that is not exactly at head (older: run `driftmon db upgrade`; newer: refuse)."""
    if _stored_revision(engine) == HEAD_REVISION:
        return
    check_not_newer(engine)
    current = current_revision(engine)
    if current == head_revision():
        return
    if current is None and create_if_empty:
        _initialise_if_empty(engine)
        return
    raise _behind(current)


def _behind(current: str | None) -> StorageError:
    return StorageError(
        f"the database is at migration {current or 'none'}, this driftmon needs "
        f"{head_revision()}: run `driftmon db upgrade`"
    )


def _initialise_if_empty(engine: Engine) -> None:
    """Create the schema in an empty database, decided and done under one lock: two commands
    started together on a new database must not both see it empty, nor one see the other's
    tables half-way and take them for a foreign schema."""
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as conn:
        _lock_for_migration(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        if current == HEAD_REVISION:
            return  # another process initialised it while we waited for the lock
        if current is None and not inspect(conn).get_table_names():
            _upgrade_on(conn, engine, "head")
            return
    raise _behind(current)
