"""Reading the project's YAML files (settings, registry, targets, economics, factors) one way.

Each problem becomes a ``ConfigError`` (or the subclass the caller names) that starts
with the file name and, for syntax errors, the line and column. A key that appears
twice in one mapping is an error: PyYAML would silently keep the last one (a second
``meters:`` section replaced the first and deactivated every real meter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from parkcarbon.errors import ConfigError


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping holds the same key twice; ``key``, ``first_line`` say which."""

    key: Any = None
    first_line = 0


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys in a mapping."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # unhashable key: the base class reports it
                    continue
                if first is not None:
                    exc = DuplicateKeyError(
                        f"key {key!r} first defined on line {first.start_mark.line + 1}",
                        first.start_mark, f"duplicate key {key!r}", key_node.start_mark)
                    exc.key, exc.first_line = key, first.start_mark.line + 1
                    raise exc
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def loads(text: str) -> Any:
    """Parse YAML text with the strict loader (raises ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: safe


def read_yaml(
    path: Path | str,
    *,
    what: str,
    hint: str | None = None,
    error: type[ConfigError] = ConfigError,
) -> Any:
    """Parse ``path``; ``what`` names the file's role in messages ("registry file")."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} not found", hint=hint) from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise error(f"{path}: {what} is not UTF-8 text (byte {exc.start}, line {line})",
                    hint="save the file as UTF-8") from exc
    try:
        return loads(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        assert mark is not None
        raise error(f"{path}: duplicate key {exc.key!r} on line {mark.line + 1} (first on "
                    f"line {exc.first_line}); each key may appear once",
                    hint="merge the two entries into one") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}: not valid YAML{where}: {problem}") from exc
