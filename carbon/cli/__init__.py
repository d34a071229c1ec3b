"""Command groups of parkcarbon.carbon: ``emissions``, ``indicators``, ``targets``,
``economics``. ``COMMANDS`` is what the root CLI adds."""

from __future__ import annotations

import click

from parkcarbon.carbon.cli.emissions import register


def _commands() -> list[click.Command]:
    holder = click.Group("carbon")
    register(holder)
    return list(holder.commands.values())


COMMANDS: list[click.Command] = _commands()
