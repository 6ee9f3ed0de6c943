"""What every command needs, loaded lazily: config, engine, probe sets."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from monitor.config import LoadedConfig
    from monitor.probes.model import ProbeSet


@dataclass
class AppContext:
    config_path: str | None
    db_url: str | None
    json_output: bool = False
    _engine: Engine | None = field(default=None, repr=False)

    @cached_property
    def config(self) -> LoadedConfig:
        from monitor.config import load_config

        return load_config(self.config_path)

    def engine(self, *, migrate_empty: bool = True) -> Engine:
        """The database engine, with the schema checked (and created when empty)."""
        if self._engine is None:
            from monitor.store.migrate import ensure_schema

            engine = self.raw_engine()
            ensure_schema(engine, create_if_empty=migrate_empty)
            self._engine = engine
        return self._engine

    def raw_engine(self) -> Engine:
        """The engine without schema checks, for `db` commands; `--db` alone is enough."""
        from monitor.store.db import make_engine

        return make_engine(self.storage_url, source=self.storage_source)

    @property
    def storage_url(self) -> str:
        return self.db_url or self.config.storage_url()

    @property
    def storage_source(self) -> str:
        """Where the storage URL was set, for messages about the database."""
        return "--db" if self.db_url else self.config.storage_source()

    @cached_property
    def probe_sets(self) -> list[ProbeSet]:
        from monitor.probes.loader import load_probe_sets

        return load_probe_sets(self.config.probe_paths)
