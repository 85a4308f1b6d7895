"""YAML loading that keeps line numbers.

PyYAML's ``compose`` gives a node tree with start marks; we turn it into ``Located``
values (a plain Python value plus the 1-based line it came from) so that validation can
name the file, line and key of every problem. Duplicate keys are refused here because
PyYAML silently keeps the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from harness.errors import ExperimentError


@dataclass(frozen=True)
class Located:
    """A YAML value and where it was: ``value`` is a dict[str, Located], a list[Located]
    or a scalar (str, int, float, bool, None)."""

    value: Any
    line: int

    def plain(self) -> Any:
        """The value with every ``Located`` wrapper removed (for free-form bodies)."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def load_located(text: str, path: str) -> Located:
    """Parse ``text`` (the content of ``path``) into a ``Located`` tree."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ExperimentError(f"not valid YAML: {problem}", path=path, line=line) from None
    if node is None:
        raise ExperimentError("the file is empty", path=path, line=1)
    return _convert(node, path, yaml.SafeLoader(""))


def _convert(node: yaml.Node, path: str, loader: yaml.SafeLoader) -> Located:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Located] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, path, loader)
            if not isinstance(key, str):
                raise ExperimentError(f"keys must be strings, not {key!r}", path=path,
                                      line=key_node.start_mark.line + 1)
            if key in out:
                raise ExperimentError("duplicate key", path=path,
                                      line=key_node.start_mark.line + 1, key=key)
            out[key] = _convert(value_node, path, loader)
        return Located(out, line)
    if isinstance(node, yaml.SequenceNode):
        return Located([_convert(n, path, loader) for n in node.value], line)
    return Located(_scalar(node, path, loader), line)


def _scalar(node: yaml.Node, path: str, loader: yaml.SafeLoader) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ExperimentError("keys must be plain scalars", path=path, line=node.start_mark.line + 1)
    try:
        return loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        raise ExperimentError(f"bad scalar: {exc}", path=path, line=node.start_mark.line + 1) from None
