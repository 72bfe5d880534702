"""Simulated user (after RLVER, arXiv 2507.03112): the judge model plays the user, a persona
with a situation, a hidden intent and an emotional state, and rates how it feels.

The dialogue so far is the item's prompt (it ends with the user's turn); the response is the
assistant's new turn. The judge, in character, rates its emotion twice: after the dialogue so
far (``before``) and after the assistant's new turn too (``after``). Each rating is the expected
score over the rubric's single-digit scale, read from next-token log-probabilities (never parsed
text), mapped to 0-100. ``reward: after`` gives ``after / 100`` (RLVER trains on the user's final
emotion); ``reward: change`` gives ``0.5 + (after - before) / 200``: 0.5 is no change, 1 a rise
from 0 to 100. Emotion changes per turn are usually small, so a change reward is best stretched
with ``shaping: {kind: affine}`` (clamped to [0, 1] like every reward).

RLVER's simulator reads a signed change from generated text and adds it to a running score that
starts at 30 (``hard_player_simulator_dsv3.py`` in Tencent/digitalhuman); here each state is read
afresh, so the reward is a probability-weighted score that never fails to parse. ``trajectory``
also reads the emotion after each of the last N earlier assistant turns.

The template holds ``{dialogue}`` (never ``{response}``): the before-read renders the dialogue
so far, the after-read the same text with the new turn appended, so every read shares the prefix
up to the end of the shorter dialogue (vLLM's prefix cache) and the reads run concurrently. The
simulated user sees the user and assistant turns only, not the policy's system prompt or tools.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints

from judge_server.engines.base import ChatMessage, JudgeEngine
from judge_server.judges.base import Judge
from judge_server.judges.items import InvalidItemError, JudgeItem, Judgment
from judge_server.judges.pointwise import score_on_scale
from judge_server.judges.prompting import conversation_text, judge_messages
from judge_server.judges.registration import JudgeMode, rubric_only
from judge_server.rubrics.spec import NAME_PATTERN, VERSION_CHARS, RubricSpec
from judge_server.rubrics.strict import StrictModel
from judge_server.rubrics.tokens import ScoreScale

#: the item metadata key that names the persona
PERSONA_KEY = "persona"
MAX_PERSONAS = 64
MAX_PERSONA_FIELD_CHARS = 4_000
MAX_TRAJECTORY = 8
#: the turns a simulated user sees; the rest (system, tools) are the assistant's own
VISIBLE_ROLES = frozenset({"user", "assistant"})

Reward = Literal["after", "change"]
PersonaName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


class Persona(StrictModel):
    """Who the simulated user is; all four parts are shown to the judge in character."""

    who: str = Field(min_length=1, max_length=MAX_PERSONA_FIELD_CHARS)
    situation: str = Field(min_length=1, max_length=MAX_PERSONA_FIELD_CHARS)
    hidden_intent: str = Field(
        min_length=1,
        max_length=MAX_PERSONA_FIELD_CHARS,
        description="What the user really wants from the conversation and never says outright.",
    )
    starting_emotion: str = Field(
        min_length=1,
        max_length=MAX_PERSONA_FIELD_CHARS,
        description="How the user feels when the conversation starts.",
    )

    def text(self) -> str:
        return (
            f"Who you are: {self.who.strip()}\n"
            f"Your situation: {self.situation.strip()}\n"
            f"What you really want (you never say it outright): {self.hidden_intent.strip()}\n"
            f"How you felt when the conversation started: {self.starting_emotion.strip()}"
        )

    @property
    def version(self) -> str:
        """A short sha256 of the persona's canonical content, like a rubric's version."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:VERSION_CHARS]


class SimulatedUserSpec(RubricSpec):
    template_fields: ClassVar[frozenset[str]] = frozenset({"persona", "dialogue"})
    system_fields: ClassVar[frozenset[str]] = frozenset({"persona"})
    required_fields: ClassVar[tuple[str, ...]] = ("dialogue",)

    mode: Literal["simulated_user"]
    personas: dict[PersonaName, Persona] = Field(
        min_length=1,
        max_length=MAX_PERSONAS,
        description="Persona name -> persona; an item picks one with metadata.persona.",
    )
    default_persona: str = Field(
        description="The persona of items whose metadata names none.", pattern=NAME_PATTERN
    )
    reward: Reward = Field(
        "after",
        description="after: the user's emotion after the assistant's turn / 100; change: "
        "0.5 + (after - before) / 200 (0.5 is no change).",
    )
    scores: ScoreScale = Field(
        default_factory=lambda: ScoreScale(min=0, max=9),
        description="The digits the user rates with; the expected score is mapped to 0-100.",
    )
    trajectory: int = Field(
        0,
        ge=0,
        le=MAX_TRAJECTORY,
        description="Also read the emotion after each of the last N earlier assistant turns "
        "(N more reads, details.emotion.trajectory).",
    )

    def check_mode(self) -> None:
        if self.default_persona not in self.personas:
            raise ValueError(
                f"default_persona {self.default_persona!r} is not one of the personas "
                f"({', '.join(sorted(self.personas))})"
            )
        prompts = (self.template or "") + (self.system or "")
        if "{response}" in prompts:
            raise ValueError(
                "simulated_user mode renders the assistant's turn inside {dialogue} of the "
                "after-read only; {response} would show it before it was said"
            )
        if "{persona}" not in prompts:
            raise ValueError("simulated_user mode needs {persona} in the template or system")


def _visible(prompt: str | list[ChatMessage]) -> list[ChatMessage]:
    turns = (
        [ChatMessage(role="user", content=prompt)]
        if isinstance(prompt, str)
        else [t for t in prompt if t["role"] in VISIBLE_ROLES]
    )
    if not turns or turns[-1]["role"] != "user":
        raise InvalidItemError(
            "a simulated-user item's prompt must end with the user's turn (the response is "
            "the assistant's reply to it)"
        )
    return turns


class SimulatedUserJudge(Judge[SimulatedUserSpec]):
    def readings(self, item: JudgeItem | None) -> int:
        return 2 + self.rubric.trajectory  # before, after, and each earlier turn it tracks

    def validate(self, item: JudgeItem) -> None:
        super().validate(item)
        self.persona(item)
        _visible(item.prompt)

    def persona(self, item: JudgeItem) -> tuple[str, Persona]:
        name = item.metadata.get(PERSONA_KEY, self.rubric.default_persona)
        persona = self.rubric.personas.get(name) if isinstance(name, str) else None
        if persona is None:
            known = ", ".join(sorted(self.rubric.personas))
            raise InvalidItemError(
                f"metadata.{PERSONA_KEY} {str(name)[:64]!r} is not a persona of rubric "
                f"{self.rubric.name!r} (one of: {known})"
            )
        return str(name), persona

    def _reads(self, item: JudgeItem, persona: Persona) -> list[tuple[str, list[ChatMessage]]]:
        """(label, judge messages) of every read: earlier assistant turns, before, after."""
        turns = _visible(item.prompt)
        earlier = [i for i, t in enumerate(turns) if t["role"] == "assistant"]
        first = max(0, len(earlier) - self.rubric.trajectory)
        # "assistant_K": after the K-th assistant turn of the dialogue (1-based)
        dialogues = [
            (f"assistant_{k + 1}", turns[: earlier[k] + 1]) for k in range(first, len(earlier))
        ]
        dialogues.append(("before", turns))
        dialogues.append(("after", [*turns, ChatMessage(role="assistant", content=item.response)]))
        return [
            (
                label,
                judge_messages(
                    self.rubric,
                    item,
                    persona=persona.text(),
                    dialogue=conversation_text(dialogue),
                ),
            )
            for label, dialogue in dialogues
        ]

    def preview(self, item: JudgeItem) -> list[list[ChatMessage]]:
        _, persona = self.persona(item)
        return [messages for _, messages in self._reads(item, persona)]

    async def judge(self, item: JudgeItem, engine: JudgeEngine) -> Judgment:
        name, persona = self.persona(item)
        reads = self._reads(item, persona)
        judgments = await asyncio.gather(
            *(score_on_scale(self.rubric, messages, engine) for _, messages in reads)
        )
        emotions = {label: 100.0 * j.reward for (label, _), j in zip(reads, judgments, strict=True)}
        before, after = emotions["before"], emotions["after"]
        change = after - before
        reward = after / 100.0 if self.rubric.reward == "after" else 0.5 + change / 200.0
        details: dict[str, Any] = {
            "persona": name,
            "persona_version": persona.version,
            "emotion": {
                "before": before,
                "after": after,
                "change": change,
                "trajectory": [{"read": label, "emotion": emotions[label]} for label, _ in reads],
            },
            "valid_mass": min(j.details["valid_mass"] for j in judgments),
            "reads": {label: j.details for (label, _), j in zip(reads, judgments, strict=True)},
        }
        return Judgment(reward=min(1.0, max(0.0, reward)), details=details)


MODE = JudgeMode(SimulatedUserSpec, rubric_only(SimulatedUserJudge))
