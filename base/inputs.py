"""Parsing what arrives from outside without surprises: JSON bounded in depth (deeply nested
JSON would exhaust the parser's recursion, or the code that walks the result) and whole
numbers written in ASCII digits within bounds (`int()` also takes Unicode digits, signs,
spaces and underscores, and refuses more than 4,300 digits with an unexpected ValueError).
Both raise ValueError with a message safe to show the sender."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

MAX_DEPTH = 64
INT64_MAX = 2**63 - 1


def loads_json(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of `data`; ValueError when it is not JSON (or not UTF-8), nests deeper
    than `max_depth`, holds a number no 64-bit float can carry, or a lone surrogate
    (`"\\ud800"`: text no database can store). orjson refuses the last two itself, and any
    nesting beyond 1,024 levels before building it."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:  # its message names what is wrong, never the text
        raise ValueError(f"the body is not valid JSON: {exc.msg}") from None
    if isinstance(data, bytes):
        opening = data.count(b"[") + data.count(b"{")
    else:
        opening = data.count("[") + data.count("{")
    if opening > max_depth and depth(value) > max_depth:
        raise ValueError("the JSON nests too deeply")
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_int(text: Any, low: int = 0, high: int = INT64_MAX) -> int:
    """`text` as a whole number from `low` to `high`: ASCII digits only (no sign, spaces or
    underscores), else ValueError."""
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() \
            or len(text) > len(str(high)):
        raise ValueError("not a whole number in range")
    number = int(text)
    if not low <= number <= high:
        raise ValueError("not a whole number in range")
    return number
