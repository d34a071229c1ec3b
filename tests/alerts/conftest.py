"""Fixtures of the alert tests: a migrated database with the example park, settings for
it, and a real local HTTP server standing in for webhook and robot endpoints."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # alerts_support

from alerts_support import Sink, start_sink, stop_sink

from parkcarbon.registry import Registry, load_registry
from parkcarbon.settings import Settings
from support import EXAMPLE_REGISTRY


@pytest.fixture
def registry() -> Registry:
    return load_registry(EXAMPLE_REGISTRY)


@pytest.fixture
def settings(migrated_dsn: str, tmp_path: Any) -> Settings:
    return Settings(database_url=migrated_dsn, metrics_port=None,
                    alerts_file=tmp_path / "alerts.yaml")


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = start_sink()
    try:
        yield s
    finally:
        stop_sink(s)
