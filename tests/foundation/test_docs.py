"""The README's command table matches the click tree (datasette's test_docs habit).

Every command in the "What works" table exists with the options it shows; every
command of the tree is in the table; every command that prints data offers
``--format table|csv|json``.
"""

from __future__ import annotations

import re

import click

from parkcarbon.cli import cli
from support import ROOT

# Commands that print no data of their own (they run a service or write something and
# report one line): no --format.
NO_DATA = {"db migrate", "ingest", "targets check", "economics load"}


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}
    for name, cmd in group.commands.items():
        here = (*path, name)
        if isinstance(cmd, click.Group):
            if cmd.invoke_without_command:
                out[" ".join(here)] = cmd
            out.update(_leaves(cmd, here))
        else:
            out[" ".join(here)] = cmd
    return out


def _table_commands() -> list[tuple[str, list[str]]]:
    """(command path, options shown) for every `parkcarbon ...` span in the table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## What works", 1)[1].split("\n## ", 1)[0]
    found = []
    for line in section.splitlines():
        if not line.startswith("| `parkcarbon"):
            continue
        first_cell = line.split(" | ")[0]
        for span in re.findall(r"`(parkcarbon [^`]+)`", first_cell):
            words = span.split()[1:]
            path = []
            for w in words:
                if w.startswith(("-", "[", "<")) or w.isupper():
                    break
                path.append(w)
            options = re.findall(r"(--[a-z][a-z-]*)", span)
            found.append((" ".join(path), options))
    return found


def test_every_documented_command_exists_with_its_options() -> None:
    leaves = _leaves(cli)
    documented = _table_commands()
    assert documented, "no command table found in README.md"
    problems = []
    for path, options in documented:
        cmd = leaves.get(path)
        if cmd is None:
            problems.append(f"README names `parkcarbon {path}`, which does not exist")
            continue
        known = {o for p in cmd.params for o in getattr(p, "opts", [])}
        problems += [f"`parkcarbon {path}` has no option {o}" for o in options if o not in known]
    assert problems == []


def test_every_command_is_documented() -> None:
    documented = {path for path, _ in _table_commands()}
    missing = sorted(set(_leaves(cli)) - documented)
    assert missing == [], f"commands missing from the README table: {missing}"


def test_every_command_that_prints_data_takes_format() -> None:
    lacking = []
    for path, cmd in sorted(_leaves(cli).items()):
        if path in NO_DATA:
            continue
        fmt = next((p for p in cmd.params if "--format" in getattr(p, "opts", [])), None)
        if fmt is None or list(getattr(fmt.type, "choices", [])) != ["table", "csv", "json"]:
            lacking.append(path)
    assert lacking == []
