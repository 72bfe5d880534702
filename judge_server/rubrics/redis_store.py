"""The rubric store on Redis: every change is one Lua script, so it is atomic on the server and
two replicas writing (or seeding) at once never interleave.

Keys (one hash tag, so a Redis Cluster keeps them in one slot and the scripts stay legal):

- ``{judge-rubrics}:gen``: counter bumped by every change; replicas poll it.
- ``{judge-rubrics}:epoch``: random, set (NX) by the first write after the store was empty, so
  a store that lost its data and counted back up is not mistaken for the one it replaced.
- ``{judge-rubrics}:live``: hash name -> live version ("" once deleted).
- ``{judge-rubrics}:seeded``: hash name -> the directory version last seeded.
- ``{judge-rubrics}:body:<name>``: hash version -> definition JSON.
- ``{judge-rubrics}:order:<name>``: sorted set version -> generation it was last made live;
  beyond ``keep`` the oldest versions and their bodies are dropped (never the live one, which
  is always the newest).
- ``{judge-rubrics}:log:<name>``: list of change JSON, trimmed to ``keep``.

Nothing here has a TTL: with the result cache in the same Redis, evict with
``volatile-lru`` (cache entries expire; these never), not ``allkeys-lru``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable
from typing import Any, TypeVar

from judge_server.rubrics.registry import RubricChange, TooManyRubrics
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.store import (
    RubricStore,
    RubricStoreError,
    StoredVersion,
    StoreState,
    change_json,
    rubric_body,
)

T = TypeVar("T")

PREFIX = "{judge-rubrics}:"
TIMEOUT_S = 2.0
CALL_TIMEOUT_S = 3 * TIMEOUT_S
"""The most one store operation may take (connect and reply, several commands for a read)."""

# KEYS: gen, live, body, order, log, seeded, epoch.
# ARGV: name, version, body, change, keep, seed, epoch, max names (0: no cap).
# Returns 2 (name new), 1 (replaced), 0 (that version was live), -1 (seed already done),
# -2 (a new name past the cap).
_PUT = """
local name, version = ARGV[1], ARGV[2]
local keep = tonumber(ARGV[5])
redis.call('SET', KEYS[7], ARGV[7], 'NX')
if ARGV[6] == '1' then
  if redis.call('HGET', KEYS[6], name) == version then return -1 end
  redis.call('HSET', KEYS[6], name, version)
end
local live = redis.call('HGET', KEYS[2], name)
if live == version then return 0 end
local cap = tonumber(ARGV[8])
if live == false and cap > 0 and redis.call('HLEN', KEYS[2]) >= cap then return -2 end
local gen = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[3], version, ARGV[3])
redis.call('ZADD', KEYS[4], gen, version)
redis.call('HSET', KEYS[2], name, version)
redis.call('RPUSH', KEYS[5], ARGV[4])
redis.call('LTRIM', KEYS[5], -keep, -1)
local extra = redis.call('ZCARD', KEYS[4]) - keep
if extra > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[4], 0, extra - 1)) do
    redis.call('HDEL', KEYS[3], old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, extra - 1)
end
if live == false or live == '' then return 2 end
return 1
"""

# KEYS: gen, live, log. ARGV: name, change, keep. Returns the version deleted ("": not live);
# the log entry records that version, not the one the caller saw.
_DELETE = """
local live = redis.call('HGET', KEYS[2], ARGV[1])
if live == false or live == '' then return '' end
redis.call('HSET', KEYS[2], ARGV[1], '')
redis.call('INCR', KEYS[1])
local change = cjson.decode(ARGV[2])
change['version'] = live
redis.call('RPUSH', KEYS[3], cjson.encode(change))
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
return live
"""


def _key(part: str, name: str = "") -> str:
    return f"{PREFIX}{part}:{name}" if name else f"{PREFIX}{part}"


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisRubricStore(RubricStore):
    def __init__(self, client: Any, keep: int, *, owns_client: bool = True) -> None:
        import redis.exceptions

        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.keep = keep
        self._client = client
        self._owns_client = owns_client
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        self._put = client.register_script(_PUT)
        self._delete = client.register_script(_DELETE)

    async def _call(self, call: Awaitable[T], failed: str) -> T:
        """One store operation, bounded in time; never retried (see ``open_store``)."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT_S):
                return await call
        except TimeoutError as exc:
            raise RubricStoreError(
                f"rubric store (redis) {failed}: no answer in {CALL_TIMEOUT_S:g} s"
            ) from exc
        except self._errors as exc:
            raise RubricStoreError(f"rubric store (redis) {failed}: {exc}") from exc

    async def _write(self, rubric: RubricSpec, change: RubricChange, seed: bool, cap: int) -> int:
        name = rubric.name
        keys = [
            _key("gen"), _key("live"), _key("body", name), _key("order", name),
            _key("log", name), _key("seeded"), _key("epoch"),
        ]  # fmt: skip
        body = json.dumps(rubric_body(rubric), separators=(",", ":"))
        args = [
            name, rubric.version, body, change_json(change), self.keep, "1" if seed else "0",
            secrets.token_hex(8), cap,
        ]  # fmt: skip
        return int(await self._call(self._put(keys=keys, args=args), "write failed"))

    async def seed(self, rubric: RubricSpec, at: float) -> bool:
        # the rubrics directory is the operator's: never capped
        return await self._write(rubric, RubricChange(at, rubric.version, "seed"), True, 0) > 0

    async def put(
        self, rubric: RubricSpec, change: RubricChange, max_names: int = 0
    ) -> bool | None:
        outcome = await self._write(rubric, change, False, max_names)
        if outcome == -2:
            raise TooManyRubrics(f"the rubric store holds {max_names} rubric names already")
        return None if outcome == 0 else outcome == 2

    async def delete(self, name: str, change: RubricChange) -> str | None:
        keys = [_key("gen"), _key("live"), _key("log", name)]
        args = [name, change_json(change), self.keep]
        removed = await self._call(self._delete(keys=keys, args=args), "write failed")
        return _text(removed) or None

    async def generation(self) -> tuple[str, int] | None:
        epoch, gen = await self._call(self._client.mget(_key("epoch"), _key("gen")), "unreachable")
        return None if epoch is None or gen is None else (_text(epoch), int(gen))

    async def state(self) -> StoreState:
        """Two transactions: the generation and live set, then every name's versions and log.
        A change landing between them moves the generation, so the next poll reads again."""
        head = self._client.pipeline(transaction=True)
        head.get(_key("gen"))
        head.get(_key("epoch"))
        head.hgetall(_key("live"))
        gen, epoch, raw_live = await self._call(head.execute(), "unreachable")
        live = {_text(k): _text(v) for k, v in raw_live.items()}
        names = sorted(live)
        reads = self._client.pipeline(transaction=True)
        for name in names:
            reads.zrange(_key("order", name), 0, -1)
            reads.hgetall(_key("body", name))
            reads.lrange(_key("log", name), 0, -1)
        replies = await self._call(reads.execute(), "unreachable")
        state = StoreState(generation=int(gen or 0), epoch=_text(epoch or b""))
        for i, name in enumerate(names):
            order, bodies, log = replies[3 * i : 3 * i + 3]
            bodies = {_text(k): v for k, v in bodies.items()}
            # bodies and log entries stay JSON text here: rubrics/shared.py decodes them in a
            # thread, and only the versions it has not parsed before
            state.versions[name] = [
                StoredVersion(_text(v), bodies[_text(v)]) for v in order if _text(v) in bodies
            ]
            state.changes[name] = list(log)
            if live[name]:  # "" once deleted
                state.live[name] = live[name]
        return state

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def open_store(url: str, keep: int) -> RedisRubricStore:
    try:
        import redis.asyncio
    except ImportError as exc:
        raise RubricStoreError(
            "JUDGE_RUBRIC_STORE on Redis needs the redis package: pip install 'judge-server[redis]'"
        ) from exc
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # Short timeouts: an unreachable store must fail a PUT (503) fast, never hang it. No
    # retries: redis-py's default resends a command after a dropped connection, and the write
    # scripts are not idempotent (a resent DELETE that had landed would answer 404).
    client = redis.asyncio.Redis.from_url(
        url,
        socket_timeout=TIMEOUT_S,
        socket_connect_timeout=TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )
    return RedisRubricStore(client, keep)
