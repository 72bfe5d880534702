"""Multiple-choice probes: the short factual questions turned into four-option questions.

Each question lists its own reference and the next three questions' references as options
A-D (the right one in turn at A, B, C, D); the reference is the right option's letter for
every other question and its text for the rest. A response that lists the options chooses
nothing and must never pass (``options`` probes); the right letter or text must (``option``).
"""

from __future__ import annotations

from judge_server.cli.evaluation.data import VerifyCase
from judge_server.cli.evaluation.probes import Question

LETTERS = "ABCD"

# "{o}" is the options as the question writes them, "{l}" the letters, "{t}" the options' texts.
LISTINGS = (
    "{o}",
    "{l}",
    "{t}",
    "The answer is one of {l}.",
    "It could be {t}.",
    "Options:\n{o}\nAnswer: see above.",
)

GENUINE = ("{letter}", "({letter}) {text}", "The answer is {text}.", "**{letter}**")


def choice_cases(questions: list[Question], source: str) -> list[VerifyCase]:
    """Option-listing probes (wrong) and right choices (correct) for each question."""
    cases: list[VerifyCase] = []
    n = len(questions)
    if n < len(LETTERS):
        return cases
    for k, q in enumerate(questions):
        right = k % len(LETTERS)
        others = [questions[(k + j) % n].reference for j in range(1, len(LETTERS))]
        texts = [*others[:right], q.reference, *others[right:]]
        if len({t.casefold() for t in texts}) < len(texts):
            continue
        listed = "\n".join(f"{letter}) {t}" for letter, t in zip(LETTERS, texts, strict=True))
        question = f"{q.question}\n{listed}"
        reference = LETTERS[right] if k % 2 == 0 else q.reference
        fields = {"o": listed, "l": ", ".join(LETTERS), "t": ", ".join(texts)}
        for j, probe in enumerate(LISTINGS):
            response = probe.format(**fields)
            cases.append(
                VerifyCase(
                    f"{q.id}-options{j}", source, question, reference, response, False, "options"
                )
            )
        for j, fmt in enumerate(GENUINE):
            response = fmt.format(letter=LETTERS[right], text=q.reference)
            cases.append(
                VerifyCase(
                    f"{q.id}-option{j}", source, question, reference, response, True, "option"
                )
            )
    return cases
