"""Rubric generation: the judge model writes criteria; the rubric loader decides whether they
stand.

One engine call per rubric, at temperature 0, held by vLLM's structured output to the JSON shape
of ``generation_prompt.Draft`` and bounded in tokens (``generation_prompt.max_tokens``). What
comes back is untrusted text: it is parsed and validated with ``Draft``, ids are normalised
(snake_case, unique), repeated criteria are dropped, pitfalls become negative weights, and the
result is put into the base rubric (its prompt, verdict and aggregation; ``DEFAULT_BASE`` when
none is named, ``DEFAULT_CRITERIA_BASE`` for instance criteria) and validated exactly as
``PUT /v1/rubrics/{name}`` validates a definition; instance criteria are also read back with
``parse_instance_criteria``, as scoring will read them. A model answer that fails any of it is
``GenerationFailed`` (HTTP 502 ``judge_error``), not retried: at temperature 0 the same request
writes the same answer. A prompt that leaves too little of the context for the answer is
refused before the call (``GenerationRefused``), and the call has a deadline
(``GenerationTimedOut``).

Nothing is saved here: the caller PUTs the definition as a new version (the registry keeps the
history, so every reward stays traceable to the criteria that produced it).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from judge_server.engines.base import (
    EngineDeadError,
    EngineError,
    JudgeEngine,
    PromptTooLongError,
)
from judge_server.judges.rubric import RubricModeSpec
from judge_server.rubrics.criteria import Criterion
from judge_server.rubrics.instance import (
    InstanceCriteriaError,
    InstanceCriterion,
    criteria_wire,
    parse_instance_criteria,
)
from judge_server.rubrics.spec import NAME_PATTERN, RubricSpec
from judge_server.service.errors import (
    GenerationFailed,
    GenerationRefused,
    GenerationTimedOut,
    InvalidRubric,
    NotReady,
)
from judge_server.service.generation_prompt import (
    MAX_CRITERIA,
    Draft,
    DraftCriterion,
    GenerationInput,
    answer_schema,
    generation_messages,
    max_tokens,
)
from judge_server.service.judge_service import JudgeService

#: the rubric whose prompt, verdict tokens and aggregation a generated rubric uses when the
#: request names none: a generic per-criterion yes/no template with hard rules
DEFAULT_BASE = "instruction_following"
#: the base of instance criteria when the request names none: a rubric that judges each item by
#: its own criteria (instance_criteria: required), so what is generated scores as it is
DEFAULT_CRITERIA_BASE = "healthbench"
#: a generation's deadline (seconds) when the request sets none, and the most it may set: one
#: call of up to 32 criteria takes minutes on a CPU
DEFAULT_TIMEOUT_S = 600.0
MAX_TIMEOUT_S = 3600.0
#: the name of a generated definition when the request names neither it nor a base
DEFAULT_NAME = "generated"
#: how much of the judge's invalid answer an error message quotes
QUOTE_CHARS = 200


@dataclass(frozen=True)
class GeneratedRubric:
    definition: RubricSpec
    """The base rubric with the generated criteria, validated as PUT validates it."""
    base: RubricSpec
    """The rubric whose prompt and aggregation it uses (a revision: the rubric revised)."""
    model: str
    num_prompt_tokens: int
    instance: tuple[InstanceCriterion, ...] | None = None
    """output=criteria: the criteria as an item's ``rubrics`` field, read back as scoring reads
    them (``parse_instance_criteria``)."""

    @property
    def criteria(self) -> tuple[Criterion, ...]:
        assert isinstance(self.definition, RubricModeSpec)
        return self.definition.criteria


def slug(text: str) -> str:
    """``text`` as a criterion id: lower snake_case, at most 40 characters, or empty."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40].rstrip("_")


def normalised(draft: Draft) -> list[dict[str, Any]]:
    """The judge's criteria as the project's criterion format: unique ids, whitespace
    collapsed, a criterion repeated word for word kept once, a pitfall a negative weight."""
    out: list[dict[str, Any]] = []
    ids: set[str] = set()
    texts: set[str] = set()
    for n, c in enumerate(draft.criteria, start=1):
        text = " ".join(c.text.split())
        if text.casefold() in texts:
            continue
        texts.add(text.casefold())
        base_id = slug(c.id) or f"criterion_{n}"
        cid, k = base_id, 2
        while cid in ids:
            cid, k = f"{base_id}_{k}", k + 1
        ids.add(cid)
        out.append(_criterion(cid, text, c))
    return out


def _criterion(cid: str, text: str, c: DraftCriterion) -> dict[str, Any]:
    if c.kind == "pitfall":
        return {"id": cid, "text": text, "weight": -c.weight, "kind": "principle"}
    return {"id": cid, "text": text, "weight": c.weight, "kind": c.kind}


def read_draft(text: str, finish_reason: str | None, limit: int) -> list[dict[str, Any]]:
    """The criteria of the judge's answer, or ``GenerationFailed`` saying what is wrong."""
    if finish_reason == "length":
        raise GenerationFailed(
            f"the judge's rubric was cut off at its token bound ({max_tokens(limit)} tokens for "
            f"{limit} criteria); nothing usable came back"
        )
    try:
        draft = Draft.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise GenerationFailed(
            f"the judge's rubric does not validate ({where}: {first['msg']}): "
            f"{text[:QUOTE_CHARS]!r}"
        ) from None
    if len(draft.criteria) > limit:
        raise GenerationFailed(
            f"the judge wrote {len(draft.criteria)} criteria; at most {limit} were asked for"
        )
    return normalised(draft)


Output = Literal["definition", "criteria"]


def check_request(source: GenerationInput, name: str | None, max_inline_criteria: int) -> None:
    """Refuse what no judge answer could fix, before any engine call. Criteria are engine calls
    per scored item, so ``max_criteria`` is bounded by JUDGE_MAX_INLINE_CRITERIA too."""
    if not source.has_source:
        raise GenerationRefused(
            "nothing to generate from: send a prompt, a reference, pairs or disagreements",
            param="prompt",
        )
    limit = min(MAX_CRITERIA, max_inline_criteria)
    if not 1 <= source.max_criteria <= limit:
        why = " (JUDGE_MAX_INLINE_CRITERIA)" if limit < MAX_CRITERIA else ""
        raise GenerationRefused(
            f"max_criteria must be 1 to {limit}{why}, not {source.max_criteria}",
            param="max_criteria",
        )
    if name is not None and not re.fullmatch(NAME_PATTERN, name):
        raise GenerationRefused(f"name {name!r} is not a rubric name", param="name")


def base_rubric(
    service: JudgeService, ref: str | None, output: Output = "definition"
) -> RubricModeSpec:
    """The base a generation uses; for instance criteria one that takes an item's criteria
    (criteria generated on any other could not be scored)."""
    default = DEFAULT_CRITERIA_BASE if output == "criteria" else DEFAULT_BASE
    base = service.resolve(ref or default, param="base")
    if not isinstance(base, RubricModeSpec):
        raise InvalidRubric(
            f"base rubric {base.ref} is {base.mode} mode; generated criteria need a rubric-mode "
            "base (its template, verdict tokens and aggregation)",
            param="base",
        )
    if output == "criteria" and base.instance_criteria == "forbidden":
        raise InvalidRubric(
            f"base rubric {base.ref} takes no instance criteria (instance_criteria: forbidden), "
            "so criteria generated on it could not be scored: name a base that allows them "
            f"(default {DEFAULT_CRITERIA_BASE})",
            param="base",
        )
    return base


async def generate_rubric(
    service: JudgeService,
    source: GenerationInput,
    *,
    base: str | None = None,
    name: str | None = None,
    output: Output = "definition",
    timeout_s: float | None = None,
) -> GeneratedRubric:
    """A rubric-mode definition the judge model wrote from ``source``, on ``base`` (a rubric
    name or ``name@version``); named ``name``, else the base's name when one was given (a
    revision is the base's next version), else ``DEFAULT_NAME``. ``output="criteria"`` also
    gives the criteria as instance criteria (``GeneratedRubric.instance``)."""
    check_request(source, name, service.settings.max_inline_criteria)
    base_spec = base_rubric(service, base, output)
    engine = service.engine
    # A revision shows the judge the criteria it revises; a fresh rubric borrows only the
    # base's prompt and aggregation.
    current = base_spec.criteria if base is not None else ()
    prompt = engine.render_chat(generation_messages(source, current))
    await _check_room(engine, prompt, source.max_criteria)
    deadline = timeout_s or DEFAULT_TIMEOUT_S
    with service.admitted(1, 1):
        try:
            out = await asyncio.wait_for(
                engine.generate(
                    prompt,
                    max_tokens=max_tokens(source.max_criteria),
                    temperature=0.0,
                    json_schema=answer_schema(source.max_criteria),
                ),
                deadline,
            )
        except TimeoutError:
            raise GenerationTimedOut(
                f"the judge wrote no rubric within {deadline:g} s: allow longer (timeout_s, at "
                f"most {MAX_TIMEOUT_S:g}) or ask for fewer criteria",
                param="timeout_s",
            ) from None
        except PromptTooLongError as exc:
            raise GenerationRefused(
                f"the generation prompt does not fit the judge model ({exc}): send shorter "
                "texts, fewer pairs or fewer disagreements",
                param="prompt",
            ) from exc
        except EngineDeadError as exc:  # as scoring: a dead engine is not serving (503)
            raise NotReady(f"the judge engine died: {exc}") from exc
        except EngineError as exc:
            raise GenerationFailed(f"the judge engine failed: {exc}") from exc
    criteria = read_draft(out.text, out.finish_reason, source.max_criteria)
    target = name or (base_spec.name if base is not None else DEFAULT_NAME)
    definition = {
        **base_spec.model_dump(mode="json", exclude_defaults=True),
        "name": target,
        "description": f"Criteria written by {engine.model_id} on {base_spec.ref}.",
        "criteria": criteria,
    }
    # A base that judges by the item's criteria (healthbench) would ignore these ones.
    if definition.get("instance_criteria") == "required":
        del definition["instance_criteria"]
    try:
        rubric = service.check_definition(target, definition)
    except InvalidRubric as exc:  # the criteria are the only part that changed: the judge's
        raise GenerationFailed(f"the judge's rubric does not validate: {exc.message}") from exc
    made = GeneratedRubric(
        definition=rubric,
        base=base_spec,
        model=engine.model_id,
        num_prompt_tokens=out.num_prompt_tokens,
    )
    if output == "definition":
        return made
    try:
        instance = parse_instance_criteria(
            criteria_wire(made.criteria), max_count=service.settings.max_inline_criteria
        )
    except InstanceCriteriaError as exc:
        raise GenerationFailed(f"the judge's criteria do not validate: {exc}") from exc
    return GeneratedRubric(rubric, base_spec, made.model, made.num_prompt_tokens, instance)


async def _check_room(engine: JudgeEngine, prompt: str, max_criteria: int) -> None:
    """Refuse a prompt that leaves the answer less than its token bound: the engine would cut
    the answer short and the judge would be blamed for it. (Counting the rendered prompt as
    plain text splits its special tokens, so it errs towards refusing.)"""
    budget = max_tokens(max_criteria)
    used = await asyncio.to_thread(engine.count_tokens, prompt)  # a long text: off the loop
    room = engine.max_model_len - used
    if room < budget:
        raise GenerationRefused(
            f"the generation prompt takes {used} of the judge model's {engine.max_model_len} "
            f"tokens, leaving {max(room, 0)} for an answer of up to {budget} tokens "
            f"({max_criteria} criteria): send shorter texts, fewer pairs or disagreements, or a "
            "smaller max_criteria",
            param="prompt",
        )
