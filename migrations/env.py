"""Alembic environment: driven from `monitor.store.migrate`, which passes the engine."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import monitor.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from monitor.store.db import make_engine

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; use `driftmon db upgrade`")
run_migrations_online()
