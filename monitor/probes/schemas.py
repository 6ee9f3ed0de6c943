"""Probe schemas: where they live (URIs), loading them with their $refs, and validating with them.

Every schema has a URI in the private scheme ``driftmon-probes:``, built from its path relative
to the probes root (the `probes.paths` entry it was found under):

    schema file   probes/schemas/invoice.json        driftmon-probes:///schemas/invoice.json
    inline        probes/sub/billing.yaml, probe x   driftmon-probes:///sub/billing.yaml?probe=x

The inline form keeps the probe file's path, so a relative ``$ref`` in an inline schema resolves
against the probe file's folder exactly as ``schema_file`` does; the query (not a fragment,
which ``$id`` may not carry) makes each inline schema its own resource. Each schema gets that
URI as its ``$id`` (on a copy; a user's ``$id`` is replaced, because the file's place is what
relative refs must resolve against).

Only files inside the probes root are ever read; a ``$ref`` to any other scheme (http, https,
file, urn, ...), an absolute path or a path escaping the root is a load error. Validation uses
a `referencing.Registry` holding exactly these resources and no retriever, so nothing is ever
fetched: `registry_for` / `validator_for` below build it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, uses_netloc, uses_relative

from monitor.probes._located import Loc, to_plain

if TYPE_CHECKING:
    from monitor.probes._refs import SchemaFiles

SCHEME = "driftmon-probes"
PREFIX = f"{SCHEME}:///"
DIALECT = "https://json-schema.org/draft/2020-12/schema"

# `referencing` resolves relative refs with urllib.parse.urljoin, which only joins URIs whose
# scheme it knows to be hierarchical; without this, "types.json" against our base stays
# "types.json" and nothing resolves. Appending our own scheme changes nothing for others.
for _known in (uses_relative, uses_netloc):
    if SCHEME not in _known:
        _known.append(SCHEME)


def file_uri(path: Path, root: Path) -> str:
    """The URI of a file inside the probes root (both given unresolved or both resolved)."""
    rel = Path(path).relative_to(root).as_posix()
    return PREFIX + quote(rel)


def inline_uri(probe_file: Path, root: Path, probe_id: str) -> str:
    return f"{file_uri(probe_file, root)}?probe={quote(probe_id, safe='')}"


@dataclass(frozen=True)
class LoadedSchema:
    schema: dict[str, Any]  # the root schema, a copy with "$id" set to its URI
    resources: dict[str, dict[str, Any]]  # every other schema reachable through $ref, by URI


def load_inline_schema(
    node: Any,
    loc: Loc,
    *,
    probe_file: Path,
    root: Path,
    probe_id: str,
    files: SchemaFiles | None = None,
) -> LoadedSchema:
    """An inline `schema:` mapping (a ruamel node, for line numbers) and what it references."""
    from monitor.probes._refs import RefWalker

    data = to_plain(node, loc)
    walker = RefWalker(root, files)
    uri = inline_uri(probe_file.resolve(), walker.real_root, probe_id)
    walker.add(uri, data, node, loc)
    return walker.finish(uri)


def load_schema_file(
    value: Any, loc: Loc, *, probe_file: Path, root: Path, files: SchemaFiles | None = None
) -> LoadedSchema:
    """`schema_file:` a path relative to the probe file's folder, inside the probes root."""
    from monitor.probes._refs import RefWalker, check_file_path

    walker = RefWalker(root, files)
    base = file_uri(probe_file.resolve(), walker.real_root)
    uri = walker.load(check_file_path(value, loc), base, loc, "schema_file")
    return walker.finish(uri)
