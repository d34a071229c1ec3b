"""Command groups of parkcarbon.carbon: ``emissions`` (refresh, diff, runs, factors),
``indicators``, ``targets`` (status, check), ``economics`` (load).

``COMMANDS`` is what the root CLI adds. Shared rendering: ``render``."""

from __future__ import annotations

import click

from parkcarbon.carbon.cli.economics import economics_group
from parkcarbon.carbon.cli.emissions import emissions_group
from parkcarbon.carbon.cli.indicators import indicators_command
from parkcarbon.carbon.cli.targets import targets_group

__all__ = ["COMMANDS"]

COMMANDS: list[click.Command] = [
    emissions_group,
    indicators_command,
    targets_group,
    economics_group,
]
