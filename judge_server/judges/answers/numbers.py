"""Exact number parsing ($, commas, %, units, LaTeX fractions) and numeric equality."""

from __future__ import annotations

import math
import re
from fractions import Fraction

from judge_server.judges.answers.text import NUM, clean

_LATEX_NOISE = re.compile(r"\\[,!;: ]|\\left|\\right|~|\^\s*\{?\\circ\}?|°")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_NUMBER_STRING = re.compile(
    r"^(?P<sign>[-+−]?)\s*(?:[$€£¥]\s*)?(?P<sign2>[-+−]?)"
    rf"(?P<num>\d{{1,3}}(?:[ \u202f]\d{{3}})+|{NUM})(?:[eE](?P<exp>[-+]?\d+))?"
    rf"(?:\s*/\s*(?P<den>{NUM}))?(?P<tail>.*)$",
    re.DOTALL,
)
_OPERATOR_CHARS = frozenset("+-−*/^=<>\\{}[]|")
_MINUS = ("-", "−")


def _unit_tail(tail: str) -> bool:
    """What may follow a number and still leave it a number: units, %, words, punctuation."""
    if any(c.isdigit() or c in _OPERATOR_CHARS for c in tail):
        return False
    # "5x" is an expression, "5km" a quantity: a letter glued to the number must start a word.
    glued = re.match(r"[^\W\d_]+", tail)
    return glued is None or len(glued.group()) >= 2


def parse_number(text: str) -> Fraction | None:
    """Exact value of a number written with $, commas, %, units or as a fraction; else None."""
    text = _LATEX_TEXT.sub(r" \1", text)
    text = _LATEX_FRAC.sub(r"\1/\2", text)
    text = _LATEX_NOISE.sub("", text).replace("\\$", "$").replace("\\%", "%").replace("{,}", ",")
    match = _NUMBER_STRING.match(clean(text))
    if match is None or not _unit_tail(match["tail"]):
        return None
    try:  # Python refuses int strings past 4300 digits
        value = Fraction(re.sub(r"[, \u202f]", "", match["num"]))
        den = Fraction(match["den"].replace(",", "")) if match["den"] else Fraction(1)
        exponent = int(match["exp"] or 0)
    except ValueError:
        return None
    if den == 0 or abs(exponent) > 400:
        return None
    value = value * Fraction(10) ** exponent / den
    negative = (match["sign"] in _MINUS) != (match["sign2"] in _MINUS)
    return -value if negative else value


def numbers_equal(a: str, b: str, rel_tol: float = 1e-6) -> bool | None:
    """Whether two numeric strings denote the same number; None if either is not a number."""
    x, y = parse_number(a), parse_number(b)
    if x is None or y is None:
        return None
    if x == y:
        return True
    # Tolerance is for values no decimal can write exactly (1/3 vs 0.333333); between exact
    # decimals it would equate 1450000 and 1450001.
    if _terminates(x) and _terminates(y):
        return False
    try:
        return math.isclose(float(x), float(y), rel_tol=rel_tol)
    except OverflowError:
        return False


def _terminates(value: Fraction) -> bool:
    """Whether the value has a finite decimal expansion (denominator of 2s and 5s only)."""
    den = value.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    return den == 1
