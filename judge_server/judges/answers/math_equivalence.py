"""Mathematical equivalence by math-verify (sympy), bounded in input size.

Time is bounded by the caller: these run in a worker process whose deadline kills it
(``judges.workers``), which also stops sympy inside C code, where no in-process timer can.
math-verify's own timers are off (they restart for every parse and every pair compared, and
need the main thread).
"""

from __future__ import annotations

import re
from itertools import product
from typing import Any

from judge_server.judges.answers.text import brace_pairs, has_plain_words

# Longer inputs are not compared (a final answer is short; sympy's cost grows fast with size).
# Read at call time, so patching it here takes effect.
MAX_MATH_CHARS = 300


class MathVerifyError(RuntimeError):
    """math-verify failed to compare: the check is undecided, never "not equivalent"."""


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


def too_costly(text: str) -> bool:
    return len(text) > MAX_MATH_CHARS or _power_tower(text)


def math_equal(reference: str, answer: str) -> bool:
    """math-verify's equivalence of an answer to a reference. False when the answer does not
    parse as math, is too costly to compare (longer than MAX_MATH_CHARS, a power tower), or
    differs. Raises MathVerifyError when the reference does not parse or math-verify fails on
    every comparison it tried: an undecided check is a judge failure, not a wrong answer."""
    if too_costly(reference) or too_costly(answer):
        return False
    from math_verify import verify

    gold, pred = _mv_parse(reference), _mv_parse(answer)
    if not gold:
        raise MathVerifyError(f"math-verify cannot read the reference {reference!r}")
    if not pred:
        return False
    errors: list[BaseException] = []
    # One pair at a time: math-verify's own loop stops at the first error (raise_on_error) or
    # hides it as False (without); here a failed pair leaves the others to decide.
    for g, p in product(gold, pred):
        try:
            if verify([g], [p], timeout_seconds=None, raise_on_error=True):
                return True
        except Exception as exc:
            errors.append(exc)
    if errors:
        first = errors[0]
        raise MathVerifyError(
            f"math-verify failed comparing the answer to the reference: "
            f"{type(first).__name__}: {first}"
        ) from first
    return False


def parses_as_math(text: str) -> bool:
    """Whether math-verify reads ``text`` as a formula, within the same size bounds as
    math_equal. A text math-verify cannot parse is not math (its parse returns nothing)."""
    if too_costly(text):
        return False
    return any(not isinstance(p, str) for p in _mv_parse(text))
