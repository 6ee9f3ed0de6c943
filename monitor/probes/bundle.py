"""A probe's schema as one self-contained document, for sending to a provider.

`Probe.schema` carries our `driftmon-probes:` `$id`, and its `$ref`s may point into other
files (`Probe.schema_resources`). A provider cannot resolve either, and structured-output
APIs accept only local `#/...` references. `request_schema` therefore returns a copy with
the `$id` removed and every referenced file embedded under `$defs`, its references rewritten
to JSON pointers. Validation keeps using the original schema and its registry.

If a schema uses what pointer rewriting cannot express (nested `$id`, `$anchor`,
`$dynamicRef`), the result is a 2020-12 compound document instead: resources embedded under
`$defs` with their own `$id`, which spec-compliant validators resolve, and which is the
best that can be sent.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urldefrag, urljoin

from monitor.probes.model import Probe
from monitor.probes.schemas import SCHEME  # importing it makes urljoin resolve our URIs

_UNSUPPORTED = ("$anchor", "$dynamicRef", "$dynamicAnchor", "$recursiveRef")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def request_schema(probe: Probe) -> dict[str, Any] | None:
    """The schema to send with a request: self-contained, without driftmon's URIs."""
    if probe.schema is None:
        return None
    return bundle_schema(probe.schema, probe.schema_resources)


def bundle_schema(
    schema: dict[str, Any], resources: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """`schema` with the `resources` it references embedded (see the module docstring)."""
    root_uri = str(schema.get("$id", f"{SCHEME}:///"))
    docs = {root_uri: schema, **resources}
    names = _def_names(schema, resources)
    if any(_has_unsupported(doc, is_root=True) for doc in docs.values()):
        return _compound(schema, resources, names)
    targets = {root_uri: "#", **{uri: f"#/$defs/{name}" for uri, name in names.items()}}
    root: dict[str, Any] = _rewrite(schema, root_uri, targets)
    root.pop("$id", None)
    if names:
        defs = dict(root.get("$defs", {}))
        for uri, name in names.items():
            embedded = _rewrite(resources[uri], uri, targets)
            embedded.pop("$id", None)
            defs[name] = embedded
        root["$defs"] = defs
    return root


def _def_names(root: dict[str, Any], resources: Mapping[str, Any]) -> dict[str, str]:
    taken = set(root.get("$defs", {}) or {})
    names: dict[str, str] = {}
    for uri in sorted(resources):
        base = _UNSAFE.sub("_", uri.rsplit("/", 1)[-1]) or "schema"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names[uri] = name
    return names


def _has_unsupported(node: Any, *, is_root: bool = False) -> bool:
    if isinstance(node, list):
        return any(_has_unsupported(item) for item in node)
    if not isinstance(node, dict):
        return False
    if any(k in node for k in _UNSUPPORTED) or (not is_root and isinstance(node.get("$id"), str)):
        return True
    return any(
        _has_unsupported(v) for k, v in node.items() if k not in ("const", "enum", "examples")
    )


def _rewrite(node: Any, base: str, targets: dict[str, str]) -> Any:
    if isinstance(node, list):
        return [_rewrite(item, base, targets) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            uri, fragment = urldefrag(urljoin(base, value))
            # A fragment here is a JSON pointer ("/properties/x") or empty: anchors were excluded.
            out[key] = targets[uri] + fragment if uri in targets else value
        elif key in ("const", "enum", "examples", "default"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _rewrite(value, base, targets)
    return out


def _compound(
    root: dict[str, Any], resources: Mapping[str, dict[str, Any]], names: dict[str, str]
) -> dict[str, Any]:
    out = copy.deepcopy(root)
    if resources:
        defs = dict(out.get("$defs", {}))
        defs.update({names[uri]: copy.deepcopy(doc) for uri, doc in resources.items()})
        out["$defs"] = defs
    return out
