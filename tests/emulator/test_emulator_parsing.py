"""The one strict parser every emulator route uses: what a worker could not receive is refused.

Unit tests of `parse_json` and `query_int` (no server); the HTTP tests in
test_emulator_bad_input.py send the same inputs to every route.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.requests import Request

from deploy.emulator.httputil import MAX_DEPTH, MAX_INT_DIGITS, HttpError, parse_json, query_int

#: Each stands for a kind: non-finite numbers, overflow, lone surrogates, depth, digit count, encoding.
UNDELIVERABLE = {
    "NaN": b'{"input": NaN}',
    "Infinity": b'{"input": Infinity}',
    "-Infinity": b'{"input": [-Infinity]}',
    "float overflow": b'{"input": 1e999}',
    "negative overflow": b'{"input": {"x": -1.5e400}}',
    "lone high surrogate": b'{"input": "\\ud800"}',
    "lone low surrogate in a key": b'{"input": {"\\udfff": 1}}',
    "surrogate as raw bytes": b'{"input": "\xed\xa0\x80"}',
    "deep nesting": b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "nesting just over the bound": b'{"input": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}",
    "huge integer": b'{"input": ' + b"9" * 4301 + b"}",
    "latin-1 body": '{"input": "caf\u00e9"}'.encode("latin-1"),
    "utf-16 body": '{"input": 1}'.encode("utf-16"),
    "trailing garbage": b'{"input": 1} x',
}


@pytest.mark.parametrize("body", UNDELIVERABLE.values(), ids=UNDELIVERABLE.keys())
def test_undeliverable_json_is_a_400_naming_the_body(body: bytes) -> None:
    with pytest.raises(HttpError) as caught:
        parse_json(body)
    assert caught.value.status == 400
    assert caught.value.detail.startswith("request body is not valid JSON")


def test_what_it_accepts_round_trips_through_strict_json() -> None:
    deep = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)  # inside the body and "input" objects: MAX_DEPTH
    body = {
        "input": {
            "pair": "\U0001f600",
            "big": int("9" * MAX_INT_DIGITS),
            "f": 1e308,
            "deep": json.loads(deep),
        }
    }
    text = json.dumps(body, ensure_ascii=True)
    assert "\\ud83d\\ude00" in text  # a surrogate pair escaped is one valid character
    parsed = parse_json(text.encode())
    assert parsed["input"]["pair"] == "\U0001f600"
    assert parsed == body
    json.dumps(parsed, allow_nan=False).encode("utf-8")


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    )
)
def test_any_strict_json_value_is_accepted_unchanged(value: object) -> None:
    assert parse_json(json.dumps({"input": value}, allow_nan=False).encode()) == {"input": value}


def _request(query: str) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": []}
    )


@pytest.mark.parametrize(
    "raw",
    [
        "%C2%B2",
        "%D9%A3",
        "1%C2%B2",
        "",
        "-5",
        "5.0",
        "1e3",
        "+5",
        " 5",
        "0x10",
        "9" * 40,
        "%ED%A0%80",
        "5000%00",
    ],
    ids=[
        "superscript",
        "arabic-indic",
        "digit+superscript",
        "empty",
        "negative",
        "decimal",
        "exponent",
        "plus",
        "space",
        "hex",
        "40 digits",
        "surrogate",
        "nul",
    ],
)
def test_query_integers_are_ascii_digits_in_range(raw: str) -> None:
    with pytest.raises(HttpError) as caught:
        query_int(_request(f"wait={raw}"), "wait", 1000, 300_000)
    assert caught.value.status == 400
    assert "wait must be an integer between 1000 and 300000" in caught.value.detail


def test_query_integer_bounds_are_inclusive_and_absent_is_the_default() -> None:
    assert query_int(_request("wait=1000"), "wait", 1000, 300_000) == 1000
    assert query_int(_request("wait=300000"), "wait", 1000, 300_000) == 300_000
    assert query_int(_request(""), "wait", 1000, 300_000, default=7) == 7
    with pytest.raises(HttpError):
        query_int(_request("wait=999"), "wait", 1000, 300_000)
    with pytest.raises(HttpError):
        query_int(_request("wait=300001"), "wait", 1000, 300_000)
