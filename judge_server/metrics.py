"""Prometheus metrics, all prefixed ``judge_``. One registry per app so tests can build many.

Every label takes a bounded set of values: a rubric label is a rubric the server holds, or
"inline" for every rubric a client sent with its request (``rubric_label``), so clients cannot
grow the series without bound.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
INLINE_RUBRIC = "inline"


def _inline_only(name: str, version: str) -> str:
    return INLINE_RUBRIC


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rubric_label: Callable[[str, str], str] = _inline_only
        """(name, version) -> the rubric label; the service sets one that knows its rubrics."""
        r = self.registry
        self._observed: dict[str, Collector] = {}
        self._rubric_store_up: Gauge | None = None
        self.requests = Counter(
            "judge_requests",
            "HTTP requests by route and status code",
            ["route", "code"],
            registry=r,
        )
        self.request_latency = Histogram(
            "judge_request_latency_seconds",
            "HTTP request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "judge_items",
            "Scored items by rubric, mode and result status",
            ["rubric", "mode", "status"],
            registry=r,
        )
        self.item_latency = Histogram(
            "judge_item_latency_seconds",
            "Time to judge one item",
            ["mode"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "judge_cache_hits", "Items answered from the result cache", registry=r
        )
        self.queue_items = Gauge(
            "judge_queue_items", "Items admitted and not yet answered", registry=r
        )
        self.queue_engine_calls = Gauge(
            "judge_queue_engine_calls",
            "Engine calls admitted and not yet answered (the bound of admission)",
            registry=r,
        )
        self.rejected = Counter(
            "judge_rejected_requests",
            "Requests refused with 429 because the engine-call queue was full",
            registry=r,
        )
        self.errors = Counter(
            "judge_errors",
            "Errors by type (error envelopes and failed items)",
            ["type"],
            registry=r,
        )
        self.trainer_failures = Counter(
            "judge_trainer_failures",
            "Failed items on a trainer route, by dialect, status and what the trainer got "
            "(fill: the fill value, flagged; error: an HTTP error)",
            ["dialect", "status", "action"],
            registry=r,
        )
        self.engine_prompt_tokens = Gauge(
            "judge_engine_prompt_tokens", "Prompt tokens sent to the engine", registry=r
        )
        self.engine_cached_tokens = Gauge(
            "judge_engine_cached_prompt_tokens",
            "Prompt tokens served from the engine's prefix cache",
            registry=r,
        )
        self.engine_requests = Gauge(
            "judge_engine_requests", "Requests sent to the engine", registry=r
        )
        self.rubrics_loaded = Gauge(
            "judge_rubrics_loaded", "Rubrics in the live snapshot", registry=r
        )
        self.rubric_reloads = Counter(
            "judge_rubric_reloads",
            "Rubric directory reloads that changed the snapshot",
            registry=r,
        )
        self.rubric_reload_errors = Counter(
            "judge_rubric_reload_errors",
            "Rubric files refused on reload (last good kept)",
            ["rubric"],
            registry=r,
        )
        self.ready = Gauge(
            "judge_ready", "1 when the engine is up and rubrics are loaded", registry=r
        )

    def observe(self, name: str, collector: Collector) -> None:
        """Read ``collector`` at every scrape, in place of the one observed under ``name``
        before (a service rebuilt for the same app registers its parts again)."""
        old = self._observed.pop(name, None)
        if old is not None:
            self.registry.unregister(old)
        self.registry.register(collector)
        self._observed[name] = collector

    def rubric_store_up(self) -> Gauge:
        """``judge_rubric_store_up``: exported only once a shared rubric store is configured,
        so a server without one shows no alarming 0."""
        if self._rubric_store_up is None:
            self._rubric_store_up = Gauge(
                "judge_rubric_store_up",
                "1 when the last sync with the shared rubric store succeeded; 0: serving the "
                "last known versions from memory",
                registry=self.registry,
            )
        return self._rubric_store_up

    def render(self) -> bytes:
        return generate_latest(self.registry)
