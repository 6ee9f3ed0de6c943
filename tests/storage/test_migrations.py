"""Migrations from an empty database on both backends, models == latest migration, and
upgrades that keep the rows an older schema holds."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, MetaData, Table, inspect, select
from sqlalchemy import insert as sa_insert
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

import monitor.store.models  # noqa: F401
from monitor.drift.queries import load_observations
from monitor.errors import DatabaseTooNewError, StorageError
from monitor.store.db import make_engine, session_scope
from monitor.store.migrate import (
    alembic_config,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from monitor.store.models import Result, Run, utcnow
from monitor.store.writes import ensure_probe_versions, ensure_target, insert_results


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


# Result columns added by migration 0005; results stored before it keep NULL in each.
COLUMNS_0005 = {
    "reasoning_tokens",
    "cached_tokens",
    "output_mode",
    "tool_called",
    "tool_name",
    "tool_args_valid",
}


def _result_columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("result")}


def test_upgrade_from_0004_keeps_stored_results(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine, "0004")
    assert not COLUMNS_0005 & _result_columns(engine)
    target_id = ensure_target(engine, name="sim", kind="openai", model="m", base_url=None)
    version_id = ensure_probe_versions(engine, [("set", "p1", "v1", {})])[("set", "p1", "v1")]
    now = utcnow()
    # Written as a driftmon at 0004 wrote them: only the columns that existed then.
    run_id = _add_run(engine, target_id)  # the run table is as it was at 0004
    with engine.begin() as conn:
        result = _table(conn, "result")
        key = {"run_id": run_id, "target_id": target_id, "probe_version_id": version_id}
        conn.execute(
            sa_insert(result).values(
                **key,
                sample_index=0,
                created_at=now,
                verdict="pass",
                attempts=1,
                refusal=False,
                input_tokens=12,
                output_tokens=7,
                output="{}",
            )
        )
        conn.execute(
            sa_insert(result).values(
                **key,
                sample_index=1,
                created_at=now,
                verdict="error",
                attempts=4,
                error_class="timeout",
            )
        )

    upgrade(engine)

    assert current_revision(engine) == head_revision()
    assert _result_columns(engine) >= COLUMNS_0005
    with Session(engine) as s:
        stored = s.execute(select(Result).order_by(col(Result.sample_index))).scalars().all()
        observations = load_observations(s, [run_id])
    assert [(r.verdict, r.input_tokens, r.output_tokens, r.output) for r in stored] == [
        ("pass", 12, 7, "{}"),
        ("error", None, None, None),
    ]
    assert all(getattr(r, name) is None for r in stored for name in COLUMNS_0005)
    assert sorted(o.verdict for o in observations) == ["error", "pass"]
    assert all(o.tool_called is None and o.tool_name is None for o in observations)
    # The new columns take values, and read back as written.
    insert_results(
        engine,
        run_id,
        [
            {
                "run_id": run_id,
                "target_id": target_id,
                "probe_version_id": version_id,
                "sample_index": 2,
                "created_at": now,
                "verdict": "pass",
                "reasoning_tokens": 64,
                "cached_tokens": 1024,
                "output_mode": "tools",
                "tool_called": True,
                "tool_name": "t" * 64,
                "tool_args_valid": False,
            },
        ],
    )
    with Session(engine) as s:
        new = s.execute(select(Result).where(col(Result.sample_index) == 2)).scalar_one()
    assert (new.reasoning_tokens, new.cached_tokens, new.output_mode) == (64, 1024, "tools")
    assert (new.tool_called, new.tool_name, new.tool_args_valid) == (True, "t" * 64, False)
    engine.dispose()


def test_downgrade_to_0004_drops_only_the_new_columns(db_url: str) -> None:
    from alembic import command

    engine = make_engine(db_url)
    upgrade(engine)
    target_id = ensure_target(engine, name="sim", kind="openai", model="m", base_url=None)
    run_id = _add_run(engine, target_id)
    with engine.begin() as conn:
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    assert current_revision(engine) == "0004"
    assert not COLUMNS_0005 & _result_columns(engine)
    with engine.connect() as conn:
        assert conn.execute(select(_table(conn, "run").c.id)).scalars().all() == [run_id]
    engine.dispose()


def _add_run(engine: Engine, target_id: int) -> int:
    with session_scope(engine) as s:
        run = Run(target_id=target_id, probe_set="set", status="complete")
        s.add(run)
        s.flush()
        assert run.id is not None
        return run.id


def _table(conn: Connection, name: str) -> Table:
    """The table as the database has it now (not as the models describe the newest schema)."""
    return Table(name, MetaData(), autoload_with=conn)
