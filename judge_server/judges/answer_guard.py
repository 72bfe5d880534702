"""The content-free guard as a verdict: reference-based judges refuse answer-free responses.

A response that carries no answer (``answers.content_free``) gets reward 0 with status ``ok``:
that is a verdict about the response, not a failure of the judge. The details say the guard
decided, so a trainer's logs tell it apart from a judged "no".
"""

from __future__ import annotations

import asyncio

from judge_server.judges.answers.content_free import answer_free_reason
from judge_server.judges.answers.filler import filler_words, number_words
from judge_server.judges.items import JudgeItem, Judgment
from judge_server.judges.prompting import conversation_text
from judge_server.rubrics.spec import RubricSpec

GUARD_METHOD = "answer_guard"
#: Longer texts are read in a worker thread (about 1 s per 1.5 MB, pure Python): the event loop
#: gets the GIL back every few milliseconds instead of waiting for the whole read.
THREAD_CHARS = 4096


def warm() -> None:
    """Build the guard's vocabulary (about 1 s: num2words, stopword lists) before the first item
    needs it; the server runs this in a thread at start."""
    filler_words()
    number_words()


def uses_reference(rubric: RubricSpec) -> bool:
    """Whether the judge's prompt shows it the reference (so it compares an answer with it)."""
    return any("{reference}" in (text or "") for text in (rubric.template, rubric.system))


async def answer_free_judgment(rubric: RubricSpec, item: JudgeItem) -> Judgment | None:
    """Reward 0 for a response with no answer in it, when the rubric judges against a reference;
    None when the judge must decide."""
    reference = item.reference or ""
    if not reference.strip() or not uses_reference(rubric):
        return None
    args = (item.response, reference, conversation_text(item.prompt))
    if sum(map(len, args)) > THREAD_CHARS:
        reason = await asyncio.to_thread(answer_free_reason, *args)
    else:
        reason = answer_free_reason(*args)
    if reason is None:
        return None
    return Judgment(
        reward=0.0,
        details={"method": GUARD_METHOD, "answer_guard": reason, "has_answer": False},
    )
