"""Versioned rubric registry.

The registry holds an immutable snapshot (name -> RubricSpec) that is replaced whole, never edited:
a request resolves its rubric once and keeps that object, so it finishes on the version it
started with even if a reload lands meanwhile. Old versions stay in a bounded history so that
``name@version`` pins keep resolving after an edit.

Which spec class validates a file depends on its mode, and the modes live in the judges layer
(above this one): the registry is handed a ``RubricParser`` rather than importing one.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml

from judge_server.rubrics.spec import RubricError, RubricParser, RubricSpec

log = logging.getLogger(__name__)

DEFAULT_HISTORY = 32
RUBRIC_SUFFIXES = (".yaml", ".yml")


class RubricNotFoundError(LookupError):
    def __init__(self, ref: str, known: Iterable[str]) -> None:
        names = ", ".join(sorted(known)) or "none loaded"
        super().__init__(f"unknown rubric {ref!r} (available: {names})")
        self.ref = ref


class TooManyRubrics(Exception):
    """A new rubric name past the cap (``JUDGE_MAX_RUBRICS``): nothing was changed."""


ChangeAction = str
""""load", "seed", "put" or "delete"; a plain str, since a store shared with a newer release
may hold actions this one does not know (they are shown as they are)."""


@dataclass(frozen=True)
class RubricChange:
    """One entry of a rubric's change log: when, which version (its content hash), what
    happened, and who did it by key id (never the key itself; None for a directory load)."""

    at: float
    version: str
    action: ChangeAction
    by: str | None = None


@dataclass(frozen=True)
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """File path -> why it was refused (the last good version of that rubric keeps serving)."""


def read_rubric_file(path: Path, parse: RubricParser) -> RubricSpec:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RubricError(f"{path.name}: cannot read YAML: {exc}") from exc
    if isinstance(data, dict) and "name" not in data:
        data = {"name": path.stem, **data}
    rubric = parse(data, source=path.name)
    if rubric.name != path.stem:
        raise RubricError(f"{path.name}: name {rubric.name!r} must match the file name")
    return rubric


class _BlockStyleDumper(yaml.SafeDumper):
    """Multi-line strings (templates) as YAML block literals, so saved files stay readable."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockStyleDumper.add_representer(str, _str_representer)


def rubric_yaml(rubric: RubricSpec) -> str:
    """The rubric as its file holds it: defaults left out, name first, templates as blocks."""
    data = {"name": rubric.name, **rubric.model_dump(mode="json", exclude_defaults=True)}
    return yaml.dump(data, Dumper=_BlockStyleDumper, sort_keys=False, allow_unicode=True)


def write_rubric_file(directory: Path, rubric: RubricSpec) -> Path:
    """Write atomically (temp file + rename): a watcher never reads a half-written rubric."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{rubric.name}.yaml"
    text = rubric_yaml(rubric)
    fd, tmp = tempfile.mkstemp(prefix=f".{rubric.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for other in RUBRIC_SUFFIXES:  # a stale name.yml would shadow or duplicate name.yaml
        if other != path.suffix:
            (directory / f"{rubric.name}{other}").unlink(missing_ok=True)
    return path


class RubricRegistry:
    def __init__(self, parse: RubricParser, history_size: int = DEFAULT_HISTORY) -> None:
        self.parse = parse
        self._lock = threading.RLock()
        self._current: Mapping[str, RubricSpec] = MappingProxyType({})
        self._history: dict[str, OrderedDict[str, RubricSpec]] = {}
        self._changes: dict[str, list[RubricChange]] = {}
        self.history_size = history_size

    @property
    def current(self) -> Mapping[str, RubricSpec]:
        """The live snapshot: an immutable mapping, replaced whole on every change."""
        return self._current

    def resolve(self, ref: str) -> RubricSpec:
        """``name`` (the live version) or ``name@version`` (a pinned, possibly older version)."""
        name, _, version = ref.partition("@")
        if not version:
            rubric = self._current.get(name)
            if rubric is None:
                raise RubricNotFoundError(ref, self._current)
            return rubric
        versions = self._history.get(name)
        pinned = versions.get(version) if versions is not None else None
        if pinned is None:
            raise RubricNotFoundError(ref, self._current)
        return pinned

    def history_version(self, name: str, version: str) -> RubricSpec | None:
        versions = self._history.get(name)
        return None if versions is None else versions.get(version)

    def names(self) -> int:
        """How many rubric names this registry knows: live ones and deleted ones whose
        versions can still be pinned (what ``JUDGE_MAX_RUBRICS`` caps)."""
        return len(self._history.keys() | self._current.keys())

    def history(self, name: str) -> list[str]:
        """Known versions of ``name``, oldest first."""
        return list(self._history.get(name, {}))

    def changes(self, name: str) -> list[RubricChange]:
        """The change log of ``name``, oldest first (at most ``history_size`` entries)."""
        return list(self._changes.get(name, ()))

    def replace_all(self, rubrics: Iterable[RubricSpec]) -> None:
        with self._lock:
            self._swap({r.name: r for r in rubrics})

    def adopt(
        self,
        current: Mapping[str, RubricSpec],
        history: Mapping[str, Iterable[RubricSpec]],
        changes: Mapping[str, Iterable[RubricChange]],
    ) -> None:
        """Take a shared store's state whole (``rubrics/shared.py``): the live snapshot, the
        versions each name can still be pinned to, and the change logs."""
        with self._lock:
            self._history = {
                name: OrderedDict((r.version, r) for r in specs) for name, specs in history.items()
            }
            for rubric in current.values():
                self._remember(rubric)
            self._changes = {name: list(log)[-self.history_size :] for name, log in changes.items()}
            self._current = MappingProxyType(dict(current))

    def _swap(
        self, new: dict[str, RubricSpec], action: ChangeAction = "load", by: str | None = None
    ) -> None:
        now = time.time()
        for rubric in new.values():
            self._remember(rubric)
            old = self._current.get(rubric.name)
            if old is None or old.version != rubric.version:
                self._log(rubric.name, RubricChange(now, rubric.version, action, by))
        for name, old in self._current.items():
            if name not in new:
                self._log(name, RubricChange(now, old.version, "delete", by))
        self._current = MappingProxyType(new)

    def _log(self, name: str, change: RubricChange) -> None:
        log = self._changes.setdefault(name, [])
        log.append(change)
        del log[: -self.history_size]

    def save(
        self,
        rubric: RubricSpec,
        directory: Path | None,
        by: str | None = None,
        max_names: int = 0,
    ) -> bool:
        """Persist ``rubric`` (when a directory is given) and make it live. True if it is new.
        A name new to this registry past ``max_names`` (0: no cap) raises ``TooManyRubrics``.

        File write and swap happen under the registry lock, so a concurrent directory reload
        can never swap in a snapshot read before this write.
        """
        with self._lock:
            known = rubric.name in self._current or rubric.name in self._history
            if not known and max_names and self.names() >= max_names:
                raise TooManyRubrics(f"this server holds {max_names} rubric names already")
            if directory is not None:
                write_rubric_file(directory, rubric)
            created = rubric.name not in self._current
            self._swap({**self._current, rubric.name: rubric}, "put", by)
        return created

    def delete(self, name: str, directory: Path | None, by: str | None = None) -> RubricSpec:
        """Remove ``name`` from the live snapshot and its file; pinned versions still resolve."""
        with self._lock:
            rubric = self._current.get(name)
            if rubric is None:
                raise RubricNotFoundError(name, self._current)
            if directory is not None:
                for suffix in RUBRIC_SUFFIXES:
                    (directory / f"{name}{suffix}").unlink(missing_ok=True)
            self._swap({k: v for k, v in self._current.items() if k != name}, "delete", by)
        return rubric

    def _remember(self, rubric: RubricSpec) -> None:
        versions = self._history.setdefault(rubric.name, OrderedDict())
        versions[rubric.version] = rubric
        versions.move_to_end(rubric.version)
        while len(versions) > self.history_size:
            versions.popitem(last=False)

    def load_dir(self, directory: Path) -> LoadReport:
        """Validate every rubric file, then swap the snapshot once.

        A file that fails validation is reported and its rubric's last good version (if any)
        keeps serving; it never takes the other rubrics down with it.
        """
        with self._lock:
            return self._load_dir(directory)

    def _load_dir(self, directory: Path) -> LoadReport:
        report = LoadReport()
        if not directory.is_dir():
            report.errors[str(directory)] = "rubrics directory does not exist"
            log.error("rubrics directory %s does not exist", directory)
            return report
        fresh: dict[str, RubricSpec] = {}
        refused: set[str] = set()
        for path in sorted(
            p
            for p in directory.iterdir()
            if p.suffix in RUBRIC_SUFFIXES and not p.name.startswith(".")
        ):
            try:
                rubric = read_rubric_file(path, self.parse)
            except RubricError as exc:
                report.errors[str(path)] = str(exc)
                refused.add(path.stem)
                log.error("rubric refused: %s", exc)
                continue
            fresh[rubric.name] = rubric
            report.loaded.append(rubric.name)
        for name in refused:
            if name not in fresh and name in self._current:
                fresh[name] = self._current[name]
        if fresh != dict(self._current):
            self._swap(fresh)
        return report
