"""Commands of parkcarbon.carbon (registered on the main group)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Add this package's commands to the `parkcarbon` group."""
    del group
