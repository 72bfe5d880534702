"""How many judge-server replicas Ray Serve runs and what each one gets: plain data, no Ray
import, so it is built and checked anywhere (``ray_serve`` turns it into a deployment).

The keys are Ray Serve's own (``ray/serve/api.py``: ``serve.deployment`` arguments;
``ray/serve/config.py``: ``AutoscalingConfig``), checked here once so that a typo fails on the
driver, not in a replica.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from judge_server.settings import Settings


class RayServeOptions(BaseModel):
    """Replica count (fixed, or autoscaled between ``min_replicas`` and ``max_replicas``) and
    the resources Ray reserves for each replica's actor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("judge", min_length=1, description="Serve deployment name.")
    num_replicas: int = Field(1, ge=1, description="Fixed replica count (no autoscaling).")
    min_replicas: int | None = Field(
        None, ge=0, description="Autoscaling lower bound (default 1 when autoscaling)."
    )
    max_replicas: int | None = Field(
        None, ge=1, description="Setting it turns autoscaling on, up to this many replicas."
    )
    # Each judge-server request is a batch that vLLM batches again with its neighbours, so a
    # replica serves several at once well; Serve's defaults (2 target, 5 max) suit one-item
    # requests. Admission inside the replica (JUDGE_MAX_QUEUE_ENGINE_CALLS, 429) still bounds
    # the work.
    target_ongoing_requests: float = Field(
        4.0, gt=0, description="Autoscaling: requests in flight per replica to aim for."
    )
    max_ongoing_requests: int = Field(
        32, ge=1, description="Requests one replica takes at once; the proxy queues the rest."
    )
    num_cpus: float = Field(1.0, ge=0, description="CPUs Ray reserves per replica.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs Ray reserves per replica (1 on GPU).")
    health_check_period_s: float = Field(10.0, gt=0)
    start_timeout_s: float = Field(
        900.0, gt=0, description="A replica whose engine is not ready by then fails to start."
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas is not None and self.max_replicas is None:
            raise ValueError("min_replicas needs max_replicas (autoscaling)")
        if self.max_replicas is not None and (self.min_replicas or 1) > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        return self

    def deployment_options(self, settings: Settings) -> dict[str, Any]:
        """Keyword arguments for ``serve.deployment(...)``/``Deployment.options(...)``."""
        options: dict[str, Any] = {
            "name": self.name,
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
            "health_check_period_s": self.health_check_period_s,
            # A replica Serve stops (downscale, redeploy) finishes its work in flight first,
            # like a SIGTERM drain of `judge-server serve`.
            "graceful_shutdown_timeout_s": settings.drain_grace_s,
        }
        if self.max_replicas is None:
            options["num_replicas"] = self.num_replicas
        else:
            low = 1 if self.min_replicas is None else self.min_replicas
            options["autoscaling_config"] = {
                "min_replicas": low,
                # a replica takes about a minute to start: begin with the floor, at least one
                "initial_replicas": max(low, 1),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        return options


def split_args(args: Mapping[str, Any]) -> tuple[Settings, RayServeOptions]:
    """``serve run module:app_builder key=value ...`` arguments: each key is a
    ``RayServeOptions`` field or a judge-server setting (the ``JUDGE_*`` name in lower case,
    without the prefix); the environment supplies the other settings, as for ``serve``."""
    option_keys = set(RayServeOptions.model_fields)
    setting_keys = set(Settings.model_fields)
    unknown = sorted(set(args) - option_keys - setting_keys)
    if unknown:
        raise ValueError(
            f"unknown argument(s) {', '.join(unknown)}: expected a Ray Serve option "
            f"({', '.join(sorted(option_keys))}) or a judge-server setting"
        )
    overrides: dict[str, Any] = {k: v for k, v in args.items() if k in setting_keys}
    try:
        options = RayServeOptions(**{k: v for k, v in args.items() if k in option_keys})
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None
    return settings, options
