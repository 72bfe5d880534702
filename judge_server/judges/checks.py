"""Deterministic checks for composite rubrics: each scores a response in [0, 1]."""

from __future__ import annotations

import json
import re

from judge_server.engines.base import JudgeEngine
from judge_server.rubrics.components import Component

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


def run_check(
    component: Component, response: str, engine: JudgeEngine
) -> tuple[float, dict[str, object]]:
    """(score, evidence) for one deterministic component."""
    if component.check == "regex_must":
        assert component.pattern is not None
        found = re.search(component.pattern, response) is not None
        return (1.0 if found else 0.0), {"matched": found}
    if component.check == "regex_must_not":
        assert component.pattern is not None
        found = re.search(component.pattern, response) is not None
        return (0.0 if found else 1.0), {"matched": found}
    if component.check == "valid_json":
        ok = is_valid_json(response)
        return (1.0 if ok else 0.0), {"valid": ok}
    if component.check == "length_penalty":
        assert component.max_length is not None
        length = measure(response, component.unit, engine)
        score = length_score(length, component.max_length, component.overlong_buffer)
        return score, {"length": length, "unit": component.unit}
    raise ValueError(f"unknown check {component.check!r}")
