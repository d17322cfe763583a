"""On labkit's real node, when it runs (`labkit node up`; .ci/run starts it): what real Kubernetes does.

These are the ground truth the simulator, the served API and the recorder are held to.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from labkit.kubectl import kubectl_binary
from node_api import kubectl


def test_the_node_is_ready_with_the_upstream_kubelet_and_containerd(node):
    wide = kubectl(node, "get", "nodes", "-o", "wide").stdout
    assert "labkit-node" in wide and " Ready " in wide
    assert node.pins.kubernetes in wide  # VERSION: the kubelet's own gitVersion, v1.37.2
    assert f"containerd://{node.pins.containerd.lstrip('v')}" in wide  # containerd reports 2.4.2
    info = json.loads(kubectl(node, "get", "node", "labkit-node", "-o", "json").stdout)["status"]["nodeInfo"]
    assert info["kubeletVersion"] == node.pins.kubernetes


def test_the_kubelet_pulls_for_real_from_the_local_registry(node, namespace):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pull"},
           "spec": {"restartPolicy": "Never", "containers": [
               {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo hello from busybox"]}]}}
    subprocess.run([kubectl_binary(), "-n", namespace, "apply", "-f", "-"], input=json.dumps(pod), text=True,
                   env={**os.environ, "KUBECONFIG": os.fspath(node.kubeconfig)}, check=True, capture_output=True)
    kubectl(node, "-n", namespace, "wait", "pod/pull", "--for=jsonpath={.status.phase}=Succeeded", "--timeout=120s")
    assert kubectl(node, "-n", namespace, "logs", "pull").stdout == "hello from busybox\n"
    events = kubectl(node, "-n", namespace, "get", "events", "-o", "json").stdout
    reasons = [e["reason"] for e in json.loads(events)["items"] if e["involvedObject"]["name"] == "pull"]
    assert "Pulling" in reasons and "Pulled" in reasons  # :latest means imagePullPolicy Always
    status = json.loads(kubectl(node, "-n", namespace, "get", "pod", "pull", "-o", "json").stdout)["status"]
    [container] = status["containerStatuses"]
    assert container["imageID"].startswith("docker.io/library/busybox@sha256:")
    assert container["state"]["terminated"]["exitCode"] == 0


def test_a_pod_whose_image_is_not_there_waits_in_errimagepull_with_an_empty_image_id(node, namespace):
    """What a real API server sends for a container that never ran: imageID is the empty string
    (never absent), which the official client's models require."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nopull"},
           "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/not-built-here:1.0"}]}}
    subprocess.run([kubectl_binary(), "-n", namespace, "apply", "-f", "-"], input=json.dumps(pod), text=True,
                   env={**os.environ, "KUBECONFIG": os.fspath(node.kubeconfig)}, check=True, capture_output=True)
    deadline = time.monotonic() + 90
    while True:
        status = json.loads(kubectl(node, "-n", namespace, "get", "pod", "nopull", "-o", "json").stdout)["status"]
        statuses = status.get("containerStatuses") or []
        waiting = statuses[0]["state"].get("waiting", {}) if statuses else {}
        if waiting.get("reason") in ("ErrImagePull", "ImagePullBackOff"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert statuses[0]["imageID"] == "" and statuses[0]["image"] == "registry.k8s.io/not-built-here:1.0"
