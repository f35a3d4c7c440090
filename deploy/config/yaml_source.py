"""Read YAML while remembering where every value came from.

PyYAML's safe loader silently keeps the last of duplicate keys and forgets line
numbers; both matter for a config file people edit by hand. This loader rejects
duplicate keys and records the 1-based line of every mapping key and sequence item,
keyed by its path (e.g. ``("endpoint", "workers", "max")``), so validation errors can
point at ``rpdeploy.yaml:14``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from deploy.errors import ConfigError

PathKey = tuple[str | int, ...]


@dataclass
class YamlDocument:
    """A parsed YAML file: plain Python data plus the line of each path."""

    file: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def where(self, path: PathKey) -> str:
        """``file:line`` for ``path`` (``file`` alone if nothing better is known)."""
        line = self.line_of(path)
        return f"{self.file.name}:{line}" if line else self.file.name


def parse_yaml(text: str, file: Path) -> YamlDocument:
    """Parse ``text`` (the content of ``file``) into a `YamlDocument`.

    >>> doc = parse_yaml("a:\\n  b: 1\\n", Path("x.yaml"))
    >>> doc.data, doc.lines[("a", "b")]
    ({'a': {'b': 1}}, 2)
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or "invalid YAML"
        raise ConfigError(f"{file.name}{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file.name}: YAML syntax error: {exc}") from None
    doc = YamlDocument(file=file, data=None)
    if node is None:
        return doc
    # One loader resolves every scalar with PyYAML's own rules (ints, bools, nulls, ...).
    loader = yaml.SafeLoader("")
    try:
        doc.data = _convert(node, (), doc, loader)
    finally:
        loader.dispose()
    return doc


def _convert(node: Node, path: PathKey, doc: YamlDocument, loader: yaml.SafeLoader) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, doc, loader)
            if not isinstance(key, str):
                raise ConfigError(
                    f"{doc.file.name}:{key_node.start_mark.line + 1}: keys must be strings, got {key!r}"
                )
            if key in result:
                first = doc.lines.get((*path, key))
                raise ConfigError(
                    f"{doc.file.name}:{key_node.start_mark.line + 1}: duplicate key {dotted((*path, key))!r}"
                    f" (first defined on line {first})"
                )
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, (*path, key), doc, loader)
        return result
    if isinstance(node, SequenceNode):
        return [_convert(item, (*path, index), doc, loader) for index, item in enumerate(node.value)]
    return _scalar(node, doc, loader)


def _scalar(node: Node, doc: YamlDocument, loader: yaml.SafeLoader) -> Any:
    if not isinstance(node, ScalarNode):
        raise ConfigError(f"{doc.file.name}:{node.start_mark.line + 1}: a mapping key must be a plain value")
    return loader.construct_object(node, deep=True)


def dotted(path: PathKey) -> str:
    """``("endpoint", "gpu", "pools", 0)`` -> ``endpoint.gpu.pools[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
