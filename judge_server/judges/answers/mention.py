"""The forms in which a response names a short reference: what the guard's mention rule accepts.

A judge is asked whether a response gives the reference's answer; a response that names none of
the reference in any form cannot give it, so the judge need not be asked. The forms, beyond the
reference's own words (casefolded, singular or plural), are those a correct short answer takes
without sharing a word with the reference:

- accents dropped or added ("Fernandez" for "Fernández");
- the same stem ("transposition" for "transposed": a shared prefix of most of the shorter word);
- initials ("JFK" or "J.F.K." for "John F. Kennedy", "USA" for "United States of America",
  and back).

Paraphrases that share nothing ("America" for "USA", "the Big Apple" for "New York") are not
forms of the reference: the guard refuses them, the cost measured by ``judge-server eval``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence

#: Stems shorter than this are too common to tell ("car" of "card" and "cart").
MIN_STEM = 5
#: Share of the shorter word a shared prefix must cover to count as the same stem.
STEM_SHARE = 0.7
#: Acronyms longer than this are spelled out words, not initials.
MAX_INITIALS = 6

_ACRONYM = re.compile(r"\b[A-Z]{2,6}\b")
_DOTTED = re.compile(r"\b(?:[A-Z]\.){2,6}")  # "U.S.", "J.F.K."


def fold(word: str) -> str:
    """The word without Latin accents ("fernández" -> "fernandez")."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not "\u0300" <= c <= "\u036f")


def same_stem(a: str, b: str) -> bool:
    """Whether two words share a prefix covering most of the shorter one."""
    shorter = min(len(a), len(b))
    if shorter < MIN_STEM:
        return False
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common >= MIN_STEM and common >= STEM_SHARE * shorter


def names_a_form(keys: Iterable[str], words: Sequence[str]) -> bool:
    """Whether ``words`` (a response's telling words, casefolded) hold a key in another form:
    without accents, or with the same stem. Linear in the words: a stem is looked up by its
    first ``MIN_STEM`` letters."""
    said = {fold(w) for w in words}
    folded = {fold(k) for k in keys}
    if folded & said:
        return True
    by_prefix: dict[str, list[str]] = {}
    for w in said:
        if len(w) >= MIN_STEM:
            by_prefix.setdefault(w[:MIN_STEM], []).append(w)
    return any(
        same_stem(k, w)
        for k in folded
        if len(k) >= MIN_STEM
        for w in by_prefix.get(k[:MIN_STEM], ())
    )


def initials(words: Sequence[str]) -> set[str]:
    """The initials of a run of two to ``MAX_INITIALS`` words ("john f kennedy" -> "jfk")."""
    if not 2 <= len(words) <= MAX_INITIALS:
        return set()
    return {"".join(w[0] for w in words)}


def names_initials(
    reference: str,
    ref_runs: Iterable[Sequence[str]],
    response: str,
    words: Sequence[str],
    telling: Collection[str],
) -> bool:
    """Whether the response writes the reference as initials, in capitals ("JFK" for "John F.
    Kennedy", "USA" for "the United States": initials of its telling words, perhaps one more),
    or spells out the reference's own acronym ("University of California, Los Angeles" for
    "UCLA", skipping function words)."""
    written = _acronyms(response)
    ref_initials = {i for run in ref_runs for i in initials(run)}
    if any(w[: len(i)] == i and len(w) <= len(i) + 1 for w in written for i in ref_initials):
        return True
    return any(_spells(a, words, telling) for a in _acronyms(reference))


def _acronyms(text: str) -> set[str]:
    """The acronyms a text writes, casefolded, dotted ones without their dots."""
    found = {a.casefold() for a in _ACRONYM.findall(text)}
    return found | {a.replace(".", "").casefold() for a in _DOTTED.findall(text)}


def _spells(acronym: str, words: Sequence[str], telling: Collection[str]) -> bool:
    """Whether consecutive words start with the acronym's letters, other function words
    skipped; the first and last must be telling ("it is" never spells "II")."""
    for start, word in enumerate(words):
        if word[0] != acronym[0] or word not in telling:
            continue
        matched, k = 0, start
        while matched < len(acronym) and k < len(words):
            if words[k][0] == acronym[matched]:
                matched += 1
            elif words[k] in telling:
                break
            k += 1
        if matched == len(acronym) and words[k - 1] in telling:
            return True
    return False
