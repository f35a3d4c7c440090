"""Upper bounds on the size of what a template operation would produce, computed BEFORE it runs.

A sandboxed template can still allocate: ``'ab'|replace('a', 'a'*100000)|replace(...)``,
a nested ``|join`` of a list that repeats one big string, ``'%s%s' % (y, y)``. Checking
sizes after the fact is too late (the gigabytes are already allocated), so every filter,
method call, ``%``, ``~`` and block capture asks this module first: the result's size
is estimated from its inputs (never by computing it) and refused over the limit.

The measure is *text weight*: an upper bound on ``len(str(value))`` for a string and on
the total characters plus items for a container (a list of 900 references to one
900,000-character string weighs 810 million: cheap to hold, ruinous to flatten). Weighing
stops as soon as the limit is passed, so weighing itself is bounded by the limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

from jinja2.exceptions import SecurityError

#: Characters of a string or items of a list an operation may produce.
MAX_SIZE = 1_000_000
#: Characters an expensive text filter (``wordwrap``, ``urlize``…) may be given: their
#: time grows faster than their input (``wordwrap(1)`` of 900,000 characters: 28 s).
MAX_TEXT_INPUT = 20_000
#: ``repr``/JSON may write one character as up to 12 (``\\ud83d\\ude00``, ``\\U0010ffff``).
ESCAPE_FACTOR = 12
#: Case mapping may turn one character into three (``'ΐ'.upper()``).
CASE_FACTOR = 3
#: HTML escaping writes at most 5 characters for one (``&#34;``).
HTML_FACTOR = 5
#: Per container item: separators, brackets, quotes and a line's indentation (pprint, JSON).
ITEM_OVERHEAD = 8
#: Nesting deeper than this is refused outright (weighing is recursive).
MAX_DEPTH = 100
_NUMBER = re.compile(r"\d+")


class _Over(Exception):
    """Weighing passed the limit: stop early."""


def refuse(size: int, what: str) -> None:
    """Refuse an operation whose estimated result is over `MAX_SIZE`."""
    if size > MAX_SIZE:
        raise SecurityError(f"{what} would make {size:,} characters or items, over the limit of {MAX_SIZE:,}")


def weight(value: Any, limit: int = MAX_SIZE) -> int:
    """Upper bound on the characters ``str(value)`` (or flattening ``value``) produces;
    ``limit + 1`` as soon as it is known to be over ``limit``."""
    total = [0]
    try:
        _weigh(value, total, limit, 0)
    except _Over:
        return limit + 1
    return total[0]


def _add(total: list[int], amount: int, limit: int) -> None:
    total[0] += amount
    if total[0] > limit:
        raise _Over


def _weigh(value: Any, total: list[int], limit: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise SecurityError(f"a value nested over {MAX_DEPTH} levels deep is over the template limit")
    if isinstance(value, str):
        # At the top a string is its own text; inside a container it is its repr or JSON,
        # where plain ASCII at most doubles (``\\``) and anything else may take 12.
        # Quotes only surround a string inside a container.
        factor = 1 if not depth else 2 if value.isascii() and value.isprintable() else ESCAPE_FACTOR
        _add(total, len(value) * factor + (2 if depth else 0), limit)
    elif isinstance(value, (bool, float, complex)) or value is None:
        _add(total, 32, limit)
    elif isinstance(value, int):
        _add(total, value.bit_length() // 3 + 2, limit)
    elif isinstance(value, (bytes, bytearray)):
        _add(total, len(value) * 4 + 3, limit)
    elif isinstance(value, Mapping):
        _add(total, 2, limit)  # the brackets
        for key, item in value.items():
            _add(total, ITEM_OVERHEAD + depth * 2, limit)
            _weigh(key, total, limit, depth + 1)
            _weigh(item, total, limit, depth + 1)
    elif isinstance(value, (list, tuple, set, frozenset, range)):
        _add(total, 2, limit)
        for item in value:
            _add(total, ITEM_OVERHEAD + depth * 2, limit)
            _weigh(item, total, limit, depth + 1)
    else:
        # Objects the render context holds (Undefined, loop, namespace): small reprs.
        _add(total, 256, limit)


def text_length(value: Any) -> int:
    """Exact length of a string; the weight of anything else (what ``str()`` could make)."""
    return len(value) if isinstance(value, str) else weight(value)


def materialize(value: Any, what: str) -> Any:
    """A generator (``|map``, ``|select``) turned into a list, consuming it only while
    the items weigh under the limit; sized values pass unchanged."""
    if not isinstance(value, Iterator):
        return value
    items: list[Any] = []
    spent = 0
    for item in value:
        spent += weight(item) + ITEM_OVERHEAD
        refuse(spent, what)
        items.append(item)
    return items


def format_size(template: Any, args: Iterable[Any], *, repeats: bool = True) -> int:
    """Bound for ``template % args`` and ``template.format(*args)``: the template, every
    number in it (widths, precisions), and the arguments as text or as ``*`` widths. When
    a placeholder may name an argument again (``'{0}{0}'``, ``'%(a)s%(a)s'``: ``repeats``)
    each placeholder (``%`` or ``{``) counts the largest argument."""
    text = str(template)
    widths = sum(int(n) for n in _NUMBER.findall(text) if len(n) < 8)
    sizes = [0]
    for arg in args:
        size = weight(arg)
        if isinstance(arg, int) and not isinstance(arg, bool):
            size = max(size, abs(arg))
        sizes.append(size)
        if sum(sizes) > MAX_SIZE:
            break
    spread = (text.count("%") + text.count("{")) * max(sizes) if repeats else sum(sizes)
    return len(text) + widths + spread


def format_args(args: Any) -> list[Any]:
    """The arguments of ``text % args`` as a list."""
    if isinstance(args, tuple):
        return list(args)
    if isinstance(args, Mapping):
        return list(args.values())
    return [args]


def replace_size(text: str, old: Any, new: Any, count: Any = -1) -> int:
    """``len(text) + occurrences × (len(new) − len(old))``; occurrences are counted (linear)."""
    old_text, new_text = str(old), str(new)
    found = text.count(old_text)  # "" is found len(text) + 1 times, as replace inserts it
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new_text) - len(old_text), 0)


def join_size(separator: Any, items: Any) -> int:
    """Every item as text, plus one separator between each two."""
    sep = text_length(separator)
    size = 0
    for index, item in enumerate(items):
        size += text_length(item) + (sep if index else 0)
        if size > MAX_SIZE:
            break
    return size


# ---- filters: the bound of each one that can grow its input (the rest return at most an input)

Bound = Callable[[dict[str, Any]], int]


def _lines(text: Any) -> int:
    return str(text).count("\n") + 1 if isinstance(text, str) else weight(text)


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _width(value: Any) -> int:
    """``indent``'s width: a number of spaces or a string to repeat."""
    return abs(value) if isinstance(value, int) and not isinstance(value, bool) else text_length(value)


def _expensive(name: str, bound: Bound) -> Bound:
    """A text filter whose time grows faster than its input gets at most `MAX_TEXT_INPUT`."""
    # Called once, at import (building FILTER_BOUNDS): the check itself is `_input_limited`,
    # called at render time, so that mutation testing can reach it.
    return partial(_input_limited, name, bound)  # pragma: no mutate (runs at import)


def _input_limited(name: str, bound: Bound, a: dict[str, Any]) -> int:
    """``bound(a)``, or SecurityError when the filter's input is over `MAX_TEXT_INPUT`."""
    value = next(iter(a.values()))
    size = text_length(value)
    if size > MAX_TEXT_INPUT:
        raise SecurityError(f"'{name}' of {size:,} characters is over its input limit of {MAX_TEXT_INPUT:,}")
    return bound(a)


FILTER_BOUNDS: dict[str, Bound] = {
    "replace": lambda a: (
        replace_size(a["s"], a["old"], a["new"], a.get("count"))
        if isinstance(a["s"], str)
        else weight(a["s"])
    ),
    "join": lambda a: (
        join_size(a.get("d", ""), a["value"])
        if a.get("attribute") is None
        else weight(a["value"]) + text_length(a.get("d", "")) * weight(a["value"])
    ),
    "format": lambda a: format_size(
        a["value"], [*a.get("args", ()), *a.get("kwargs", {}).values()], repeats=bool(a.get("kwargs"))
    ),
    "center": lambda a: text_length(a["value"]) + _int(a.get("width"), 80),
    "indent": lambda a: text_length(a["s"]) + _lines(a["s"]) * _width(a["width"]),
    "truncate": lambda a: text_length(a["s"]) + text_length(a.get("end", "...")),
    "wordwrap": _expensive(
        "wordwrap", lambda a: text_length(a["s"]) * (1 + text_length(a.get("wrapstring") or "\n"))
    ),
    "urlize": _expensive("urlize", lambda a: text_length(a["value"]) * 40 + 100),
    "striptags": _expensive("striptags", lambda a: text_length(a["value"])),
    "batch": lambda a: weight(a["value"]) + _int(a["linecount"], 1) * weight(a.get("fill_with")),
    "slice": lambda a: weight(a["value"]) + _int(a["slices"], 1) * weight(a.get("fill_with")),
    "sum": lambda a: (
        weight(a["iterable"]) * max(len(a["iterable"]), 1)
        if isinstance(a.get("start"), (list, tuple)) and isinstance(a["iterable"], (list, tuple))
        else weight(a["iterable"])
    ),
    "capitalize": lambda a: text_length(a["s"]) * CASE_FACTOR,
    "lower": lambda a: text_length(a["s"]) * CASE_FACTOR,
    "upper": lambda a: text_length(a["s"]) * CASE_FACTOR,
    "title": lambda a: text_length(a["s"]) * CASE_FACTOR,
    "escape": lambda a: text_length(a["s"]) * HTML_FACTOR,
    "e": lambda a: text_length(a["s"]) * HTML_FACTOR,
    "forceescape": lambda a: text_length(a["value"]) * HTML_FACTOR,
    "xmlattr": lambda a: weight([a["d"]]) * HTML_FACTOR,
    "string": lambda a: text_length(a["s"]),
    "list": lambda a: text_length(a["value"]) if isinstance(a["value"], str) else weight(a["value"]),
    "pprint": lambda a: weight([a["value"]]),
    "tojson": lambda a: weight([a["value"]]) * (1 + _int(a.get("indent"), 0)),
    # Every UTF-8 byte may become %XX: three characters for each (':' and '{' included), more
    # than a value's weight as text (an ASCII character weighs 2 inside a container).
    "urlencode": lambda a: weight([a["value"]]) * 3,
    "filesizeformat": lambda a: 64,
    # rpdeploy's own filters (deploy.render.filters)
    "shell_quote": lambda a: text_length(a["value"]) * 5 + 2,
    "dockerfile_env": lambda a: text_length(a["value"]) * 2 + 2,
    "exec_form": lambda a: weight([a["value"]]),
    "canonical_json": lambda a: weight([a["value"]]),
}

#: Filters whose result is at most one of their inputs (or a number, or a reordering):
#: the guard's input check bounds them. Every filter is in this set or in
#: `FILTER_BOUNDS` (a test checks it, so a filter Jinja adds is classified, never missed).
NO_GROWTH = frozenset(
    {
        "abs", "attr", "count", "d", "default", "dictsort", "first", "float", "groupby", "int",
        "items", "last", "length", "map", "max", "min", "random", "reject", "rejectattr",
        "reverse", "round", "safe", "select", "selectattr", "sort", "trim", "unique",
        "wordcount", "checked",
    }
)  # fmt: skip
