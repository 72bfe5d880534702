"""``judge-server serve``: the HTTP reward server on the configured engine."""

from __future__ import annotations

import sys

from judge_server.settings import Settings


def serve(settings: Settings) -> None:
    import uvicorn

    from judge_server.api import create_app
    from judge_server.engines.factory import build_engine

    fatal: list[str] = []
    server: uvicorn.Server | None = None

    def stop(reason: str) -> None:
        # An engine that cannot serve must end the process, not answer 503s forever.
        fatal.append(reason)
        if server is not None:
            server.should_exit = True

    app = create_app(settings, build_engine(settings), on_fatal=stop)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level
    )
    server = uvicorn.Server(config)
    server.run()
    if fatal:
        sys.exit(f"judge-server: {fatal[0]}")
