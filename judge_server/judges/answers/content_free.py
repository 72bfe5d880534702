"""The content-free guard: does a response carry an answer at all, whatever the reference?

A reference-based judge (verify, the ``correctness`` verdict, any rubric whose prompt shows
``{reference}``) compares an answer with the reference; a response with nothing answer-like in it
("Solution", "Let's solve this step by step.", "See above", "Je ne sais pas", an empty code
block, the question restated, every option of a multiple-choice question) must never pass it,
and a small judge model says "yes" to such responses surprisingly often.

The rule, after a response's formatting is stripped:

1. A response that names two or more options of a multiple-choice question alike ("A or B")
   chooses nothing.
2. A response *mentions the reference* when it holds a word of the reference that the question
   does not already give away, in one of its forms (case, accents, plural, stem, initials such
   as "JFK" for "John F. Kennedy": ``mention``), or names the same number (``18``, ``18.0``,
   ``eighteen``), or the option the reference names ("B" for "Paris" when B is Paris), or the
   whole reference; then the real check decides, whatever the other words are. So genuine
   short answers ("Paris", "4", "B") and answers with extra words always pass.
3. Otherwise, a *short reference* (a name, date, number or phrase of at most
   ``MENTION_MAX_WORDS`` words, not a formula) is missed: the response cannot give that
   answer, and is refused (``misses_reference``) whether it is content-free or a wrong answer;
   a judge would only be asked to be fooled. The cost is the correct paraphrase that shares no
   word with the reference ("America" for "USA"), measured by ``judge-server eval``; a rubric
   that would rather pay in false positives says ``answer_guard: answer`` (``mention=False``)
   and keeps only the tests of rules 1 and 4.
4. Against any other reference (a formula, a long passage, which a correct answer may restate
   in words of its own) the structural test applies: the response needs a *candidate answer
   word*, neither in the question (a restatement is no answer) nor a filler word of any
   language (function words, and framing such as "answer", "above", "step", "know":
   ``filler``). Against a number, the response must name some number (``no_number``) before
   it is asked to name the reference's.

A reference that answers a yes/no question ("True" against "Yes") shares no word with its
paraphrases: for it a yes or a no word of any language is the answer ("Indeed", "Nope"; without
``mention``, a candidate answer word is enough), and both sides ("Yes or no?") choose nothing,
like every option of a multiple-choice question (``lists_options``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from judge_server.judges.answers.filler import (
    ANSWER_VALUES,
    ANSWER_WORDS,
    FRAMING_WORDS,
    NO_WORDS,
    POLAR_WORDS,
    RUN_WORDS,
    WORD,
    YES_WORDS,
    filler_words,
    number_words,
)
from judge_server.judges.answers.mention import names_a_form, names_initials
from judge_server.judges.answers.numbers import parse_number
from judge_server.judges.answers.options import lists_options, named, options, reference_options
from judge_server.judges.answers.text import LAST_NUMBER

MAX_NUMBERS = 256
"""Past this many numbers a response passes without naming the reference's: only the last are
read, to keep a long text cheap."""

MENTION_MAX_WORDS = 10
"""References of up to this many words are short: a response must name them to pass."""

Reason = Literal[
    "empty",
    "filler_only",
    "restates_question",
    "no_number",
    "lists_options",
    "misses_reference",
]

_FENCE_OPEN = re.compile(r"(?:```|~~~)[^\s`]*")
_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+)")
# Symbol commands that are answers themselves, kept as words; other commands are markup.
_LATEX_SYMBOLS = frozenset({"infty", "emptyset", "varnothing", "aleph", "hbar", "nabla"})
_URL = re.compile(r"https?://\S+")
# A formula, not a phrase: LaTeX, powers, equations, arithmetic between numbers.
_FORMULA = re.compile(r"[\\^=_{}]|\d\s*[-+*/×÷]\s*\d")
_OPTION_LABEL = re.compile(r"(?:^|[\s(\[])([A-Ja-j])[).:\]]\s")
# Scripts written without spaces between words: a run is split on known words, not spaces.
_RUN_SCRIPT = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0e7f\uac00-\ud7af]"
)
_LONGEST_RUN_WORD = max(len(w) for w in RUN_WORDS)
_FRAMING = FRAMING_WORDS | RUN_WORDS


def answer_free_reason(
    response: str, reference: str, question: str, *, mention: bool = True
) -> Reason | None:
    """Why ``response`` carries no answer to ``question`` (given its ``reference``), or, with
    ``mention``, does not name a short reference at all; None if the real check must decide."""
    words = _words(response)
    if not words:
        return "empty"
    ref_words = _words(reference)
    if not ref_words:
        return None
    filler = filler_words()
    question_words = _words(question)
    asked = _forms(question_words)
    labels = _option_labels(question)
    candidates = [w for w in words if w not in filler or w in labels]
    fresh = [
        w
        for w in candidates
        if w in labels or (_singular(w) not in asked and not _in_run(w, question))
    ]
    listed = options(question, _words, lambda w: w not in filler)
    chosen = named(plain_text_cased(response), words, listed, lambda w: w not in filler)
    if lists_options(chosen):
        return "lists_options"
    if _weak(ref_words):
        return _yes_no_reason(words, candidates, fresh, asked, mention=mention)
    given_away = _given_away(reference, ref_words, question, asked)
    mentioned = _mentions(
        response, words, candidates, fresh, reference, ref_words, question, asked, given_away
    )
    if mentioned or any(chosen[k] for k in reference_options(ref_words, listed)):
        # A reference the question gives away (a choice among options) is named by restating
        # the question too: then the response must say more than the question, or less of it.
        if given_away and not fresh and _restates(candidates, ref_words, question_words):
            return "restates_question"
        return None
    if not candidates:
        return "filler_only"
    if not fresh:
        return "restates_question"
    if parse_number(reference) is not None:
        if not _has_number(words):
            return "no_number"
        if _many_numbers(response) or not mention:
            return None
    if mention and needs_mention(reference, ref_words):
        return "misses_reference"
    return None


def _yes_no_reason(
    words: list[str], candidates: list[str], fresh: list[str], asked: set[str], *, mention: bool
) -> Reason | None:
    """Against a yes/no reference: a yes or a no word of any language is an answer ("Indeed",
    "Nope"); both sides ("Yes or no?", "true/false") choose nothing. A polar word the question
    holds ("Is it true that ...?") answers only in a bare reply ("True."), not in a
    restatement. With ``mention``, a response with no yes or no word is refused."""
    polar = YES_WORDS | NO_WORDS
    said = [w for w in words if w in polar]
    bare = all(w in polar for w in candidates)
    own = said if bare else [w for w in said if _singular(w) not in asked]
    if any(w in YES_WORDS for w in own) and any(w in NO_WORDS for w in own):
        return "lists_options"
    if own:
        return None
    if not candidates:
        return "filler_only"
    if not fresh:
        return "restates_question"
    return "misses_reference" if mention else None


def needs_mention(reference: str, ref_words: list[str]) -> bool:
    """Whether a response must name the reference to pass: a short reference (a name, a date, a
    number, a phrase), not a formula or long passage, which correct answers may restate in
    words of their own."""
    return len(ref_words) <= MENTION_MAX_WORDS and _FORMULA.search(reference) is None


def _option_labels(question: str) -> set[str]:
    """The letters that label a question's options ("A) Lyon", "(b) Paris", "C. Rome"): a
    response naming one chooses an answer."""
    return {m.casefold() for m in _OPTION_LABEL.findall(question)}


def _has_number(words: list[str]) -> bool:
    """A digit, a number word of any language, or a word that answers a count ("none")."""
    # Only the words that surely name a number: Azerbaijani "on" (10) is English "on".
    named = number_words()
    return any(any(c.isdigit() for c in w) or w in named or w in ANSWER_WORDS for w in words)


@lru_cache(maxsize=8)
def plain_text(text: str) -> str:
    """Text without markup, casefolded (``plain_text_cased``).

    Memoised: ``_in_run`` asks for the question's and the response's plain text once per word,
    which would otherwise cost words x text length (seconds for long CJK text)."""
    return plain_text_cased(text).casefold()


@lru_cache(maxsize=4)
def plain_text_cased(text: str) -> str:
    """Text without markup: code fences, HTML tags, LaTeX command names, URLs; NFKC-folded.
    A LaTeX symbol is kept, as a word: a Greek letter as the letter ("\\pi" is "π"), a few
    other symbols by name ("\\infty")."""
    text = unicodedata.normalize("NFKC", text)
    for pattern in (_FENCE_OPEN, _HTML_TAG, _URL):
        text = pattern.sub(" ", text)
    return _LATEX_COMMAND.sub(_latex_symbol, text)


def _latex_symbol(match: re.Match[str]) -> str:
    name = match.group(1)
    if name in _LATEX_SYMBOLS:
        return f" {name} "
    case = "CAPITAL" if name[0].isupper() else "SMALL"
    try:  # \alpha ... \omega, \Gamma ... \Omega
        return f" {unicodedata.lookup(f'GREEK {case} LETTER {name.upper()}')} "
    except KeyError:
        return " "


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
    values.update(ANSWER_VALUES[w] for w in words if w in ANSWER_VALUES)
    return values


def _given_away(reference: str, ref_words: list[str], question: str, asked: set[str]) -> bool:
    """Whether every telling word and number of the reference is already in the question (a
    numeric reference: its value, in any form: "0.5" for "what is half of one")."""
    filler = filler_words()
    if parse_number(reference) is not None:
        return _values(reference, ref_words) <= _asked_values(question, asked)
    if any(_singular(w) not in asked and w not in filler for w in ref_words):
        return False
    return _values(reference, ref_words) <= _asked_values(question, asked)


def _asked_values(question: str, asked: set[str]) -> set[Fraction]:
    """The numbers a question names, including the digits inside its fractions ("2/3")."""
    return _values(question, asked) | {Fraction(w) for w in asked if w.isascii() and w.isdigit()}


def _mentions(
    response: str,
    words: list[str],
    candidates: list[str],
    fresh: list[str],
    reference: str,
    ref_words: list[str],
    question: str,
    asked: set[str],
    given_away: bool,
) -> bool:
    """Whether the response names the reference: a telling word in any of its forms
    (``mention``), its number, its initials, or all of it.

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
    if names_a_form(keys, fresh):
        return True
    # Initials of all its words, of its telling ones, or without its article ("the US").
    ref_runs = [ref_words, [w for w in ref_words if w not in filler], ref_words[1:]]
    if names_initials(reference, ref_runs, response, words, set(candidates)):
        return True
    ref_values = _values(reference, ref_words)
    if not given_away:
        ref_values -= _asked_values(question, asked)
    if _same_number(ref_values, _values(response, words)):
        return True
    return not given_away and f" {' '.join(ref_words)} " in f" {' '.join(words)} "


def _same_number(ref_values: set[Fraction], values: set[Fraction]) -> bool:
    """Whether the response names a reference value: exactly, or within the tolerance of the
    numeric check (1/3 and 0.333333); the check itself decides between close values."""
    if ref_values & values:
        return True
    return any(math.isclose(float(r), float(v), rel_tol=1e-6) for r in ref_values for v in values)


def _many_numbers(response: str) -> bool:
    """Past ``MAX_NUMBERS`` numbers only the last are read: the reference's may be earlier."""
    return len(set(LAST_NUMBER.findall(response))) > MAX_NUMBERS


def _restates(candidates: list[str], ref_words: list[str], question_words: list[str]) -> bool:
    """Whether the response repeats all that the question asks beyond the reference."""
    filler = filler_words()
    asked_rest = {_singular(w) for w in question_words if w not in filler} - _forms(ref_words)
    return bool(asked_rest) and asked_rest <= {_singular(w) for w in candidates}
