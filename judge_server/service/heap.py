"""The long-lived heap out of the collector's way.

What a server's start builds (the model's modules, the tokenizer, the rubrics) lives as long as
the process: frozen, every full collection stops walking it. Collected first, so no garbage of
the start is kept for good. It takes a fraction of a second with vLLM loaded, so
``JudgeService.start`` runs it before the service turns ready (never while a request waits), and
``JudgeService.close`` unfreezes (a process running services in turn, the tests, is not frozen
again and again).
"""

from __future__ import annotations

import gc


def freeze_built() -> None:
    gc.collect()
    gc.freeze()


def thaw() -> None:
    gc.unfreeze()
