"""Results stored under the identity of the models that computed them.

``cache_key`` covers what a request decides (rubric, mode, inputs) and the model's name; the
models' content identity (``model_revision``: a hash of their files) is known only once the
engines have started, after the cache is built. ``ScopedCache`` asks for it at every call and
stores each result under ``sha256(scope digest, key)``: weights changed in place under the same
path give other keys, so a result computed by other weights is never replayed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping

from judge_server.cache.base import CachedResult, ResultCache

Scope = Callable[[], Mapping[str, object]]
"""What the results depend on beyond their key, e.g. ``{"judge": "sha256:..."}`` (JSON values)."""


class ScopedCache(ResultCache):
    """Every key of ``inner`` is scoped; the counters are ``inner``'s own."""

    def __init__(self, inner: ResultCache, scope: Scope) -> None:
        super().__init__()
        self.inner = inner
        self.stats = inner.stats
        self.tier = inner.tier
        self._scope = scope
        self._last: dict[str, object] | None = None
        self._digest = b""

    def current_scope(self) -> dict[str, object]:
        return dict(self._scope())

    def scoped(self, key: str) -> str:
        scope = self.current_scope()
        if scope != self._last:  # the scope changes once (at start), so hash it once
            canonical = json.dumps(scope, sort_keys=True, separators=(",", ":"))
            self._digest = hashlib.sha256(canonical.encode("utf-8")).digest()
            self._last = scope
        return hashlib.sha256(self._digest + key.encode("utf-8")).hexdigest()

    async def get(self, key: str) -> CachedResult | None:
        return await self.inner.get(self.scoped(key))

    async def put(self, key: str, value: CachedResult) -> None:
        await self.inner.put(self.scoped(key), value)

    def entries(self) -> int | None:
        return self.inner.entries()

    def layers(self) -> list[ResultCache]:
        return self.inner.layers()

    async def close(self) -> None:
        await self.inner.close()
