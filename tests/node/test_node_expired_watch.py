"""A watch from a resourceVersion the API server has forgotten, on labkit's real node: how the real
kube-apiserver answers it, and that labkit's recorder lists again and loses nothing.

A file of its own, started first (tests/conftest.py): making such a resourceVersion takes 76 s
of waiting and then as many pod changes as the watch cache holds.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from node_api import admin_context, api, connect, kubectl


def expire_pod_watch_history(node, namespace: str) -> str:
    """A resourceVersion of pods that the API server's watch cache no longer holds.

    The cache keeps every event younger than 75 s (DefaultEventFreshDuration, staging
    apiserver/pkg/storage/cacher) and grows while they are; once its oldest event is older and it
    is full (100 events at first, 400 to 3,200 after busy minutes here), each new event evicts
    the oldest. So: note a resourceVersion, let 76 s pass, then make pod events until a watch from
    it is refused. The events are changes to a pod held back by a scheduling gate, sent on one
    connection: neither the scheduler nor the kubelet acts on them, and no request pays a TLS
    handshake (the churn cost the node 24 s of CPU with a running pod and a connection each).
    """
    listed = api(node, "GET", f"/api/v1/namespaces/{namespace}/pods")["metadata"]["resourceVersion"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "churn"},
           "spec": {"schedulingGates": [{"name": "labkit.test/never-scheduled"}],
                    "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}
    api(node, "POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    time.sleep(76)
    connection = connect(node)
    try:
        for i in range(10000):
            api(node, "PATCH", f"/api/v1/namespaces/{namespace}/pods/churn",
                {"metadata": {"annotations": {"labkit.test/churn": str(i)}}}, "application/merge-patch+json",
                connection=connection)
            if i % 100 == 99 and _first_watch_event(node, namespace, listed)["type"] == "ERROR":
                return listed
    finally:
        connection.close()
    raise AssertionError("10,000 pod events did not turn the watch cache over")


def _first_watch_event(node, namespace: str, resource_version: str) -> dict:
    url = (f"{node.layout.server}/api/v1/namespaces/{namespace}/pods?watch=1&resourceVersion={resource_version}"
           "&timeoutSeconds=1")
    with urllib.request.urlopen(url, context=admin_context(node), timeout=30) as answer:
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
    api(node, "POST", f"/api/v1/namespaces/{namespace}/pods", pod)
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
