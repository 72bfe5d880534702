"""HTTP layer: FastAPI routers, wire models and the app factory."""

from judge_server.api.app import create_app

__all__ = ["create_app"]
