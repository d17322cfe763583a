"""The blog's Job and Deployment on every version that matters, with the timings pinned.

Where the numbers come from (labkit/sim/timing.py and the kubelet):

- the Job/ReplicaSet controller creates the pod 2 watch hops after the apply
  (``CONTROLLER_S`` each) — the trace's first event, so its t = 0 —, the kubelet gets it ``SCHEDULE_S`` later; its
  first sync waits for the pod's volumes (every pod has its service account token's), which
  ``WaitForAttachAndMount`` sees at its second look (``VOLUME_MOUNT_WAIT_S``), and creates the
  probe workers right then (prober_manager AddPod; docs/timing.md);
- that sync then sets up the sandbox (``SANDBOX_S``) and starts sws-init
  (``CONTAINER_START_S``), each stretched by the blog's 10m CPU limits (20m for the pod's
  cgroup, where the pause container starts): runc's init runs under that quota;
- the startup probe's ticker is anchored at worker creation, so its first run is one full
  period (10 s) after the worker was created, not after the container started; the
  static-web-server listens long before that, so that first probe succeeds;
- that first tick on the new container first sets the probe's initial result (Unknown), which
  syncs the pod at once; the probe answers ``PROBE_ANSWER_S`` later, and the sync its success
  asks for waits for a pod cache newer than that sync: the next relist, which writes the
  sidecar's Ready and starts the app one (throttled) container start later (the kubelet's log
  at level 4 on labkit's node, docs/fidelity.md);
- on deletion the app (a ``sh -c`` loop, no trap, PID 1) ignores SIGTERM and is SIGKILLed
  exactly 30 s (the default grace) after it; from 1.29 the sidecar waits for it, then gets
  the 2 s minimum grace and static-web-server exits 0 at once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labkit.errors import InvalidInput
from labkit.sim import simulate
import expected_timing as T  # written out, not read from labkit.sim.timing
from labkit.trace import Trace
from labkit.versions import lab_feature_gates

ROOT = Path(__file__).parents[2]
JOB = ROOT / "manifests" / "job-sidecar.yaml"
DEPLOYMENT = ROOT / "manifests" / "deployment-sidecar.yaml"
GATE_OFF = {"SidecarContainers": False}   # 1.28's own default; labkit's 1.28 has the gate on

# Trace times count from the run's first event (docs/trace.md): the pod appearing, which is
# POD_CREATED after the apply. Times below are trace times.
POD_CREATED = 2 * T.CONTROLLER_S
PROBE_WORKERS = T.SCHEDULE_S + T.VOLUME_MOUNT_WAIT_S
# every container of the blog's pods has a 10m CPU limit, which stretches each start
SIDECAR_STARTED = PROBE_WORKERS + T.BLOG_SANDBOX_S + T.BLOG_CONTAINER_START_S
STARTUP_PROBE = PROBE_WORKERS + 10          # default periodSeconds, ticker anchored at the worker
PROBE_ANSWERED = STARTUP_PROBE + T.PROBE_ANSWER_S


def one(trace: Trace, type_: str, container: str | None = None):
    found = [e for e in trace.events if e.type == type_ and (container is None or e.container == container)]
    assert len(found) == 1, (type_, container, found)
    return found[0]


def first(trace: Trace, type_: str, container: str | None = None):
    found = [e for e in trace.events if e.type == type_ and (container is None or e.container == container)]
    assert found, (type_, container)
    return found[0]


def index(trace: Trace, event) -> int:
    return trace.events.index(event)


# -- start-up: the same on every version with native sidecars ------------------------------
@pytest.mark.parametrize(("version", "gates"), [("1.28", {"SidecarContainers": True}), ("1.29", None),
                                                 ("1.33", None), ("1.36", None)])
def test_sidecar_starts_first_and_the_app_waits_for_its_startup_probe(version, gates):
    trace = simulate([JOB], k8s_version=version, feature_gates=gates)
    assert one(trace, "Started", "sws-init").t == pytest.approx(SIDECAR_STARTED)
    # First startup probe at the first tick of a ticker anchored at worker creation: 10 s
    # after the worker, i.e. about 9 s after the container started, not 10 s after it.
    run = one(trace, "StartupProbeRun", "sws-init")
    assert run.t == pytest.approx(STARTUP_PROBE)
    assert one(trace, "StartupProbeSucceeded", "sws-init").t == pytest.approx(PROBE_ANSWERED)
    # the sync the success asks for comes at the next relist: the sidecar's Ready, the app's start
    ready = one(trace, "Ready", "sws-init")
    assert 0 < ready.t - PROBE_ANSWERED <= T.RELIST_PERIOD_S
    assert one(trace, "Started", "sidecar-job").t == pytest.approx(ready.t + T.BLOG_CONTAINER_START_S)
    assert trace.pods[0].containers[0].probes == ("startup",)


def test_a_longer_probe_period_moves_the_app_start_with_it():
    doc = yaml.safe_load(JOB.read_text())
    doc["spec"]["template"]["spec"]["initContainers"][0]["startupProbe"]["periodSeconds"] = 3
    trace = simulate([doc], k8s_version="1.29")
    # The ticker still starts at the worker; its tick at worker + 3 s finds the container not
    # running yet (it starts 3.9 s after the worker, under its CPU limit), the next one probes.
    started = one(trace, "Started", "sws-init").t
    assert started == pytest.approx(SIDECAR_STARTED) and 3 < started - PROBE_WORKERS < 6
    assert one(trace, "StartupProbeSucceeded", "sws-init").t == pytest.approx(PROBE_WORKERS + 6 + T.PROBE_ANSWER_S)


# -- the Job -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("version", "gates"), [("1.28", {"SidecarContainers": True}), ("1.29", None),
                                                 ("1.33", None), ("1.36", None)])
def test_job_completes_although_the_sidecar_never_exits_by_itself(version, gates):
    trace = simulate([JOB], k8s_version=version, feature_gates=gates)
    app_exit = one(trace, "Exited", "sidecar-job")
    assert app_exit.exit_code == 0
    assert app_exit.t == pytest.approx(one(trace, "Started", "sidecar-job").t + T.INSTANT_PROCESS_S)
    # The kubelet notices the exit at its next PLEG relist (within 1 s), finds nothing left
    # to run and kills the pod: the sidecar gets SIGTERM and static-web-server exits 0.
    sigterm = one(trace, "SIGTERM", "sws-init")
    assert 0 < sigterm.t - app_exit.t <= T.RELIST_PERIOD_S
    sidecar_exit = one(trace, "Exited", "sws-init")
    assert sidecar_exit.exit_code == 0
    assert sidecar_exit.t == pytest.approx(sigterm.t + T.SERVER_SHUTDOWN_S)
    # The next sync finds nothing running and the pod terminal: at the next relist, or from 1.36
    # at once (the kill's on-demand relist, PLEGOnDemandRelist). The pod worker then runs
    # syncTerminatingPod and syncTerminatedPod, each at the relist after the one before (a sync
    # waits for a newer pod cache), and the status manager sends the terminal phase, held back
    # until the worker has terminated, with the last one's status.
    phases = [e for e in trace.events if e.type == "PodPhase"]
    assert [p.phase for p in phases] == ["Pending", "Running", "Succeeded"]
    not_ready = one(trace, "NotReady", "sws-init")   # written by the sync that found it exited
    if version >= "1.36":
        assert not_ready.t == pytest.approx(sidecar_exit.t)
        assert T.RELIST_PERIOD_S < phases[-1].t - not_ready.t <= 2 * T.RELIST_PERIOD_S
    else:
        assert 0 < not_ready.t - sidecar_exit.t <= T.RELIST_PERIOD_S
        assert phases[-1].t == pytest.approx(not_ready.t + 2 * T.RELIST_PERIOD_S)
    complete = one(trace, "JobComplete")
    assert complete.object == "job/sidecar-job"
    assert complete.t == pytest.approx(phases[-1].t + T.API_WATCH_S + T.JOB_SYNC_BATCH_S)   # the pod change, batched
    final = trace.pods[0].final
    assert final.phase == "Succeeded" and not final.deleted
    assert {n: (c.state, c.exit_code) for n, c in final.containers.items()} == {
        "sws-init": ("terminated", 0), "sidecar-job": ("terminated", 0)}
    assert trace.pods[0].owner == {"kind": "Job", "name": "sidecar-job"}
    assert trace.pods[0].name.startswith("sidecar-job-") and len(trace.pods[0].name) == len("sidecar-job-") + 5


def test_the_pod_is_never_ready_so_waiting_for_ready_would_miss_it():
    trace = simulate([JOB], k8s_version="1.29")
    assert not trace.select("PodReady")
    assert not trace.select("Ready", container="sidecar-job")


def test_a_sidecar_that_ignores_sigterm_holds_the_job_30_seconds():
    """The pod stays Running until the sidecar is gone (docs/architecture.md, rule 4: kubelet getPhase)."""
    doc = yaml.safe_load(JOB.read_text())
    sidecar = doc["spec"]["template"]["spec"]["initContainers"][0]
    sidecar.update(image="busybox:1.36", command=["sh", "-c", "while true; do sleep 1; done"])
    sidecar["startupProbe"] = {"exec": {"command": ["true"]}}
    trace = simulate([doc], k8s_version="1.29")
    sigterm = one(trace, "SIGTERM", "sws-init")
    killed = one(trace, "Killed", "sws-init")
    assert killed.exit_code == 137 and killed.t == pytest.approx(sigterm.t + 30)
    succeeded = [e for e in trace.events if e.type == "PodPhase" and e.phase == "Succeeded"]
    assert succeeded and succeeded[0].t > killed.t
    phases = [(e.t, e.phase) for e in trace.events if e.type == "PodPhase"]
    assert [p for _, p in phases] == ["Pending", "Running", "Succeeded"]
    assert phases[1][0] <= sigterm.t        # Running through the whole 30 s grace period
    assert one(trace, "JobComplete").t > killed.t


# -- the Deployment ------------------------------------------------------------------------
def _deleted_deployment(version: str, gates=None, delete_after: float = 20) -> Trace:
    return simulate([DEPLOYMENT], k8s_version=version, feature_gates=gates, delete_after=delete_after)


def test_deployment_becomes_available_once_its_pod_is_ready():
    trace = _deleted_deployment("1.29")
    ready = one(trace, "PodReady")
    available = one(trace, "DeploymentAvailable")
    assert available.object == "deployment/sidecar-deploy"
    assert available.t == pytest.approx(ready.t + T.API_WATCH_S)
    pod = trace.pods[0]
    # The workload, as on a real cluster; the ReplicaSet is extra detail (docs/trace.md).
    assert {k: pod.owner[k] for k in ("kind", "name")} == {"kind": "Deployment", "name": "sidecar-deploy"}
    assert pod.owner["via"]["kind"] == "ReplicaSet"
    rs = pod.owner["via"]["name"]
    assert rs.startswith("sidecar-deploy-") and pod.name.startswith(rs + "-") and len(pod.name) == len(rs) + 6


@pytest.mark.parametrize("version", ["1.29", "1.33", "1.36"])
def test_deployment_delete_stops_the_app_first_and_the_sidecar_after_it(version):
    trace = _deleted_deployment(version)
    asked = one(trace, "DeleteRequested")
    assert asked.grace_period_seconds == 30
    # kubectl delete deployment: the Deployment goes, then the ReplicaSet, then the pod
    # (garbage collector hops), each with its own grace period.
    assert asked.t == pytest.approx(20 + 3 * T.API_WATCH_S - POD_CREATED)
    app_term = one(trace, "SIGTERM", "sidecar-deploy")
    assert 0 < app_term.t - asked.t <= T.API_WATCH_S + T.RELIST_PERIOD_S
    killed = one(trace, "Killed", "sidecar-deploy")
    assert killed.exit_code == 137 and killed.t == pytest.approx(app_term.t + 30)
    side_term = one(trace, "SIGTERM", "sws-init")
    # Ordered (1.29+): the sidecar's turn comes when the app is gone, 30 s after T0, and
    # it gets the 2 s minimum grace; static-web-server exits 0 at once.
    assert side_term.t == pytest.approx(killed.t)
    assert index(trace, side_term) > index(trace, killed)
    side_exit = one(trace, "Exited", "sws-init")
    assert side_exit.exit_code == 0 and side_exit.t == pytest.approx(side_term.t + T.SERVER_SHUTDOWN_S)
    phase = [e for e in trace.events if e.type == "PodPhase"][-1]
    assert phase.phase == "Failed" and phase.t == pytest.approx(side_exit.t)
    assert one(trace, "Deleted").t == pytest.approx(side_exit.t + T.TERMINATED_POD_DELETE_S)
    assert trace.pods[0].final.deleted


def test_deployment_delete_on_1_28_stops_app_and_sidecar_together():
    trace = _deleted_deployment("1.28", {"SidecarContainers": True})
    app_term = one(trace, "SIGTERM", "sidecar-deploy")
    side_term = one(trace, "SIGTERM", "sws-init")
    assert side_term.t == app_term.t            # alpha: sidecars terminated like regular containers
    side_exit = one(trace, "Exited", "sws-init")
    killed = one(trace, "Killed", "sidecar-deploy")
    assert side_exit.t < killed.t               # the sidecar is gone ~30 s before the app
    assert killed.t == pytest.approx(app_term.t + 30)


def test_1_28_means_the_blogs_cluster_with_the_gate_on_as_everywhere_in_labkit():
    assert lab_feature_gates("1.28") == {"SidecarContainers": True}
    trace = simulate([JOB], k8s_version="1.28")
    assert trace.feature_gates == {"SidecarContainers": True}
    assert trace.first("JobComplete") is not None and trace.pods[0].containers[0].role == "sidecar"


def test_1_28_without_the_gate_rejects_the_blog_manifests():
    """With the gate off the API server drops restartPolicy, and a plain init container may
    not have a startupProbe, so kubectl apply fails (the real 1.28 behaviour)."""
    for manifest in (JOB, DEPLOYMENT):
        with pytest.raises(InvalidInput) as err:
            simulate([manifest], k8s_version="1.28", feature_gates=GATE_OFF)
        assert err.value.field == "spec.template.spec.initContainers[0].startupProbe"
        assert err.value.source == str(manifest)


@pytest.mark.parametrize("manifest", [JOB, DEPLOYMENT])
def test_1_28_without_the_gate_a_sidecar_without_probe_blocks_init_forever(manifest):
    doc = yaml.safe_load(manifest.read_text())
    del doc["spec"]["template"]["spec"]["initContainers"][0]["startupProbe"]
    trace = simulate([doc], k8s_version="1.28", feature_gates=GATE_OFF, until_seconds=120)
    assert [c.role for c in trace.pods[0].containers] == ["init", "app"]
    assert any("plain init container" in w for w in trace.extra["warnings"])
    started = [e.container for e in trace.select("Started")]
    assert started == ["sws-init"]
    assert {e.phase for e in trace.select("PodPhase")} == {"Pending"}
    assert not trace.select({"JobComplete", "DeploymentAvailable"})
    assert trace.duration <= 120
