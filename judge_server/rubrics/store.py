"""Where rubric versions live when several replicas share them (``JUDGE_RUBRIC_STORE``).

A store keeps, per rubric name, the live version, the bodies of the versions that can still be
pinned (at most ``keep`` per name, the live one always among them) and a bounded change log. It
is the truth; each replica's ``RubricRegistry`` is a copy kept in step by ``rubrics/shared.py``.
A store is one module implementing ``RubricStore`` plus one line in ``STORES`` (URL scheme ->
module), imported only when configured, so its client library stays optional.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from judge_server.rubrics.registry import RubricChange
from judge_server.rubrics.spec import RubricSpec

#: URL scheme -> module whose ``open_store(url, keep)`` builds the store.
STORES: dict[str, str] = {
    "redis": "judge_server.rubrics.redis_store",
    "rediss": "judge_server.rubrics.redis_store",
    "unix": "judge_server.rubrics.redis_store",
}


class RubricStoreError(Exception):
    """The store cannot be reached or refused the operation; nothing was changed locally."""


@dataclass(frozen=True)
class StoredVersion:
    version: str
    body: str | bytes
    """The definition as ``rubric_body`` wrote it, JSON-encoded: decoded (off the event loop,
    and only when not parsed before) by ``rubrics/shared.py``; parsing it gives ``version``."""


@dataclass
class StoreState:
    """Everything a replica needs to serve: read at one generation."""

    generation: int
    epoch: str = ""
    """Random, written once when the store is first seeded: a store that lost its data and was
    seeded again has a new epoch, so an equal generation does not pass for the same state."""
    live: dict[str, str] = field(default_factory=dict)
    """name -> live version (a deleted name is absent; its old versions stay pinnable)."""
    versions: dict[str, list[StoredVersion]] = field(default_factory=dict)
    """name -> the versions kept, oldest first."""
    changes: dict[str, list[str | bytes]] = field(default_factory=dict)
    """name -> change log entries as ``change_json`` wrote them (decoded with the bodies)."""


def rubric_body(rubric: RubricSpec) -> dict[str, Any]:
    """The definition as its file would hold it (defaults left out): parses back to itself."""
    return {"name": rubric.name, **rubric.model_dump(mode="json", exclude_defaults=True)}


def change_json(change: RubricChange) -> str:
    return json.dumps(
        {"at": change.at, "version": change.version, "action": change.action, "by": change.by},
        separators=(",", ":"),
    )


def change_from_json(text: str | bytes) -> RubricChange:
    """Raises ValueError (or one of its kinds) on an entry it cannot read."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"a change entry must be an object, got {type(data).__name__}")
    try:
        return RubricChange(
            at=float(data["at"]),
            version=str(data["version"]),
            action=str(data["action"]),
            by=None if data.get("by") is None else str(data["by"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"a change entry lacks {exc}") from exc


class RubricStore(ABC):
    """The operations are atomic in the store: two replicas writing at once never interleave."""

    @abstractmethod
    async def seed(self, rubric: RubricSpec, at: float) -> bool:
        """Offer a version read from the rubrics directory. It becomes live only if this
        directory version was never seeded before (so restarts never undo a PUT, and two
        replicas starting at once seed it once); True when it did."""

    @abstractmethod
    async def put(
        self, rubric: RubricSpec, change: RubricChange, max_names: int = 0
    ) -> bool | None:
        """Make ``rubric`` live. True when the name was new (or deleted), False when it
        replaced another version, None when that version was live already (no change).
        A new name when the store knows ``max_names`` raises ``registry.TooManyRubrics``."""

    @abstractmethod
    async def delete(self, name: str, change: RubricChange) -> str | None:
        """Take ``name`` out of the live set (its versions stay pinnable): the version that
        was live (``change.version`` is replaced by it in the log), None if none was."""

    @abstractmethod
    async def generation(self) -> tuple[str, int] | None:
        """(epoch, counter): the counter moves with every change, the epoch with every loss of
        the store's data; a replica reloads when either moves. None: the store is empty
        (never seeded, or its data was lost)."""

    @abstractmethod
    async def state(self) -> StoreState: ...

    @abstractmethod
    async def close(self) -> None: ...


def open_store(url: str, keep: int) -> RubricStore:
    scheme = urlsplit(url).scheme
    module = STORES.get(scheme)
    if module is None:
        raise ValueError(
            f"JUDGE_RUBRIC_STORE: no rubric store for {scheme or 'a URL without scheme'!r} "
            f"(known: {', '.join(sorted(STORES))})"
        )
    store: RubricStore = importlib.import_module(module).open_store(url, keep)
    return store
