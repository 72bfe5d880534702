"""The Ray Serve deployment options (judge_server.deploy.ray_options): built without Ray."""

from __future__ import annotations

import pytest

from judge_server.deploy.ray_options import RayServeOptions, split_args
from judge_server.settings import Settings


def test_fixed_replicas_and_actor_resources() -> None:
    settings = Settings(drain_grace_s=12)
    options = RayServeOptions(num_replicas=3, num_cpus=2, num_gpus=1).deployment_options(settings)
    assert options["num_replicas"] == 3
    assert "autoscaling_config" not in options
    assert options["ray_actor_options"] == {"num_cpus": 2, "num_gpus": 1}
    assert options["graceful_shutdown_timeout_s"] == 12
    assert options["name"] == "judge"


def test_max_replicas_turns_autoscaling_on() -> None:
    options = RayServeOptions(min_replicas=0, max_replicas=4, target_ongoing_requests=2)
    built = options.deployment_options(Settings())
    assert "num_replicas" not in built  # Serve refuses both at once
    assert built["autoscaling_config"] == {
        "min_replicas": 0,
        "initial_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 2,
    }
    assert (
        RayServeOptions(max_replicas=2).deployment_options(Settings())["autoscaling_config"][
            "min_replicas"
        ]
        == 1
    )


def test_options_are_valid_for_ray_serve() -> None:
    """Ray's own config classes accept what we build (when Ray is installed)."""
    config = pytest.importorskip("ray.serve.config")
    built = RayServeOptions(min_replicas=1, max_replicas=3).deployment_options(Settings())
    autoscaling = config.AutoscalingConfig(**built["autoscaling_config"])
    assert autoscaling.max_replicas == 3
    serve = pytest.importorskip("ray.serve")
    deployment = serve.deployment(name="x")(lambda: None).options(**built)
    assert deployment.max_ongoing_requests == 32


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"min_replicas": 2}, "needs max_replicas"),
        ({"min_replicas": 3, "max_replicas": 2}, "must not exceed"),
        ({"num_replicas": 0}, "greater than or equal to 1"),
        ({"num_gpu": 1}, "Extra inputs"),
    ],
)
def test_bad_options_fail_on_the_driver(fields: dict[str, int], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RayServeOptions(**fields)


def test_serve_run_arguments_split_into_options_and_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUDGE_MAX_MODEL_LEN", "1024")  # the environment supplies the rest
    settings, options = split_args(
        {
            "num_replicas": "2",
            "num_cpus": "0.5",
            "engine": "remote",
            "remote_urls": "http://a:8000/v1,http://b:8000/v1",
            "api_keys": "k1",
        }
    )
    assert options.num_replicas == 2 and options.num_cpus == 0.5
    assert settings.engine == "remote"
    assert settings.remote_urls == ["http://a:8000/v1", "http://b:8000/v1"]
    assert [k.get_secret_value() for k in settings.api_keys] == ["k1"]
    assert settings.max_model_len == 1024


def test_no_option_shadows_a_setting() -> None:
    assert not set(RayServeOptions.model_fields) & set(Settings.model_fields)


def test_unknown_and_invalid_arguments_say_which() -> None:
    with pytest.raises(ValueError, match=r"unknown argument.*replicas"):
        split_args({"replicas": "2"})
    with pytest.raises(ValueError, match="kv_cache_gib"):
        split_args({"kv_cache_gib": "lots"})
