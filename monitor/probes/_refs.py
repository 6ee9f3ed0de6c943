"""Following $ref through local schema files, refusing anything that is not inside the probes root.

The checks run on the reference text before any file is touched: a foreign scheme, a network
location, an absolute path or a path climbing out of the root is an error, and a resolved path
(after symlinks) must still be inside the root. Nothing here can open a network connection.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit

from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from monitor.errors import ProbeFileError
from monitor.probes._located import (
    Loc,
    Locator,
    key_line,
    node_line,
    parse_yaml,
    to_plain,
    type_name,
)
from monitor.probes.schemas import DIALECT, PREFIX, SCHEME, LoadedSchema
from monitor.schema_check import check_schema

_REF_KEYWORDS = ("$ref", "$dynamicRef")
# Values of these keywords are instance data, not schemas: a "$ref" key inside is just data.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
# Values of these keywords map names (not keywords) to schemas.
_NAMED_SCHEMAS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")


def check_file_path(value: Any, loc: Loc) -> str:
    """A `schema_file:` value (a relative path) as a URI reference."""
    if not isinstance(value, str) or not value.strip():
        raise loc.error(f"schema_file must be a relative path, found {type_name(value)}")
    if value.startswith(("/", "\\", "~")) or _WINDOWS_PATH.match(value):
        raise loc.error(
            f"schema_file {value!r} is an absolute path; give it relative to the probe file"
        )
    return quote(value)


def _sub(tree: Any, key: Any) -> Any:
    if isinstance(tree, Mapping) and key in tree:
        return tree[key]
    if isinstance(tree, list) and isinstance(key, int) and key < len(tree):
        return tree[key]
    return None


def _descend(loc: Loc, tree: Any, path: list[Any]) -> Loc:
    for key in path:
        loc = loc.child(tree, key)
        tree = _sub(tree, key)
    return loc


class SchemaFiles:
    """Schema files read during one load: a file many probes use is parsed and checked once.

    Scoped to one load (never module-global), so a reload always sees the files as they are.
    """

    def __init__(self) -> None:
        self.read: dict[Path, tuple[Any, Any, Loc]] = {}  # path -> (data, tree, loc)
        # id() of file documents already checked against the meta-schema; they stay referenced
        # in `read`, so an id cannot be reused by another document during the load.
        self.checked: set[int] = set()

    def get(self, path: Path, shown: str) -> tuple[Any, Any, Loc]:
        if path not in self.read:
            self.read[path] = _read_schema_file(path, shown)
        return self.read[path]


class RefWalker:
    """Collects a root schema and every local schema it reaches, keyed by URI."""

    def __init__(self, root: Path, files: SchemaFiles | None = None) -> None:
        self.root = root
        self.real_root = root.resolve()
        self.files = files if files is not None else SchemaFiles()
        self.docs: dict[str, dict[str, Any]] = {}
        self.embedded: set[str] = set()  # URIs of subschemas with their own $id
        self.refs: list[tuple[str, str, Loc]] = []  # (ref, base URI, where) for the final check

    def add(self, uri: str, data: Any, tree: Any, loc: Loc, *, from_file: bool = False) -> None:
        """Check one schema document, record it under `uri` and load what it references."""
        if not isinstance(data, dict):
            raise loc.error(f"a schema must be a mapping (JSON object), found {type_name(data)}")
        dialect = data.get("$schema")
        if dialect is not None and str(dialect).rstrip("#") != DIALECT:
            raise loc.child(tree, "$schema").error(
                f"schemas are JSON Schema Draft 2020-12; $schema {dialect!r} is not supported"
                f" (drop it or use {DIALECT!r})"
            )
        if not (from_file and id(data) in self.files.checked):
            try:
                check_schema(data)
            except SchemaError as exc:
                raise _descend(loc, tree, list(exc.absolute_path)).error(
                    f"invalid JSON Schema: {exc.message}"
                ) from None
            if from_file:
                self.files.checked.add(id(data))
        if from_file:  # shared by every probe using the file: each probe gets its own copy
            data = json.loads(json.dumps(data))
        self.docs[uri] = {**data, "$id": uri}
        targets: list[tuple[str, str, Loc]] = []
        self._walk(data, tree, uri, loc, targets, is_root=True)
        for ref, base, ref_loc in targets:
            target = urldefrag(urljoin(base, ref)).url
            if target not in self.docs and target not in self.embedded:
                self.load(ref, base, ref_loc, "$ref")

    def _walk(
        self,
        node: Any,
        tree: Any,
        base: str,
        loc: Loc,
        targets: list[tuple[str, str, Loc]],
        *,
        is_root: bool = False,
        named: bool = False,
    ) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                self._walk(item, _sub(tree, i), base, loc.child(tree, i), targets)
            return
        if not isinstance(node, dict):
            return
        if named:  # {name: schema}: the keys are names, every value is a schema
            for key, value in node.items():
                self._walk(value, _sub(tree, key), base, loc.child(tree, key), targets)
            return
        sub_id = node.get("$id")
        if not is_root and isinstance(sub_id, str):
            base = urldefrag(urljoin(base, sub_id)).url
            self.embedded.add(base)
        for keyword in _REF_KEYWORDS:
            if keyword in node:
                ref_loc = loc.child(tree, keyword)
                ref = node[keyword]
                if not isinstance(ref, str):
                    raise ref_loc.error(f"{keyword} must be a string, found {type_name(ref)}")
                self.refs.append((ref, base, ref_loc))
                if self._check_ref(ref, base, ref_loc, keyword) is not None:
                    targets.append((ref, base, ref_loc))
        for key, value in node.items():
            if key in _DATA_KEYWORDS or key in _REF_KEYWORDS:
                continue
            self._walk(
                value,
                _sub(tree, key),
                base,
                loc.child(tree, key),
                targets,
                named=key in _NAMED_SCHEMAS,
            )

    def _check_ref(self, ref: str, base: str, loc: Loc, what: str) -> str | None:
        """The root-relative path a ref points to, or None for a ref into the same document."""
        parts = urlsplit(ref)
        if parts.scheme and parts.scheme != SCHEME:
            raise loc.error(
                f"{what} {ref!r} is not a local file: only schema files inside the probes"
                f" folder can be referenced (nothing is ever fetched)"
            )
        if parts.netloc:
            raise loc.error(f"{what} {ref!r} names a host; only local files can be referenced")
        if parts.query:
            raise loc.error(f"{what} {ref!r}: a query is not supported in a schema reference")
        if not parts.path:
            return None  # "#/$defs/x", "#anchor" or "": this document
        if not parts.scheme and (parts.path.startswith("/") or _WINDOWS_PATH.match(ref)):
            raise loc.error(
                f"{what} {ref!r} is an absolute path; refer to schema files relative to the"
                f" referring file"
            )
        if "\\" in parts.path:
            raise loc.error(f"{what} {ref!r}: use '/' to separate folders")
        if parts.scheme:
            rel = posixpath.normpath(unquote(parts.path).lstrip("/"))
        else:
            if not base.startswith(PREFIX):
                raise loc.error(
                    f"{what} {ref!r} is relative to {base!r}, which is not in the probes folder"
                )
            base_dir = posixpath.dirname(unquote(urlsplit(base).path).lstrip("/"))
            rel = posixpath.normpath(posixpath.join(base_dir, unquote(parts.path)))
        if rel == ".." or rel.startswith("../"):
            raise loc.error(f"{what} {ref!r} points outside the probes folder")
        return rel

    def load(self, ref: str, base: str, loc: Loc, what: str = "$ref") -> str:
        """Load the file `ref` points to (relative to `base`) and return its URI."""
        rel = self._check_ref(ref, base, loc, what)
        if rel is None or rel == ".":
            raise loc.error(f"{what} {ref!r} does not name a schema file")
        path = self.real_root / rel
        if not path.resolve().is_relative_to(self.real_root):
            raise loc.error(f"{what} {ref!r} resolves (through a link) outside the probes folder")
        if not path.is_file():
            raise loc.error(f"{what} {ref!r}: no such schema file {str(self.root / rel)!r}")
        # The key is the URI exactly as `referencing` will compute it when it meets this ref.
        uri = urldefrag(urljoin(base, ref)).url
        data, tree, doc_loc = self.files.get(path, str(self.root / rel))
        self.add(uri, data, tree, doc_loc, from_file=True)
        return uri

    def finish(self, root_uri: str) -> LoadedSchema:
        """Check that every $ref resolves (bad pointers, missing anchors) and package the result."""
        registry: Registry[Any] = Registry().with_resources(
            (uri, DRAFT202012.create_resource(doc)) for uri, doc in self.docs.items()
        )
        registry = registry.crawl()
        for ref, base, loc in self.refs:
            try:
                registry.resolver(base_uri=base).lookup(ref)
            except Unresolvable as exc:
                raise loc.error(f"$ref {ref!r} cannot be resolved: {exc}") from None
        resources = {uri: doc for uri, doc in self.docs.items() if uri != root_uri}
        return LoadedSchema(schema=self.docs[root_uri], resources=resources)


def _read_schema_file(path: Path, shown: str) -> tuple[Any, Any, Loc]:
    """(plain data, a ruamel tree or None, the document's Loc) from a JSON or YAML schema file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProbeFileError(f"cannot read the schema file: {exc}", file=shown) from None
    if path.suffix.lower() != ".json":
        tree = parse_yaml(text, file=shown)
        return to_plain(tree, Loc(shown)), tree, Loc(shown)
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ProbeFileError(f"invalid JSON: {exc.msg}", file=shown, line=exc.lineno) from None
    except ValueError as exc:
        raise ProbeFileError(f"invalid JSON: {exc}", file=shown) from None
    return data, None, Loc(shown, locate=_json_locator(text, shown))


def _json_locator(text: str, shown: str) -> Locator:
    def locate(keys: tuple[Any, ...]) -> int | None:
        try:  # JSON is (almost always) YAML, and ruamel knows where every key is
            tree = parse_yaml(text, file=shown)
        except ProbeFileError:
            return None
        line = node_line(tree)
        for key in keys:
            line = key_line(tree, key) or line
            tree = _sub(tree, key)
        return line

    return locate


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out
