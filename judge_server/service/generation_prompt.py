"""What the judge model is asked when it writes a rubric, and the JSON shape it must answer in.

The sources are a task prompt, optionally a reference answer, (chosen, rejected) pairs and, to
revise a rubric, samples where the judge and a reference disagreed. With pairs the model is asked
for contrastive criteria, the idea of OpenRubrics' Contrastive Rubric Generation (Liu et al.,
2025, "OpenRubrics: Towards Scalable Synthetic Rubric Generation for Reward Modeling and LLM
Alignment"): hard rules (explicit constraints of the task, which rejected answers break) and
principles (implicit qualities that make the chosen answers better), stated generally rather
than copied from the answers.

Everything here is client text: each field is bounded (``MAX_*``) before it reaches a prompt, and
the chat template keeps it plain text (``engines.plain_text``). The answer's shape is a pydantic
model (``Draft``): its JSON schema is what vLLM's structured output holds decoding to, and the
same model validates what comes back, so the schema and the check cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from judge_server.engines.base import ChatMessage
from judge_server.rubrics.criteria import Criterion
from judge_server.rubrics.strict import StrictModel

#: the most criteria one generation may ask for (each is an engine call per scored item)
MAX_CRITERIA = 32
DEFAULT_MAX_CRITERIA = 8
MAX_PAIRS = 8
MAX_DISAGREEMENTS = 16
#: the longest prompt, reference, answer or sample text one generation request may carry
MAX_SOURCE_CHARS = 8_000
#: the longest criterion text the judge may write (the loader allows more; a generated one is
#: held shorter, so a rambling model cannot fill the context of every later judge call)
MAX_CRITERION_CHARS = 300
#: tokens per criterion the generation may take (a 300-character text is about 75 tokens,
#: its id, kind, weight and JSON punctuation about 25 more), plus the braces around them
TOKENS_PER_CRITERION = 110
TOKENS_OVERHEAD = 32

SYSTEM = (
    "You write grading rubrics for judging AI assistant responses. A rubric is a list of "
    "criteria; a grader later checks each criterion alone against one response and answers "
    "Yes or No. You answer only with JSON."
)

KINDS = """Each criterion has:
- id: a short snake_case name;
- text: one statement about a single response, true or false, that a grader can check;
- kind: "hard_rule" (any acceptable response must meet it), "principle" (a quality that makes \
a response better) or "pitfall" (a mistake: a response that makes it loses points);
- weight: 1 (minor) to 5 (essential)."""

CONTRAST = (
    "Write criteria that separate the preferred responses from the rejected ones: hard rules "
    "for the explicit constraints of the task that the rejected responses break, principles for "
    "the implicit qualities that make the preferred responses better. State them generally, for "
    "any response to this task; do not quote the responses."
)

REVISE = (
    "The judge scored the samples above with the current rubric, and its rewards disagree with "
    "the expected ones. Revise the rubric so the judge would agree: keep the criteria that work, "
    "rewrite or drop the ones that misled it, add what it missed."
)


@dataclass(frozen=True)
class Pair:
    chosen: str
    rejected: str


@dataclass(frozen=True)
class Disagreement:
    """A judged sample whose reward disagreed with what a reference (a label, a verifier, a
    human) expected: the material a rubric revision learns from."""

    prompt: str
    response: str
    reward: float | None = None
    expected: float | None = None
    note: str = ""


@dataclass(frozen=True)
class GenerationInput:
    """What a rubric is written from. At least one source must be non-blank (``has_source``)."""

    prompt: str = ""
    reference: str = ""
    pairs: tuple[Pair, ...] = ()
    disagreements: tuple[Disagreement, ...] = ()
    max_criteria: int = DEFAULT_MAX_CRITERIA

    @property
    def has_source(self) -> bool:
        return bool(
            self.prompt.strip()
            or self.reference.strip()
            or any(p.chosen.strip() or p.rejected.strip() for p in self.pairs)
            or any(d.prompt.strip() or d.response.strip() for d in self.disagreements)
        )


class DraftCriterion(StrictModel):
    """One criterion as the judge model writes it (``kind`` pitfall: a negative weight)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    # no pattern beside the length bounds: xgrammar cannot hold both (vLLM would fall back)
    text: str = Field(min_length=8, max_length=MAX_CRITERION_CHARS)
    kind: Literal["hard_rule", "principle", "pitfall"]
    weight: int = Field(ge=1, le=5)


class Draft(StrictModel):
    criteria: list[DraftCriterion] = Field(min_length=1, max_length=MAX_CRITERIA)


def answer_schema(max_criteria: int) -> dict[str, Any]:
    """The JSON schema decoding is held to: ``Draft`` with at most ``max_criteria`` criteria."""
    schema = Draft.model_json_schema()
    schema["properties"]["criteria"]["maxItems"] = max_criteria
    return schema


def max_tokens(max_criteria: int) -> int:
    """A bound on the answer that fits ``max_criteria`` criteria at their longest."""
    return TOKENS_OVERHEAD + TOKENS_PER_CRITERION * max_criteria


def _sample(d: Disagreement, n: int) -> str:
    lines = [f"[Sample {n}]", f"Prompt: {d.prompt}", f"Response: {d.response}"]
    if d.reward is not None:
        lines.append(f"Judge reward: {d.reward:.2f}")
    if d.expected is not None:
        lines.append(f"Expected reward: {d.expected:.2f}")
    if d.note:
        lines.append(f"Note: {d.note}")
    return "\n".join(lines)


def _criterion_line(c: Criterion) -> str:
    kind = "pitfall" if c.weight < 0 else c.kind
    return f"- {c.id} ({kind}, weight {abs(c.weight):g}): {c.text}"


def generation_messages(
    source: GenerationInput, current: tuple[Criterion, ...] = ()
) -> list[ChatMessage]:
    """The chat the judge model answers with a rubric. ``current`` is the rubric being revised
    (shown only with disagreements: without them there is nothing to revise it from)."""
    parts = [
        f"Write a grading rubric of at most {source.max_criteria} criteria for responses to "
        "the task below.",
        KINDS,
    ]
    if source.prompt.strip():
        parts.append(f"[Task]\n{source.prompt}")
    if source.reference.strip():
        parts.append(
            f"[Reference answer]\n{source.reference}\n\nCriteria should reward what this "
            "reference gets right."
        )
    for n, pair in enumerate(source.pairs, start=1):
        parts.append(f"[Preferred response {n}]\n{pair.chosen}")
        parts.append(f"[Rejected response {n}]\n{pair.rejected}")
    if source.pairs:
        parts.append(CONTRAST)
    if source.disagreements:
        if current:
            parts.append("[Current rubric]\n" + "\n".join(map(_criterion_line, current)))
        parts.extend(_sample(d, n) for n, d in enumerate(source.disagreements, start=1))
        parts.append(REVISE)
    parts.append(
        'Answer with JSON: {"criteria": [{"id": ..., "text": ..., "kind": ..., "weight": ...}]}'
    )
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "\n\n".join(parts)},
    ]
