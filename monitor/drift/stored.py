"""The stored form of a baseline's run-to-run variation (Baseline.dispersion).

Apart from monitor.drift.runs, which loads scipy: the engine reads and writes the stored form
in the parent process, where `driftmon run` must not pay scipy's import (about a second).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.drift.model import Dispersion


def versions_key(versions: Sequence[int]) -> int:
    """A checksum of the probe versions compared: a stored dispersion is for those only."""
    return zlib.crc32(",".join(map(str, sorted(versions))).encode())


def encode(versions: Sequence[int], dispersion: Mapping[str, Dispersion]) -> dict[str, Any]:
    """JSON for Baseline.dispersion."""
    metrics = {name: [d.factor, d.runs] for name, d in dispersion.items()}
    return {"versions": versions_key(versions), "metrics": metrics}


def decode(
    stored: Mapping[str, Any] | None, versions: Sequence[int]
) -> dict[str, Dispersion] | None:
    """The stored dispersion when it was computed over these probe versions, else None."""
    if not stored or stored.get("versions") != versions_key(versions):
        return None
    return {name: Dispersion(float(f), int(n)) for name, (f, n) in stored["metrics"].items()}
