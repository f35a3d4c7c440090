"""A validation case's expectations checked against what its job did: status, error, output
(JSON subset, keys, regex, numbers within a tolerance, free text by word error rate or
similarity), times and stream chunks. Each failure is one short line, expected against actual.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from deploy.config.schema import CaseExpect, OutputCheck

#: Longest rendering of a value in a failure line.
SHOWN = 120
#: runpod-python#299: what a non-string error turns into on RunPod.
NOTE_299 = (
    "a non-string 'error' is a failure: RunPod may report such a job as COMPLETED without output "
    "(runpod-python#299); return a string"
)

__all__ = ["NOTE_299", "Outcome", "failures", "similarity", "word_error_rate"]


@dataclass(frozen=True)
class Outcome:
    """What one job did, as the job API reported it."""

    status: str
    output: Any = None
    has_output: bool = False
    error: Any = None
    delay_ms: int | None = None
    execution_ms: int | None = None
    latency_ms: int | None = None
    #: Stream chunks read from /stream (None: not streamed).
    chunks: int | None = None


def short(value: Any) -> str:
    """A value as compact JSON, cut to `SHOWN` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def failures(expect: CaseExpect, outcome: Outcome) -> list[str]:
    """Why ``outcome`` does not meet ``expect`` (empty: it does)."""
    found = _status_failures(expect, outcome)
    if found:
        return found
    if outcome.status == "COMPLETED" and expect.status == "COMPLETED":
        found += _output_failures(expect, outcome)
    found += _time_failures(expect, outcome)
    if expect.min_stream_chunks is not None and (outcome.chunks or 0) < expect.min_stream_chunks:
        found.append(
            f"stream: expected at least {expect.min_stream_chunks} chunk(s), got {outcome.chunks or 0}"
        )
    return found


def _output_error(outcome: Outcome) -> tuple[bool, Any]:
    if isinstance(outcome.output, dict) and "error" in outcome.output:
        return True, outcome.output["error"]
    return False, None


def _status_failures(expect: CaseExpect, outcome: Outcome) -> list[str]:
    if outcome.status != expect.status:
        line = f"status: expected {expect.status}, got {outcome.status}"
        if outcome.error is not None:
            line += f" (error: {short(outcome.error)})"
        return [line]
    if outcome.status == "FAILED":
        return _error_failures(expect.error, outcome.error, expected=True)
    if outcome.status == "COMPLETED":
        carried, error = _output_error(outcome)
        if carried:
            return _error_failures(expect.error, error, expected=expect.error is not None)
        if outcome.error is not None:  # COMPLETED with a top-level error: the platform's #299 shape
            return [f"the job is COMPLETED but reports an error: {short(outcome.error)}; {NOTE_299}"]
    return []


def _error_failures(pattern: str | None, error: Any, *, expected: bool) -> list[str]:
    if not isinstance(error, str) and error is not None:
        return [f"error: {short(error)}; {NOTE_299}"]
    if not expected:
        return [f"the output carries an error: {short(error)} (expect.error allows it)"]
    if pattern is not None and not re.search(pattern, error or ""):
        return [f"error: expected a match of /{pattern}/, got {short(error)}"]
    return []


def _output_failures(expect: CaseExpect, outcome: Outcome) -> list[str]:
    wants_output = "output" in expect.model_fields_set or expect.output_keys or expect.checks
    if not outcome.has_output:
        return (
            ["output: expected an output, the job has none (runpod-python#299/#309)"] if wants_output else []
        )
    found: list[str] = []
    if "output" in expect.model_fields_set:
        mismatch = subset_mismatch(expect.output, outcome.output, "output")
        if mismatch:
            found.append(mismatch)
    if expect.output_keys:
        have = outcome.output if isinstance(outcome.output, dict) else {}
        missing = [key for key in expect.output_keys if key not in have]
        if missing:
            found.append(f"output: expected keys {', '.join(missing)}, got {short(sorted(have))}")
    for check in expect.checks:
        problem = check_failure(check, outcome.output)
        if problem:
            found.append(problem)
    return found


def _time_failures(expect: CaseExpect, outcome: Outcome) -> list[str]:
    limits = (
        ("executionTime", expect.max_execution_ms, outcome.execution_ms),
        ("delayTime", expect.max_delay_ms, outcome.delay_ms),
        ("latency", expect.max_latency_ms, outcome.latency_ms),
    )
    return [
        f"{name}: expected at most {limit} ms, got {value if value is not None else 'none'}"
        for name, limit, value in limits
        if limit is not None and (value is None or value > limit)
    ]


def subset_mismatch(expected: Any, actual: Any, where: str) -> str | None:
    """The first place ``actual`` does not contain ``expected`` (objects: a subset; arrays: same
    length, each item a subset; scalars: equal, 1 == 1.0, never True == 1); None when it does."""
    if isinstance(expected, dict):
        return _object_mismatch(expected, actual, where)
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return f"{where}: expected {short(expected)}, got {short(actual)}"
        found = (
            subset_mismatch(w, h, f"{where}[{i}]")
            for i, (w, h) in enumerate(zip(expected, actual, strict=True))
        )
        return next((m for m in found if m), None)
    if isinstance(expected, bool) != isinstance(actual, bool) or expected != actual:
        return f"{where}: expected {short(expected)}, got {short(actual)}"
    return None


def _object_mismatch(expected: dict[str, Any], actual: Any, where: str) -> str | None:
    if not isinstance(actual, dict):
        return f"{where}: expected an object, got {short(actual)}"
    for key, value in expected.items():
        if key not in actual:
            return f"{where}.{key}: expected {short(value)}, missing"
        mismatch = subset_mismatch(value, actual[key], f"{where}.{key}")
        if mismatch:
            return mismatch
    return None


_MISSING = object()


def value_at(output: Any, path: str) -> Any:
    """The value at a dotted path (``choices.0.text``); `_MISSING` when there is none."""
    value = output
    for part in [p for p in path.split(".") if p] if path else []:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def check_failure(check: OutputCheck, output: Any) -> str | None:
    where = f"output.{check.path}" if check.path else "output"
    value = value_at(output, check.path)
    if value is _MISSING:
        return f"{where}: missing"
    if check.regex is not None:
        text = value if isinstance(value, str) else short(value)
        return (
            None
            if re.search(check.regex, text)
            else f"{where}: expected a match of /{check.regex}/, got {short(value)}"
        )
    if check.number is not None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{where}: expected a number, got {short(value)}"
        if abs(value - check.number) > check.tolerance:
            return f"{where}: expected {check.number:g} ± {check.tolerance:g}, got {value:g}"
        return None
    return _text_failure(check, where, value)


def _text_failure(check: OutputCheck, where: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"{where}: expected text, got {short(value)}"
    reference = check.text or ""
    if check.max_wer is not None:
        wer = word_error_rate(reference, value)
        if wer > check.max_wer:
            return f"{where}: word error rate {wer:.3f} over {check.max_wer:g} ({_versus(reference, value)})"
    if check.min_similarity is not None:
        ratio = similarity(reference, value)
        if ratio < check.min_similarity:
            return f"{where}: similarity {ratio:.3f} < {check.min_similarity:g} ({_versus(reference, value)})"
    return None


def _versus(reference: str, value: str) -> str:
    return f"expected {short(reference)}, got {short(value)}"


def _words(text: str) -> list[str]:
    # Case and punctuation are not what a speech model is judged on.
    return re.findall(r"\w+(?:'\w+)?", text.casefold())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on case-folded words.

    The standard definition (as jiwer computes it): a word-level Levenshtein distance. An empty
    reference gives 0.0 for an empty hypothesis and 1.0 otherwise.
    """
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        current = [i]
        for j, other in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != other)))
        previous = current
    return previous[-1] / len(ref)


def similarity(reference: str, text: str) -> float:
    """difflib's ratio (0..1) of the two texts, whitespace-normalised and case-folded."""
    a = " ".join(reference.casefold().split())
    b = " ".join(text.casefold().split())
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
