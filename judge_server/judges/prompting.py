"""Turn a rubric and an item into the judge's chat messages."""

from __future__ import annotations

from judge_server.engines.base import ChatMessage
from judge_server.judges.items import InvalidItemError, JudgeItem
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.template import TemplateError, fill


def conversation_text(prompt: str | list[ChatMessage]) -> str:
    """A multi-turn prompt becomes a plain transcript inside the judge's own message."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in prompt)


def judge_messages(rubric: RubricSpec, item: JudgeItem, **extra: str) -> list[ChatMessage]:
    values = {
        "prompt": conversation_text(item.prompt),
        "response": item.response,
        "reference": item.reference or "",
        **extra,
    }
    try:
        messages: list[ChatMessage] = []
        if rubric.system:
            messages.append(
                {"role": "system", "content": fill(rubric.system, values, item.metadata)}
            )
        assert rubric.template is not None, "modes without a template render no prompt"
        messages.append({"role": "user", "content": fill(rubric.template, values, item.metadata)})
    except TemplateError as exc:
        raise InvalidItemError(str(exc)) from exc
    return messages
