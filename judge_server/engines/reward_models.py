"""The scalar reward models a server hosts, by name (``--reward-model NAME=PATH``).

Started with the server, after the judge engine (one at a time: each is a vLLM engine of its
own); /ready waits for all of them. Rubrics in reward_model mode name one of them.
``judge_server.engines.factory.build_reward_models`` builds them from the settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping

from judge_server.engines.base import RewardModel

log = logging.getLogger(__name__)


class RewardModels(Mapping[str, RewardModel]):
    def __init__(self, models: Mapping[str, RewardModel] | None = None) -> None:
        self._models = dict(models or {})

    def __getitem__(self, name: str) -> RewardModel:
        return self._models[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    @property
    def ready(self) -> bool:
        return all(m.ready for m in self._models.values())

    def dead_reason(self) -> str | None:
        """The first dead model's reason, named; None while all serve (or none started)."""
        for name, model in self._models.items():
            reason = model.dead_reason()
            if reason is not None:
                return f"reward model {name!r}: {reason}"
        return None

    async def start(self) -> None:
        for name, model in self._models.items():
            if model.ready:
                continue
            started = time.monotonic()
            await model.start()
            log.info("reward model %r up in %.1f s", name, time.monotonic() - started)

    async def shutdown(self) -> None:
        for model in self._models.values():
            await model.shutdown()
