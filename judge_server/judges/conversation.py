"""Chat messages as trainers send them, made into the turns a judge reads.

Trainers pass conversations the way chat templates take them: roles beyond system/user/assistant
(``tool``, ``developer``), content as text, as OpenAI-style parts (image parts where the
caller reads images, ``judges.image_parts``), or ``None`` beside ``tool_calls``. What can be
judged is kept; anything else fails its own item (``InvalidItemError`` -> status
``invalid_input``), never the request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from judge_server.engines.base import ChatMessage
from judge_server.judges.image_parts import ImageReader, parts_text
from judge_server.judges.items import InvalidItemError

#: the roles chat templates of the common model families define; any other role string is
#: refused rather than written into the judge's transcript (it is text the item controls)
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function", "ipython"})


def content_text(content: object, where: str, images: ImageReader | None = None) -> str:
    """Content as item text; with ``images``, image parts become image slots."""
    if content is None:
        return ""
    if isinstance(content, str):
        return images.text(content) if images is not None else content
    if isinstance(content, list) and all(isinstance(p, Mapping) for p in content):
        return parts_text(content, where, images)
    raise InvalidItemError(f"{where}: content must be text, a list of text parts, or null")


def _tool_calls_text(calls: object, where: str) -> str:
    if not isinstance(calls, list):
        raise InvalidItemError(f"{where}: tool_calls must be a list")
    lines = []
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            raise InvalidItemError(f"{where}: a tool call needs a 'function' object")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        lines.append(f"[tool call] {function.get('name', '')}({arguments})")
    return "\n".join(lines)


def chat_turns(
    messages: Sequence[Mapping[str, Any]], images: ImageReader | None = None
) -> list[ChatMessage]:
    """The judgeable turns of a conversation; raises ``InvalidItemError`` for the first message
    that cannot be read (as text, or with ``images`` as text and image slots)."""
    if not messages:
        raise InvalidItemError("the prompt has no messages")
    turns: list[ChatMessage] = []
    for i, message in enumerate(messages):
        where = f"prompt message {i}"
        role = message.get("role")
        if role not in ROLES:
            raise InvalidItemError(
                f"{where}: role {role!r} is not one of {', '.join(sorted(ROLES))}"
            )
        text = content_text(message.get("content"), where, images)
        if message.get("tool_calls"):
            calls = _tool_calls_text(message["tool_calls"], where)
            calls = images.text(calls) if images is not None else calls
            text = f"{text}\n{calls}" if text else calls
        turns.append(ChatMessage(role=str(role), content=text))
    return turns
