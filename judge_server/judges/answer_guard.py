"""The content-free guard as a verdict: reference-based judges refuse answer-free responses.

A response that carries no answer (``answers.content_free``) gets reward 0 with status ``ok``:
that is a verdict about the response, not a failure of the judge. The details say the guard
decided, so a trainer's logs tell it apart from a judged "no".
"""

from __future__ import annotations

from judge_server.judges.answers.content_free import answer_free_reason
from judge_server.judges.items import JudgeItem, Judgment
from judge_server.judges.prompting import conversation_text
from judge_server.rubrics.spec import RubricSpec

GUARD_METHOD = "answer_guard"


def uses_reference(rubric: RubricSpec) -> bool:
    """Whether the judge's prompt shows it the reference (so it compares an answer with it)."""
    return any("{reference}" in (text or "") for text in (rubric.template, rubric.system))


def answer_free_judgment(rubric: RubricSpec, item: JudgeItem) -> Judgment | None:
    """Reward 0 for a response with no answer in it, when the rubric judges against a reference;
    None when the judge must decide."""
    reference = item.reference or ""
    if not reference.strip() or not uses_reference(rubric):
        return None
    reason = answer_free_reason(item.response, reference, conversation_text(item.prompt))
    if reason is None:
        return None
    return Judgment(
        reward=0.0,
        details={"method": GUARD_METHOD, "answer_guard": reason, "has_answer": False},
    )
