"""Dagster resources: the project's settings as a resource, so tests can swap them by constructor."""

from pathlib import Path

import dagster as dg

from rwe_assets.settings import Settings


class RweConfig(dg.ConfigurableResource):
    """Where the data lives. Fields left unset come from the environment (rwe_assets/settings.py);
    secrets such as the linkage key are read from the environment only, never from run config."""

    data_dir: str | None = None
    vocab_dir: str | None = None
    landing_settle_seconds: float | None = None
    lake_uri: str | None = None  # unset: RWE_LAKE_URI, else <data_dir>/lake

    def settings(self) -> Settings:
        return Settings.from_env(
            data_dir=Path(self.data_dir).resolve() if self.data_dir else None,
            vocab_dir=Path(self.vocab_dir).resolve() if self.vocab_dir else None,
            landing_settle_seconds=self.landing_settle_seconds,
            lake_uri=self.lake_uri,
        )
