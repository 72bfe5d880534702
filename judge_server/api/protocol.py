"""Wire models of API v1 (see DESIGN.md, "Wire contract")."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from judge_server.engines.base import ChatMessage
from judge_server.engines.images import ImageData
from judge_server.judges.base import InvalidItemError, JudgeItem
from judge_server.judges.conversation import ROLES, chat_turns, content_text
from judge_server.judges.group import DEFAULT_ANCHORS, DEFAULT_ROUNDS, Pairing
from judge_server.judges.image_parts import ImageLimits, ImageReader, metadata_text
from judge_server.rubrics.criteria import Criterion
from judge_server.rubrics.instance import (
    MAX_INSTANCE_CRITERIA,
    InstanceCriteriaError,
    parse_instance_criteria,
)
from judge_server.service.input_checks import unencodable
from judge_server.service.scoring import Rejected, ScoreInput

Status = Literal["ok", "invalid_input", "judge_error", "timeout"]

#: an item id is echoed in every result; it is a label, not content
MAX_ID_CHARS = 512


def valid_unicode(value: Any, path: str) -> Any:
    """``value``, or ``ValueError`` (a 422) when it holds text UTF-8 cannot encode: for fields
    of the whole request; an item's own text is refused per item by the service instead."""
    if (problem := unencodable(value, path)) is not None:
        raise ValueError(problem)
    return value


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(BaseModel):
    """A chat message as chat templates take it. Extra keys (``tool_calls``, ``name``) are kept;
    whether the message can be judged is decided per item (``judges.conversation``), so one
    message the judge cannot read fails its own item, not the request."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(description=f"One of {', '.join(sorted(ROLES))}.")
    content: str | list[dict[str, Any]] | None = Field(
        None,
        description="Text, OpenAI-style content parts (text; image_url with a data URL, for a "
        "vision-language judge), or null (beside tool_calls).",
    )

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


DEFAULT_IMAGE_LIMITS = ImageLimits()

#: a response: text, or OpenAI-style content parts (text and image_url)
Content = str | list[dict[str, Any]]
_CONTENT_DOC = "text, or OpenAI-style content parts (text; image_url with a data URL)"


def judge_prompt(
    prompt: str | list[Message], images: ImageReader | None = None
) -> str | list[ChatMessage]:
    """A request's prompt as the judge reads it; ``InvalidItemError`` when it cannot be."""
    if isinstance(prompt, str):
        return images.text(prompt) if images is not None else prompt
    return chat_turns([m.as_dict() for m in prompt], images)


def contents(prompt: str | list[Message], responses: list[Content]) -> list[object]:
    """Every content that may hold image parts: the prompt's messages' and the responses'."""
    messages = [] if isinstance(prompt, str) else [m.content for m in prompt]
    return [*messages, *responses]


class ScoreItemIn(_In):
    id: str | None = Field(
        None,
        max_length=MAX_ID_CHARS,
        description="Echoed in the result; defaults to the position.",
    )
    prompt: str | list[Message] = Field(description="The policy's prompt: text or chat messages.")
    response: Content = Field(description=f"The policy's response to judge: {_CONTENT_DOC}.")
    reference: str | None = Field(None, description="A reference answer, for rubrics that use one.")
    metadata: dict[str, Any] = Field(default_factory=dict)
    rubrics: list[Any] | None = Field(
        None,
        description="Instance criteria, judged in place of the rubric's own (for rubrics that "
        "declare instance_criteria, such as healthbench): HealthBench's "
        '{"criterion": str, "points": number, "tags": [str]} or the rubric format '
        '{"id", "text", "weight", "kind"}. Bad criteria make this item invalid_input; more '
        "than JUDGE_MAX_INLINE_CRITERIA too.",
    )

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Trainers often key samples by integer index.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return valid_unicode(value, "id")

    def to_input(
        self,
        default_id: str,
        *,
        max_criteria: int = MAX_INSTANCE_CRITERIA,
        images: ImageLimits = DEFAULT_IMAGE_LIMITS,
    ) -> ScoreInput:
        """The item to judge, or its refusal when its prompt or criteria cannot be read."""
        try:
            return self.to_item(default_id, max_criteria=max_criteria, images=images)
        except InvalidItemError as exc:
            return Rejected(self.id if self.id is not None else default_id, str(exc))

    def to_item(
        self,
        default_id: str,
        *,
        max_criteria: int = MAX_INSTANCE_CRITERIA,
        images: ImageLimits = DEFAULT_IMAGE_LIMITS,
    ) -> JudgeItem:
        """The item to judge; ``InvalidItemError`` when its prompt, response or criteria
        cannot be read."""
        reader = ImageReader(images)
        criteria = self.criteria(max_criteria)
        return JudgeItem(
            id=self.id if self.id is not None else default_id,
            prompt=judge_prompt(self.prompt, reader),
            response=content_text(self.response, "response", reader),
            reference=reader.text(self.reference) if self.reference is not None else None,
            metadata=metadata_text(self.metadata) if self.metadata else {},
            criteria=None
            if criteria is None
            else tuple(c.model_copy(update={"text": reader.text(c.text)}) for c in criteria),
            images=tuple(reader.images),
        )

    def criteria(self, max_count: int = MAX_INSTANCE_CRITERIA) -> tuple[Criterion, ...] | None:
        """The item's own criteria, parsed; None when it sent none. A list longer than
        ``max_count`` is refused before any entry is validated."""
        if self.rubrics is None:
            return None
        # Text that is not valid Unicode (a lone surrogate) is refused by the validation too.
        try:
            return parse_instance_criteria(self.rubrics, max_count=max_count)
        except InstanceCriteriaError as exc:
            raise InvalidItemError(str(exc)) from None


class ScoreOptions(_In):
    timeout_s: float | None = Field(
        None, gt=0, le=3600, description="Per-item deadline; late items get status 'timeout'."
    )
    cache: bool = Field(
        True, description="Use the result cache; false neither reads nor writes it."
    )


class ScoreRequest(_In):
    rubric: str | dict[str, Any] = Field(
        description="A rubric name, 'name@version' to pin a version, or an inline definition.",
        examples=["helpfulness"],
    )
    items: list[ScoreItemIn] = Field(min_length=1)
    options: ScoreOptions = Field(default_factory=ScoreOptions)

    def contents(self) -> list[object]:
        return [c for item in self.items for c in contents(item.prompt, [item.response])]


class RubricRef(BaseModel):
    name: str
    version: str


class UsageOut(BaseModel):
    """What judging cost the engine (also for cost accounting)."""

    prompt_tokens: int = Field(0, description="Prompt tokens of every engine call, summed.")
    cached_prompt_tokens: int = Field(
        0, description="Of those, tokens served from vLLM's prefix cache."
    )
    engine_calls: int = Field(
        0,
        description="Engine calls made; 0 for a cache hit or a result shared with an "
        "identical item judged at the same time.",
    )


class ItemResultOut(BaseModel):
    id: str
    status: Status
    reward: float | None
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="What the judge saw and decided, by mode (rubric mode: one row per "
        "criterion). An item judged by its own criteria also has criteria_hash: a sha256 prefix "
        "of those criteria, which with the rubric version names what scored it.",
    )
    error: str | None = None
    cached: bool = False
    usage: UsageOut = Field(default_factory=UsageOut)


class ScoreResponse(BaseModel):
    rubric: RubricRef
    model: str
    results: list[ItemResultOut]


class RubricSummary(BaseModel):
    name: str
    version: str
    mode: str
    description: str


class RubricList(BaseModel):
    rubrics: list[RubricSummary]


class RubricChangeOut(BaseModel):
    at: datetime = Field(description="When (UTC).")
    version: str = Field(description="The version it made live (or deleted): a content hash.")
    action: str = Field(
        description="load: read from the rubrics directory; seed: the directory seeded the "
        "shared store; put/delete: through this API (a newer release sharing the store may "
        "write others)."
    )
    by: str | None = Field(
        description="Who, by key id (never the key); null for files, and shown only to "
        "admin callers (null for the others)."
    )


class RubricDetail(RubricSummary):
    definition: dict[str, Any]
    history: list[str] = Field(description="Known versions, oldest first; each can be pinned.")
    changes: list[RubricChangeOut] = Field(
        default_factory=list, description="The change log, oldest first (bounded)."
    )


class ErrorBody(BaseModel):
    type: str
    message: str
    param: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorBody


class RubricStoreHealth(BaseModel):
    ok: bool = Field(description="The last sync with the shared rubric store succeeded.")
    error: str | None = Field(description="Why not: the last known versions keep serving.")
    generation: int | None = Field(description="The store generation served here.")


class HealthOut(BaseModel):
    status: Literal["ok", "draining"]
    rubric_store: RubricStoreHealth | None = Field(
        None, description="Only with JUDGE_RUBRIC_STORE set."
    )


class ReadyOut(BaseModel):
    ready: bool
    engine: bool = Field(description="The judge engine is up.")
    model: str
    rubrics: int = Field(description="Rubrics in the live snapshot.")
    error: ErrorBody | None = Field(description="Why not ready (type, message), when not.")


# --- POST /v1/score/group: one prompt, a group of responses, rewards from pairwise comparisons

MAX_GROUP_SIZE = 128


class GroupOptions(ScoreOptions):
    pairing: Pairing = Field(
        "all_pairs",
        description="all_pairs: every pair, n(n-1)/2 comparisons; round_robin: in round r each "
        "response meets the one r places after it (n x rounds comparisons); anchor: every "
        "response meets each of the first `anchors` distinct responses.",
    )
    rounds: int | None = Field(
        None, ge=1, le=64, description=f"round_robin: rounds (default {DEFAULT_ROUNDS})."
    )
    anchors: int | None = Field(
        None, ge=1, le=64, description=f"anchor: how many anchors (default {DEFAULT_ANCHORS})."
    )

    @model_validator(mode="after")
    def _knob_matches_pairing(self) -> GroupOptions:
        if self.rounds is not None and self.pairing != "round_robin":
            raise ValueError("rounds is only meaningful with pairing 'round_robin'")
        if self.anchors is not None and self.pairing != "anchor":
            raise ValueError("anchors is only meaningful with pairing 'anchor'")
        return self


class GroupScoreRequest(_In):
    rubric: str | dict[str, Any] = Field(
        description="A pairwise-mode rubric: a name, 'name@version' or an inline definition.",
        examples=["pairwise"],
    )
    prompt: str | list[Message] = Field(description="The prompt every response answers.")
    responses: list[Content] = Field(
        min_length=2, max_length=MAX_GROUP_SIZE, description=f"Each {_CONTENT_DOC}."
    )
    reference: str | None = Field(None, description="A reference answer, for rubrics that use one.")
    options: GroupOptions = Field(default_factory=GroupOptions)

    @model_validator(mode="after")
    def _shared_text_encodable(self) -> GroupScoreRequest:
        # The prompt and reference belong to every response: bad text there fails the request.
        prompt = self.prompt if isinstance(self.prompt, str) else [m.as_dict() for m in self.prompt]
        valid_unicode(prompt, "prompt")
        valid_unicode(self.reference, "reference")
        return self

    def contents(self) -> list[object]:
        return contents(self.prompt, list(self.responses))

    def judge_inputs(
        self, limits: ImageLimits
    ) -> tuple[str | list[ChatMessage], list[str], str | None, list[ImageData]]:
        """The prompt, the responses and the reference as the judge reads them, and their
        images (each response, like the prompt, bounded as one item); ``InvalidItemError``
        names the part that cannot be read."""
        prompt_images = ImageReader(limits)
        prompt = judge_prompt(self.prompt, prompt_images)
        images = list(prompt_images.images)
        texts: list[str] = []
        for i, response in enumerate(self.responses):
            reader = ImageReader(limits)
            texts.append(content_text(response, f"responses.{i}", reader))
            images.extend(reader.images)
        reference = self.reference
        if reference is not None:
            reference = prompt_images.text(reference)
        return prompt, texts, reference, images


class GroupResultOut(BaseModel):
    index: int
    status: Status
    reward: float | None = Field(description="Win rate over its judged comparisons.")
    details: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class ComparisonOut(BaseModel):
    i: int
    j: int
    status: Status
    p_i_beats_j: float | None
    agree: bool | None = Field(
        None, description="Both orders picked the same winner (None when not judged in both)."
    )
    identical: bool = Field(False, description="Same text: a tie, never sent to the judge.")
    cached: bool = False
    error: str | None = None


class PairingOut(BaseModel):
    strategy: Pairing
    rounds: int | None = None
    anchors: int | None = None
    comparisons: int = Field(description="Comparisons between responses.")
    judge_calls: int = Field(description="Distinct text pairs sent to the judge.")


class GroupScoreResponse(BaseModel):
    rubric: RubricRef
    model: str
    results: list[GroupResultOut]
    comparisons: list[ComparisonOut]
    pairing: PairingOut
    usage: UsageOut = Field(
        default_factory=UsageOut, description="Every judge call of the group, summed."
    )
