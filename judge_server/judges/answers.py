"""Deterministic answer checking against a reference: is there an answer, and does it match.

The guard against content-free "master key" responses (":", "Thought process:", "Solution") is
structural, not a list of strings: a response is judged only on the final answer it states. When
no extraction rule finds answer-bearing content (a number, an expression, or a stated answer),
the response has no answer, and a response with no answer is never equivalent to a reference.

Numeric and mathematical references are decided here (exact number parsing, then math-verify);
free-form text references are left undecided (``equivalent is None``) for the LLM verdict, unless
a normalised exact match settles them.
"""

from __future__ import annotations

import math
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from types import FrameType
from typing import Any, Literal

Rule = Literal["boxed", "gsm8k", "statement", "equals", "bold", "bare", "last_number"]
Kind = Literal["numeric", "math", "text"]
Method = Literal["no_answer", "numeric", "math_verify", "exact", "undecided"]

# Bounds on math-verify (sympy): total seconds per check (main thread), and input size anywhere.
MATH_VERIFY_TIMEOUT_S = 3.0
MAX_MATH_CHARS = 300


@dataclass(frozen=True)
class Extracted:
    text: str
    """The answer as the response states it, with wrapping markup ($..$, **..**) removed."""
    rule: Rule
    """Which extraction rule found it: the judge's evidence."""


@dataclass(frozen=True)
class AnswerCheck:
    has_answer: bool
    extracted: str | None
    rule: Rule | None
    kind: Kind
    equivalent: bool | None
    """True/False when decided deterministically; None leaves the verdict to the LLM judge."""
    method: Method


# ---------------------------------------------------------------------------- extraction

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_LAST_NUMBER = re.compile(rf"(?:(?<![\w)])[-−])?(?:{_NUM})(?:/\d+)?")
_GSM8K = re.compile(r"^[ \t]*####[ \t]*(.*)$", re.MULTILINE)
_STATEMENT = re.compile(
    r"\banswer\b(?:[ \t]+(?:to|for|of)\b[^.:\n=]{0,60}?)?[ \t]*"
    r"(?:(?:is|was|would[ \t]+be|will[ \t]+be|should[ \t]+be)\b|:|=)[ \t]*:?",
    re.IGNORECASE,
)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_SENTENCE_END = re.compile(r"(?<=\S)[.!?](?=\s|$)")
_LATEX_CMD = re.compile(r"\\[A-Za-z]+")
_EMPTY_COMMAND = re.compile(r"\\[A-Za-z]+\s*\{\s*\}")
_PLAIN_WORD = re.compile(r"[^\W\d_]{2,}")
_MATH_WORDS = frozenset(
    {"sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp", "sqrt", "pi", "inf", "oo"}
)
_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**"), ("__", "__"))


def _has_content(text: str) -> bool:
    """Answer-bearing content: a letter or digit, outside commands on nothing (``\\boxed{}``)."""
    return re.search(r"[^\W_]", _EMPTY_COMMAND.sub("", text)) is not None


def _has_plain_words(text: str) -> bool:
    """Prose rather than a formula: a run of 2+ letters that is neither LaTeX nor a function."""
    words = _PLAIN_WORD.findall(_LATEX_CMD.sub(" ", text))
    return any(w.lower() not in _MATH_WORDS for w in words)


def _clean(text: str) -> str:
    """Strip surrounding whitespace, trailing sentence punctuation and wrapping markup."""
    prev = None
    while prev != text:
        prev = text
        text = text.strip().rstrip(".,;!?").strip()
        for left, right in _WRAPPERS:
            if (
                len(text) > len(left) + len(right)
                and text.startswith(left)
                and text.endswith(right)
            ):
                text = text[len(left) : -len(right)]
                break
    return text


def _brace_pairs(text: str) -> dict[int, int]:
    """Index of each balanced ``{`` -> index of its ``}`` (one pass, so long inputs stay cheap)."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for i, char in enumerate(text):
        if char == "{":
            stack.append(i)
        elif char == "}" and stack:
            pairs[stack.pop()] = i
    return pairs


def _last_boxed(response: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox``) with balanced braces and content."""
    opens = [m.end() - 1 for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", response)]
    if not opens:
        return None
    pairs = _brace_pairs(response)
    for brace in reversed(opens):
        if brace in pairs:
            content = _clean(response[brace + 1 : pairs[brace]])
            if _has_content(content):
                return content
    return None


def _statement(response: str) -> str | None:
    """The last "the answer is X" / "final answer: X" whose X has content (same or next line)."""
    text = response.replace("**", "").replace("__", "")
    for match in reversed(list(_STATEMENT.finditer(text))):
        rest = text[match.end() :].lstrip()
        line, _, after = rest.partition("\n")
        if re.search(r"\d", after):
            return None  # the text computes on past it: not the final answer, nor any earlier one
        end = _SENTENCE_END.search(line)
        content = _clean(line[: end.start()] if end else line)
        if _has_content(content):
            return content
    return None


def _last_line(response: str) -> str:
    lines = [line for line in response.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _equals_at_end(response: str) -> str | None:
    """``= X`` ending the last line, where X is a number (units allowed) or a formula."""
    line = _last_line(response)
    if "=" not in line:
        return None
    content = _clean(line.rsplit("=", 1)[1])
    if not _has_content(content) or len(content) > 40:
        return None
    return content if parse_number(content) is not None or not _has_plain_words(content) else None


def _bold_at_end(response: str) -> str | None:
    bolds = [_clean(a or b) for a, b in _BOLD.findall(_last_line(response))]
    bolds = [b for b in bolds if _has_content(b) and not b.endswith(":")]
    return bolds[-1] if bolds else None


def _bare(response: str) -> str | None:
    """The whole response is one short formula or choice ("x+1", "\\frac{1}{2}", "(B)")."""
    text = _clean(response)
    if "\n" in text or len(text) > 60 or _has_plain_words(text) or not _has_content(text):
        return None
    return text


def _last_number(response: str) -> str | None:
    numbers = _LAST_NUMBER.findall(response)
    return numbers[-1] if numbers else None


_RULES: tuple[tuple[Rule, Callable[[str], str | None]], ...] = (
    ("boxed", _last_boxed),
    ("gsm8k", lambda r: next((c for c in reversed(_GSM8K.findall(r)) if _has_content(c)), None)),
    ("statement", _statement),
    ("equals", _equals_at_end),
    ("bold", _bold_at_end),
    ("bare", _bare),
    ("last_number", _last_number),
)


def extract_final_answer(response: str) -> Extracted | None:
    """The response's final answer by the strongest rule that finds one; None if it has none.

    Rules, strongest first: last ``\\boxed{}``; GSM8K ``#### X``; an explicit statement ("the
    answer is X", "final answer: X"); ``= X`` ending the last line; ``**X**`` in the last line;
    the whole response being one short formula; the last number anywhere. Every rule requires
    content (a letter or digit), so a response made only of framing or punctuation has no answer.
    """
    for rule, find in _RULES:
        found = find(response)
        if found is not None:
            text = _clean(found)
            if _has_content(text):
                return Extracted(text=text, rule=rule)
    return None


# ---------------------------------------------------------------------------- numbers

_LATEX_NOISE = re.compile(r"\\[,!;: ]|\\left|\\right|~|\^\s*\{?\\circ\}?|°")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}")
_NUMBER_STRING = re.compile(
    r"^(?P<sign>[-+−]?)\s*(?:[$€£¥]\s*)?(?P<sign2>[-+−]?)"
    rf"(?P<num>\d{{1,3}}(?:[ \u202f]\d{{3}})+|{_NUM})(?:[eE](?P<exp>[-+]?\d+))?"
    rf"(?:\s*/\s*(?P<den>{_NUM}))?(?P<tail>.*)$",
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
    match = _NUMBER_STRING.match(_clean(text))
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


# ---------------------------------------------------------------------------- math-verify


class _Deadline(BaseException):
    """Raised by our alarm; a BaseException so math-verify's ``except Exception`` lets it out."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """One time limit for a whole check. math-verify's own timer restarts for every parse and
    every pair it compares (a power tower took 24 s at 3 s each), so it is disabled and this one
    (SIGALRM, main thread only) bounds the total. Off the main thread there is no timer: inputs
    are capped at MAX_MATH_CHARS instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Deadline

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def _mv_parse(text: str) -> list[Any]:
    from math_verify import parse  # heavy (sympy, antlr): imported on first use

    # A formula goes in as LaTeX; prose goes in raw so math-verify's own extraction reads it.
    source = text if _has_plain_words(text) or "$" in text else f"${text}$"
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
    pairs = _brace_pairs(text.replace("(", "{").replace(")", "}"))
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
        with _deadline(MATH_VERIFY_TIMEOUT_S):
            gold, pred = _mv_parse(reference), _mv_parse(answer)
            return bool(gold and pred and verify(gold, pred, timeout_seconds=None))
    except (Exception, _Deadline, TimeoutException):
        return False


def _parses_as_math(text: str) -> bool:
    if _too_costly(text):
        return False
    from math_verify.errors import TimeoutException

    try:
        with _deadline(MATH_VERIFY_TIMEOUT_S):
            return any(not isinstance(p, str) for p in _mv_parse(text))
    except (Exception, _Deadline, TimeoutException):
        return False


# ---------------------------------------------------------------------------- checking


def reference_kind(reference: str) -> Kind:
    """numeric: a number ($, commas, %, units allowed); math: a formula math-verify reads; else
    text (left to the LLM verdict)."""
    if parse_number(reference) is not None:
        return "numeric"
    text = _clean(reference)
    if _has_content(text) and not _has_plain_words(text) and _parses_as_math(text):
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
    return _has_content(_INTRODUCER.sub("", rest, count=1))


def _stated_number(text: str) -> str | None:
    """A stated answer in prose ("she has 18 apples") is numeric when it holds exactly one number.

    With several ("18 or 19"), picking one here would reward hedging; math-verify decides.
    """
    numbers = _LAST_NUMBER.findall(text)
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
    return AnswerCheck(True, extracted, rule, kind, math_equal(reference, extracted), "math_verify")
