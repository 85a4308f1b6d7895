"""Small typed readers over ``Located`` YAML values.

Each reader takes the parent mapping, the key and a dotted ``where`` prefix, and
raises ExperimentError naming file, line and key. Unknown keys are refused by
``Section.done()`` so that a typo never silently changes an experiment.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from harness.errors import ExperimentError
from harness.experiment.yamlnodes import Located

_MISSING = object()


class Section:
    """A YAML mapping being read; remembers which keys were consumed."""

    def __init__(self, node: Located, where: str, path: str):
        self.path, self.where = path, where
        if not isinstance(node.value, dict):
            raise ExperimentError(f"must be a mapping, not {_kind(node.value)}",
                                  path=path, line=node.line, key=where or "(top level)")
        self.node = node
        self.items: dict[str, Located] = node.value
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str, message: str, line: int | None = None) -> ExperimentError:
        located = self.items.get(name)
        if line is None:
            line = located.line if located is not None else self.node.line
        return ExperimentError(message, path=self.path, line=line, key=self.key(name))

    def has(self, name: str) -> bool:
        return name in self.items and self.items[name].value is not None

    def raw(self, name: str, required: bool = False) -> Located | None:
        self.used.add(name)
        located = self.items.get(name)
        if located is None or located.value is None:
            if required:
                raise self.error(name, "is required")
            return None
        return located

    def section(self, name: str, required: bool = False) -> "Section | None":
        located = self.raw(name, required)
        return None if located is None else Section(located, self.key(name), self.path)

    def list(self, name: str, required: bool = False) -> list[Located]:
        located = self.raw(name, required)
        if located is None:
            return []
        if not isinstance(located.value, list):
            raise self.error(name, f"must be a list, not {_kind(located.value)}")
        if required and not located.value:
            raise self.error(name, "must not be empty")
        return located.value

    def str(self, name: str, default: Any = _MISSING) -> Any:
        located = self.raw(name, default is _MISSING)
        if located is None:
            return default
        if not isinstance(located.value, str) or not located.value.strip():
            raise self.error(name, f"must be a non-empty string, not {_kind(located.value)}")
        return located.value

    def bool(self, name: str, default: bool = False) -> bool:
        located = self.raw(name)
        if located is None:
            return default
        if not isinstance(located.value, bool):
            raise self.error(name, f"must be true or false, not {_kind(located.value)}")
        return located.value

    def number(self, name: str, default: Any = _MISSING, *, minimum: float | None = 0.0,
               maximum: float | None = None, integer: bool = False, positive: bool = False) -> Any:
        located = self.raw(name, default is _MISSING)
        if located is None:
            return default
        value = located.value
        wanted = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                integer and not isinstance(value, int)):
            raise self.error(name, f"must be {wanted}, not {_kind(value)}")
        if positive and value <= 0:
            raise self.error(name, f"must be greater than 0, got {value}")
        if minimum is not None and value < minimum:
            raise self.error(name, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(name, f"must be at most {maximum}, got {value}")
        return int(value) if integer else float(value)

    def choice(self, name: str, enum_type: Any, default: Any = _MISSING) -> Any:
        located = self.raw(name, default is _MISSING)
        if located is None:
            return default
        allowed = [m.value for m in enum_type]
        if located.value not in allowed:
            raise self.error(name, f"unknown value {located.value!r}; expected one of {', '.join(allowed)}")
        return enum_type(located.value)

    def time(self, name: str) -> datetime | None:
        located = self.raw(name)
        if located is None:
            return None
        value = located.value
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise self.error(name, f"must be an ISO 8601 time, not {located.value!r}") from None
        if not isinstance(value, datetime):
            raise self.error(name, f"must be an ISO 8601 time, not {_kind(value)}")
        if value.tzinfo is None:
            raise self.error(name, "must carry a time zone (e.g. 2026-12-03T22:00:00Z)")
        return value.astimezone(timezone.utc)

    def done(self) -> None:
        """Refuse keys nobody read: typos must not pass silently."""
        for name, located in self.items.items():
            if name not in self.used:
                known = ", ".join(sorted(self.used)) or "none"
                raise ExperimentError(f"unknown key (known here: {known})", path=self.path,
                                      line=located.line, key=self.key(name))


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"string {value!r}"
    return f"{type(value).__name__} {value!r}"
