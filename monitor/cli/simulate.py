"""`driftmon simulate`: the simulated provider, for demos and tests."""

from __future__ import annotations

import click


@click.command("simulate")
@click.option("--scenario", type=click.Path(exists=True, dir_okay=False), help="Scenario file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port (0: any free port; the URL is printed).",
)
def simulate_command(scenario: str | None, host: str, port: int) -> None:
    """Serve the simulated provider (OpenAI and Anthropic wire formats) until stopped."""
    from monitor.simulator.server import serve_forever

    serve_forever(scenario, host, port)
