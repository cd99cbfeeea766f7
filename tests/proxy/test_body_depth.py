"""The nesting limit holds at its boundary whether or not the body's walk is skipped: a body
with no more brackets than the limit skips it, one with more (even inside strings) is walked."""

from __future__ import annotations

import orjson
import pytest

from gateway.core.errors import InvalidRequest
from gateway.proxy.app import parse_json
from gateway.proxy.validation import MAX_DEPTH, may_nest_deeper


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_the_limit_itself_is_accepted_and_one_more_level_refused() -> None:
    assert parse_json(_nested(MAX_DEPTH)) is not None
    with pytest.raises(InvalidRequest) as refused:
        parse_json(_nested(MAX_DEPTH + 1))
    assert refused.value.code == "nesting_too_deep"


def test_brackets_in_strings_are_walked_and_pass() -> None:
    body = orjson.dumps({"model": "m", "text": "[{" * MAX_DEPTH})
    assert parse_json(body)["text"].startswith("[{")


def test_a_deep_value_among_many_brackets_is_refused() -> None:
    wide = [[i] for i in range(MAX_DEPTH)]  # many brackets, shallow
    deep = orjson.loads(_nested(MAX_DEPTH))  # MAX_DEPTH levels under the top object
    with pytest.raises(InvalidRequest):
        parse_json(orjson.dumps({"wide": wide, "deep": deep}))
    assert parse_json(orjson.dumps({"wide": wide}))["wide"][0] == [0]


PAD = b" " * 20_000  # past the size up to which brackets are counted whole: searched instead


@pytest.mark.parametrize("pad", [b"", PAD], ids=["counted", "searched"])
def test_the_bracket_bound_is_the_same_counted_or_searched(pad: bytes) -> None:
    at_limit = b"[" * (MAX_DEPTH // 2) + pad + b"{" * (MAX_DEPTH - MAX_DEPTH // 2)
    assert may_nest_deeper(at_limit) is False
    assert may_nest_deeper(at_limit + b"[") is True
    assert may_nest_deeper(at_limit + b"{") is True
    assert may_nest_deeper(pad + b'"no brackets at all"') is False


def test_a_large_body_over_the_limit_is_still_refused_and_one_under_accepted() -> None:
    text = "x" * 100_000
    assert parse_json(orjson.dumps({"model": "m", "text": text}))["text"] == text
    deep = orjson.dumps({"model": "m", "text": text, "deep": orjson.loads(_nested(MAX_DEPTH))})
    with pytest.raises(InvalidRequest) as refused:
        parse_json(deep)
    assert refused.value.code == "nesting_too_deep"
