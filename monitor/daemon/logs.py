"""Daemon logging: JSON lines when stderr is not a terminal (journald, files, collectors),
readable lines on a terminal. Structured fields travel in `extra={"event": ..., ...}`.

Nothing here logs model output or secrets; callers pass counts and names, and long strings are
cut so one bad value cannot flood the journal.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
MAX_FIELD = 500


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_"):
            continue
        if isinstance(value, str) and len(value) > MAX_FIELD:
            value = value[:MAX_FIELD] + "…"
        out[key] = value
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage()[: MAX_FIELD * 4],
            **_fields(record),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)[-4000:]
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items() if k != "event")
        text = f"{when} {record.levelname:<7} {record.getMessage()}"
        text += f"  {extra}" if extra else ""
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(level: int = logging.INFO, *, json_lines: bool | None = None) -> None:
    use_json = not sys.stderr.isatty() if json_lines is None else json_lines
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Request lines from HTTP clients would log URLs once per probe: too much, no value.
    for noisy in ("httpx", "httpcore", "apscheduler.executors", "apscheduler.scheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
