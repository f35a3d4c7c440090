"""Read YAML while remembering where every value came from, and never guessing types.

PyYAML's safe loader silently keeps the last of duplicate keys, forgets line numbers,
and resolves plain scalars by YAML 1.1 rules that change what people typed
(``3.10`` -> 3.1, ``12:30`` -> 750, ``yes`` -> True, ``017`` -> 15, dates -> date). This
loader:

- reads every plain scalar as the exact text typed, except the YAML 1.2 core nulls
  (``~``, ``null``, ``Null``, ``NULL``, nothing). The schema decides what a value is:
  pydantic turns ``"5"`` into 5 where a number is expected and keeps ``"3.10"`` where a
  string is (StrictYAML's rule; no value can change on its way to a string field);
- accepts only the standard tags ``!!str``, ``!!int``, ``!!float``, ``!!bool``, ``!!null``,
  ``!!map`` and ``!!seq``; any other (``!!python/...``, ``!!timestamp``, ``!custom``) is an
  error naming the line;
- shares aliases as PyYAML does (one object per anchor), supports YAML 1.1 merge keys
  (``<<: *defaults``), and rejects recursive aliases, nesting deeper than `MAX_DEPTH`,
  and alias expansion beyond `MAX_ALIAS_NODES` values or `MAX_ALIAS_CHARS` characters
  (a "billion laughs" document, or a few huge strings aliased many times);
- rejects duplicate keys and records the 1-based line of every mapping key and sequence
  item, keyed by its path (e.g. ``("endpoint", "workers", "max")``), so validation errors
  can point at ``rpdeploy.yaml:14``. Paths reached through an alias are not recorded:
  they report the line of the alias, which is where the user wrote them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError

from deploy.config.patterns import quoted
from deploy.errors import ConfigError
from deploy.runpod.text import escaped

PathKey = tuple[str | int, ...]

#: Deepest nesting a config may have (rpdeploy's own schema needs 6).
MAX_DEPTH: Final = 64
#: How many nodes aliases may add when expanded, beyond the nodes written in the file.
MAX_ALIAS_NODES: Final = 100_000
#: How many characters of scalars aliases may add when expanded, beyond the file's own
#: size: one alias of a 1 MB string used 2,000 times is 2 GB once validated and dumped.
MAX_ALIAS_CHARS: Final = 10_000_000

_YAML = "tag:yaml.org,2002:"
_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
#: Explicit tags a user may write; each is built by PyYAML's safe constructor.
_EXPLICIT: Final = frozenset(_YAML + t for t in ("str", "int", "float", "bool", "null"))
_MERGE: Final = _YAML + "merge"


class YamlProblem(Exception):
    """A structural problem at a node; becomes one ``file:line: path: message`` line."""

    def __init__(self, line: int, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message


@dataclass
class YamlDocument:
    """A parsed YAML file: plain Python data plus the line of each path."""

    file: Path
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        # Shortened one level at a time: a `range` walk down to -1 had an equivalent mutant
        # (stopping at -2 looks up `path[:-1]`, an ancestor already looked up).
        while (line := self.lines.get(path)) is None and path:
            path = path[:-1]
        return line

    def where(self, path: PathKey) -> str:
        """``file:line`` for ``path`` (``file`` alone if nothing better is known)."""
        line = self.line_of(path)
        return f"{self.file.name}:{line}" if line else self.file.name


def parse_yaml(text: str, file: Path) -> YamlDocument:
    """Parse ``text`` (the content of ``file``) into a `YamlDocument`; raise `ConfigError`.

    >>> doc = parse_yaml("a:\\n  b: 1.10\\n", Path("x.yaml"))
    >>> doc.data, doc.lines[("a", "b")]
    ({'a': {'b': '1.10'}}, 2)
    """
    try:
        node = _compose(text)
        doc = YamlDocument(file=file, data=None)
        if node is not None:
            doc.data = _Converter(doc, len(text)).convert(node, (), record=True)
        return doc
    except YamlProblem as exc:
        label = f"{dotted(exc.path)}: " if exc.path else ""
        raise ConfigError(f"{file.name}:{exc.line}: {label}{exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        # PyYAML's scanner, parser and composer errors always carry a mark and a problem; the
        # fallbacks are for the type's sake (mutants of them are equivalent).
        line = f":{mark.line + 1}" if mark is not None else ""  # pragma: no mutate
        problem = exc.problem or "invalid YAML"  # pragma: no mutate
        raise ConfigError(f"{file.name}{line}: YAML syntax error: {problem}") from None
    except ReaderError as exc:
        # A character YAML forbids in a file (NUL, ESC, ...); PyYAML gives an offset, not a line.
        number = text[: exc.position].count("\n") + 1
        code: int = exc.character  # PyYAML's Reader gives the character's ord(), not the character
        raise ConfigError(
            f"{file.name}:{number}: YAML syntax error: character U+{code:04X} is not allowed in a YAML file"
        ) from None
    except yaml.YAMLError as exc:
        # Unreachable from SafeLoader today (its errors are marked, or a ReaderError); kept so that
        # another PyYAML error is one line, not an internal error. Mutants here are untestable.
        problem = " ".join(str(exc).split())  # pragma: no mutate
        raise ConfigError(f"{file.name}: YAML syntax error: {problem}") from None  # pragma: no mutate


class _DepthLimitedLoader(yaml.SafeLoader):
    """PyYAML's composer recurses once per nesting level; stop it before Python's stack does."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._path: list[str | int] = []

    def resolve(self, kind: type[Node], value: Any, implicit: tuple[bool, bool]) -> str:
        # Plain scalars stay text (or null); only explicit tags ask for other types.
        if kind is ScalarNode and implicit[0]:
            if value == "<<":
                return _MERGE
            return _YAML + ("null" if value in _NULLS else "str")
        # Past the plain scalars above, SafeLoader resolves by kind alone (the value is read only
        # for plain scalars' implicit types).
        resolved: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]  # pragma: no mutate
        return resolved

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        step: str | int = (
            index.value if isinstance(index, ScalarNode) else index if index is not None else "?"
        )
        if parent is not None:
            self._path.append(step)
        try:
            if len(self._path) > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
                # The path of the innermost value would be 64 parts long; its start says enough.
                where = tuple(self._path[:3])
                raise YamlProblem(line, where, f"values nested deeper than {MAX_DEPTH} levels")
            # PyYAML passes parent and index on only to path resolvers, which SafeLoader has none of.
            node: Node | None = super().compose_node(parent, index)  # pragma: no mutate
            return node
        finally:
            if parent is not None:
                self._path.pop()


def _compose(text: str) -> Node | None:
    loader = _DepthLimitedLoader(text)
    try:
        node: Node | None = loader.get_single_node()
        return node
    finally:
        loader.dispose()


class _Converter:
    """Nodes -> plain Python data, one object per node (aliases share it, as PyYAML does).

    Alongside, it measures what aliases would expand to (values and depth, memoised per
    node), so a billion-laughs document is refused in time linear in its size, and it
    refuses an alias to a value still being built (a recursive alias).
    """

    def __init__(self, doc: YamlDocument, written_chars: int) -> None:
        self.doc = doc
        #: Expanded scalar characters beyond this are an alias bomb (see `MAX_ALIAS_CHARS`).
        self.max_chars = written_chars + MAX_ALIAS_CHARS
        self.built: dict[int, Any] = {}
        self.size: dict[int, int] = {}
        self.chars: dict[int, int] = {}
        self.depth: dict[int, int] = {}
        self.building: set[int] = set()
        # Only its constructors are used (on tagged scalars), never its stream.
        self.constructor = yaml.SafeLoader("")  # pragma: no mutate

    def problem(self, path: PathKey, message: str) -> YamlProblem:
        """A problem at ``path``, on its recorded line (where an alias was used) or its nearest
        recorded ancestor's."""
        # `convert` records the root's line before building anything, so a line is always found
        # and the 0 is never used (its mutants are equivalent).
        return YamlProblem(self.doc.line_of(path) or 0, path, message)  # pragma: no mutate

    def convert(self, node: Node, path: PathKey, *, record: bool) -> Any:
        key = id(node)
        if record:
            self.doc.lines.setdefault(path, node.start_mark.line + 1)
        if key in self.building:
            raise self.problem(path, "recursive alias: an anchored value contains an alias to itself")
        if key in self.built:
            return self.built[key]  # an alias: the same object, its paths not recorded again
        self.building.add(key)
        if isinstance(node, MappingNode):
            value: Any = self._mapping(node, path, record=record)
        elif isinstance(node, SequenceNode):
            self._tag(node, path, _YAML + "seq")
            value = [self.convert(item, (*path, i), record=record) for i, item in enumerate(node.value)]
        elif isinstance(node, ScalarNode):
            value = self._scalar(node, path)
        else:  # unreachable: PyYAML's composer builds no other node kind (a guard; equivalent mutants)
            raise self.problem(path, "unsupported YAML node")  # pragma: no mutate
        self.building.discard(key)
        self._measure(node, path)
        self.built[key] = value
        return value

    def _measure(self, node: Node, path: PathKey) -> None:
        children: list[Node] = []
        if isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, SequenceNode):
            children = list(node.value)
        for child in children:  # mapping keys are not built through `convert`: count them here
            self.size.setdefault(id(child), 1)
            self.depth.setdefault(id(child), 1)
            self.chars.setdefault(id(child), len(child.value) if isinstance(child, ScalarNode) else 0)
        key = id(node)
        # Children are all built (hence measured) by now: anchors precede their aliases.
        self.size[key] = 1 + sum(self.size[id(child)] for child in children)
        own = len(node.value) if isinstance(node, ScalarNode) else 0
        self.chars[key] = own + sum(self.chars[id(child)] for child in children)
        self.depth[key] = 1 + max((self.depth[id(child)] for child in children), default=0)
        if self.depth[key] > MAX_DEPTH:
            raise self.problem(path, f"aliases nest values deeper than {MAX_DEPTH} levels")
        if self.size[key] > len(self.size) + MAX_ALIAS_NODES:
            raise self.problem(
                path, f"aliases expand to more than {MAX_ALIAS_NODES} extra values (an alias bomb?)"
            )
        if self.chars[key] > self.max_chars:
            raise self.problem(
                path,
                f"aliases expand to more than {MAX_ALIAS_CHARS:,} characters beyond the file's own "
                "(an alias bomb?)",
            )

    def _mapping(self, node: MappingNode, path: PathKey, *, record: bool) -> dict[str, Any]:
        self._tag(node, path, _YAML + "map")
        result: dict[str, Any] = {}
        explicit: set[str] = set()
        merges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == _MERGE:
                merges.append((key_node, value_node))
                continue
            key = self._key(key_node, path)
            if key in explicit:
                first = self.doc.lines.get((*path, key))
                where = f" (first defined on line {first})" if first else ""
                line = key_node.start_mark.line + 1
                message = f"duplicate key {dotted((*path, key))!r}{where}"
                # No label: the message names the key. `None` for `()` is as false (equivalent).
                raise YamlProblem(line, (), message)  # pragma: no mutate
            explicit.add(key)
            if record:
                self.doc.lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, (*path, key), record=record)
        for key_node, value_node in merges:
            if record:
                self.doc.lines.setdefault((*path, "<<"), key_node.start_mark.line + 1)
            for key, value in self._merged(value_node, (*path, "<<")).items():
                if key not in result:  # keys written in the mapping itself win over merged ones
                    result[key] = value
                    if record:
                        self.doc.lines.setdefault((*path, key), key_node.start_mark.line + 1)
        return result

    def _merged(self, value_node: Node, path: PathKey) -> dict[str, Any]:
        """What ``<<: *a`` or ``<<: [*a, *b]`` adds; earlier sources win (YAML 1.1 merge)."""
        sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
        merged: dict[str, Any] = {}
        for source in sources:
            if not isinstance(source, MappingNode):
                raise self.problem(path, "a merge key (<<) takes a mapping or a list of mappings")
            # Lines under a merge key's own path are never looked up (merged keys get the `<<`
            # line in `_mapping`), so recording them or not is the same (equivalent mutants).
            for key, value in self.convert(source, path, record=False).items():  # pragma: no mutate
                merged.setdefault(key, value)
        return merged

    def _key(self, node: Node, path: PathKey) -> str:
        if not isinstance(node, ScalarNode):
            raise YamlProblem(node.start_mark.line + 1, path, "a mapping key must be a plain value")
        key = self._scalar(node, path)
        if not isinstance(key, str):
            raise YamlProblem(node.start_mark.line + 1, path, f"keys must be strings, got {key!r}")
        return key

    def _scalar(self, node: ScalarNode, path: PathKey) -> Any:
        if node.tag == _YAML + "str":
            return _join_surrogates(node.value)
        self._tag(node, path, *_EXPLICIT)
        try:
            # A null (plain `~`, `null` or an explicit !!null) comes out as None here too; a
            # scalar has nothing deeper to build.
            return self.constructor.construct_object(node)
        except (ArithmeticError, LookupError, TypeError, ValueError, yaml.YAMLError) as exc:
            # PyYAML's constructors fail on a malformed explicit value (`!!int` alone, `!!bool maybe`)
            # with whatever the conversion raised.
            tag = node.tag.replace(_YAML, "!!")
            raise self.problem(
                path, f"{quoted(str(node.value))} is not a valid {tag} value ({type(exc).__name__})"
            ) from None

    def _tag(self, node: Node, path: PathKey, *allowed: str) -> None:
        if node.tag not in allowed:
            tag = node.tag.replace(_YAML, "!!")
            raise self.problem(
                path,
                f"tag {tag} is not allowed (rpdeploy.yaml is plain data; quote the value instead)",
            )


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _join_surrogates(text: str) -> str:
    """Combine JSON-style surrogate pairs (``"\\ud83d\\ude00"``), which PyYAML leaves split.

    A lone surrogate stays, for the config's character check to reject.
    """
    if not _SURROGATE.search(text):
        return text
    try:
        # Codec names are case-insensitive: "UTF-16-LE" would be an equivalent mutant.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")  # pragma: no mutate
    except UnicodeDecodeError:
        return text


def dotted(path: PathKey) -> str:
    """``("endpoint", "gpu", "pools", 0)`` -> ``endpoint.gpu.pools[0]``.

    Invisible characters in keys are shown escaped (once: `deploy.runpod.text.escaped`):
    a path goes into messages and logs.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = escaped(part)
            out += f".{name}" if out else name
    return out
