"""The Jinja environment: sandboxed, bounded, strict, project templates before built-ins.

A user template is code we run on every render (and in CI), so besides Jinja's
sandbox (no attribute escapes) it is bounded in what it can allocate and how long it
can loop. Jinja's docs suggest subclassing the sandbox and overriding
`call_binop` for this ("Operator Intercepting"); BentoML does the same for its
Dockerfile templates. The bounds:

- ``range()``: at most `MAX_RANGE` items per call;
- every ``for`` loop and ``range`` draws from one budget of `MAX_STEPS` per render,
  so nested loops cannot spin for hours;
- ``*``, ``+``, ``~``, ``%`` and ``**`` refuse results over `MAX_SIZE` items/characters
  (``'A' * 10**10``, a list doubled in a loop) or ``**`` results over `MAX_POWER_BITS`;
- calls and filters refuse integer arguments over `MAX_SIZE` (``center(10**10)``) and
  format strings with widths of 7+ digits;
- every filter, method, ``%``, ``~``, ``{{ }}`` and block capture that can grow a string or
  list is checked BEFORE it runs against a bound computed from its inputs
  (`deploy.render.growth`): ``|replace``, ``|join`` of a list repeating a big string,
  ``'%s%s' % (y, y)``, ``|tojson``… never allocate past `MAX_SIZE`; expensive text filters
  (``wordwrap``, ``urlize``) take at most `growth.MAX_TEXT_INPUT` characters;
- all ``{{ }}`` of one render write at most `MAX_TEXT` characters (macro and block buffers);
- mutating methods (``append``, ``extend``…) are unavailable (the immutable sandbox);
- the rendered text stops at `MAX_OUTPUT` characters.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader, PrefixLoader, StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.loaders import split_template_path
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from deploy.files import confined
from deploy.render import growth
from deploy.render.filters import FILTERS
from deploy.render.growth import MAX_SIZE

#: Items one ``range()`` may produce (Jinja's own sandbox allows 100,000).
MAX_RANGE = 10_000
#: Loop iterations and range items in one render, all loops together.
MAX_STEPS = 200_000
#: Bits of an integer ``**`` may produce.
MAX_POWER_BITS = 4096
#: Characters of one rendered file.
MAX_OUTPUT = 5_000_000
#: Characters all ``{{ }}`` of one render may write, in blocks and macros included.
MAX_TEXT = 4 * MAX_OUTPUT
_WIDE_FORMAT = re.compile(r"\d{7,}")
_steps: ContextVar[list[int]] = ContextVar("rpdeploy_render_steps")
_text: ContextVar[list[int]] = ContextVar("rpdeploy_render_text")


def builtin_templates_dir() -> Path:
    """Where rpdeploy's own templates are.

    In a wheel they are packaged as ``deploy/templates``; in a source checkout they
    are the repository's top-level ``templates/``.
    """
    return _templates_dir(Path(__file__).resolve().parent.parent)


def _templates_dir(package_dir: Path) -> Path:
    """``<package_dir>/templates`` when packaged (a wheel), else the checkout's ``templates/``."""
    packaged = package_dir / "templates"
    return packaged if packaged.is_dir() else package_dir.parent / "templates"


def reset_budget() -> None:
    """Start fresh loop/range and text budgets (`MAX_STEPS`, `MAX_TEXT`) for the render about to run."""
    # None would start fresh budgets too (`_draw` starts one at the limit): equivalent mutants.
    _steps.set([MAX_STEPS])  # pragma: no mutate
    _text.set([MAX_TEXT])  # pragma: no mutate


def _draw(budget_var: ContextVar[list[int]], limit: int, amount: int, refusal: str) -> None:
    """Take ``amount`` from one of the render's budgets (started by `reset_budget`)."""
    budget = budget_var.get(None)
    if budget is None:
        budget = [limit]
        budget_var.set(budget)
    budget[0] -= amount
    if budget[0] < 0:
        raise SecurityError(refusal)


def _spend(count: int) -> None:
    _draw(_steps, MAX_STEPS, count, f"the template loops more than {MAX_STEPS:,} times in one render")


def _spend_text(size: int) -> None:
    _draw(_text, MAX_TEXT, size, f"the template writes more than {MAX_TEXT:,} characters in one render")


def bounded_range(*args: int) -> range:
    """``range`` with at most `MAX_RANGE` items, counted against the render's budget."""
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range() of {len(result):,} items is over the limit of {MAX_RANGE:,}")
    _spend(len(result))
    return result


def bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every ``for`` loop iterates through this: each item costs one step of the budget."""
    for item in iterable:
        _spend(1)
        yield item


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, list, tuple, bytes)) else None


def _refuse_size(size: int, operator: str) -> None:
    growth.refuse(size, f"'{operator}'")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text) and ("%" in text or "{" in text):
        raise SecurityError("a format width or precision of 7+ digits is over the template limit")


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``left operator right`` when its result would exceed the bounds (before computing it)."""
    if operator == "*":
        for seq, count in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(count, int):
                _refuse_size(size * max(count, 0), operator)
    elif operator == "+":
        left_size, right_size = _size(left), _size(right)
        if left_size is not None and right_size is not None:
            _refuse_size(left_size + right_size, operator)
            # A list grown in a loop (``ns.l + ['a' * 900000]``) holds new text each time.
            if not isinstance(left, str):
                _refuse_size(growth.weight(left) + growth.weight(right), operator)
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        # 0, 1 and -1 stay small whatever the exponent (and 10**400 is no float); a negative or
        # zero exponent gives a product of at most 0, so it needs no test of its own.
        if abs(left) > 1 and right * math.log2(abs(left)) > MAX_POWER_BITS:
            raise SecurityError(f"'**' would make an integer over {MAX_POWER_BITS} bits")
    elif operator == "%" and isinstance(left, str):
        _check_format(left)
        _refuse_size(
            growth.format_size(left, growth.format_args(right), repeats=isinstance(right, dict)), "%"
        )


def check_arguments(args: Iterable[Any], kwargs: dict[str, Any]) -> None:
    """Refuse integer arguments over `MAX_SIZE` (widths, counts) and very wide format strings."""
    for value in [*args, *kwargs.values()]:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
            raise SecurityError(f"argument {value:.3g} is over the template limit of {MAX_SIZE:,}")


def check_method_growth(method: Any, args: Iterable[Any], kwargs: dict[str, Any]) -> None:
    """Refuse a string/list method whose result could exceed `MAX_SIZE`, before it runs.

    ``join``, ``replace`` and ``format`` get exact bounds (`growth`); any other method is
    bounded by its receiver's length times its largest argument (``s.expandtabs(n)``,
    ``s.translate(table)``) plus the arguments themselves.
    """
    receiver = getattr(method, "__self__", None)
    size = _size(receiver)
    if size is None:
        return
    name = getattr(method, "__name__", "method")
    values = [*args, *kwargs.values()]
    if isinstance(receiver, str) and name == "join" and values:
        _refuse_size(growth.join_size(receiver, values[0]), ".join()")
    elif isinstance(receiver, str) and name == "replace" and len(values) >= 2:
        _refuse_size(growth.replace_size(receiver, *values[:3]), ".replace()")
    elif name not in {"format", "format_map"}:  # those are bounded in wrap_str_format
        factor = 1
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool):
                factor = max(factor, value)
            else:
                factor = max(factor, growth.text_length(value))
        _refuse_size(size * factor + sum(growth.weight(v) for v in values), f".{name}()")


class _BoundedCodeGenerator(CodeGenerator):
    """Routes ``~`` results and ``for`` iterables through the environment's bounds."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 - Jinja's visitor name
        # Jinja writes str_join((a, b, …)): the pieces are weighed before anything is joined.
        self.write("environment.bounded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:  # noqa: N802 - Jinja's visitor name
        # No lineno: Jinja writes line markers for statements only, so the loop keeps its own.
        node.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None)
        super().visit_For(node, frame)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with allocation and loop bounds (module docstring)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "+", "**", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self.bounded_finalize, **options)
        self.globals["range"] = bounded_range
        # lipsum(n) writes n paragraphs: an allocation no Dockerfile template needs. (Tested
        # first, not popped with a default: a default no Jinja 3.1 needs would be untestable.)
        if "lipsum" in self.globals:
            del self.globals["lipsum"]

    @staticmethod
    def bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
        return bounded_iter(iterable)

    @staticmethod
    def bounded_concat(pieces: tuple[Any, ...]) -> str:
        """``a ~ b ~ …``: every piece as text, refused before joining when over the limit."""
        _refuse_size(sum(growth.text_length(piece) for piece in pieces), "~")
        return "".join(str(piece) for piece in pieces)

    @staticmethod
    def concat(pieces: Iterable[str]) -> str:
        """Block captures, macro and ``caller()`` bodies: their pieces are counted first."""
        buffered = list(pieces) if isinstance(pieces, list) else growth.materialize(iter(pieces), "a block")
        growth.refuse(sum(len(piece) for piece in buffered), "a block")
        return "".join(buffered)

    @staticmethod
    def bounded_finalize(value: Any) -> Any:
        """Every ``{{ value }}``: its text (a list's repr) weighed before it is made, and
        counted against the render's `MAX_TEXT` (block and macro buffers hold it all)."""
        size = growth.text_length(value)
        _refuse_size(size, "{{ }}")
        _spend_text(size)
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        # Jinja's sandbox ignores the context here (binop_table[operator](left, right)).
        return super().call_binop(context, operator, left, right)  # pragma: no mutate

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # A generator argument (``''.join(x|map('upper'))``) is consumed once, here, under the limit,
        # so that weighing it does not leave the call an exhausted one.
        args = tuple(growth.materialize(value, "a call's arguments") for value in args)
        kwargs = {key: growth.materialize(value, "a call's arguments") for key, value in kwargs.items()}
        check_arguments(args, kwargs)
        check_method_growth(__obj, args, kwargs)
        # ``dict(ns.d, k='a' * 900000)`` in a loop would hold new text each time.
        growth.refuse(sum(growth.weight(value) for value in [*args, *kwargs.values()]), "a call's arguments")
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Every ``str.format``/``format_map`` a template reaches comes through here: the
        result's bound (`growth.format_size`) is checked when it is called, before it runs."""
        template = getattr(value, "__self__", None)
        _check_format(template)
        formatter = super().wrap_str_format(value)
        if formatter is None:
            return None
        sandboxed = formatter

        def bounded(*args: Any, **kwargs: Any) -> str:
            spread = [
                v for a in [*args, *kwargs.values()] for v in (a.values() if isinstance(a, dict) else [a])
            ]
            _refuse_size(growth.format_size(template, spread), f".{value.__name__}()")
            return sandboxed(*args, **kwargs)

        return bounded


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Filters are called directly by compiled templates, not through `call`: each is
    guarded here, generically, before it runs: generators are consumed only up to the
    limit, the inputs together must weigh under it, and so must the result's bound."""
    bound = growth.FILTER_BOUNDS.get(name)
    skip = 1 if _passes_context(func) else 0
    signature = _signature(func)

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        args = tuple(a if i < skip else growth.materialize(a, f"'|{name}'") for i, a in enumerate(args))
        kwargs = {key: growth.materialize(value, f"'|{name}'") for key, value in kwargs.items()}
        check_arguments(args[skip + 1 :], kwargs)
        inputs = [*args[skip:], *kwargs.values()]
        growth.refuse(sum(growth.weight(value) for value in inputs), f"the input of '|{name}'")
        if bound is not None and signature is not None:
            growth.refuse(_estimate(bound, signature, skip, args, kwargs), f"'|{name}'")
        return func(*args, **kwargs)

    return guarded


def _estimate(
    bound: growth.Bound,
    signature: inspect.Signature,
    skip: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> int:
    """The bound of a filter's result from its arguments by name (defaults filled in)."""
    try:
        arguments = signature.bind(*args, **kwargs)
    except TypeError:
        return 0  # wrong arguments: the filter itself says so
    arguments.apply_defaults()
    # The environment/context argument is dropped: bounds look at the filter's data.
    return bound(dict(list(arguments.arguments.items())[skip:]))


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # some builtins (len, abs) may have none
        return None


def _passes_context(func: Callable[..., Any]) -> bool:
    return getattr(func, "jinja_pass_arg", None) is not None


class ProjectLoader(FileSystemLoader):
    """``<project>/templates`` whose files (links followed) must stay inside the project."""

    def __init__(self, project_root: Path) -> None:
        super().__init__(str(project_root / "templates"))
        self.project_root = project_root

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        # Checked before Jinja reads: a link to /dev/zero must not be read at all.
        for searchpath in self.searchpath:
            candidate = Path(searchpath, *split_template_path(template))
            if candidate.is_symlink() or candidate.exists() or Path(searchpath).is_symlink():
                confined(self.project_root, candidate)
        # FileSystemLoader ignores the environment argument (jinja2 3.1).
        return super().get_source(environment, template)  # pragma: no mutate


def make_environment(project_root: Path) -> BoundedSandbox:
    """A bounded sandbox whose search path is ``<project>/templates`` then built-ins.

    A user overrides a template by putting a file of the same name in their
    ``templates/`` folder; ``builtin/<name>`` always reaches rpdeploy's own version, so
    an override can ``{% extends "builtin/Dockerfile.slim.j2" %}`` and change one block.
    Cached per project and per set of project templates: Jinja re-reads a changed
    file itself (auto_reload), and a template added or removed gives a new environment
    (a cached one would keep resolving that name to the built-in).
    """
    overrides = project_root / "templates"
    # A project without templates/ (or with a file of that name) globs nothing.
    present = tuple(sorted(p.name for p in overrides.glob("*.j2")))
    return _environment(project_root, present)


@lru_cache(maxsize=8)
def _environment(project_root: Path, _present: tuple[str, ...]) -> BoundedSandbox:
    builtin = FileSystemLoader(str(builtin_templates_dir()))
    search: list[BaseLoader] = [ProjectLoader(project_root), builtin]
    env = BoundedSandbox(
        loader=ChoiceLoader([PrefixLoader({"builtin": builtin}), *search]),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters = {name: _guard_filter(name, func) for name, func in {**env.filters, **FILTERS}.items()}
    return env
