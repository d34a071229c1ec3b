"""The boards, one module each; ``BOARDS`` lists them in the order they are built."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from parkcarbon.grafana.boards import alerts, enterprise, park, quality
from parkcarbon.grafana.panels import BoardContext

Board = Callable[[BoardContext], Dashboard]

# file stem (and uid suffix) -> builder
BOARDS: dict[str, Board] = {
    "park": park.board,
    "enterprise": enterprise.board,
    "quality": quality.board,
    "alerts": alerts.board,
}
