"""What /metrics reads at scrape time from the parts the service owns: the result cache's tiers,
the in-flight dedup, and which models (by content revision) the rewards come from.

Collectors read the parts' own counters when Prometheus scrapes, so the hot path keeps plain
integer increments and nothing has to mirror them into metric objects.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from judge_server.cache import InFlight, ResultCache
from judge_server.engines.base import JudgeEngine
from judge_server.engines.reward_models import RewardModels


class CacheCollector(Collector):
    """``judge_cache_*`` by tier (memory, sqlite, redis; ``all`` for the cache as a whole when
    it has several tiers) and ``judge_inflight_*``."""

    def __init__(self, cache: ResultCache | None, inflight: InFlight) -> None:
        self.cache = cache
        self.inflight = inflight

    def collect(self) -> Iterator[Metric]:
        if self.cache is not None:
            yield from self._cache(self.cache)
        stats = self.inflight.stats
        yield CounterMetricFamily(
            "judge_inflight_started",
            "Judge computations started (calls not answered by one already running)",
            value=stats.started,
        )
        yield CounterMetricFamily(
            "judge_inflight_joins",
            "Judge calls that joined an identical computation already running",
            value=stats.shared,
        )
        yield GaugeMetricFamily(
            "judge_inflight_running", "Judge computations running now", value=len(self.inflight)
        )

    @staticmethod
    def _cache(cache: ResultCache) -> Iterator[Metric]:
        layers = cache.layers()
        rows = [(layer.tier, layer) for layer in layers]
        if all(layer.stats is not cache.stats for layer in layers):
            rows.append(("all", cache))
        lookups = CounterMetricFamily(
            "judge_cache_lookups",
            "Result cache lookups by tier and result (a memory miss goes on to the backend)",
            labels=["tier", "result"],
        )
        evictions = CounterMetricFamily(
            "judge_cache_evictions", "Entries evicted to stay within max_entries", labels=["tier"]
        )
        expired = CounterMetricFamily(
            "judge_cache_expired", "Entries dropped because they outlived the TTL", labels=["tier"]
        )
        errors = CounterMetricFamily(
            "judge_cache_errors",
            "Backend failures and unreadable entries, each served as a miss",
            labels=["tier"],
        )
        entries = GaugeMetricFamily(
            "judge_cache_entries",
            "Results stored (redis: the shared index at this replica's last write)",
            labels=["tier"],
        )
        for tier, part in rows:
            lookups.add_metric([tier, "hit"], part.stats.hits)
            lookups.add_metric([tier, "miss"], part.stats.misses)
            errors.add_metric([tier], part.stats.errors)
            if tier == "all":
                continue
            evictions.add_metric([tier], part.stats.evictions)
            expired.add_metric([tier], part.stats.expired)
            count = part.entries()
            if count is not None:
                entries.add_metric([tier], count)
        yield from (lookups, evictions, expired, errors, entries)


class ModelCollector(Collector):
    """``judge_model_info``: the judge's and each reward model's id and content revision
    (``model_revision``; empty until the engine has started)."""

    def __init__(self, engine: JudgeEngine, reward_models: RewardModels) -> None:
        self.engine = engine
        self.reward_models = reward_models

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily(
            "judge_model",
            "The models rewards come from, by role, with their content revision",
            labels=["role", "name"],
        )
        info.add_metric(["judge", ""], _describe(self.engine.model_id, self.engine.model_revision))
        for name, model in self.reward_models.items():
            info.add_metric(["reward_model", name], _describe(model.model_id, model.model_revision))
        yield info


def _describe(model_id: str, revision: str | None) -> dict[str, str]:
    return {"model": model_id, "revision": revision or ""}
