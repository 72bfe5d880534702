"""Multiple-choice questions: the options a question lists, and whether a response picks one.

A response that names every option alike ("A) Lyon B) Paris C) Rome"), or two of them ("A or
B"), names the right one too, so it passes any test of mentioning the reference, yet it chooses
nothing. A response chooses
when one option stands out: named more often than every other ("A is wrong, B is right: B").
"""

from __future__ import annotations

import re
from collections.abc import Callable

_LABEL = re.compile(r"(?:^|(?<=[\s(\[]))\(?([A-Ja-j])[).:\]]\s")
# In a response: a capital letter standing alone ("B", "B)", "(B)"), or "(b)".
# Not "A&M" or "U.S.": the letter stands between spaces or brackets and closing punctuation;
# and "A" or "I" before a lower-case word is the article or the pronoun ("A request line").
_NAMED_LABEL = re.compile(
    r"(?:^|(?<=[\s(\[*\"'/|]))\(?(?:([B-HJ])|([AI])(?!\s+[a-z]))(?=$|[\s).:,;!?\]*\"'/|])"
    r"|\(([a-j])\)"
)
MAX_OPTIONS = 10


Option = tuple[set[str], set[str]]
"""The words that name an option (its telling words, all of them if none, less those another
option shares), and all its words."""


def options(
    question: str, split: Callable[[str], list[str]], telling: Callable[[str], bool]
) -> dict[str, Option]:
    """Label ("a") -> its option, for a question listing at least two options labelled from A
    on. ``split`` cuts a text into casefolded words."""
    found = list(_LABEL.finditer(question))[:MAX_OPTIONS]
    labels = [m.group(1).casefold() for m in found]
    if len(found) < 2 or labels != [chr(ord("a") + i) for i in range(len(labels))]:
        return {}
    texts: dict[str, set[str]] = {}
    for k, match in enumerate(found):
        end = found[k + 1].start() if k + 1 < len(found) else len(question)
        texts[labels[k]] = set(split(question[match.end() : end]))
    out = {label: {w for w in words if telling(w)} or words for label, words in texts.items()}
    shared = {
        w
        for label, ws in texts.items()
        for w in ws
        if any(w in other for o, other in texts.items() if o != label)
    }
    return {label: (words - shared, texts[label]) for label, words in out.items()}


def named(
    response: str, words: list[str], listed: dict[str, Option], telling: Callable[[str], bool]
) -> dict[str, int]:
    """Label -> how often the response names that option: by its label or by a run of its words
    (function words within the run: "revolution or orbital revolution" is one), whichever is
    more often ("A) Lyon" names A once)."""
    by_label = dict.fromkeys(listed, 0)
    if not listed:
        return by_label
    for m in _NAMED_LABEL.finditer(response):
        label = next(g for g in m.groups() if g).casefold()
        if label in by_label:
            by_label[label] += 1
    counts = {}
    for label, (naming, text) in listed.items():
        runs, in_run = 0, False
        for w in words:
            if w in naming:
                runs += not in_run
                in_run = True
            elif telling(w) and w not in text:
                in_run = False
        counts[label] = max(runs, by_label[label])
    return counts


def lists_options(counts: dict[str, int]) -> bool:
    """Whether the response names two or more options, none more often than the others ("A or
    B" hedges as much as every option does)."""
    if len(counts) < 2:
        return False
    top = max(counts.values())
    return top > 0 and sum(c == top for c in counts.values()) > 1


def reference_options(ref_words: list[str], listed: dict[str, Option]) -> set[str]:
    """The options the reference names: its label ("B") or a word that names the option."""
    if len(ref_words) == 1 and ref_words[0] in listed:
        return {ref_words[0]}
    return {label for label, (naming, _) in listed.items() if naming & set(ref_words)}
