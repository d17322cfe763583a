"""The blog's manifests (manifests/): they parse, and the fields the lab relies on are pinned."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labkit.versions import KIND_NODE_IMAGES

MANIFESTS = Path(__file__).parent.parent / "manifests"
ALL = sorted(MANIFESTS.rglob("*.yaml"))


def load(name: str) -> dict:
    docs = list(yaml.safe_load_all((MANIFESTS / name).read_text(encoding="utf-8")))
    assert len(docs) == 1, f"{name} should hold exactly one object"
    return docs[0]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def all_containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def test_the_expected_manifests_exist():
    names = {str(p.relative_to(MANIFESTS)) for p in ALL}
    assert {"kind-sidecar-k8s1.28.yaml", "deployment-sidecar.yaml", "job-sidecar.yaml",
            "legacy/deployment-legacy-sidecar.yaml", "legacy/job-legacy-sidecar.yaml"} <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_every_manifest_parses_and_pins_its_images(path: Path):
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert docs, f"{path} is empty"
    for doc in docs:
        assert isinstance(doc, dict) and doc.get("kind") and doc.get("apiVersion"), path
        if doc["kind"] in ("Deployment", "Job"):
            for container in all_containers(pod_spec(doc)):
                image = container["image"]
                name, _, tag = image.rpartition(":")
                assert name and tag and tag != "latest", f"{path}: {container['name']} image {image!r} is not pinned"
                assert container["resources"]["requests"] == {"memory": "10Mi", "cpu": "10m"}
                assert container["resources"]["limits"] == {"memory": "10Mi", "cpu": "10m"}
    if "kind: Cluster" not in path.read_text():
        assert ":latest" in path.read_text(), f"{path} should say in a comment that the blog used :latest"


def test_kind_config_enables_the_gate_and_pins_the_node_image_by_digest():
    config = load("kind-sidecar-k8s1.28.yaml")
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["featureGates"] == {"SidecarContainers": True}
    images = [node["image"] for node in config["nodes"]]
    assert images == [KIND_NODE_IMAGES["v0.20.0"]["1.28"]]
    assert images[0].startswith("kindest/node:v1.28.0@sha256:") and len(images[0].split("@sha256:")[1]) == 64


def check_sws_sidecar(spec: dict) -> None:
    (sidecar,) = spec["initContainers"]
    assert sidecar["name"] == "sws-init"
    assert sidecar["image"].startswith("joseluisq/static-web-server:2.")
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["ports"] == [{"containerPort": 80}]
    assert sidecar["startupProbe"] == {"httpGet": {"path": "/", "port": 80}}
    assert spec["volumes"] == [{"name": "data", "emptyDir": {}}]


def test_deployment_sidecar_matches_the_blog():
    deploy = load("deployment-sidecar.yaml")
    assert (deploy["kind"], deploy["metadata"]["name"]) == ("Deployment", "sidecar-deploy")
    assert deploy["metadata"]["labels"] == {"app": "sidecar-deploy"}
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["selector"]["matchLabels"] == deploy["spec"]["template"]["metadata"]["labels"] \
        == {"app": "sidecar-deploy"}
    spec = pod_spec(deploy)
    check_sws_sidecar(spec)
    (app,) = spec["containers"]
    assert app["name"] == "sidecar-deploy" and app["image"].startswith("alpine:3.")
    assert app["command"] == ["sh", "-c", 'while true; do echo "test" >> /tmp/info.log; sleep 1; done']
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/tmp"}]
    assert "restartPolicy" not in app


def test_job_sidecar_matches_the_blog():
    job = load("job-sidecar.yaml")
    assert (job["kind"], job["metadata"]["name"]) == ("Job", "sidecar-job")
    spec = pod_spec(job)
    assert spec["restartPolicy"] == "Never"
    check_sws_sidecar(spec)
    (app,) = spec["containers"]
    assert app["name"] == "sidecar-job" and app["image"].startswith("alpine:3.")
    assert app["command"] == ["sh", "-c", 'echo "test" > /tmp/info.log']
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/tmp"}]


@pytest.mark.parametrize("name, kind, app_name, failures", [
    ("legacy/deployment-legacy-sidecar.yaml", "Deployment", "sidecar-deploy",
     ["before its proxy", "SIGTERM", "in-flight work is lost"]),
    ("legacy/job-legacy-sidecar.yaml", "Job", "sidecar-job", ["NEVER completes", "never exits"]),
])
def test_legacy_manifests_run_the_web_server_as_a_regular_container(name, kind, app_name, failures):
    obj = load(name)
    assert obj["kind"] == kind and obj["metadata"]["name"].startswith("legacy-")
    spec = pod_spec(obj)
    assert "initContainers" not in spec
    names = [c["name"] for c in spec["containers"]]
    assert names == ["sws", app_name]
    assert all("restartPolicy" not in c for c in spec["containers"])
    comment = (MANIFESTS / name).read_text().split("apiVersion")[0]
    header = " ".join(line.lstrip("#").strip() for line in comment.splitlines())
    for words in failures:
        assert words in header, f"{name}'s header comment should explain: {words}"
