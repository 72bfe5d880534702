"""Reload the rubrics directory when its files change (editor saves, git pulls, PUTs).

A reload validates every file and swaps the snapshot once; an invalid edit is logged and counted,
and the last good version of that rubric keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from judge_server.metrics import Metrics
from judge_server.rubrics.registry import RUBRIC_SUFFIXES, RubricRegistry

log = logging.getLogger(__name__)

DEBOUNCE_MS = 150
STEP_MS = 50


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
