"""The deterministic check: what kind of reference, has the response an answer, does it match."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from judge_server.judges.answers.extraction import Rule, extract_final_answer
from judge_server.judges.answers.math_equivalence import math_equal, parses_as_math, too_costly
from judge_server.judges.answers.numbers import numbers_equal, parse_number
from judge_server.judges.answers.text import LAST_NUMBER, clean, has_content, has_plain_words

Kind = Literal["numeric", "math", "text"]
Method = Literal["no_answer", "numeric", "math_verify", "too_costly", "exact", "undecided"]


@dataclass(frozen=True)
class AnswerCheck:
    has_answer: bool
    extracted: str | None
    rule: Rule | None
    kind: Kind
    equivalent: bool | None
    """True/False when decided deterministically; None leaves the verdict to the LLM judge."""
    method: Method


def reference_kind(reference: str) -> Kind:
    """numeric: a number ($, commas, %, units allowed); math: a formula math-verify reads; else
    text (left to the LLM verdict)."""
    if parse_number(reference) is not None:
        return "numeric"
    text = clean(reference)
    if has_content(text) and not has_plain_words(text) and parses_as_math(text):
        return "math"
    return "text"


_LEADING_LABEL = re.compile(r"^\s*[\w ]{0,30}:")
_INTRODUCER = re.compile(r"^\s*(?:the\s+)?(?:final\s+)?answer(?:\s+is)?\b", re.IGNORECASE)


def _normalise_text(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]|_", " ", text.casefold()).split())


def text_has_answer(response: str) -> bool:
    """A free-form response has an answer unless only framing is left once framing is removed.

    Framing is a leading label ("Answer:", "Thought process:", ``^[\\w ]{0,30}:``) and an
    answer introducer ("The answer is"); what remains must have a letter or digit.
    """
    rest = _LEADING_LABEL.sub("", response.replace("**", ""), count=1)
    return has_content(_INTRODUCER.sub("", rest, count=1))


def _stated_number(text: str) -> str | None:
    """A stated answer in prose ("she has 18 apples") is numeric when it holds exactly one number.

    With several ("18 or 19"), picking one here would reward hedging; math-verify decides.
    """
    numbers = LAST_NUMBER.findall(text)
    return numbers[0] if len(numbers) == 1 else None


def check_answer(response: str, reference: str) -> AnswerCheck:
    """Deterministic half of verification: has the response an answer, and does it match?"""
    kind = reference_kind(reference)
    found = extract_final_answer(response)
    extracted, rule = (found.text, found.rule) if found else (None, None)

    if kind == "text":
        if not text_has_answer(response):
            return AnswerCheck(False, extracted, rule, kind, False, "no_answer")
        target = _normalise_text(reference)
        candidates = [response] if extracted is None else [response, extracted]
        if target and any(_normalise_text(c) == target for c in candidates):
            return AnswerCheck(True, extracted, rule, kind, True, "exact")
        return AnswerCheck(True, extracted, rule, kind, None, "undecided")

    if extracted is None:
        return AnswerCheck(False, None, None, kind, False, "no_answer")
    same = numbers_equal(extracted, reference)
    if same is None and kind == "numeric":
        stated = _stated_number(extracted)
        same = numbers_equal(stated, reference) if stated is not None else None
    if same is not None:
        return AnswerCheck(True, extracted, rule, kind, same, "numeric")
    if too_costly(reference) or too_costly(extracted):
        # A rule, not an undecided check: math-verify is not run on a power tower or on more
        # than MAX_MATH_CHARS (sympy could not be stopped in it), and such an answer is wrong.
        return AnswerCheck(True, extracted, rule, kind, False, "too_costly")
    return AnswerCheck(True, extracted, rule, kind, math_equal(reference, extracted), "math_verify")
