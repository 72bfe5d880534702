"""The rubric store on Redis: every change is one Lua script, so it is atomic on the server and
two replicas writing (or seeding) at once never interleave.

Keys (one hash tag, so a Redis Cluster keeps them in one slot and the scripts stay legal):

- ``{judge-rubrics}:gen``: counter bumped by every change; replicas poll it.
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

import json
from typing import Any

from judge_server.rubrics.registry import RubricChange
from judge_server.rubrics.spec import RubricSpec
from judge_server.rubrics.store import (
    RubricStore,
    RubricStoreError,
    StoredVersion,
    StoreState,
    change_from_json,
    change_json,
    rubric_body,
)

PREFIX = "{judge-rubrics}:"
TIMEOUT_S = 2.0

# KEYS: gen, live, body, order, log, seeded. ARGV: name, version, body, change, keep, seed.
# Returns 2 (name new), 1 (replaced), 0 (that version was live), -1 (seed already done).
_PUT = """
local name, version = ARGV[1], ARGV[2]
local keep = tonumber(ARGV[5])
if ARGV[6] == '1' then
  if redis.call('HGET', KEYS[6], name) == version then return -1 end
  redis.call('HSET', KEYS[6], name, version)
end
local live = redis.call('HGET', KEYS[2], name)
if live == version then return 0 end
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

# KEYS: gen, live, log. ARGV: name, change, keep. Returns 1 (deleted) or 0 (not live).
_DELETE = """
local live = redis.call('HGET', KEYS[2], ARGV[1])
if live == false or live == '' then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], '')
redis.call('INCR', KEYS[1])
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
return 1
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

    async def _write(self, rubric: RubricSpec, change: RubricChange, seed: bool) -> int:
        name = rubric.name
        keys = [
            _key("gen"), _key("live"), _key("body", name), _key("order", name),
            _key("log", name), _key("seeded"),
        ]  # fmt: skip
        body = json.dumps(rubric_body(rubric), separators=(",", ":"))
        args = [name, rubric.version, body, change_json(change), self.keep, "1" if seed else "0"]
        try:
            return int(await self._put(keys=keys, args=args))
        except self._errors as exc:
            raise RubricStoreError(f"rubric store (redis) write failed: {exc}") from exc

    async def seed(self, rubric: RubricSpec, at: float) -> bool:
        return await self._write(rubric, RubricChange(at, rubric.version, "seed"), True) > 0

    async def put(self, rubric: RubricSpec, change: RubricChange) -> bool | None:
        outcome = await self._write(rubric, change, False)
        return None if outcome == 0 else outcome == 2

    async def delete(self, name: str, change: RubricChange) -> bool:
        keys = [_key("gen"), _key("live"), _key("log", name)]
        try:
            return bool(await self._delete(keys=keys, args=[name, change_json(change), self.keep]))
        except self._errors as exc:
            raise RubricStoreError(f"rubric store (redis) write failed: {exc}") from exc

    async def generation(self) -> int | None:
        try:
            value = await self._client.get(_key("gen"))
        except self._errors as exc:
            raise RubricStoreError(f"rubric store (redis) unreachable: {exc}") from exc
        return None if value is None else int(value)

    async def state(self) -> StoreState:
        """Two transactions: the generation and live set, then every name's versions and log.
        A change landing between them moves the generation, so the next poll reads again."""
        try:
            head = self._client.pipeline(transaction=True)
            head.get(_key("gen"))
            head.hgetall(_key("live"))
            gen, raw_live = await head.execute()
            live = {_text(k): _text(v) for k, v in raw_live.items()}
            names = sorted(live)
            reads = self._client.pipeline(transaction=True)
            for name in names:
                reads.zrange(_key("order", name), 0, -1)
                reads.hgetall(_key("body", name))
                reads.lrange(_key("log", name), 0, -1)
            replies = await reads.execute()
        except self._errors as exc:
            raise RubricStoreError(f"rubric store (redis) unreachable: {exc}") from exc
        state = StoreState(generation=int(gen or 0))
        for i, name in enumerate(names):
            order, bodies, log = replies[3 * i : 3 * i + 3]
            bodies = {_text(k): v for k, v in bodies.items()}
            state.versions[name] = [
                StoredVersion(_text(v), json.loads(bodies[_text(v)]))
                for v in order
                if _text(v) in bodies
            ]
            state.changes[name] = [change_from_json(entry) for entry in log]
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
    # Short timeouts: an unreachable store must fail a PUT (503) fast, never hang it.
    client = redis.asyncio.Redis.from_url(
        url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S
    )
    return RedisRubricStore(client, keep)
