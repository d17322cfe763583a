"""The blog's demonstration on a real kind cluster, asserted on the recorded trace.

Opt-in: needs a Docker engine, kind and kubectl, and ``LABKIT_KIND_TESTS=1`` (it creates a
cluster, which takes minutes). ``LABKIT_K8S_VERSION`` picks the version (default 1.29) and
``LABKIT_TRACE_DIR`` keeps the traces. The notebooks-kind workflow runs it per version.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from labkit.versions import KubeVersion

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
VERSION = KubeVersion.parse(os.environ.get("LABKIT_K8S_VERSION", "1.29"))


def _missing() -> str | None:
    from labkit.doctor import check_docker

    docker = check_docker()
    if not docker.found:
        return f"Docker not found: {docker.detail}"
    if not docker.usable:
        return f"Docker engine not reachable: {docker.detail}"
    for tool in ("kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    if os.environ.get("LABKIT_KIND_TESTS") != "1":
        return "set LABKIT_KIND_TESTS=1 to create a real kind cluster (takes minutes)"
    return None


MISSING = _missing()
pytestmark = [pytest.mark.kind, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


@pytest.fixture(scope="module")
def lab():
    import labkit

    name = f"labkit-it-{VERSION.minor_str.replace('.', '-')}"
    lab = labkit.connect("kind", k8s_version=VERSION.minor_str, cluster_name=name, keep_cluster=False)
    try:
        yield lab
    finally:
        lab.close()


def save(trace, name: str) -> None:
    folder = os.environ.get("LABKIT_TRACE_DIR")
    if folder:
        trace.save(Path(folder) / f"{name}.json")


def first(trace, type_: str, container: str, source: str = "status"):
    found = [e for e in trace.select(type_, container=container) if e.source == source]
    assert found, f"no {type_} of {container} from {source} in the trace"
    return found[0]


def test_job_sidecar_starts_first_and_the_job_completes(lab):
    lab.reset()
    lab.apply(MANIFESTS / "job-sidecar.yaml")
    lab.wait("job/sidecar-job", "Complete", timeout=300)
    lab.sleep(3)  # let the last status updates arrive
    trace = lab.trace()
    save(trace, "job-sidecar")
    assert [p.owner for p in trace.pods] == [{"kind": "Job", "name": "sidecar-job"}]
    sidecar_start = first(trace, "Started", "sws-init")
    app_start = first(trace, "Started", "sidecar-job")
    assert sidecar_start.t < app_start.t
    probe = first(trace, "StartupProbeSucceeded", "sws-init", "watch")
    assert probe.t <= first(trace, "Started", "sidecar-job", "watch").t
    app_exit = first(trace, "Exited", "sidecar-job")
    assert app_exit.exit_code == 0
    assert trace.first("JobComplete", object="job/sidecar-job") is not None
    spans = {s.container: s for s in trace.spans()}
    assert spans["sws-init"].end is not None and not spans["sws-init"].failed  # stopped by the kubelet
    assert trace.pods[0].final.phase == "Succeeded"


def test_deployment_delete_stops_the_app_first_and_the_sidecar_last(lab):
    lab.reset()
    lab.apply(MANIFESTS / "deployment-sidecar.yaml")
    lab.wait("deployment/sidecar-deploy", "Available", timeout=300)
    lab.sleep(3)
    lab.delete("deployment/sidecar-deploy", wait=True, timeout=180)
    lab.sleep(3)
    trace = lab.trace()
    save(trace, "deployment-delete")
    (pod,) = trace.pods
    assert pod.owner == {"kind": "Deployment", "name": "sidecar-deploy"}
    assert first(trace, "Started", "sws-init").t < first(trace, "Started", "sidecar-deploy").t
    spans = {s.container: s for s in trace.spans()}
    app, sidecar = spans["sidecar-deploy"], spans["sws-init"]
    assert app.end is not None and sidecar.end is not None
    # the shell loop ignores SIGTERM: SIGKILL at the end of the 30 s grace period
    requested = trace.first("DeleteRequested", pod=pod.name)
    assert app.end_type == "Killed" and app.exit_code == 137
    assert app.end - requested.t >= 25
    if VERSION.minor >= 29:  # ordered termination: the sidecar stops after the app
        assert app.end <= sidecar.end
        assert not sidecar.failed
    assert trace.first("Deleted", pod=pod.name) is not None
