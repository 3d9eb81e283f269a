"""Validation errors in words a person can act on: "question: must not be empty".

pydantic's messages are written for programmers ("String should have at least 1
character", "Value error, must not contain control characters") and its `loc` starts with
where the value travelled ("body", "query"), which the reader does not need. The chat page
shows an error as it comes, so a 422 carries this one line as `message` beside FastAPI's
structured `detail` list (kept as it was: clients read it).
"""

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rag.cards import SLUG_PATTERN

MAX_LISTED = 3  # a form rarely has more problems at once; the rest are counted
MAX_ECHOED_CHARS = 200  # of an offending value sent back in a 422's `input`
_WHERE = frozenset({"body", "query", "path", "header", "cookie"})
_SLUG = "must be lower-case letters and digits, joined by '-' or '_'"
# pydantic error type -> reason; {name} is filled from the error's ctx.
_REASONS = {
    "missing": "is required",
    "single_value": "must be given once",
    "string_too_long": "must be at most {max_length:,} characters",
    "too_short": "must have at least {min_length:,} item(s)",
    "too_long": "must have at most {max_length:,} items",
    "greater_than_equal": "must be at least {ge}",
    "less_than_equal": "must be at most {le}",
    "greater_than": "must be more than {gt}",
    "less_than": "must be less than {lt}",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "literal_error": "must be one of {expected}",
    "enum": "must be one of {expected}",
    "json_invalid": "the body is not valid JSON",
}


def summary(errors: Sequence[Mapping[str, Any]]) -> str:
    """The problems as one line, the first MAX_LISTED of them, each as `field: reason`."""
    described = list(dict.fromkeys(describe(error) for error in errors))
    if not described:
        return "the request is not valid"
    shown = described[:MAX_LISTED]
    more = len(described) - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more else "")


def describe(error: Mapping[str, Any]) -> str:
    """One problem: `history[0].content: must not contain control characters`."""
    reason = reason_of(error)
    if error.get("type") == "json_invalid":
        return reason  # its loc is a position in the text, not a field
    field = field_name(error.get("loc", ()))
    return f"{field}: {reason}" if field else f"the request body {reason}"


def field_name(loc: Sequence[Any]) -> str:
    """The field as a client names it: the path from the body or query string down."""
    parts = list(loc)
    if parts and parts[0] in _WHERE:
        parts = parts[1:]
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name


def reason_of(error: Mapping[str, Any]) -> str:
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "value_error":  # our validators' own words (api.schemas)
        return str(error.get("msg", "")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        in_query = tuple(error.get("loc", ()))[:1] == ("query",)
        return "unknown parameter" if in_query else "unknown field"
    if kind == "string_too_short":
        minimum = ctx.get("min_length", 1)
        return "must not be empty" if minimum == 1 else f"must be at least {minimum:,} characters"
    if kind == "string_pattern_mismatch":
        return _SLUG if ctx.get("pattern") == SLUG_PATTERN else "has characters it may not hold"
    template = _REASONS.get(kind)
    if template is not None:
        try:
            return template.format(**ctx)
        except (KeyError, ValueError):
            pass
    message = str(error.get("msg", "is not valid"))
    return message[:1].lower() + message[1:]


def with_short_input(error: Mapping[str, Any]) -> dict[str, Any]:
    """The error with its `input` kept short. pydantic echoes the whole offending value, so a
    100 KB deck name or a list of 5,001 ids came back in full; a person needs only enough to
    recognise it. Text is cut at MAX_ECHOED_CHARS; a longer list or object is described."""
    shortened = dict(error)
    if "input" in shortened:
        shortened["input"] = short_input(shortened["input"])
    return shortened


def short_input(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) <= MAX_ECHOED_CHARS:
            return value
        return f"{value[:MAX_ECHOED_CHARS]}… ({len(value):,} characters)"
    if len(json.dumps(value, default=str)) <= MAX_ECHOED_CHARS:
        return _finite(value)  # only what is echoed: a long value is described, not copied
    if isinstance(value, Mapping):
        return f"(an object with {len(value):,} fields, not repeated here)"
    if isinstance(value, Sequence):
        return f"(a list of {len(value):,} items, not repeated here)"
    return f"({type(value).__name__}, not repeated here)"


def _finite(value: Any) -> Any:
    """NaN and ±Infinity as text ("nan", "inf"). Python's JSON reader takes them (and reads
    1e999 as inf), but JSON has no words for them, so echoing one back made the 422 itself
    fail to render: a 500 with a traceback."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def given_more_than_once(where: str, name: str, values: Sequence[Any]) -> dict[str, Any]:
    """The problem of a single-value field given several times (`?k=2&k=3`, two `deck` form
    fields), in pydantic's error shape so it reads like any other 422."""
    return {"type": "single_value", "loc": (where, name), "msg": "must be given once",
            "input": list(values)}  # fmt: skip
