"""A server process on the instant engine (``python -m judge_server.cli.bench.instant_server``).

``--mode judge``: the real judge-server app (settings from ``JUDGE_*`` like ``serve``) on
``InstantEngine``: what the overhead section measures. ``--mode openai``: a minimal
OpenAI-compatible chat endpoint that always answers ``Score: 5``, a stand-in for ``vllm serve``
so the naive section's plumbing runs without vLLM (tests only).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from judge_server.cli.bench.instant_engine import INSTANT_GENERATION, InstantEngine
from judge_server.settings import Settings


def openai_app() -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/chat/completions")
    async def chat(body: dict[str, Any]) -> dict[str, Any]:
        return {
            "object": "chat.completion",
            "model": body.get("model", "instant-engine"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": INSTANT_GENERATION},
                    "finish_reason": "stop",
                }
            ],
        }

    return app


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    from judge_server.api import create_app

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=["judge", "openai"], default="judge")
    args = parser.parse_args(argv)
    settings = Settings()
    app = create_app(settings, InstantEngine()) if args.mode == "judge" else openai_app()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level=settings.log_level)


if __name__ == "__main__":
    main()
