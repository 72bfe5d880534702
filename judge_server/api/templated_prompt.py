"""A chat-templated prompt string back into chat messages.

OpenRLHF sends its prompt as the policy's chat template rendered it (``<|im_start|>user\\n...
<|im_end|>\\n<|im_start|>assistant\\n``). Judged as text, a judge would read the template's
markup as conversation, and a reward model would wrap it in its own template a second time
(scoring another token sequence than OpenRLHF's own reward server does). So the common
template families are read back into messages; anything else stays text.

Parsing splits on the markers (linear in the prompt's length, no backtracking).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChatMarkup:
    turn_start: str
    header_end: str
    turn_end: str
    preamble: tuple[str, ...] = ()
    """What may precede the first turn (a BOS marker)."""
    roles: tuple[tuple[str, str], ...] = ()
    """Template role names that differ from the chat roles."""


MARKUPS = (
    ChatMarkup("<|im_start|>", "\n", "<|im_end|>"),  # ChatML: Qwen, SmolLM, ...
    ChatMarkup(  # Llama 3
        "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", ("<|begin_of_text|>",)
    ),
    ChatMarkup("<start_of_turn>", "\n", "<end_of_turn>", ("<bos>",), (("model", "assistant"),)),
)


def _turns(text: str, markup: ChatMarkup) -> list[dict[str, Any]] | None:
    head, *chunks = text.split(markup.turn_start)
    if not chunks or head.strip() not in ("", *markup.preamble):
        return None
    roles = dict(markup.roles)
    turns: list[dict[str, Any]] = []
    for chunk in chunks:
        role, sep, body = chunk.partition(markup.header_end)
        if not sep or not role or any(c.isspace() for c in role):
            return None
        content, closed, _ = body.partition(markup.turn_end)
        turns.append({"role": roles.get(role, role), "content": content, "closed": bool(closed)})
    last = turns[-1]
    # The generation prompt: an open assistant turn the response continues.
    if last["role"] == "assistant" and not last["closed"]:
        turns.pop()
    if not turns or not all(turn["closed"] for turn in turns):
        return None
    return [{"role": turn["role"], "content": turn["content"]} for turn in turns]


def chat_messages(prompt: str) -> str | list[dict[str, Any]]:
    """The messages of a prompt rendered by a known chat template; else the prompt as is."""
    for markup in MARKUPS:
        if markup.turn_start in prompt and (turns := _turns(prompt, markup)) is not None:
            return turns
    return prompt
