"""Input that cannot be judged, found before any work: text that is not valid Unicode (a lone
surrogate, which JSON's ``\\ud800`` escape lets through and UTF-8 cannot encode) and text longer
than the server's bound. Each problem is a message that names the field and the value, so an
item gets ``invalid_input`` (or a request-level field a 422) instead of a crash further down.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from judge_server.judges import JudgeItem


def unencodable(value: Any, path: str) -> str | None:
    """Where ``value`` (text, or JSON-like data holding text) has a character UTF-8 cannot
    encode, as a message; None when it has none."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            char = value[exc.start].encode("unicode_escape").decode("ascii")
            return (
                f"{path}: lone surrogate {char} at character {exc.start} is not valid Unicode "
                "(text must encode as UTF-8)"
            )
        return None
    if isinstance(value, Mapping):
        for key, inner in value.items():
            where = f"{path}.{key}" if isinstance(key, str) and key.isascii() else f"{path}[key]"
            problem = unencodable(key, f"{path} key") or unencodable(inner, where)
            if problem is not None:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        for i, inner in enumerate(value):
            if (problem := unencodable(inner, f"{path}.{i}")) is not None:
                return problem
    return None


def text_chars(value: Any) -> int:
    """The size of a text field: a string's length, chat messages' contents together, other
    data as its JSON."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list) and all(isinstance(m, Mapping) for m in value):
        return sum(text_chars(m.get("content") or "") for m in value)
    if isinstance(value, Mapping):  # metadata: a text value counts as text (no JSON escapes)
        return sum(
            len(str(k)) + (len(v) if isinstance(v, str) else _json_chars(v))
            for k, v in value.items()
        )
    return _json_chars(value)


def _json_chars(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def too_long(value: Any, path: str, max_chars: int) -> str | None:
    chars = text_chars(value)
    if chars <= max_chars:
        return None
    return f"{path} is {chars:,} characters; at most {max_chars:,} (JUDGE_MAX_TEXT_CHARS)"


def text_problem(value: Any, path: str, max_chars: int) -> str | None:
    """Why one text field cannot be judged, or None."""
    return unencodable(value, path) or too_long(value, path, max_chars)


def item_problem(item: JudgeItem, max_chars: int) -> str | None:
    """Why an item cannot be judged whatever the rubric, or None."""
    fields: tuple[tuple[str, Any], ...] = (
        ("prompt", item.prompt),
        ("response", item.response),
        ("reference", item.reference or ""),
        ("metadata", item.metadata),
    )
    for path, value in fields:
        if (problem := text_problem(value, path, max_chars)) is not None:
            return problem
    return None
