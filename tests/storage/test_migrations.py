"""Migrations from an empty database on both backends, and models == latest migration."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import monitor.store.models  # noqa: F401
from monitor.errors import DatabaseTooNewError, StorageError
from monitor.store.db import make_engine
from monitor.store.migrate import current_revision, ensure_schema, head_revision, upgrade


def test_head_constant_matches_the_newest_migration() -> None:
    from monitor.store.migrate import HEAD_REVISION

    assert head_revision() == HEAD_REVISION, "update HEAD_REVISION in monitor/store/migrate.py"


def test_upgrade_from_empty_to_head(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert {"target", "probe_version", "model_identity", "run", "result"} <= tables
    upgrade(engine)  # idempotent
    assert current_revision(engine) == head_revision()


def test_models_match_latest_migration(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations disagree; autogenerate a migration: {diff}"


def test_refuses_database_newer_than_code(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    try:
        ensure_schema(engine)
    except DatabaseTooNewError as exc:
        assert "newer" in str(exc)
    else:
        raise AssertionError("a database from a newer driftmon was accepted")


def test_empty_database_is_initialised_but_old_one_is_not_silently_upgraded(db_url: str) -> None:
    engine = make_engine(db_url)
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")
    try:
        ensure_schema(engine)  # tables exist, revision unknown: ask for `db upgrade`
    except StorageError as exc:
        assert "driftmon db upgrade" in str(exc)
    else:
        raise AssertionError("a non-empty database without a revision was accepted")


def test_commands_starting_together_on_an_empty_database_all_succeed(db_url: str) -> None:
    # Two CLI commands started at once on a new database: one creates the schema, the others
    # must wait for it and carry on, not see half of it and report a foreign schema.
    import threading

    engines = [make_engine(db_url) for _ in range(6)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def initialise(engine_: object) -> None:
        start.wait()
        try:
            ensure_schema(engine_)  # type: ignore[arg-type]
        except BaseException as exc:  # collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=initialise, args=(e,), daemon=True) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "schema initialisation deadlocked"
    for engine_ in engines:
        engine_.dispose()
    assert errors == []
    assert current_revision(make_engine(db_url)) == head_revision()
