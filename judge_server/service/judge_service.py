"""The serving layer: every front door (HTTP routes, ``judge-server score``, ``eval``, the rubric
tools, the benchmark) resolves rubrics, builds judges and scores through this one object.

It owns what a request needs beyond the judge's own logic: rubric resolution (names, pinned
versions, inline definitions), judge construction with everything a mode may need (the registry
for composite components, the hosted reward models), the request bounds, admission
(backpressure) and the engine's readiness. It speaks in domain errors (``service.errors``);
turning them into HTTP statuses or exit codes is the front door's job.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from judge_server.cache import ResultCache
from judge_server.engines.base import JudgeEngine
from judge_server.engines.reward_models import RewardModels
from judge_server.judges import Judge, JudgeFailure, JudgeItem, judge_for
from judge_server.judges.answer_guard import warm as warm_answer_guard
from judge_server.judges.modes import parse_rubric
from judge_server.judges.workers import CheckPool
from judge_server.metrics import Metrics
from judge_server.rubrics.registry import RubricNotFoundError, RubricRegistry
from judge_server.rubrics.registry import TooManyRubrics as RegistryFull
from judge_server.rubrics.shared import SharedRubrics
from judge_server.rubrics.spec import RubricError, RubricSpec
from judge_server.rubrics.store import RubricStoreError
from judge_server.service.admission import Admission, QueueFullError
from judge_server.service.cost import engine_calls
from judge_server.service.errors import (
    Draining,
    InvalidRubric,
    NotReady,
    Overloaded,
    RubricNotFound,
    RubricsReadOnly,
    RubricStoreUnavailable,
    TooManyItems,
    TooManyRubrics,
    TooMuchWork,
)
from judge_server.service.heap import freeze_built, thaw
from judge_server.service.image_checks import image_checked, text_only
from judge_server.service.input_checks import item_problem, unencodable
from judge_server.service.rubric_limits import definition_problem, spec_problem
from judge_server.service.scoring import ItemResult, Rejected, ScoreInput, Scorer
from judge_server.settings import Settings

log = logging.getLogger(__name__)

#: what writing into a read-only mount (EROFS) or a directory not ours (EACCES, EPERM) raises
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

RubricChoice = str | Mapping[str, Any]
"""A rubric as a request names it: ``name``, ``name@version`` or an inline definition."""


class JudgeService:
    def __init__(
        self,
        settings: Settings,
        engine: JudgeEngine,
        registry: RubricRegistry,
        *,
        reward_models: RewardModels | None = None,
        cache: ResultCache | None = None,
        metrics: Metrics | None = None,
        shared_rubrics: SharedRubrics | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.registry = registry
        self.shared_rubrics = shared_rubrics
        """The rubric store replicas share (``JUDGE_RUBRIC_STORE``); None: the directory."""
        self.reward_models = reward_models if reward_models is not None else RewardModels()
        self.cache = cache
        self.metrics = metrics if metrics is not None else Metrics()
        self.scorer = Scorer(
            engine,
            self.metrics,
            cache=cache,
            engine_fingerprint=settings.engine_fingerprint(),
            models=self.model_revisions,
        )
        self.admission = Admission(settings.max_queue_engine_calls)
        # Metric labels stay bounded: a rubric a client sends inline counts as "inline".
        self.metrics.rubric_label = self._rubric_label
        self.checks = CheckPool(settings.check_workers, settings.check_timeout_s)
        """Worker processes for CPU-bound checks, so none runs on the event loop."""
        self.engine_error: str | None = None  # why the engine or a reward model is not serving
        self.draining = False  # SIGTERM: not ready, no new scoring, work in flight finishes
        self.started = False  # the models are up and the heap frozen: ready may turn true

    # -- lifetime ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the judge engine, then the reward models (each is a vLLM engine of its own).
        On failure ``engine_error`` says why and the exception propagates."""
        started = time.monotonic()
        try:
            if not self.engine.ready:
                await self.engine.start()
            await self.reward_models.start()
            freeze_built()  # with no await before ready turns true: it holds up no request
            self.started = True
            await self.checks.start()
            await asyncio.to_thread(warm_answer_guard)
        except Exception as exc:
            self.engine_error = f"engine failed to start: {type(exc).__name__}: {exc}"
            raise
        log.info("judge engine up in %.1f s", time.monotonic() - started)

    def model_revisions(self) -> dict[str, object]:
        """The content identity of every model behind a reward (``None`` until started): a
        part of every cache key, so weights changed under the same path never replay results,
        and a reward model retrained in place invalidates its rubrics' results."""
        return {
            "judge": self.engine.model_revision,
            "reward_models": {
                name: model.model_revision for name, model in self.reward_models.items()
            },
        }

    def dead_reason(self) -> str | None:
        """Why the started judge engine or a reward model can serve nothing more, else None."""
        return self.engine.dead_reason() or self.reward_models.dead_reason()

    def engine_died(self, reason: str) -> None:
        """Not ready from now on, with the reason; every item in flight or to come fails
        as ``judge_error``."""
        self.engine_error = f"engine died: {reason}"
        log.error("judge engine died: %s", reason)
        self.scorer.fail_pending(self.engine_error)

    def begin_drain(self) -> None:
        """Stop admitting scoring work; what is in flight finishes (see ``idle``)."""
        if not self.draining:
            log.info("draining: %d item(s) in flight", self.admission.in_flight)
        self.draining = True

    @property
    def idle(self) -> bool:
        """No scoring work admitted and unanswered."""
        return self.admission.in_flight == 0

    async def close(self) -> None:
        await asyncio.to_thread(self.checks.close)  # joins the workers
        await self.engine.shutdown()
        await self.reward_models.shutdown()
        if self.cache is not None:
            await self.cache.close()
        if self.shared_rubrics is not None:
            await self.shared_rubrics.store.close()
        thaw()  # what start froze: a process running services in turn (tests) is not frozen again

    @property
    def ready(self) -> bool:
        return (
            self.started
            and self.engine.ready
            and self.reward_models.ready
            and bool(self.registry.current)
            and self.engine_error is None
            and not self.draining
            and (self.shared_rubrics is None or self.shared_rubrics.synced)
        )

    def require_ready(self) -> None:
        if self.engine_error is None and self.draining:
            raise Draining("the server is shutting down; retry on another replica")
        if not self.ready:
            raise NotReady(self.engine_error or self.not_ready_reason)

    @property
    def not_ready_reason(self) -> str:
        shared = self.shared_rubrics
        if self.engine.ready and shared is not None and not shared.synced:
            return "waiting for the rubric store (its versions are not loaded yet)"
        return "the judge engine is still starting"

    async def refresh_for(self, spec: RubricChoice) -> None:
        """Before ``resolve``: finds a pin made on another replica since the last poll."""
        if self.shared_rubrics is not None and isinstance(spec, str):
            await self.shared_rubrics.refresh_for(spec)

    # -- rubrics and judges -----------------------------------------------------------------

    def resolve(self, spec: RubricChoice, *, param: str = "rubric") -> RubricSpec:
        """The rubric a request names; resolved once, so the whole request is scored by one
        version even if a reload lands meanwhile. ``param`` names where the request said it."""
        if (problem := unencodable(spec, param)) is not None:
            raise InvalidRubric(problem, param=param)
        if not isinstance(spec, str):
            return self._inline(spec, param=param)
        try:
            return self.registry.resolve(spec)
        except RubricNotFoundError as exc:
            raise RubricNotFound(str(exc), param=param) from exc

    def _inline(self, data: Mapping[str, Any], *, param: str) -> RubricSpec:
        """A rubric sent with the request: client input, so bounded (``rubric_limits``)."""
        if (problem := definition_problem(data, self.settings)) is not None:
            raise InvalidRubric(problem, param=param)
        rubric = self._parse(data, source="inline rubric", param=param)
        if (problem := spec_problem(rubric, self.settings)) is not None:
            raise InvalidRubric(problem, param=param)
        return rubric

    def _rubric_label(self, name: str, version: str) -> str:
        """A rubric's metric label: its name when the registry holds that version (an inline
        copy of it included), else "inline"."""
        known = name in self.registry.current and version in self.registry.history(name)
        return name if known else "inline"

    @staticmethod
    def _parse(data: Mapping[str, Any], *, source: str, param: str) -> RubricSpec:
        try:
            return parse_rubric(dict(data), source=source)
        except RubricError as exc:
            raise InvalidRubric(str(exc), param=param) from exc

    def judge_for(self, rubric: RubricSpec) -> Judge:
        """The judge of a resolved rubric, with its components and reward model in place."""
        try:
            return judge_for(
                rubric, self.registry.resolve, reward_models=self.reward_models, checks=self.checks
            )
        except RubricNotFoundError as exc:
            raise InvalidRubric(f"a component of {rubric.name!r}: {exc}", param="rubric") from exc
        except JudgeFailure as exc:
            raise InvalidRubric(f"{rubric.name!r}: {exc}", param="rubric") from exc

    def judge(self, spec: RubricChoice) -> Judge:
        return self.judge_for(self.resolve(spec))

    def model_id(self, judge: Judge) -> str:
        """The model a judge's rewards come from (a reward model rubric's own model)."""
        model = judge.reward_model
        return self.engine.model_id if model is None else model.model_id

    def check_definition(self, name: str, definition: Mapping[str, Any]) -> RubricSpec:
        """Validate a rubric submitted under ``name``, including that it can be built here
        (a composite's components and a reward_model rubric's model exist)."""
        if (problem := unencodable(definition, "rubric")) is not None:
            raise InvalidRubric(problem, param="rubric")
        body_name = definition.get("name", name)
        if body_name != name:
            raise InvalidRubric(f"body name {body_name!r} != path name {name!r}", param="name")
        rubric = self._parse(
            {**definition, "name": name}, source=f"rubric {name!r}", param="rubric"
        )
        try:
            self.judge_for(rubric)
        except InvalidRubric as exc:  # in a definition, what does not resolve are its parts
            raise InvalidRubric(exc.message, param="components") from exc
        return rubric

    async def save_rubric(self, rubric: RubricSpec, by: str | None = None) -> bool:
        """Persist and make live; True when the name is new. ``by``: the writer's key id.
        With a shared store it goes there (every replica serves it), else into the directory."""
        with self._writable_rubrics():
            if self.shared_rubrics is not None:
                return await self.shared_rubrics.put(rubric, by)
            return self.registry.save(
                rubric, self.settings.rubrics_dir, by, max_names=self.settings.max_rubrics
            )

    async def delete_rubric(self, name: str, by: str | None = None) -> RubricSpec:
        try:
            with self._writable_rubrics():
                if self.shared_rubrics is not None:
                    return await self.shared_rubrics.delete(name, by)
                return self.registry.delete(name, self.settings.rubrics_dir, by)
        except RubricNotFoundError as exc:
            raise RubricNotFound(str(exc), param="name") from exc

    @contextmanager
    def _writable_rubrics(self) -> Iterator[None]:
        """A directory the server may not write (a ConfigMap mount) refuses the change; the
        registry writes before it swaps, so the live version is untouched. So is an unreachable
        shared store: the change is refused with the reason."""
        try:
            yield
        except RegistryFull as exc:
            raise TooManyRubrics(
                f"{exc} (JUDGE_MAX_RUBRICS; a deleted name still counts, its versions stay "
                "pinnable): raise the limit to add more",
                param="name",
            ) from exc
        except RubricStoreError as exc:
            raise RubricStoreUnavailable(
                f"{exc}; nothing was changed, retry when it is back (scoring goes on with the "
                "versions this replica holds)",
                param="name",
            ) from exc
        except OSError as exc:
            if exc.errno not in READ_ONLY_ERRNOS:
                raise
            raise RubricsReadOnly(
                f"the rubrics directory {self.settings.rubrics_dir} cannot be written "
                f"({exc.strerror}): change the rubrics where they are mounted from",
                param="name",
            ) from exc

    # -- scoring ----------------------------------------------------------------------------

    def check_size(
        self, n: int, *, noun: str = "items", param: str = "items", hint: str = ""
    ) -> None:
        limit = self.settings.max_items_per_request
        if n > limit:
            raise TooManyItems(f"{n} {noun}; at most {limit} per request{hint}", param=param)

    def check_calls(
        self,
        judge: Judge,
        n_items: int,
        *,
        items: Sequence[JudgeItem] = (),
        param: str = "items",
        hint: str = "",
    ) -> int:
        """The engine calls ``n_items`` items of ``judge`` cost at most (``items``, when given,
        one by one: their criteria may differ); ``TooMuchWork`` past the per-request bound."""
        per_item = [engine_calls(judge, item) for item in items] or [engine_calls(judge)]
        calls = sum(per_item) if items else per_item[0] * n_items
        limit = self.settings.max_engine_calls_per_request
        if calls > limit:
            each = f"{per_item[0]}" if len(set(per_item)) == 1 else f"up to {max(per_item)}"
            raise TooMuchWork(
                f"{calls} engine calls ({n_items} x {each} per item for rubric "
                f"{judge.rubric.name!r}); at most {limit} per request "
                f"(JUDGE_MAX_ENGINE_CALLS_PER_REQUEST){hint or ': send fewer items'}",
                param=param,
            )
        return calls

    def checked(self, items: Sequence[ScoreInput]) -> list[ScoreInput]:
        """The items, those no rubric can judge (text that is not valid Unicode or is too
        long, more instance criteria than JUDGE_MAX_INLINE_CRITERIA) turned into their
        ``invalid_input`` refusal before any work."""
        return [
            Rejected(item.id, problem)
            if isinstance(item, JudgeItem) and (problem := self._item_problem(item))
            else item
            for item in items
        ]

    def _item_problem(self, item: JudgeItem) -> str | None:
        limit = self.settings.max_inline_criteria
        if item.criteria is not None and len(item.criteria) > limit:
            return (
                f"rubrics has {len(item.criteria)} criteria; at most {limit} per item "
                "(JUDGE_MAX_INLINE_CRITERIA): each is an engine call"
            )
        return item_problem(item, self.settings.max_text_chars)

    @contextmanager
    def admitted(self, n: int, calls: int) -> Iterator[None]:
        """Hold ``n`` items costing ``calls`` engine calls of the in-flight bound for the
        duration (refused whole when full)."""
        try:
            with self.admission.admit(n, calls):
                self._queue_gauges()
                yield
        except QueueFullError as exc:
            self.metrics.rejected.inc()
            raise Overloaded(str(exc)) from exc
        finally:
            self._queue_gauges()

    def _queue_gauges(self) -> None:
        self.metrics.queue_items.set(self.admission.in_flight)
        self.metrics.queue_engine_calls.set(self.admission.calls_in_flight)

    async def score(
        self,
        judge: Judge,
        items: Sequence[ScoreInput],
        *,
        timeout_s: float | None = None,
        use_cache: bool = True,
    ) -> list[ItemResult]:
        """One result per item, in order, each with a status; never raises for one item (a
        ``Rejected`` item, refused before judging, gets ``invalid_input``, as does one whose
        images cannot be judged)."""
        self.check_size(len(items))
        refusal = text_only(judge, self.engine, self.model_id(judge))
        items = await image_checked(self.checked(items), self.settings, refusal)
        judged = [item for item in items if isinstance(item, JudgeItem)]
        calls = self.check_calls(judge, len(judged), items=judged)
        with self.admitted(len(items), calls):
            timeout_s = timeout_s or self.settings.default_timeout_s
            return await self.scorer.score(judge, items, timeout_s=timeout_s, use_cache=use_cache)
