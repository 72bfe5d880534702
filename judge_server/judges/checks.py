"""Deterministic checks for composite rubrics: each scores a response in [0, 1].

``text_check`` (regexes, JSON) is plain CPU work on the response, picklable arguments in, so the
composite judge runs it in a worker with a deadline (``judges.workers``); ``length_check`` may
count tokens with the engine and stays with the judge.
"""

from __future__ import annotations

import json
import re

from judge_server.engines.base import JudgeEngine
from judge_server.rubrics.components import CheckKind, Component
from judge_server.rubrics.patterns import search

TEXT_CHECKS: frozenset[CheckKind] = frozenset({"regex_must", "regex_must_not", "valid_json"})
"""Checks that read only the response text: run in a worker."""

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def is_valid_json(text: str) -> bool:
    """The whole response is JSON, bare or in one fenced code block."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def length_score(length: int, max_length: int, buffer: int) -> float:
    """1 up to ``max_length - buffer``, a linear ramp down to 0 at ``max_length`` (soft overlong
    punishment, as in DAPO), 0 beyond. ``buffer == 0`` is a hard cut."""
    start = max_length - buffer
    if length <= start:
        return 1.0
    if length >= max_length:
        return 0.0
    return 1.0 - (length - start) / buffer


def measure(text: str, unit: str, engine: JudgeEngine) -> int:
    if unit == "chars":
        return len(text)
    if unit == "words":
        return len(text.split())
    return engine.count_tokens(text)


def text_check(
    check: CheckKind, pattern: str | None, response: str
) -> tuple[float, dict[str, object]]:
    """(score, evidence) for a check in ``TEXT_CHECKS``; regexes are RE2 (``rubrics.patterns``)."""
    if check in ("regex_must", "regex_must_not"):
        assert pattern is not None
        found = search(pattern, response)
        return (1.0 if found == (check == "regex_must") else 0.0), {"matched": found}
    if check == "valid_json":
        ok = is_valid_json(response)
        return (1.0 if ok else 0.0), {"valid": ok}
    raise ValueError(f"{check!r} is not a text check")


def length_check(
    component: Component, response: str, engine: JudgeEngine
) -> tuple[float, dict[str, object]]:
    """(score, evidence) for a ``length_penalty`` component."""
    assert component.max_length is not None
    length = measure(response, component.unit, engine)
    score = length_score(length, component.max_length, component.overlong_buffer)
    return score, {"length": length, "unit": component.unit}
