"""`driftmon db upgrade` / `db current`."""

from __future__ import annotations

import click

from monitor.cli.context import AppContext


@click.group("db")
def db_group() -> None:
    """Apply or show database migrations."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_obj
def upgrade_command(app: AppContext, revision: str) -> None:
    """Apply migrations up to REVISION."""
    from monitor.store.migrate import current_revision, upgrade

    engine = app.raw_engine()
    before = current_revision(engine)
    upgrade(engine, revision)
    after = current_revision(engine)
    if before == after:
        click.echo(f"database already at {after}")
    else:
        click.echo(f"database upgraded: {before or 'empty'} -> {after}")


@db_group.command("current")
@click.pass_obj
def current_command(app: AppContext) -> None:
    """Show the database's migration revision and the newest this driftmon knows."""
    from monitor.store.migrate import current_revision, head_revision

    current = current_revision(app.raw_engine())
    head = head_revision()
    state = "up to date" if current == head else "needs `driftmon db upgrade`"
    if current is not None and current != head:
        from monitor.store.migrate import known_revisions

        if current not in known_revisions():
            state = "NEWER than this driftmon: upgrade driftmon"
    click.echo(f"current: {current or 'none (empty database)'}\nhead:    {head}\n{state}")
