"""Wire models of ``POST /v1/rubrics/generate`` (and the rows ``judge-server rubrics generate``
reads): every text bounded, the whole request valid Unicode, something to generate from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from judge_server.api.protocol import Message, RubricRef, judge_prompt, valid_unicode
from judge_server.judges.base import InvalidItemError
from judge_server.judges.prompting import conversation_text
from judge_server.rubrics.spec import NAME_PATTERN
from judge_server.service import JudgeService
from judge_server.service.generation_prompt import (
    DEFAULT_MAX_CRITERIA,
    MAX_CRITERIA,
    MAX_DISAGREEMENTS,
    MAX_PAIRS,
    MAX_SOURCE_CHARS,
    Disagreement,
    GenerationInput,
    Pair,
)
from judge_server.service.rubric_generation import (
    DEFAULT_BASE,
    DEFAULT_CRITERIA_BASE,
    DEFAULT_TIMEOUT_S,
    MAX_TIMEOUT_S,
    GeneratedRubric,
    generate_rubric,
)


def _text(prompt: str | list[Message], field: str) -> str:
    """A prompt (text or chat messages) as one bounded text."""
    try:
        text = conversation_text(judge_prompt(prompt))
    except InvalidItemError as exc:
        raise ValueError(f"{field}: {exc}") from exc
    if len(text) > MAX_SOURCE_CHARS:
        raise ValueError(f"{field} is {len(text)} characters; at most {MAX_SOURCE_CHARS}")
    return text


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PairIn(_In):
    chosen: str = Field(max_length=MAX_SOURCE_CHARS, description="A preferred response.")
    rejected: str = Field(max_length=MAX_SOURCE_CHARS, description="A rejected response.")


class DisagreementIn(_In):
    prompt: str | list[Message] = Field(description="The sample's prompt.")
    response: str = Field(max_length=MAX_SOURCE_CHARS, description="The judged response.")
    reward: float | None = Field(None, allow_inf_nan=False, description="The judge's reward.")
    expected: float | None = Field(
        None,
        allow_inf_nan=False,
        description="The reward a reference (label, verifier, human) expected.",
    )
    note: str = Field("", max_length=1000, description="Why the reward was wrong, if known.")


class GenerateRequest(_In):
    prompt: str | list[Message] = Field(
        "", description="The task the rubric judges responses to: text or chat messages."
    )
    reference: str = Field("", max_length=MAX_SOURCE_CHARS, description="A reference answer.")
    pairs: list[PairIn] = Field(
        default_factory=list,
        max_length=MAX_PAIRS,
        description="(chosen, rejected) responses: criteria that separate them (contrastive).",
    )
    disagreements: list[DisagreementIn] = Field(
        default_factory=list,
        max_length=MAX_DISAGREEMENTS,
        description="Refinement: samples the base rubric's judge got wrong; the answer revises "
        "the base rubric's criteria.",
    )
    base: str | None = Field(
        None,
        max_length=200,
        description="Rubric (name or name@version, rubric mode) whose prompt and aggregation "
        "the result uses, and whose criteria a refinement revises (default "
        f"{DEFAULT_BASE}; for output=criteria {DEFAULT_CRITERIA_BASE}, and a base that takes "
        "instance criteria).",
    )
    name: str | None = Field(
        None,
        pattern=NAME_PATTERN,
        description="Name of the generated definition (default: the base's name, else "
        "'generated').",
    )
    output: Literal["definition", "criteria"] = Field(
        "definition",
        description="definition: a rubric PUT accepts; criteria: instance criteria for an "
        "item's rubrics field, judged with the base rubric.",
    )
    max_criteria: int = Field(
        DEFAULT_MAX_CRITERIA,
        ge=1,
        le=MAX_CRITERIA,
        description="At most this many criteria (and at most JUDGE_MAX_INLINE_CRITERIA).",
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        le=MAX_TIMEOUT_S,
        description=f"Deadline of the engine call (default {DEFAULT_TIMEOUT_S:g}); past it 504 "
        "timeout.",
    )

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        return valid_unicode(data, "body")

    @model_validator(mode="after")
    def _something(self) -> GenerateRequest:
        if not self.to_source().has_source:
            raise ValueError(
                "nothing to generate from: send a prompt, a reference, pairs or disagreements"
            )
        return self

    def to_source(self) -> GenerationInput:
        return GenerationInput(
            prompt=_text(self.prompt, "prompt"),
            reference=self.reference,
            pairs=tuple(Pair(p.chosen, p.rejected) for p in self.pairs),
            disagreements=tuple(
                Disagreement(
                    _text(d.prompt, "disagreements.prompt"),
                    d.response,
                    d.reward,
                    d.expected,
                    d.note,
                )
                for d in self.disagreements
            ),
            max_criteria=self.max_criteria,
        )

    async def generate(self, service: JudgeService) -> GeneratedRubric:
        """What this request asks for, written by ``service``'s judge model (the route and
        ``judge-server rubrics generate`` both run it)."""
        return await generate_rubric(
            service,
            self.to_source(),
            base=self.base,
            name=self.name,
            output=self.output,
            timeout_s=self.timeout_s,
        )


class CriterionOut(BaseModel):
    id: str
    text: str
    weight: float
    kind: Literal["principle", "hard_rule"]


class GenerateResponse(BaseModel):
    output: Literal["definition", "criteria"]
    rubric: RubricRef = Field(
        description="The generated definition's name and version (what a PUT of it serves)."
    )
    base: RubricRef = Field(description="The rubric whose prompt and aggregation it uses.")
    model: str = Field(description="The judge model that wrote the criteria.")
    criteria: list[CriterionOut]
    definition: dict[str, Any] | None = Field(
        None, description="output=definition: the rubric, ready for PUT /v1/rubrics/{name}."
    )
    prompt_tokens: int = Field(description="Tokens of the generation prompt.")
