"""Reading the project's YAML files (registry, targets, economics, factors) one way.

Each problem becomes a ``ConfigError`` (or the subclass the caller names) that starts
with the file name and, for syntax errors, the line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from parkcarbon.errors import ConfigError


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise error(f"{path}: not valid YAML{where}: {exc}") from exc
