"""Why the service refused a request, as domain errors.

The service raises these; each front door turns them into its own language in ONE place: the
HTTP API maps them to status codes and the error envelope (``api/errors.py``), the command line
to a message and an exit status. A failure of one item is never one of these: it is an item
status (``ItemResult``), so the other items of the request are unharmed.
"""

from __future__ import annotations

from typing import ClassVar

#: seconds a client should wait before retrying a refused request (busy or still starting)
RETRY_AFTER_S = 2


class ServiceError(Exception):
    """A refusal of the whole request. ``type`` is the stable machine-readable name."""

    type: ClassVar[str] = "service_error"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class RubricNotFound(ServiceError):
    """A named rubric (or pinned version) that the registry does not hold."""

    type = "rubric_not_found"


class InvalidRubric(ServiceError):
    """An inline or submitted rubric that does not validate, or whose parts do not resolve."""

    type = "invalid_rubric"


class TooManyItems(ServiceError):
    """More items (or group comparisons) than one request may carry."""

    type = "too_many_items"


class Overloaded(ServiceError):
    """Admitting the request would pass the bound on engine calls in flight; retry later."""

    type = "queue_full"


class NotReady(ServiceError):
    """The engine is still starting, or failed; the reason is the message."""

    type = "not_ready"


class Draining(NotReady):
    """The server is shutting down (SIGTERM): work in flight finishes, new work goes elsewhere."""

    type = "draining"


class RubricsReadOnly(ServiceError):
    """The rubrics directory cannot be written (a read-only mount such as a ConfigMap)."""

    type = "rubrics_read_only"


class TooManyRubrics(ServiceError):
    """A PUT of a new rubric name past ``max_rubrics`` (``JUDGE_MAX_RUBRICS``)."""

    type = "too_many_rubrics"


class RubricStoreUnavailable(ServiceError):
    """The shared rubric store cannot be reached: a rubric change is refused (nothing changed);
    scoring goes on with the versions this replica holds."""

    type = "rubric_store_unavailable"


class TooMuchWork(ServiceError):
    """A request whose engine calls (items x its rubric's calls per item) pass the bound."""

    type = "too_many_engine_calls"


class GenerationRefused(ServiceError):
    """A rubric-generation request this server cannot serve as asked (its prompt does not fit
    the judge model's context)."""

    type = "invalid_generation_request"


class GenerationFailed(ServiceError):
    """The judge model's generated rubric does not validate (cut off, not JSON, criteria the
    rubric loader refuses): the judge's failure, not the client's. Not retried here: generation
    runs at temperature 0, so the same request gives the same output."""

    type = "judge_error"


class GenerationTimedOut(ServiceError):
    """The judge model wrote no rubric within the request's deadline (``timeout_s``); as a
    scoring item past its deadline is ``timeout``."""

    type = "timeout"
