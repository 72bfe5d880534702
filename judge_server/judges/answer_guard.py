"""The content-free guard as a verdict: reference-based judges refuse answer-free responses.

A response that carries no answer, or never names a short reference (``answers.content_free``),
gets reward 0 with status ``ok`` from every rubric whose prompt shows the judge ``{reference}``
(verify, verdict, rubric, pointwise: the bottom of the scale): that is a verdict about the
response, not a failure of the judge. The details say the guard decided, so a trainer's logs
tell it apart from a judged "no".

Pairwise rubrics compare two responses against the reference; the guard decides only when the
item's own response is refused: against one that is not, it loses (reward 0); both refused is a
tie (0.5), since neither answers. When only the other response is refused, the judge decides as
usual: a refusal of the other response says nothing of whether the item's response is right
("It's Lyon, not Paris" names the reference and is wrong), so a free win would reward spraying.
"""

from __future__ import annotations

from judge_server.judges.answers.content_free import Reason, answer_free_reason
from judge_server.judges.answers.filler import filler_words, number_words
from judge_server.judges.items import JudgeItem, Judgment
from judge_server.judges.prompting import conversation_text
from judge_server.judges.workers import CheckPool
from judge_server.rubrics.spec import RubricSpec

GUARD_METHOD = "answer_guard"
#: Longer texts are read in the check pool's worker processes (about 1 s per 1.5 MB, pure
#: Python; seconds for a long CJK text), with its deadline: never on the event loop, never
#: unbounded. A deadline or a crash is a judge failure, never a verdict.
THREAD_CHARS = 4096


def warm() -> None:
    """Build the guard's vocabulary (about 1 s: num2words, stopword lists) before the first item
    needs it; the server runs this in a thread at start."""
    filler_words()
    number_words()


def uses_reference(rubric: RubricSpec) -> bool:
    """Whether the judge's prompt shows it the reference (so it compares an answer with it)."""
    return any("{reference}" in (text or "") for text in (rubric.template, rubric.system))


def guards(rubric: RubricSpec, item: JudgeItem) -> bool:
    """Whether the guard reads this item: a reference, and a rubric that shows it."""
    return bool((item.reference or "").strip()) and uses_reference(rubric)


async def refusal(
    rubric: RubricSpec, item: JudgeItem, response: str, checks: CheckPool
) -> Reason | None:
    """Why the guard refuses ``response`` to the item's prompt and reference; None if it does
    not. Long texts are read in the check pool (``JudgeFailure`` past its deadline)."""
    args = (response, item.reference or "", conversation_text(item.prompt))
    mention = rubric.answer_guard == "mention"
    if sum(map(len, args)) > THREAD_CHARS:
        return await checks.run(_reason, *args, mention, what="the content-free guard")
    return answer_free_reason(*args, mention=mention)


def _reason(response: str, reference: str, question: str, mention: bool) -> Reason | None:
    """``answer_free_reason`` with positional arguments only: what the check pool calls."""
    return answer_free_reason(response, reference, question, mention=mention)


def refused(reason: Reason) -> dict[str, object]:
    """The details of a refusal. A response that misses the reference may hold a (wrong)
    answer; the other reasons say it holds none."""
    return {
        "method": GUARD_METHOD,
        "answer_guard": reason,
        "has_answer": reason == "misses_reference",
    }


async def answer_free_judgment(
    rubric: RubricSpec, item: JudgeItem, checks: CheckPool
) -> Judgment | None:
    """Reward 0 for a response with no answer in it (or that misses a short reference), when
    the rubric judges against a reference; None when the judge must decide."""
    if not guards(rubric, item):
        return None
    reason = await refusal(rubric, item, item.response, checks)
    return None if reason is None else Judgment(reward=0.0, details=refused(reason))


async def pair_judgment(
    rubric: RubricSpec, item: JudgeItem, other: str, checks: CheckPool
) -> Judgment | None:
    """A pairwise verdict when the guard refuses the item's response (see the module); None
    when the judge must decide."""
    if not guards(rubric, item):
        return None
    reason_a = await refusal(rubric, item, item.response, checks)
    if reason_a is None:
        return None
    reason_b = await refusal(rubric, item, other, checks)
    p_a = 0.5 if reason_b else 0.0
    return Judgment(
        reward=p_a,
        details={
            "method": GUARD_METHOD,
            "answer_guard": {"a": reason_a, "b": reason_b},
            "p_a": p_a,
            "winner": "tie" if reason_b else "b",
        },
    )
