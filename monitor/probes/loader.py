"""Loading probe sets from YAML files and folders (the `probes.paths` entries).

    load_probe_sets([Path("probes")])            every *.yaml / *.yml below, recursively
    load_probe_file(path, probes_root=root)      one file
    parse_probe_text(text, file=..., probes_root=...)   the same, from text in memory

Everything is checked at load time (keys, types, regexes, schemas and their $refs) and every
problem is a `ProbeFileError` naming file, key path and line. The file format is documented
in docs/probes.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monitor.errors import ProbeFileError
from monitor.probes import fields
from monitor.probes._located import Loc, check_keys, key_line, parse_yaml, type_name
from monitor.probes._refs import SchemaFiles
from monitor.probes.build import SetContext, build_probe, check_defaults
from monitor.probes.model import Probe, ProbeSet

SET_KEYS = ("set", "description", "defaults", "probes")
SUFFIXES = (".yaml", ".yml")
# Folders skipped while scanning: schema files (which may be YAML) live in schemas/.
SKIPPED_DIRS = ("schemas",)


def load_probe_sets(paths: Sequence[Path], *, root: Path | None = None) -> list[ProbeSet]:
    """Every probe set under `paths` (files or folders), in a stable order.

    The probes root of a file (which schema_file and $ref may not leave) is `root` if given,
    else the folder entry it was found under, or for a file given directly, its own folder.
    Set names must be unique across all files.
    """
    sets: list[ProbeSet] = []
    seen_files: set[Path] = set()
    names: dict[str, tuple[str, int | None]] = {}
    schema_files = SchemaFiles()  # a schema file many probes share is read and checked once
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files, file_root = find_probe_files(path), root or path
        elif path.is_file():
            files, file_root = [path], root or path.parent
        else:
            raise ProbeFileError("no such probe file or folder", file=str(path))
        for file in files:
            real = file.resolve()
            if real in seen_files:  # named twice (a folder and a file in it): load once
                continue
            seen_files.add(real)
            probe_set, set_line = _load(file, file_root, schema_files)
            if probe_set.name in names:
                other, other_line = names[probe_set.name]
                where = f"{other}:{other_line}" if other_line else other
                raise ProbeFileError(
                    f"set {probe_set.name!r} is also defined in {where}; set names must be unique",
                    file=str(file),
                    key="set",
                    line=set_line,
                )
            names[probe_set.name] = (str(file), set_line)
            sets.append(probe_set)
    return sets


def find_probe_files(folder: Path) -> list[Path]:
    """*.yaml and *.yml below `folder`, sorted; hidden entries and schemas/ folders skipped."""
    found = []
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") for p in parts) or any(p in SKIPPED_DIRS for p in parts[:-1]):
            continue
        if path.suffix.lower() in SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def load_probe_file(path: Path, *, probes_root: Path) -> ProbeSet:
    return _load(Path(path), Path(probes_root))[0]


def _load(
    path: Path, probes_root: Path, files: SchemaFiles | None = None
) -> tuple[ProbeSet, int | None]:
    _check_inside(path, probes_root)  # before reading: nothing outside the root is read
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProbeFileError("no such probe file", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeFileError(f"cannot read the file: {exc}", file=str(path)) from None
    return _parse(text, path, probes_root, files or SchemaFiles())


def parse_probe_text(text: str, *, file: Path, probes_root: Path) -> ProbeSet:
    """Load a probe set from `text` as if it were the content of `file` (used to check edits)."""
    return _parse(text, Path(file), Path(probes_root), SchemaFiles())[0]


def _parse(text: str, file: Path, root: Path, files: SchemaFiles) -> tuple[ProbeSet, int | None]:
    shown = str(file)
    _check_inside(file, root)
    doc = parse_yaml(text, file=shown)
    top = Loc(shown)
    if doc is None:
        raise top.error("the file is empty: a probe set needs at least a `probes:` list")
    if not isinstance(doc, dict):
        raise Loc(shown, line=1).error(
            f"a probe set file must be a mapping with set, description, defaults and probes,"
            f" found {type_name(doc)}"
        )
    check_keys(doc, SET_KEYS, top, "a probe set")
    set_line = key_line(doc, "set") if "set" in doc else None
    if "set" in doc:
        name = fields.name(doc["set"], top.child(doc, "set"), "set")
    else:
        stem_loc = Loc(shown, "set", 1)
        try:
            name = fields.name(file.stem, stem_loc, "the set name")
        except ProbeFileError:
            raise stem_loc.error(
                f"the file name {file.stem!r} is not a valid set name ([a-z0-9._-]+);"
                " add `set: NAME`"
            ) from None
    description = ""
    if doc.get("description") is not None:
        description = fields.text(
            doc["description"], top.child(doc, "description"), "description", allow_empty=True
        )
    defaults_loc = top.child(doc, "defaults") if "defaults" in doc else Loc(shown, "defaults")
    ctx = SetContext(
        name=name,
        file=file,
        root=root,
        defaults=check_defaults(doc.get("defaults"), defaults_loc),
        defaults_loc=defaults_loc,
        files=files,
    )
    if "probes" not in doc:
        raise Loc(shown, "probes", 1).error("a probe set needs a `probes:` list")
    probes_node: Any = doc["probes"]
    probes_loc = top.child(doc, "probes")
    if not isinstance(probes_node, list):
        raise probes_loc.error(f"probes must be a list, found {type_name(probes_node)}")
    probes: list[Probe] = []
    first_line: dict[str, int | None] = {}
    for i, node in enumerate(probes_node):
        probe = build_probe(node, probes_loc.child(probes_node, i), ctx)
        if probe.id in first_line:
            raise (
                probes_loc.child(probes_node, i)
                .child(node, "id")
                .error(
                    f"duplicate probe id {probe.id!r} (first at line {first_line[probe.id]});"
                    " ids must be unique in a set"
                )
            )
        first_line[probe.id] = probe.line
        probes.append(probe)
    return (
        ProbeSet(
            name=name, description=description, file=shown, probes=tuple(probes), root=str(root)
        ),
        set_line,
    )


def _check_inside(file: Path, root: Path) -> None:
    # resolve(): a symbolic link is judged by where it leads.
    if not file.resolve().is_relative_to(root.resolve()):
        raise ProbeFileError(
            f"the file is not inside its probes folder {str(root)!r}", file=str(file)
        )
