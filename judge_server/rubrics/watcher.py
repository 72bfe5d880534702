"""Reload the rubrics directory when its files change (editor saves, git pulls, PUTs).

A reload validates every file and swaps the snapshot once; an invalid edit is logged and counted,
and the last good version of that rubric keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from judge_server.metrics import Metrics
from judge_server.rubrics.registry import RUBRIC_SUFFIXES, RubricRegistry

log = logging.getLogger(__name__)

DEBOUNCE_MS = 150
STEP_MS = 50
RESTART_S = 5.0


def _is_rubric_file(_change: object, path: str) -> bool:
    p = Path(path)
    return p.suffix in RUBRIC_SUFFIXES and not p.name.startswith(".")


def reload(registry: RubricRegistry, directory: Path, metrics: Metrics | None) -> None:
    before = {name: r.version for name, r in registry.current.items()}
    report = registry.load_dir(directory)
    after = {name: r.version for name, r in registry.current.items()}
    for path, why in report.errors.items():
        log.error("rubric edit refused, last good version keeps serving: %s", why)
        if metrics is not None:
            metrics.rubric_reload_errors.labels(Path(path).stem).inc()
    changed = sorted(n for n in after.keys() | before.keys() if after.get(n) != before.get(n))
    if changed:
        log.info(
            "rubrics reloaded: %s", ", ".join(f"{n}@{after.get(n, 'deleted')}" for n in changed)
        )
        if metrics is not None:
            metrics.rubric_reloads.inc()


async def watch_rubrics(
    registry: RubricRegistry,
    directory: Path,
    metrics: Metrics | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until ``stop`` is set (or the task is cancelled)."""
    from watchfiles import awatch

    directory.mkdir(parents=True, exist_ok=True)
    async for _ in awatch(
        directory,
        watch_filter=_is_rubric_file,
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        stop_event=stop,
        recursive=False,
    ):
        reload(registry, directory, metrics)


async def keep_watching(
    registry: RubricRegistry,
    directory: Path,
    metrics: Metrics | None = None,
    stop: asyncio.Event | None = None,
    restart_s: float = RESTART_S,
) -> None:
    """``watch_rubrics``, restarted when it fails (an inotify limit, a directory it cannot
    create): the rubrics already loaded keep serving meanwhile, and a watcher failure never takes
    the server down with it."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await watch_rubrics(registry, directory, metrics, stop)
        except Exception:
            log.exception("rubric watcher failed; live reload restarts in %.0f s", restart_s)
            if metrics is not None:
                metrics.errors.labels("rubric_watcher").inc()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), restart_s)
