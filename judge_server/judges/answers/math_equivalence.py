"""Mathematical equivalence by math-verify (sympy), bounded in input size and in time."""

from __future__ import annotations

import re
from typing import Any

from judge_server.judges.answers.deadline import DeadlineExceeded, deadline
from judge_server.judges.answers.text import brace_pairs, has_plain_words

# Bounds on math-verify (sympy): total seconds per check (main thread), and input size anywhere.
# Read at call time, so patching them here takes effect.
MATH_VERIFY_TIMEOUT_S = 3.0
MAX_MATH_CHARS = 300


def _mv_parse(text: str) -> list[Any]:
    from math_verify import parse  # heavy (sympy, antlr): imported on first use

    # A formula goes in as LaTeX; prose goes in raw so math-verify's own extraction reads it.
    source = text if has_plain_words(text) or "$" in text else f"${text}$"
    parsed: list[Any] = parse(source, parsing_timeout=None)
    return parsed


_POWER = re.compile(r"\^|\*\*")
_TOWER_LITERAL = re.compile(r"(?:\^|\*\*)\s*[({]?\s*\d+\s*[)}]?\s*(?:\^|\*\*)")
_NUMERIC_ONLY = re.compile(r"[\d\s^*+\-(){}.]*")


def _power_tower(text: str) -> bool:
    """A number raised to a numeric power of a power (10^{10^{10}}): sympy builds the integer in
    C, where no timer can stop it. Symbols in the exponent (e^{x^2}) are harmless."""
    if _TOWER_LITERAL.search(text):
        return True
    pairs = brace_pairs(text.replace("(", "{").replace(")", "}"))
    for match in re.finditer(r"(?:\^|\*\*)\s*[{(]", text):
        brace = match.end() - 1
        inner = text[brace + 1 : pairs.get(brace, len(text))]
        if _POWER.search(inner) and _NUMERIC_ONLY.fullmatch(inner):
            return True
    return False


def _too_costly(text: str) -> bool:
    return len(text) > MAX_MATH_CHARS or _power_tower(text)


def math_equal(reference: str, answer: str) -> bool:
    """math-verify's equivalence of an answer to a reference. False when either won't parse,
    math-verify fails, or the check runs past MATH_VERIFY_TIMEOUT_S."""
    if _too_costly(reference) or _too_costly(answer):
        return False
    from math_verify import verify
    from math_verify.errors import TimeoutException

    try:
        with deadline(MATH_VERIFY_TIMEOUT_S):
            gold, pred = _mv_parse(reference), _mv_parse(answer)
            return bool(gold and pred and verify(gold, pred, timeout_seconds=None))
    except (Exception, DeadlineExceeded, TimeoutException):
        return False


def parses_as_math(text: str) -> bool:
    """Whether math-verify reads ``text`` as a formula, within the same bounds as math_equal."""
    if _too_costly(text):
        return False
    from math_verify.errors import TimeoutException

    try:
        with deadline(MATH_VERIFY_TIMEOUT_S):
            return any(not isinstance(p, str) for p in _mv_parse(text))
    except (Exception, DeadlineExceeded, TimeoutException):
        return False
