"""The Kubernetes manifests in deploy/kubernetes: valid against a pinned Kubernetes schema (offline,
kubernetes-validate), probes on the right endpoints, and the generated files (rubrics ConfigMap,
GPU Deployment) in step with their sources (scripts/k8s-manifests.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from judge_server.judges.modes import parse_rubric
from judge_server.rubrics.registry import read_rubric_file

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"
MANIFESTS = sorted(KUBE.rglob("*.yaml"))


def _load_generator() -> Any:
    script = ROOT / "scripts" / "k8s-manifests.py"
    spec = importlib.util.spec_from_file_location("k8s_manifests", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _deployments() -> list[tuple[Path, dict[str, Any]]]:
    return [(p, d) for p in MANIFESTS for d in _docs(p) if d["kind"] == "Deployment"]


def test_the_manifests_are_there() -> None:
    kinds = {d["kind"] for p in MANIFESTS for d in _docs(p)}
    assert kinds >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(KUBE)))
def test_manifest_validates_against_kubernetes_schema(path: Path) -> None:
    docs = _docs(path)
    assert docs, f"{path} holds no resource"
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize(
    "path", [p for p, _ in _deployments()], ids=lambda p: str(p.relative_to(KUBE))
)
def test_deployment_probes_security_and_drain(path: Path) -> None:
    (deployment,) = [d for d in _docs(path) if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    env = {e["name"]: e for e in container["env"]}
    for var, key in (("JUDGE_API_KEYS", "api-keys"), ("JUDGE_ADMIN_TOKEN", "admin-token")):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": "judge-server-keys", "key": key}
    grace = float(env["JUDGE_DRAIN_GRACE_S"]["value"])
    assert pod["terminationGracePeriodSeconds"] > grace
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["rubrics"]["readOnly"] is True
    assert mounts["rubrics"]["mountPath"] == env["JUDGE_RUBRICS_DIR"]["value"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["rubrics"]["configMap"]["name"] == "judge-server-rubrics"


def test_gpu_deployment_asks_for_a_gpu_and_cpu_one_does_not() -> None:
    by_file = {str(p.relative_to(KUBE)): d for p, d in _deployments()}
    gpu = by_file["gpu/deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    cpu = by_file["deployment.yaml"]["spec"]["template"]["spec"]["containers"][0]
    assert gpu["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu["image"].endswith(":gpu")
    assert "nvidia.com/gpu" not in cpu["resources"].get("limits", {})


def test_generated_files_are_up_to_date() -> None:
    gen = _load_generator()
    configmap = (KUBE / "rubrics-configmap.yaml").read_text(encoding="utf-8")
    assert configmap == gen.rubrics_configmap(), (
        "rubrics/ changed: run `python3 scripts/k8s-manifests.py configmap`"
    )
    gpu = (KUBE / "gpu/deployment.yaml").read_text(encoding="utf-8")
    assert gpu == gen.gpu_deployment(), (
        "deployment.yaml changed: run `python3 scripts/k8s-manifests.py gpu`"
    )


def test_configmap_rubrics_parse_with_the_server_loader(tmp_path: Path) -> None:
    (configmap,) = _docs(KUBE / "rubrics-configmap.yaml")
    assert configmap["data"], "no rubric in the ConfigMap"
    for name, text in configmap["data"].items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        assert read_rubric_file(path, parse_rubric).name == path.stem


def test_service_and_pdb_select_the_deployment_pods() -> None:
    (deployment,) = [d for p, d in _deployments() if p.parent == KUBE]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    kinds = ("Service", "PodDisruptionBudget")
    others = [d for p in MANIFESTS for d in _docs(p) if d["kind"] in kinds]
    for doc in others:
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), doc["kind"]


def test_kube_play_manifest_inlines_the_secret() -> None:
    text = _load_generator().kube_play("localhost/judge-server:cpu", "k1", 18080)
    docs = [d for d in yaml.safe_load_all(text) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["JUDGE_API_KEYS"] == {"name": "JUDGE_API_KEYS", "value": "k1"}
    assert env["JUDGE_PORT"]["value"] == "18080"
