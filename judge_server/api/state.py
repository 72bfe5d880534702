"""The typed state the lifespan yields; routes read it through ``deps``, never ``app.state``."""

from __future__ import annotations

from typing import TypedDict

from judge_server.service import JudgeService


class AppState(TypedDict):
    service: JudgeService
