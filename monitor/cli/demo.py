"""`driftmon demo`: the end-to-end demonstration; the logic is in monitor.demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--dir",
    "folder",
    default="demo-output",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Working folder for the demo's config, probes, scenario and database.",
)
def demo_command(folder: Path) -> None:
    """Replay a probe set against the built-in simulated provider before and after a
    silent model update, store every result in SQLite, and show what changed.

    Needs no network and no API key. The folder is rewritten on every run (its previous
    demo database is deleted); a non-empty folder not made by the demo is refused.
    """
    from rich.console import Console

    from monitor.demo import run_demo

    # Piped output (tests, CI logs) gets a fixed width so tables are not cut to 80 columns.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    run_demo(folder, console)
