"""Checking that a document is a valid Draft 2020-12 schema, once per distinct document.

`check_schema` validates against the metaschema and costs milliseconds; the loader and the
validator both need it, and probe sets often repeat one schema (set defaults, shared files),
so results are remembered by the document's canonical JSON.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

_CHECKED: dict[str, SchemaError | None] = {}
_MAX_REMEMBERED = 4096


def check_schema(document: Any) -> None:
    """Raise jsonschema's SchemaError when `document` is not a valid 2020-12 schema."""
    # The top-level $id is left out of the key: the loader replaces every $id with its own
    # driftmon-probes URI, so the same schema is checked before and after that happens.
    if isinstance(document, dict) and "$id" in document:
        document = {k: v for k, v in document.items() if k != "$id"}
    key = json.dumps(document, sort_keys=True, default=str)
    if key not in _CHECKED:
        try:
            Draft202012Validator.check_schema(document)
            outcome: SchemaError | None = None
        except SchemaError as exc:
            outcome = exc
        if len(_CHECKED) >= _MAX_REMEMBERED:
            _CHECKED.clear()
        _CHECKED[key] = outcome
    error = _CHECKED[key]
    if error is not None:
        raise error
