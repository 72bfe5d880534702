"""What every trainer adapter shares: settings from the environment, text from chat turns, and
the one failure policy for trainers that cannot carry a null reward."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .._models import ItemResult, ScoreItem

__all__ = [
    "DEFAULT_FILL_VALUE",
    "ENV_API_KEY",
    "ENV_FILL_VALUE",
    "ENV_RUBRIC",
    "ENV_URL",
    "PERSONA_KEY",
    "Filled",
    "as_prompt",
    "completion_text",
    "content_text",
    "fill",
    "fill_value",
    "instance_criteria",
    "plain",
    "reference_text",
    "score_item",
    "setting",
]

ENV_URL = "JUDGE_SERVER_URL"
ENV_RUBRIC = "JUDGE_RUBRIC"
ENV_API_KEY = "JUDGE_API_KEY"
ENV_FILL_VALUE = "JUDGE_FILL_VALUE"
#: the per-sample key (slime metadata, veRL extra_info) naming a simulated_user rubric's
#: persona; it travels as the item's ``metadata.persona``
PERSONA_KEY = "persona"

DEFAULT_FILL_VALUE = 0.0
"""The reward a failed item gets where the trainer needs a number: the bottom of the built-in
[0, 1] range, so a policy can never raise its reward by making the judge fail."""


def setting(name: str, given: str | None, env: str, *, required: bool = True) -> str | None:
    """``given`` if set, else the environment variable ``env``; a clear error when neither is."""
    value = given if given not in (None, "") else os.environ.get(env) or None
    if value is None and required:
        raise ValueError(f"no {name}: pass {name}= or set the environment variable {env}")
    return value


def fill_value(given: float | None = None) -> float:
    if given is None:
        raw = os.environ.get(ENV_FILL_VALUE)
        given = DEFAULT_FILL_VALUE if raw in (None, "") else float(raw)
    if not math.isfinite(given):
        raise ValueError(f"the fill value must be a finite number, got {given!r}")
    return given


def _part_text(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and part.get("type") == "text":
        return str(part.get("text", ""))
    raise ValueError(f"only text content can be judged, got a {part.get('type')!r} part")


def content_text(content: Any) -> str:
    """A message's content as text: a string, or OpenAI-style parts of which all are text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(_part_text(part) for part in content)
    raise ValueError(f"message content must be text or a list of parts, got {type(content)}")


def completion_text(completion: str | Sequence[Mapping[str, Any]]) -> str:
    """The text to judge from a completion: plain text, or the conversational form (a list of
    messages, as TRL passes them) whose assistant turns are joined."""
    if isinstance(completion, str):
        return completion
    turns = [m for m in completion if m.get("role", "assistant") == "assistant"]
    return "\n\n".join(_turn_text(m) for m in turns)


def _turn_text(message: Mapping[str, Any]) -> str:
    """An assistant turn's text, its tool calls written as the server writes them in prompts
    (``[tool call] name(arguments)``), so a tool-calling answer is not judged as empty."""
    text = content_text(message.get("content"))
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function", {}) if isinstance(call, Mapping) else {}
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        calls.append(f"[tool call] {function.get('name', '')}({arguments})")
    return "\n".join([text, *calls] if text else calls)


def as_prompt(prompt: str | Sequence[Mapping[str, Any]]) -> str | list[dict[str, Any]]:
    """A prompt as the server takes it: text, or chat messages (roles checked by the server, so
    a message it cannot judge fails its own item, not the batch)."""
    if isinstance(prompt, str):
        return prompt
    return [dict(message) for message in prompt]


@dataclass(frozen=True, slots=True)
class Filled:
    """A reward for a trainer that needs a number: ``score`` is the judge's reward, or the fill
    value when the item failed (``ok`` False, ``status`` says why)."""

    score: float
    ok: bool
    status: str
    error: str | None


def fill(result: ItemResult, fill_with: float) -> Filled:
    if result.ok and result.reward is not None:
        return Filled(result.reward, True, result.status, None)
    return Filled(fill_with, False, result.status, result.error)


def plain(value: Any) -> Any:
    """numpy values (parquet lists and scalars) as Python ones, through lists and dicts."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def reference_text(value: Any) -> str | None:
    """A trainer's label, ground truth or dataset column as the reference answer; empty means
    none. Data loaded from parquet arrives as numpy values: arrays become lists (then JSON),
    scalars their Python value."""
    value = plain(value)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def instance_criteria(value: Any) -> Any:
    """A sample's own criteria (a ``rubrics`` column or field) as the server takes them: a list
    of criteria, also when stored as JSON text (as parquet columns often are); None or blank
    text means none. An empty list is sent as it is: the server refuses it for that item,
    rather than this adapter silently judging the sample by the rubric's own criteria. What the
    list holds is checked by the server, per item."""
    value = plain(value)
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else None
    return value


def score_item(
    index: int,
    prompt: Any,
    completion: str | Sequence[Mapping[str, Any]],
    reference: str | None,
    rubrics: Any = None,
    persona: Any = None,
) -> ScoreItem | str:
    """The item to send, or why it cannot even be sent (a message without a role, an image
    part, content that is not JSON): such a sample is ``invalid_input`` on its own, and never
    fails the others. ``completion`` is text or the conversational form (``completion_text``);
    ``rubrics`` the sample's own criteria (``instance_criteria``); ``persona`` the simulated
    user's persona (``metadata.persona``)."""
    try:
        item = ScoreItem(
            id=str(index),
            prompt=as_prompt(plain(prompt)),
            response=completion_text(completion),
            reference=reference,
            rubrics=instance_criteria(rubrics),
            metadata=None if persona is None else {PERSONA_KEY: plain(persona)},
        )
        item.model_dump(mode="json")  # what the client will send must be JSON
    except (ValueError, TypeError, AttributeError) as exc:
        # ValidationError and PydanticSerializationError are ValueErrors.
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        return f"not sent: {reason}"
    return item
