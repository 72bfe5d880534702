"""The content-free guard: does a response carry an answer at all, whatever the reference?

A reference-based judge (verify, the ``correctness`` verdict) compares an answer with the
reference; a response with nothing answer-like in it ("Solution", "Let's solve this step by
step.", "See above", "Je ne sais pas", an empty code block, the question restated) must never
pass it, and a small judge model says "yes" to such responses surprisingly often.

The rule is structural. A response carries an answer when, after its formatting is stripped,

1. it *mentions the reference*: it shares a word with the reference that the question does not
   already give away, or names the same number (``18``, ``18.0``, ``eighteen``), or contains the
   whole reference; then the real check decides, whatever the other words are. So genuine short
   answers ("Paris", "4", "B", "Yes") and answers with extra words always pass; or
2. it has a *candidate answer word*: a word that is neither in the question (a restatement is no
   answer) nor a filler word of any language (function words, and framing such as "answer",
   "above", "step", "know": ``filler``), and, against a numeric reference, a number (digits or
   a number word of any language). A wrong answer passes too: judging it is the check's job.

A reference that answers a yes/no question ("True" against "Yes") or is made only of filler
words ("The Who") shares no telling words with its paraphrases: for it only the formatting
test applies.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from judge_server.judges.answers.filler import (
    ANSWER_WORDS,
    FRAMING_WORDS,
    POLAR_WORDS,
    RUN_WORDS,
    WORD,
    all_number_words,
    filler_words,
    number_words,
)
from judge_server.judges.answers.numbers import parse_number
from judge_server.judges.answers.text import LAST_NUMBER

MAX_NUMBERS = 256
"""Past this many numbers a response has numbers of its own, and passes without its mention."""

Reason = Literal["empty", "filler_only", "restates_question", "no_number"]

_FENCE_OPEN = re.compile(r"(?:```|~~~)[^\s`]*")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
_URL = re.compile(r"https?://\S+")
_OPTION_LABEL = re.compile(r"(?:^|[\s(\[])([A-Ja-j])[).:\]]\s")
# Scripts written without spaces between words: a run is split on known words, not spaces.
_RUN_SCRIPT = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\uac00-\ud7af]"
)
_LONGEST_RUN_WORD = max(len(w) for w in RUN_WORDS)
_FRAMING = FRAMING_WORDS | RUN_WORDS


def answer_free_reason(response: str, reference: str, question: str) -> Reason | None:
    """Why ``response`` carries no answer to ``question`` (given its ``reference``); None if it
    may carry one and the real check must decide."""
    words = _words(response)
    if not words:
        return "empty"
    ref_words = _words(reference)
    if not ref_words or _weak(ref_words):
        return None
    filler = filler_words()
    asked = _forms(_words(question))
    labels = _option_labels(question)
    candidates = [w for w in words if w not in filler or w in labels]
    fresh = [
        w
        for w in candidates
        if w in labels or (_singular(w) not in asked and not _in_run(w, question))
    ]
    given_away = _given_away(reference, ref_words, question, asked)
    if _mentions(response, words, reference, ref_words, question, asked, given_away):
        # A reference the question gives away (a choice among options) is named by restating
        # the question too: then the response must say more than the question, or less of it.
        if given_away and not fresh and _restates(candidates, ref_words, asked):
            return "restates_question"
        return None
    if not candidates:
        return "filler_only"
    if not fresh:
        return "restates_question"
    if parse_number(reference) is not None and not _has_number(words):
        return "no_number"
    return None


def _option_labels(question: str) -> set[str]:
    """The letters that label a question's options ("A) Lyon", "(b) Paris", "C. Rome"): a
    response naming one chooses an answer."""
    return {m.casefold() for m in _OPTION_LABEL.findall(question)}


def _has_number(words: list[str]) -> bool:
    """A digit, a number word of any language, or a word that answers a count ("none")."""
    named = all_number_words()
    return any(any(c.isdigit() for c in w) or w in named or w in ANSWER_WORDS for w in words)


@lru_cache(maxsize=8)
def plain_text(text: str) -> str:
    """Text without markup: code fences, HTML tags, LaTeX command names, URLs; NFKC-folded.

    Memoised: ``_in_run`` asks for the question's and the response's plain text once per word,
    which would otherwise cost words x text length (seconds for long CJK text)."""
    text = unicodedata.normalize("NFKC", text)
    for pattern in (_FENCE_OPEN, _HTML_TAG, _URL, _LATEX_COMMAND):
        text = pattern.sub(" ", text)
    return text.casefold()


def _words(text: str) -> list[str]:
    """Words, casefolded; runs of CJK, Thai or Hangul are split on known filler words."""
    out: list[str] = []
    for word in WORD.findall(plain_text(text)):
        out.extend(_split_run(word) if _RUN_SCRIPT.search(word) else (word,))
    return out


def _forms(words: Iterable[str]) -> set[str]:
    """Each word and its singular, so "cakes" in a question gives "cake" away."""
    return {f for w in words for f in (w, _singular(w))}


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and word.isascii() else word


def _split_run(run: str) -> list[str]:
    """Greedy longest match of filler words; what lies between them is kept as words."""
    out: list[str] = []
    rest = ""
    i = 0
    while i < len(run):
        for size in range(min(_LONGEST_RUN_WORD, len(run) - i), 0, -1):
            if run[i : i + size] in RUN_WORDS:
                if rest:
                    out.append(rest)
                    rest = ""
                out.append(run[i : i + size])
                i += size
                break
        else:
            rest += run[i]
            i += 1
    if rest:
        out.append(rest)
    return out


def _in_run(word: str, question: str) -> bool:
    return _RUN_SCRIPT.search(word) is not None and word in plain_text(question)


def _weak(ref_words: list[str]) -> bool:
    """A yes/no reference: its paraphrases ("Indeed", "Correct") share no word with it."""
    return all(w in POLAR_WORDS for w in ref_words)


def _values(text: str, words: Iterable[str]) -> set[Fraction]:
    """The numbers named in the text: written with digits (the last ``MAX_NUMBERS`` distinct
    ones, so a long text stays cheap) or as a one-word number word."""
    written = list(dict.fromkeys(reversed(LAST_NUMBER.findall(text))))[:MAX_NUMBERS]
    values = {v for n in written if (v := parse_number(n)) is not None}
    whole = parse_number(text) if len(text) <= 200 else None  # "$1,000", "\\frac{1}{2}"
    if whole is not None:
        values.add(whole)
    named = number_words()
    values.update(Fraction(named[w]) for w in words if w in named)
    return values


def _given_away(reference: str, ref_words: list[str], question: str, asked: set[str]) -> bool:
    """Whether every telling word and number of the reference is already in the question."""
    filler = filler_words()
    if any(_singular(w) not in asked and w not in filler for w in ref_words):
        return False
    return _values(reference, ref_words) <= _asked_values(question, asked)


def _asked_values(question: str, asked: set[str]) -> set[Fraction]:
    """The numbers a question names, including the digits inside its fractions ("2/3")."""
    return _values(question, asked) | {Fraction(w) for w in asked if w.isascii() and w.isdigit()}


def _mentions(
    response: str,
    words: list[str],
    reference: str,
    ref_words: list[str],
    question: str,
    asked: set[str],
    given_away: bool,
) -> bool:
    """Whether the response names the reference: a telling word, its number, or all of it.

    A reference word the question already holds tells nothing ("seas" of "Four Seas" for "how
    many seas"), unless the question gives the whole reference away.
    """
    said = _forms(words)
    filler = filler_words()
    if given_away:
        keys = {w for w in ref_words if w not in filler} or set(ref_words)
    else:
        keys = {w for w in ref_words if _singular(w) not in asked and w not in filler}
        # All function words of some language ("till September", "qui tam"): the longer ones.
        keys = keys or {w for w in ref_words if _singular(w) not in asked and len(w) > 3}
        keys -= _FRAMING
    if {_singular(k) for k in keys} & said or any(_in_run(k, response) for k in keys):
        return True
    ref_values = _values(reference, ref_words)
    if not given_away:
        ref_values -= _asked_values(question, asked)
    if ref_values & _values(response, words):
        return True
    return not given_away and f" {' '.join(ref_words)} " in f" {' '.join(words)} "


def _restates(candidates: list[str], ref_words: list[str], asked: set[str]) -> bool:
    """Whether the response repeats all that the question asks beyond the reference."""
    filler = filler_words()
    asked_rest = {_singular(w) for w in asked if w not in filler} - _forms(ref_words)
    return bool(asked_rest) and asked_rest <= {_singular(w) for w in candidates}
