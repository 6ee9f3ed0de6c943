"""JSON Schema validation against local schemas only: no network, no file reads, ever.

Each probe gets a `referencing.Registry` holding exactly its root schema and the documents of
`Probe.schema_resources` (all under the `driftmon-probes:///` scheme, loaded by the probe
loader), with a `retrieve` that refuses everything else. jsonschema adds the official
meta-schemas, which it ships in memory. A `$ref` to anything else (https://..., an unknown
local file) cannot resolve: it is reported as a schema error on the output, never fetched.

Format: `format` is asserted, not just annotated, for a fixed set of formats implemented
here without optional packages: date, date-time, time, duration, email, hostname, ipv4, ipv6,
uri, uuid. Probe authors who write `format: date` mean it, and a model switching from
"2024-01-31" to "31/01/2024" is exactly the silent drift we exist to catch. jsonschema's own
FormatChecker asserts a set that depends on which optional packages happen to be installed,
which would make judging differ between installs; ours does not. Other formats stay
annotations. Changing this set changes judgements, so treat it like a probe-version change.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, Protocol

import referencing.exceptions
from jsonschema import (  # type: ignore[import-untyped, unused-ignore]
    Draft202012Validator,
    FormatChecker,
)
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped, unused-ignore]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from monitor.schema_check import check_schema

SCHEME = "driftmon-probes"

# urllib.parse.urljoin (which `referencing` uses to resolve a relative $ref) only joins URLs
# of schemes it knows are hierarchical; for any other scheme it returns the reference
# unchanged, so `{"$ref": "schemas/item.json"}` inside `driftmon-probes:///invoices.yaml`
# would look up "schemas/item.json" and fail. Declaring our scheme hierarchical fixes that;
# appending to these stdlib lists is idempotent and affects no other scheme.
for _schemes in (urllib.parse.uses_relative, urllib.parse.uses_netloc):
    if SCHEME not in _schemes:
        _schemes.append(SCHEME)

_MAX_MESSAGE = 300  # jsonschema messages embed repr(instance), which may be the whole output


class SchemaValidator(Protocol):
    def iter_errors(self, instance: Any) -> Iterable[Any]: ...


class InvalidSchema(Exception):
    """The probe's schema (or one it references) is not a valid Draft 2020-12 schema."""


def _refuse(uri: str) -> Resource[Any]:
    raise referencing.exceptions.NoSuchResource(ref=uri)  # type: ignore[call-arg]


def _without_fragment(document: dict[str, Any]) -> dict[str, Any]:
    # The loader labels inline schemas `driftmon-probes:///invoices.yaml#acme-invoice`. An
    # $id with a non-empty fragment is invalid in 2020-12 and would become the base URI for
    # every relative $ref; the label is only a label, so the copy we validate with drops it.
    schema_id = document.get("$id")
    if isinstance(schema_id, str) and "#" in schema_id:
        return {**document, "$id": urllib.parse.urldefrag(schema_id).url}
    return document


def build_registry(root: dict[str, Any], resources: dict[str, dict[str, Any]]) -> Registry[Any]:
    """A registry of exactly these documents, crawled once so lookups are read-only."""
    entries: list[tuple[str, Resource[Any]]] = []
    root_id = root.get("$id")
    if isinstance(root_id, str) and root_id:
        entries.append((root_id, DRAFT202012.create_resource(root)))
    for uri, document in resources.items():
        resource = Resource.from_contents(
            _without_fragment(document), default_specification=DRAFT202012
        )
        entries.append((urllib.parse.urldefrag(uri).url, resource))
    # attrs aliases the private `_retrieve` field to `retrieve`; mypy's attrs support misses it.
    registry: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]
    return registry.with_resources(entries).crawl()


def compile_validator(
    schema: dict[str, Any], resources: dict[str, dict[str, Any]]
) -> SchemaValidator:
    """Build the validator for one probe version; raises InvalidSchema."""
    root = _without_fragment(schema)
    try:
        check_schema(root)
        for uri, document in resources.items():
            try:
                check_schema(_without_fragment(document))
            except SchemaError as exc:
                raise InvalidSchema(f"{uri}: {exc.message}") from None
    except SchemaError as exc:
        raise InvalidSchema(exc.message) from None
    validator: SchemaValidator = Draft202012Validator(
        root, registry=build_registry(root, resources), format_checker=FORMAT_CHECKER
    )
    return validator


def schema_errors(
    validator: SchemaValidator, instance: Any, *, keep: int, count_up_to: int = 1_000
) -> tuple[list[str], int]:
    """Every error as "<json path>: <message>": `keep` verbatim, then "... N more"; and the
    number of errors counted.

    Counting stops at `count_up_to` ("... N+ more"): an array of 100,000 wrong items would
    otherwise cost a second of message formatting for lines nobody reads.
    """
    kept: list[str] = []
    total = 0
    try:
        for error in validator.iter_errors(instance):
            total += 1
            if len(kept) < keep:
                kept.append(f"{json_path(error.absolute_path)}: {_clip(error.message)}")
            if total >= count_up_to:
                break
    except referencing.exceptions.Unresolvable as exc:
        # Raised mid-validation when a $ref points outside the registry (remote, or a local
        # file the loader did not provide). Nothing was fetched; report it with the rest.
        total += 1
        if len(kept) < keep:
            kept.append(
                f"$: cannot resolve $ref {_clip(str(exc.ref))!r}: only the probe's own local"
                " schemas are available"
            )
    except RecursionError:
        # Unreachable with the nesting limit; a pathological recursive schema must still
        # not crash a run.
        total += 1
        if len(kept) < keep:
            kept.append("$: too deeply nested to validate")
    if total > len(kept):
        more = total - len(kept)
        kept.append(f"... {more}+ more" if total >= count_up_to else f"... {more} more")
    return kept, total


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(parts: Iterable[Any]) -> str:
    """JSONPath-style location: $.items[2].name, $["odd key"]."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENTIFIER.fullmatch(part):
            out.append(f".{part}")
        else:
            out.append(f'["{_clip(str(part), 80).replace(chr(34), chr(92) + chr(34))}"]')
    return "".join(out)


def _clip(text: str, limit: int = _MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- formats -------------------------------------------------------------------------------

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))"
)
_DUR_TIME = r"T(?:[0-9]+H(?:[0-9]+M(?:[0-9]+S)?)?|[0-9]+M(?:[0-9]+S)?|[0-9]+S)"
_DUR_DATE = r"(?:[0-9]+Y(?:[0-9]+M(?:[0-9]+D)?)?|[0-9]+M(?:[0-9]+D)?|[0-9]+D)"
_DURATION = re.compile(rf"P(?:{_DUR_DATE}(?:{_DUR_TIME})?|{_DUR_TIME}|[0-9]+W)")
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

FORMAT_CHECKER = FormatChecker(formats=())


def _format(name: str) -> Callable[[Callable[[str], bool]], Callable[[str], bool]]:
    # Non-strings pass every format (the spec: formats constrain strings only).
    def register(check: Callable[[str], bool]) -> Callable[[str], bool]:
        FORMAT_CHECKER.checks(name)(lambda value: not isinstance(value, str) or check(value))
        return check

    return register


@_format("date")
def _is_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@_format("time")
def _is_time(value: str) -> bool:
    match = _TIME.fullmatch(value)
    if match is None:
        return False
    hour, minute, second, off_hour, off_minute = match.groups()
    if int(hour) > 23 or int(minute) > 59 or int(second) > 60:  # 60: leap second
        return False
    return off_hour is None or (int(off_hour) <= 23 and int(off_minute) <= 59)


@_format("date-time")
def _is_date_time(value: str) -> bool:
    day, separator, time = value[:10], value[10:11], value[11:]
    return separator in ("T", "t") and _is_date(day) and _is_time(time)


@_format("duration")
def _is_duration(value: str) -> bool:
    return _DURATION.fullmatch(value) is not None


@_format("email")
def _is_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain) and not any(c.isspace() for c in value)


@_format("hostname")
def _is_hostname(value: str) -> bool:
    labels = value.removesuffix(".").split(".")
    return len(value) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels)


@_format("ipv4")
def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)  # rejects leading zeros since Python 3.9.5
    except ValueError:
        return False
    return True


@_format("ipv6")
def _is_ipv6(value: str) -> bool:
    if "%" in value:  # zone ids are not part of the JSON Schema ipv6 format
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


@_format("uri")
def _is_uri(value: str) -> bool:
    return _URI.fullmatch(value) is not None  # absolute, no spaces or forbidden characters


@_format("uuid")
def _is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None
