"""The CLI reference (docs/cli.md), rendered from the click command tree.

Every command and subcommand gets a heading and its exact `--help` text, formatted at a fixed
width, so the page does not depend on the terminal, the environment or the current folder.
`make docs` regenerates the page (`python -m monitor.cli.reference > docs/cli.md`) and
tests/unit/test_docs.py fails when it is stale.
"""

from __future__ import annotations

from collections.abc import Iterator

import click

# The width click uses for `--help` on any terminal at least 80 columns wide, and when the
# output is piped: the page shows exactly what `driftmon ... --help | cat` prints.
HELP_WIDTH = 78

INTRO = """\
# CLI reference

Every `driftmon` command with its `--help` text. This page is generated from the commands
themselves: run `make docs` after changing a command; `tests/unit/test_docs.py` fails while it
is stale.

What each command is for, with examples, is in the other guides:
[getting-started.md](getting-started.md), [configuration.md](configuration.md),
[probes.md](probes.md), [statistics.md](statistics.md), [alerting.md](alerting.md),
[operations.md](operations.md) and [simulator.md](simulator.md).

Global options (`--config`, `--db`) go before the command: `driftmon --config
/etc/driftmon/driftmon.toml status`. Without `--config`, the config file is
`$DRIFTMON_CONFIG`, else `./driftmon.toml`, else `config/driftmon.toml`. Relative paths in
the defaults below (`./driftmon.toml`, `demo-output`) are relative to the current folder.

Exit codes: 0 success; 1 runtime failure; 2 bad usage, config or probe files (the message names
the file, key or line, and the problem), or a database that cannot be opened or written as
configured (a missing or read-only folder or file, an unknown PostgreSQL role or database);
3 drift found with `--fail-on-drift`; 4 provider calls failed: `run` when every call of a run
failed (an outage), or any call with `--fail-on-error` (4 wins over 3).
"""


def _context(command: click.Command, name: str, parent: click.Context | None) -> click.Context:
    # The command's own context settings (e.g. `-h` as a help option) apply as they do when the
    # command runs; the width is fixed.
    settings = {
        **command.context_settings,
        "terminal_width": HELP_WIDTH,
        "max_content_width": HELP_WIDTH,
    }
    return click.Context(command, info_name=name, parent=parent, **settings)


def walk(
    command: click.Command, ctx: click.Context, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Every command of the tree, depth first, subcommands in sorted order: (path, command,
    context). The root has the empty path."""
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from walk(sub, _context(sub, name, ctx), (*path, name))


def command_paths() -> list[tuple[str, ...]]:
    """The path of every command and subcommand (the root excluded), in page order."""
    from monitor.cli.main import cli

    return [path for path, _, _ in walk(cli, _context(cli, "driftmon", None)) if path]


def _anchor(title: str) -> str:
    return title.replace(" ", "-")


def cli_reference() -> str:
    """The Markdown page: an introduction, a list of the commands, then per command a heading
    `### driftmon <path>` and its help text."""
    from monitor.cli.main import cli

    pages = [
        (" ".join(("driftmon", *path)), command.get_help(ctx).rstrip())
        for path, command, ctx in walk(cli, _context(cli, "driftmon", None))
    ]
    contents = "\n".join(
        f"{'  ' * (title.count(' ') - 1)}- [`{title}`](#{_anchor(title)})"
        for title, _ in pages
        if " " in title
    )
    parts = [INTRO, f"## Commands\n\n{contents}\n"]
    parts += [f"### {title}\n\n```text\n{text}\n```\n" for title, text in pages]
    return "\n".join(parts)


if __name__ == "__main__":
    print(cli_reference(), end="")
