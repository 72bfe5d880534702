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
    body: dict[str, Any]
    """The definition as ``rubric_body`` wrote it; parsing it must give back ``version``."""


@dataclass
class StoreState:
    """Everything a replica needs to serve: read at one generation."""

    generation: int
    live: dict[str, str] = field(default_factory=dict)
    """name -> live version (a deleted name is absent; its old versions stay pinnable)."""
    versions: dict[str, list[StoredVersion]] = field(default_factory=dict)
    """name -> the versions kept, oldest first."""
    changes: dict[str, list[RubricChange]] = field(default_factory=dict)


def rubric_body(rubric: RubricSpec) -> dict[str, Any]:
    """The definition as its file would hold it (defaults left out): parses back to itself."""
    return {"name": rubric.name, **rubric.model_dump(mode="json", exclude_defaults=True)}


def change_json(change: RubricChange) -> str:
    return json.dumps(
        {"at": change.at, "version": change.version, "action": change.action, "by": change.by},
        separators=(",", ":"),
    )


def change_from_json(text: str | bytes) -> RubricChange:
    data = json.loads(text)
    return RubricChange(
        at=float(data["at"]), version=str(data["version"]), action=data["action"], by=data["by"]
    )


class RubricStore(ABC):
    """The operations are atomic in the store: two replicas writing at once never interleave."""

    @abstractmethod
    async def seed(self, rubric: RubricSpec, at: float) -> bool:
        """Offer a version read from the rubrics directory. It becomes live only if this
        directory version was never seeded before (so restarts never undo a PUT, and two
        replicas starting at once seed it once); True when it did."""

    @abstractmethod
    async def put(self, rubric: RubricSpec, change: RubricChange) -> bool | None:
        """Make ``rubric`` live. True when the name was new (or deleted), False when it
        replaced another version, None when that version was live already (no change)."""

    @abstractmethod
    async def delete(self, name: str, change: RubricChange) -> bool:
        """Take ``name`` out of the live set (its versions stay pinnable); False if not live."""

    @abstractmethod
    async def generation(self) -> int | None:
        """A counter every change bumps: a replica reloads when it moves. None: the store is
        empty (never seeded, or its data was lost)."""

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
