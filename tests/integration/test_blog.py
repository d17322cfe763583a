"""The blog's demonstration, asserted on the recorded trace, the same on every backend.

The backends come from ``backends.backends()`` (tests/integration/backends.py): the simulator always, a cluster given by
``LABKIT_KUBECONFIG``, kind with ``LABKIT_KIND_TESTS=1``. The expectations allow for what a
real cluster can see: container times from the kubelet's status are whole seconds
(``resolution_s`` 1.0) and the watch sees a status update when it arrives, so two events
may tie; the simulator's times are exact, so there ties are failures.
"""

from __future__ import annotations

import os
from pathlib import Path

from labkit.trace import Event, Trace
from labkit.versions import KubeVersion

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
# Best first: the simulator's own time, the kubelet's status time, a Kubernetes Event, the watch's arrival.
SOURCES = ("sim", "status", "event", "watch")


def save(trace: Trace, lab, name: str) -> None:
    folder = os.environ.get("LABKIT_TRACE_DIR")
    if folder:
        trace.save(Path(folder) / f"{name}-{lab.backend}.json")


def seen(trace: Trace, type_: str, container: str, *, sources=SOURCES) -> Event:
    """The first ``type_`` of ``container``, from the best source that reported it."""
    for source in sources:
        found = [e for e in trace.select(type_, container=container) if e.source == source]
        if found:
            return found[0]
    raise AssertionError(f"no {type_} of {container} in the trace (sources {sources})")


def before(a: Event, b: Event) -> bool:
    """a came before b, as far as the two reports can tell: exact times must differ; whole-second
    status times and watch arrivals of one status update may tie."""
    if a.source == b.source == "sim":
        return a.t < b.t
    slack = 0.0 if a.source == b.source else max(a.resolution_s or 0.0, b.resolution_s or 0.0)
    return a.t <= b.t + slack


def test_before_is_strict_for_exact_times_and_allows_a_tie_within_a_second():
    def event(t, source, resolution=None):
        return Event(t, "Started", pod="p", container="c", source=source, resolution_s=resolution)

    assert before(event(1.0, "sim"), event(1.5, "sim")) and not before(event(1.0, "sim"), event(1.0, "sim"))
    assert before(event(3.0, "status", 1.0), event(3.0, "status", 1.0))  # same whole second
    assert not before(event(4.0, "status", 1.0), event(3.0, "status", 1.0))
    assert before(event(3.9, "watch"), event(3.0, "status", 1.0))  # 3.0 means 3.0-3.999
    assert not before(event(4.5, "watch"), event(3.0, "status", 1.0))


def test_job_sidecar_starts_first_and_the_job_completes(lab):
    lab.reset()
    lab.apply(MANIFESTS / "job-sidecar.yaml")
    lab.wait("job/sidecar-job", "Complete", timeout=300)
    lab.sleep(3)  # let the last status updates arrive
    trace = lab.trace()
    save(trace, lab, "job-sidecar")
    assert [p.owner for p in trace.pods] == [{"kind": "Job", "name": "sidecar-job"}]
    assert before(seen(trace, "Started", "sws-init"), seen(trace, "Started", "sidecar-job"))
    # the app starts only once the sidecar's startup probe succeeded (both seen in status updates)
    probe = seen(trace, "StartupProbeSucceeded", "sws-init", sources=("sim", "watch"))
    assert before(probe, seen(trace, "Started", "sidecar-job", sources=("sim", "watch")))
    app_exit = seen(trace, "Exited", "sidecar-job")
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
    save(trace, lab, "deployment-delete")
    (pod,) = trace.pods
    assert {k: pod.owner[k] for k in ("kind", "name")} == {"kind": "Deployment", "name": "sidecar-deploy"}
    assert pod.owner["via"]["kind"] == "ReplicaSet"
    assert before(seen(trace, "Started", "sws-init"), seen(trace, "Started", "sidecar-deploy"))
    spans = {s.container: s for s in trace.spans()}
    app, sidecar = spans["sidecar-deploy"], spans["sws-init"]
    assert app.end is not None and sidecar.end is not None
    # the shell loop ignores SIGTERM: SIGKILL at the end of the 30 s grace period
    requested = trace.first("DeleteRequested", pod=pod.name)
    assert app.end_type == "Killed" and app.exit_code == 137
    assert app.end - requested.t >= 30 - 2  # whole-second times on a real cluster
    if KubeVersion.parse(lab.kubernetes_version).minor >= 29:
        # ordered termination: the sidecar waits for the app, but at most the grace period
        # (waitForTurn in pkg/kubelet/kuberuntime/kuberuntime_termination_order.go). This app
        # takes all of it, so on a real node the app's SIGKILL and the sidecar's stop signal come
        # in the same instant and either may exit first; status times are whole seconds.
        assert sidecar.end >= min(app.end, requested.t + 30) - 1
        assert not sidecar.failed
    assert trace.first("Deleted", pod=pod.name) is not None
