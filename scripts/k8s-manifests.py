#!/usr/bin/env python3
"""Generated Kubernetes files, kept in step with their sources (tests/unit/test_deploy_manifests.py
checks that they are):

  python3 scripts/k8s-manifests.py configmap  # rubrics/*.yaml -> kubernetes/rubrics-configmap.yaml
  python3 scripts/k8s-manifests.py gpu        # deployment.yaml -> kubernetes/gpu/deployment.yaml
  python3 scripts/k8s-manifests.py kube-play --image IMG --key KEY --port N
      # prints the Deployment + rubrics ConfigMap for `podman kube play` (scripts/image-test.sh),
      # with the Secret's values given directly (kube play has no Secret store here)

The ConfigMap is what `kubectl create configmap judge-server-rubrics --from-file=rubrics/` makes.
Only PyYAML is needed (stdlib otherwise).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
RUBRICS = ROOT / "rubrics"
CONFIGMAP = KUBE / "rubrics-configmap.yaml"
DEPLOYMENT = KUBE / "deployment.yaml"
GPU_DEPLOYMENT = KUBE / "gpu" / "deployment.yaml"

CONFIGMAP_HEADER = """\
# Generated from rubrics/*.yaml by `python3 scripts/k8s-manifests.py configmap`: do not edit here.
# The same as `kubectl create configmap judge-server-rubrics --from-file=rubrics/`. Mounted
# read-only at JUDGE_RUBRICS_DIR; rubric PUT/DELETE then answer 4xx rubrics_read_only.
"""
GPU_HEADER = """\
# Generated from ../deployment.yaml by `python3 scripts/k8s-manifests.py gpu`: do not edit here.
# The GPU variant: the :gpu image (docker build --build-arg STACK=gpu) and one nvidia.com/gpu
# (needs the NVIDIA device plugin). Apply this one instead of ../deployment.yaml.
"""


class _Literal(str):
    pass


def _dumper() -> type[yaml.SafeDumper]:
    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        _Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|")
    )
    return Dumper


def dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_dumper(), sort_keys=False, width=100)


def rubrics_configmap() -> str:
    data = {p.name: _Literal(p.read_text(encoding="utf-8")) for p in sorted(RUBRICS.glob("*.yaml"))}
    doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "judge-server-rubrics",
            "labels": {"app.kubernetes.io/name": "judge-server"},
        },
        "data": data,
    }
    return CONFIGMAP_HEADER + dump(doc)


def gpu_deployment() -> str:
    doc = yaml.safe_load(DEPLOYMENT.read_text(encoding="utf-8"))
    pod = doc["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container["image"] = container["image"].replace(":cpu", ":gpu")
    container["resources"] = {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1},
        "limits": {"memory": "32Gi", "nvidia.com/gpu": 1},
    }
    pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    return GPU_HEADER + dump(doc)


def kube_play(image: str, key: str, port: int) -> str:
    deployment = yaml.safe_load(DEPLOYMENT.read_text(encoding="utf-8"))
    deployment = copy.deepcopy(deployment)
    deployment["spec"]["replicas"] = 1
    pod = deployment["spec"]["template"]["spec"]
    pod["hostNetwork"] = True  # rootful podman here: no CNI port mapping needed
    container = pod["containers"][0]
    container["image"] = image
    container["imagePullPolicy"] = "Never"
    secret = {"api-keys": key, "admin-token": f"admin-{key}"}
    env = []
    for var in container["env"]:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            var = {"name": var["name"], "value": secret[ref["key"]]}
        elif var["name"] == "JUDGE_PORT":
            var = {"name": "JUDGE_PORT", "value": str(port)}
        env.append(var)
    container["env"] = env
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        if probe in container:
            container[probe]["httpGet"]["port"] = port
    # podman turns any containerPort into a port mapping, which host networking refuses
    container.pop("ports", None)
    # vLLM needs 160 MiB of /dev/shm. podman's default is 64 MiB, and its emptyDir is a root-owned
    # directory on disk that uid 10001 cannot write: share the host's /dev/shm instead.
    for volume in pod["volumes"]:
        if volume["name"] == "dshm":
            volume.pop("emptyDir", None)
            volume["hostPath"] = {"path": "/dev/shm", "type": "Directory"}
    configmap = yaml.safe_load(CONFIGMAP.read_text(encoding="utf-8"))
    return dump(configmap) + "---\n" + dump(deployment)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("configmap")
    sub.add_parser("gpu")
    play = sub.add_parser("kube-play")
    play.add_argument("--image", required=True)
    play.add_argument("--key", required=True)
    play.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.command == "configmap":
        CONFIGMAP.write_text(rubrics_configmap(), encoding="utf-8")
        print(f"wrote {CONFIGMAP.relative_to(ROOT)}")
    elif args.command == "gpu":
        GPU_DEPLOYMENT.write_text(gpu_deployment(), encoding="utf-8")
        print(f"wrote {GPU_DEPLOYMENT.relative_to(ROOT)}")
    else:
        sys.stdout.write(kube_play(args.image, args.key, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
