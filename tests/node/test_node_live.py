"""On labkit's real node, when it runs (`labkit node up`; .ci/run starts it): what real Kubernetes does.

These are the ground truth the simulator, the served API and the recorder are held to.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.request

import pytest

from labkit.kubectl import kubectl_binary


def _node_or_skip():
    from labkit.node import Node, why_not_running

    reason = why_not_running()
    if reason:
        pytest.skip(reason)
    return Node()


@pytest.fixture(scope="module")
def node():
    return _node_or_skip()


def kubectl(node, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "KUBECONFIG": os.fspath(node.kubeconfig)}
    return subprocess.run([kubectl_binary(), *args], env=env, capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture
def namespace(node):
    name = f"labkit-node-test-{os.getpid()}-{time.monotonic_ns() % 100000}"
    kubectl(node, "create", "namespace", name)
    deadline = time.monotonic() + 30
    while kubectl(node, "-n", name, "get", "serviceaccount", "default", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the default ServiceAccount never appeared"
        time.sleep(0.2)
    yield name
    kubectl(node, "delete", "namespace", name, "--wait=false", check=False)


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


def _admin_context(node) -> ssl.SSLContext:
    pki = node.layout.pki
    context = ssl.create_default_context(cafile=os.fspath(pki / "ca.crt"))
    context.load_cert_chain(os.fspath(pki / "admin.crt"), os.fspath(pki / "admin.key"))
    return context


def _api(node, method: str, path: str, body: dict | None = None, content_type: str = "application/json") -> dict:
    request = urllib.request.Request(node.layout.server + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": content_type})
    with urllib.request.urlopen(request, context=_admin_context(node), timeout=30) as answer:
        return json.loads(answer.read())


def expire_pod_watch_history(node, namespace: str) -> str:
    """A resourceVersion of pods that the API server's watch cache no longer holds.

    The cache keeps every event younger than 75 s (DefaultEventFreshDuration, staging
    apiserver/pkg/storage/cacher) and grows while they are; once its oldest event is older and it
    is full (100 events at first, more after busy minutes), each new event evicts the oldest. So:
    note a resourceVersion, let 76 s pass, then make pod events until a watch from it is refused.
    """
    listed = _api(node, "GET", f"/api/v1/namespaces/{namespace}/pods")["metadata"]["resourceVersion"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "churn"},
           "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}
    _api(node, "POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    time.sleep(76)
    for i in range(10000):
        _api(node, "PATCH", f"/api/v1/namespaces/{namespace}/pods/churn",
             {"metadata": {"annotations": {"labkit.test/churn": str(i)}}}, "application/merge-patch+json")
        if i % 100 == 99 and _first_watch_event(node, namespace, listed)["type"] == "ERROR":
            return listed
    raise AssertionError("10,000 pod events did not turn the watch cache over")


def _first_watch_event(node, namespace: str, resource_version: str) -> dict:
    url = (f"{node.layout.server}/api/v1/namespaces/{namespace}/pods?watch=1&resourceVersion={resource_version}"
           "&timeoutSeconds=1")
    with urllib.request.urlopen(url, context=_admin_context(node), timeout=30) as answer:
        assert answer.status == 200
        line = answer.readline()
    return json.loads(line) if line else {"type": "NONE"}


@pytest.fixture(scope="module")
def expired(node):
    """A pods resourceVersion the API server has forgotten (made once: it takes 76 s and more)."""
    name = f"labkit-node-expire-{os.getpid()}"
    kubectl(node, "create", "namespace", name)
    try:
        yield expire_pod_watch_history(node, name)
    finally:
        kubectl(node, "delete", "namespace", name, "--wait=false", check=False)


def test_an_expired_resource_version_is_a_200_watch_with_an_error_event_of_code_410(node, namespace, expired):
    """How a real kube-apiserver says "too old resource version" to a watch: not an HTTP 410, but
    HTTP 200 and a watch event of type ERROR carrying a Status with code 410 (the recorder must
    handle this shape; its unit tests use it)."""
    first = _first_watch_event(node, namespace, expired)  # HTTP 200 is asserted there
    assert first["type"] == "ERROR"
    assert first["object"]["kind"] == "Status" and first["object"]["code"] == 410
    assert first["object"]["reason"] in ("Expired", "Gone")
    assert "too old resource version" in first["object"]["message"]


def test_the_recorder_records_restarts_and_termination_across_an_expired_watch(node, namespace, expired):
    """The recorder on the real API server: it resumes watching pods from a resourceVersion the
    server has forgotten (as after a client's absence: a live watch gets bookmarks just before
    each timeout and stays fresh), gets the real server's answer (HTTP 200, an ERROR event of code
    410, which kubernetes' Watch.stream turns into KeyError('raw_object')), lists again and records
    the pod's restarts and termination once each."""
    from labkit.recorder import Recorder, TraceBuilder

    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "restarts"},
           "spec": {"restartPolicy": "Always", "terminationGracePeriodSeconds": 3, "containers": [
               {"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 1; exit 3"]}]}}
    _api(node, "POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    builder = TraceBuilder("node", node.pins.kubernetes.lstrip("v"), {}, since=time.time())
    recorder = Recorder(builder, namespace=namespace, kubeconfig=os.fspath(node.kubeconfig),
                        resume_from={"Pod": expired}).start()
    try:
        deadline = time.monotonic() + 120
        while len({e.attempt for e in builder.trace().select("Started", pod="restarts")}) < 3:
            assert time.monotonic() < deadline, "the container did not restart twice"
            time.sleep(0.5)
        kubectl(node, "-n", namespace, "delete", "pod", "restarts", "--wait=true", "--timeout=60s")
        deadline = time.monotonic() + 20
        while not builder.trace().select("Deleted", pod="restarts") and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        recorder.stop()
    assert recorder.relists and "ended with an ERROR event" in recorder.relists[0], recorder.relists
    assert recorder.errors == []
    trace = builder.trace()
    assert trace.select("Deleted", pod="restarts") and trace.select("DeleteRequested", pod="restarts")
    starts = [e for e in trace.events if e.type == "Started" and e.container == "app" and e.source == "status"]
    attempts = [e.attempt for e in starts]
    assert attempts == list(range(len(attempts))) and len(attempts) >= 3, attempts  # every run once, in order
    [final] = [p for p in trace.pods if p.name == "restarts"]
    assert final.final.containers["app"].restart_count >= 2
