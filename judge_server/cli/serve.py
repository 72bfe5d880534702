"""``judge-server serve``: the HTTP reward server on the configured engine.

Exit codes: 0 after a SIGTERM drain; 1 when it refuses to start (the message says why); 3
(``EXIT_ENGINE_FAILED``) when the engine failed to start or died at run time, so an orchestrator
restarts the process.

SIGTERM drains: /ready turns 503 at once, new scoring work gets 503 ``draining`` with
Retry-After, and the work in flight has ``drain_grace_s`` to finish before the server stops.
"""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING

from judge_server.settings import Settings

if TYPE_CHECKING:
    import uvicorn

    from judge_server.api.app import Drain

#: the exit status of a server whose engine failed to start or died while serving
EXIT_ENGINE_FAILED = 3


def serve(settings: Settings) -> None:
    from judge_server.api.auth import check_bind

    if (refusal := check_bind(settings)) is not None:
        sys.exit(f"judge-server: {refusal}")  # before the engine: nothing to clean up
    import uvicorn

    from judge_server.api import create_app
    from judge_server.api.app import Drain
    from judge_server.engines.factory import build_engine

    fatal: list[str] = []
    server: uvicorn.Server | None = None

    def stop(reason: str) -> None:
        # An engine that cannot serve must end the process, not answer 503s forever.
        fatal.append(reason)
        if server is not None:
            server.should_exit = True

    drain = Drain()
    app = create_app(settings, build_engine(settings), on_fatal=stop, drain=drain)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=max(1, round(settings.drain_grace_s)),
    )
    server = _draining_server(config, drain, settings.drain_grace_s)
    server.run()
    if fatal:
        print(f"judge-server: {fatal[0]}", file=sys.stderr)
        sys.exit(EXIT_ENGINE_FAILED)


def _draining_server(config: uvicorn.Config, drain: Drain, grace_s: float) -> uvicorn.Server:
    """A uvicorn server whose SIGTERM drains before it stops (see the module docstring)."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        deadline: float | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # uvicorn's own handler stops listening at once and, after shutdown, raises the
            # signal again (exit status 143). A SIGTERM here first drains while still
            # answering (/ready 503, scoring 503), and the drained stop exits 0.
            if sig == signal.SIGTERM and not self.should_exit:
                if self.deadline is None:
                    self.deadline = time.monotonic() + grace_s
                    drain.begin()
                return
            super().handle_exit(sig, frame)

        async def on_tick(self, counter: int) -> bool:
            if self.deadline is not None and not self.should_exit:
                left = self.deadline - time.monotonic()
                if drain.idle or left <= 0:
                    # what still runs (a response being sent) gets the rest of the grace
                    self.config.timeout_graceful_shutdown = max(1, round(left))
                    self.should_exit = True
            return await super().on_tick(counter)

    return DrainingServer(config)
