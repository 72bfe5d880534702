"""judge-server replicas as a Ray Serve application, inside a trainer's Ray cluster.

Each replica is a Serve actor that builds the same FastAPI app as ``judge-server serve``
(``api.create_app``) around its own engine: in-process vLLM by default, or the ``remote``
engine. Serve's HTTP proxy spreads requests over the replicas, and a DeploymentHandle reaches
them without HTTP. Three things ``ServeGlue`` adds, because Serve runs the app's lifespan
itself (``ray/serve/_private/http_util.py``, ``ASGIAppReplicaWrapper``) rather than under
uvicorn's server:

- The lifespan's state reaches the requests: uvicorn's server copies it into every request's
  scope, Serve's replica does not, and the routes read the service from it.
- A replica counts as started only once its engine is ready: Serve routes to a replica as
  soon as the lifespan's startup completes, so the startup is held until ``/ready`` would say
  200 (or fails with the engine's error).
- Without API keys (and without ``trust_network``) only loopback clients are served, the
  per-request form of the bind check: the proxy's address is Serve's setting, not ours.

Every response names its replica (``x-judge-replica``). An engine that dies fails the
replica's health check, and Serve replaces the replica (``judge-server serve`` exits 3).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from judge_server.api.auth import is_loopback
from judge_server.deploy.ray_options import RayServeOptions, split_args
from judge_server.settings import Settings

if TYPE_CHECKING:
    from ray.serve import Application
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from judge_server.service import JudgeService

REPLICA_HEADER = "x-judge-replica"
#: seconds between two looks at a starting engine
POLL_S = 0.5


class ServeGlue:
    """ASGI middleware between Serve's replica and the judge-server app (module docstring)."""

    def __init__(
        self, app: ASGIApp, *, replica: str, settings: Settings, start_timeout_s: float
    ) -> None:
        self.app = app
        self.replica = replica.encode()
        self.open_to_network = bool(settings.api_keys) or settings.trust_network
        self.start_timeout_s = start_timeout_s
        self.state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.state = scope.setdefault("state", {})  # filled by the app's lifespan
            await self.app(scope, receive, self._hold_startup(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        if not self.open_to_network and (client is None or not is_loopback(client[0])):
            await _loopback_only()(scope, receive, send)
            return
        scope = {**scope, "state": {**scope.get("state", {}), **self.state}}
        await self.app(scope, receive, self._tag(send))

    def _tag(self, send: Send) -> Send:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                tag = (REPLICA_HEADER.encode(), self.replica)
                message = {**message, "headers": [*message.get("headers", []), tag]}
            await send(message)

        return tagged

    def _hold_startup(self, send: Send) -> Send:
        async def held(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                failure = await self._until_ready()
                if failure is not None:
                    message = {"type": "lifespan.startup.failed", "message": failure}
            await send(message)

        return held

    async def _until_ready(self) -> str | None:
        """None once the service is ready (its engine up and, with a shared rubric store,
        the store's versions loaded), else why the replica must not start."""
        service: JudgeService = self.state["service"]
        deadline = time.monotonic() + self.start_timeout_s
        while not service.ready:
            if service.engine_error is not None:
                return service.engine_error
            if time.monotonic() > deadline:
                return f"not ready in {self.start_timeout_s:g} s: {service.not_ready_reason}"
            await asyncio.sleep(POLL_S)
        return None


def _loopback_only() -> ASGIApp:
    from judge_server.api.errors import envelope

    return envelope(
        403,
        "forbidden",
        "without API keys this judge serves only clients on the Serve proxy's own machine: set "
        "api_keys (JUDGE_API_KEYS) for callers on other machines, or trust_network=true on a "
        "network you trust",
    )


class JudgeReplica:
    """One Serve replica: its settings arrive pickled from the driver, and
    ``__serve_build_asgi_app__`` (called by Serve in the replica, after ``__init__``) builds
    the app and its engine there, so nothing heavy is pickled."""

    def __init__(self, settings: Settings, start_timeout_s: float) -> None:
        self.settings = settings
        self.start_timeout_s = start_timeout_s
        self.fatal: str | None = None
        self.asgi: ASGIApp | None = None

    def __serve_build_asgi_app__(self) -> ASGIApp:
        from ray import serve

        from judge_server.api import create_app
        from judge_server.engines.factory import build_engine

        # vLLM-CPU pins its threads to the same cores in every replica of a node ("auto"
        # binding picks from the node's CPUs, not the actor's); unpinned, each replica runs
        # the OMP_NUM_THREADS that Ray gives an actor (its num_cpus). A no-op on GPUs; a value
        # set in the deployment's runtime_env wins.
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
        app = create_app(self.settings, build_engine(self.settings), on_fatal=self._died)
        replica = serve.get_replica_context().replica_id.unique_id
        # added last, so outermost: it sees the lifespan and every request first
        app.add_middleware(
            ServeGlue,
            replica=replica,
            settings=self.settings,
            start_timeout_s=self.start_timeout_s,
        )
        self.asgi = app
        return app

    def _died(self, reason: str) -> None:
        self.fatal = reason

    def check_health(self) -> None:
        """Serve calls this every ``health_check_period_s``; raising replaces the replica."""
        if self.fatal is not None:
            raise RuntimeError(f"judge engine failed: {self.fatal}")

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """For DeploymentHandle callers: one request through the same app (routes, checks,
        keys, error envelope) without HTTP; returns (status, JSON body, or text)."""
        import httpx

        assert self.asgi is not None, "Serve builds the app before it routes calls"
        # the handle caller is inside the cluster: it counts as local, its key is still checked
        transport = httpx.ASGITransport(app=self.asgi, client=("127.0.0.1", 0))
        async with httpx.AsyncClient(transport=transport, base_url="http://replica") as client:
            response = await client.request(method, path, json=body, headers=headers)
        is_json = response.headers.get("content-type", "").startswith("application/json")
        return response.status_code, response.json() if is_json else response.text


def judge_app(
    settings: Settings | None = None, options: RayServeOptions | None = None
) -> Application:
    """The Serve application, for ``serve.run(app, name="judge", route_prefix="/judge")``.
    Settings default to the environment (``JUDGE_*``) of the caller, not of the replicas."""
    from ray import serve

    settings = Settings() if settings is None else settings
    options = RayServeOptions() if options is None else options
    replica = serve.ingress()(JudgeReplica)  # the app is built in the replica
    deployment = serve.deployment(**options.deployment_options(settings))(replica)
    return deployment.bind(settings, options.start_timeout_s)


def app_builder(args: dict[str, Any]) -> Application:
    """``serve run judge_server.deploy.ray_serve:app_builder num_replicas=2 kv_cache_gib=1``
    (or ``import_path`` in a Serve config file): arguments as ``ray_options.split_args``."""
    settings, options = split_args(args)
    return judge_app(settings, options)
