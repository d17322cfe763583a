"""SimLab, the notebook API on the simulator: what it prints, what it returns, virtual time."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from labkit import lab as labmod
from labkit.errors import InvalidInput, WaitTimeout
from labkit.sim import SimLab
import expected_timing as T  # written out, not read from labkit.sim.timing
from labkit.sim import lab as simlab_module
from labkit.trace import Trace

ROOT = Path(__file__).parents[2]
JOB = str(ROOT / "manifests" / "job-sidecar.yaml")
DEPLOYMENT = str(ROOT / "manifests" / "deployment-sidecar.yaml")
SCENARIOS = ROOT / "tests" / "data" / "scenarios"


def test_apply_prints_the_kubectl_command_and_its_lines(capsys):
    lab = SimLab("1.29")
    assert lab.apply(JOB) == ["job.batch/sidecar-job created"]
    assert lab.apply(JOB) == ["job.batch/sidecar-job unchanged"]
    out = capsys.readouterr().out.splitlines()
    assert out == [f"$ kubectl apply -f {JOB}", "job.batch/sidecar-job created",
                   f"$ kubectl apply -f {JOB}", "job.batch/sidecar-job unchanged"]
    assert lab.backend == "sim" and lab.kubernetes_version == "1.29.0"
    assert lab.feature_gates == {"SidecarContainers": True}


def test_apply_text_and_objects_and_warnings(capsys):
    lab = SimLab("1.28", feature_gates={"SidecarContainers": False})
    doc = yaml.safe_load(Path(JOB).read_text())
    del doc["spec"]["template"]["spec"]["initContainers"][0]["startupProbe"]
    assert lab.apply(yaml.safe_dump(doc)) == ["job.batch/sidecar-job created"]
    out = capsys.readouterr().out
    assert out.startswith("$ kubectl apply -f -\n")
    assert "Warning: <input>: labkit: spec.template.spec.initContainers[0].restartPolicy was dropped" in out
    assert lab.trace().extra["warnings"]


def test_bad_input_names_the_file_and_field():
    lab = SimLab("1.29", quiet=True)
    doc = yaml.safe_load(Path(JOB).read_text())
    doc["spec"]["template"]["spec"]["initContainers"][0]["restartPolicy"] = "OnFailure"
    with pytest.raises(InvalidInput) as err:
        lab.apply(doc)
    assert err.value.field == "spec.template.spec.initContainers[0].restartPolicy"


def test_wait_runs_virtual_time_and_returns_the_seconds_waited(capsys):
    lab = SimLab("1.29")
    lab.apply(JOB)
    waited = lab.wait("job/sidecar-job", "Complete", timeout=120)
    trace = lab.trace()
    # lab time counts from the apply, trace time from the first event (the pod appearing)
    assert waited == pytest.approx(trace.first("JobComplete").t + 2 * T.CONTROLLER_S)
    out = capsys.readouterr().out
    assert "$ kubectl wait job/sidecar-job --for=condition=Complete --timeout=120s" in out
    assert "job.batch/sidecar-job condition met" in out
    assert lab.now == pytest.approx(waited)


def test_wait_timeout_explains_what_the_pod_looks_like():
    lab = SimLab("1.29", quiet=True)
    lab.apply(JOB)
    with pytest.raises(WaitTimeout) as err:
        lab.wait("job/sidecar-job", "Complete", timeout=5)
    text = str(err.value)
    assert "timed out after 5s" in text
    assert "Init:0/1" in text                                  # the kubectl STATUS then
    assert "sws-init (sidecar): running" in text and "started=false" in text
    assert "conditions:" in text and "recent events:" in text
    assert lab.now == pytest.approx(5)


def test_wait_timeout_shows_trace_times_and_no_invented_date():
    lab = SimLab("1.29", quiet=True)
    lab.apply(str(ROOT / "manifests" / "legacy" / "job-legacy-sidecar.yaml"))
    with pytest.raises(WaitTimeout) as err:
        lab.wait("job/legacy-sidecar-job", "Complete", timeout=60)
    text = str(err.value)
    trace = lab.trace()
    assert not re.search(r"\b(19|20)\d\d-\d\d-\d\d", text), text          # no date, made up or not
    assert text.splitlines()[:2] == ["timed out after 60s waiting for condition Complete on job/legacy-sidecar-job",
                                     f"(virtual time t={trace.observed_until:.2f} s of the trace)"]
    started = trace.first("Started", container="sws").t
    assert f"sws (app): running since t={started:.2f} s, started=true" in text
    # every recent event is shown at the trace's time of that event
    shown = re.findall(r"^  t=(\d+\.\d\d) s +Normal (\w+) pod/\S+(?: \[spec\.(\w+)\{([\w-]+)\}\])?", text, re.M)
    assert len(shown) == min(12, len(trace.events))
    for t, etype, _, container in shown:
        assert any(f"{e.t:.2f}" == t and e.type == etype and (e.container or "") == container for e in trace.events)
    assert f"t={trace.first('StartupProbeSucceeded').t:.2f} s  Normal StartupProbeSucceeded" in text


def test_init_container_events_name_init_containers_in_the_timeout_text():
    lab = SimLab("1.29", quiet=True)
    lab.apply(JOB)
    with pytest.raises(WaitTimeout) as err:
        lab.wait("job/sidecar-job", "Complete", timeout=5)
    assert "Normal Started pod/" in str(err.value) and "[spec.initContainers{sws-init}]: attempt=0" in str(err.value)


def test_pod_json_timestamps_count_from_1970_at_the_traces_t0():
    lab = SimLab("1.29", quiet=True)
    lab.apply(JOB)
    lab.sleep(5)
    trace = lab.trace()
    pod = lab.pod_json(lab.cluster.pods[trace.pods[0].name])
    (sidecar,) = pod["status"]["initContainerStatuses"]
    started = trace.first("Started", container="sws-init").t
    assert sidecar["state"]["running"]["startedAt"] == f"1970-01-01T00:00:{started:06.3f}Z"
    assert pod["metadata"]["creationTimestamp"] == "1970-01-01T00:00:00.000Z"     # the pod appearing: t = 0
    assert repr(lab) == f"<SimLab Kubernetes 1.29.0 (simulated), t={trace.observed_until:.2f} s>"


def test_wait_on_a_selector_finds_pods_the_controller_creates_after_the_apply():
    lab = SimLab("1.29", quiet=True)
    lab.apply(DEPLOYMENT)
    lab.wait("pods -l app=sidecar-deploy", "Ready", timeout=60)
    (pod,) = lab.trace().pods
    assert lab.trace().first("PodReady", pod=pod.name) is not None


@pytest.mark.parametrize(("ref", "condition"), [("job/x", "Available"), ("pod/x", "Complete"), ("deployment/x", "Ready")])
def test_wait_rejects_conditions_that_do_not_apply(ref, condition):
    with pytest.raises(InvalidInput):
        SimLab("1.29", quiet=True).wait(ref, condition)


def test_unknown_objects_are_not_found():
    lab = SimLab("1.29", quiet=True)
    with pytest.raises(InvalidInput, match="NotFound"):
        lab.delete("deployment/nope")
    with pytest.raises(InvalidInput, match="not found"):
        lab.wait("pod/nope", "Ready")
    with pytest.raises(InvalidInput, match="labkit handles pods, Jobs and Deployments, not 'service'"):
        lab.wait("service/x", "Ready")


def test_delete_waits_until_the_pods_are_gone(capsys):
    lab = SimLab("1.29")
    lab.apply(DEPLOYMENT)
    lab.wait("deployment/sidecar-deploy", "Available")
    before = lab.now
    assert lab.delete("deployment/sidecar-deploy") == ['deployment.apps "sidecar-deploy" deleted']
    # The app ignores SIGTERM: 30 s of grace, then the sidecar, then the object goes.
    assert 30 < lab.now - before < 32
    out = capsys.readouterr().out
    assert "$ kubectl delete deployment/sidecar-deploy" in out
    assert 'deployment.apps "sidecar-deploy" deleted' in out
    assert str(lab.pods()) == "No resources found in default namespace."


def test_delete_pod_with_grace_period_and_force():
    lab = SimLab("1.29")
    lab.apply(DEPLOYMENT)
    lab.wait("deployment/sidecar-deploy", "Available")
    pod = lab.pods()[0].name
    before = lab.now
    assert lab.delete(f"pod/{pod}", grace_period=0) == [f'pod "{pod}" force deleted']
    assert lab.now == before  # a force delete is gone at once
    # The ReplicaSet replaces the deleted pod.
    lab.sleep(1)
    names = [row.name for row in lab.pods()]
    assert len(names) == 1 and names[0] != pod
    assert lab.trace().first("DeleteRequested").grace_period_seconds == 0


def test_a_finished_pod_is_removed_at_once_when_deleted():
    """The API server gives a pod that has Succeeded or Failed grace 0, whatever was asked
    (podStrategy.CheckGracefulDelete); on labkit's node the DELETED event came within kubectl
    delete's own 0.1 s in six runs of six (docs/timing.md)."""
    lab = SimLab("1.37", quiet=True)
    lab.apply(JOB)
    lab.wait("job/sidecar-job", "Complete")
    lab.sleep(2)
    pod = lab.pods()[0].name
    before = lab.now
    lab.delete(f"pod/{pod}")
    assert lab.now == before
    asked = lab.trace().first("DeleteRequested")
    assert asked.grace_period_seconds == 0 and lab.trace().first("Deleted").t == asked.t


def test_a_pod_deleted_as_its_terminal_phase_is_published_still_goes():
    """The delete reaches the kubelet just after the worker published Succeeded: the API server had
    given the pod its grace, and the status manager deletes it as after any termination."""
    first = SimLab("1.37", quiet=True)
    first.apply(JOB)
    first.wait("job/sidecar-job", "Complete")
    trace = first.trace()
    succeeded = next(e.t for e in trace.events if e.type == "PodPhase" and e.phase == "Succeeded")
    lab = SimLab("1.37", quiet=True)
    lab.apply(JOB)
    # trace times count from the pod's creation, two controller hops after the apply; the delete
    # is asked half a watch hop before the publish and seen half a hop after it
    lab.sleep(2 * T.CONTROLLER_S + succeeded - T.API_WATCH_S / 2)
    pod = lab.pods()[0].name
    lab.delete(f"pod/{pod}", timeout=30)
    assert str(lab.pods()) == "No resources found in default namespace."


@pytest.mark.parametrize("running", [False, True])
def test_finalizers_keep_a_deleted_pod_whatever_the_grace(tmp_path, running):
    """A finished pod (given grace 0 by the API server) and a running one force-deleted stay while a
    finalizer is on them; their containers stop all the same."""
    command = ["sleep", "3600"] if running else ["true"]
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kept", "finalizers": ["example.com/keep"]},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1.37", "command": command}]}}))
    lab = SimLab("1.37", quiet=True)
    lab.apply(str(manifest))
    lab.sleep(5)
    lab.delete("pod/kept", grace_period=0 if running else None, wait=False)
    lab.sleep(10)
    assert [row.name for row in lab.pods()] == ["kept"]
    trace = lab.trace()
    assert not [e for e in trace.events if e.type == "Deleted"]
    assert trace.pods[0].final.phase in ("Succeeded", "Failed")


def test_pods_table_shows_kubectl_statuses():
    lab = SimLab("1.29", quiet=True)
    lab.apply(JOB)
    lab.apply(DEPLOYMENT)
    lab.sleep(5)
    rows = {row.name.rsplit("-", 1)[0]: row for row in lab.pods()}
    assert rows["sidecar-job"].status == "Init:0/1" and rows["sidecar-job"].ready == "0/2"
    lab.wait("job/sidecar-job", "Complete")
    lab.wait("deployment/sidecar-deploy", "Available")
    table = lab.pods()
    rows = {row.name.rsplit("-", 1)[0]: row for row in table}
    assert rows["sidecar-job"].status == "Completed" and rows["sidecar-job"].ready == "0/2"
    deploy = next(r for r in table if r.name.startswith("sidecar-deploy"))
    assert deploy.status == "Running" and deploy.ready == "2/2"
    lab.delete("deployment/sidecar-deploy", wait=False)
    lab.sleep(2)
    deploy = next(r for r in lab.pods() if r.name.startswith("sidecar-deploy"))
    assert deploy.status == "Terminating" and deploy.ready == "2/2"    # ready until gone
    assert str(table).splitlines()[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]


def test_logs_show_what_the_process_can_honestly_print():
    lab = SimLab("1.29", quiet=True)
    lab.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "talker"},
               "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                        "command": ["sh", "-c", "echo start; while true; do echo tick; sleep 10; done"]}]}})
    lab.sleep(25)
    assert lab.logs("talker").splitlines() == ["start", "tick", "tick", "tick"]
    lab.apply(JOB)
    lab.wait("job/sidecar-job", "Complete")
    assert lab.logs("job/sidecar-job") == ""                      # echo went to /tmp/info.log
    assert "not modelled" in lab.logs("job/sidecar-job", "sws-init")


def test_set_image_restarts_only_that_sidecar():
    lab = SimLab("1.29", quiet=True)
    lab.apply(DEPLOYMENT)
    lab.wait("deployment/sidecar-deploy", "Available")
    pod = lab.pods()[0].name
    lab.set_image(f"pod/{pod}", "sws-init", "joseluisq/static-web-server:2.45.0")
    lab.sleep(5)
    trace = lab.trace()
    assert [e.attempt for e in trace.select("Started", container="sws-init")] == [0, 1]
    assert len(trace.select("Started", container="sidecar-deploy")) == 1
    with pytest.raises(InvalidInput, match="no container"):
        lab.set_image(f"pod/{pod}", "nope", "x")
    with pytest.raises(InvalidInput, match="a Job's template cannot change"):
        lab.set_image("job/sidecar-job", "sws-init", "x")


def test_set_image_of_a_deployment_rolls_out_a_new_pod():
    lab = SimLab("1.29", quiet=True)
    lab.apply(DEPLOYMENT)
    lab.wait("deployment/sidecar-deploy", "Available")
    old = lab.pods()[0].name
    assert lab.set_image("deployment/sidecar-deploy", "sws-init", "joseluisq/static-web-server:2.45.0") == \
        ["deployment.apps/sidecar-deploy image updated"]
    lab.sleep(60)
    rows = lab.pods()
    assert [row.name for row in rows] != [old] and len(rows) == 1
    new = lab.cluster.pods[rows[0].name]
    assert new.by_name["sws-init"].image == "joseluisq/static-web-server:2.45.0"


def test_trace_is_a_valid_trace_and_reset_starts_over():
    lab = SimLab("1.33", quiet=True, seed=5, cluster_name="ignored", keep_cluster=True)
    lab.apply(JOB)
    lab.wait("job/sidecar-job", "Complete")
    trace = lab.trace()
    again = Trace.from_dict(trace.to_dict())
    assert again.kubernetes_version == "1.33.0" and again.backend == "sim" and again.origin is None
    assert again.extra["generator"] == "labkit simulator — a model of the kubelet, not a cluster"
    assert again.extra["seed"] == 5
    assert [e.t for e in again.events] == sorted(e.t for e in again.events)
    lab.reset()
    assert lab.trace().events == [] and lab.trace().pods == []
    lab.apply(JOB)
    lab.wait("job/sidecar-job", "Complete")
    assert lab.trace().to_json() == trace.to_json()             # same seed, same run


def test_scenarios_apply_with_their_behaviour_and_action():
    lab = SimLab("1.29", quiet=True)
    lab.apply(SCENARIOS / "sidecars-reverse-order-after-main-completes.yaml")
    lab.wait("pod/serialize-termination", "Succeeded", timeout=120)
    exits = [e.container for e in lab.trace().select("Exited")]
    assert exits == ["regular-1", "restartable-init-3", "restartable-init-2", "restartable-init-1"]
    lab.apply(SCENARIOS / "delete-during-init-does-not-wait-for-sidecars.yaml")
    assert lab.wait("pod/dont-hang-if-terminated-in-init", "Deleted", timeout=30) < 6


def test_listeners_see_the_trace_grow():
    lab = SimLab("1.29", quiet=True)
    seen: list[tuple[float, int]] = []
    lab.add_listener(lambda trace: seen.append((trace.duration, len(trace.events))))
    lab.apply(JOB)
    lab.wait("job/sidecar-job", "Complete")
    assert len(seen) >= 5
    assert [n for _, n in seen] == sorted(n for _, n in seen)
    assert seen[-1][1] == len(lab.trace().events)


def test_pace_sleeps_in_step_with_virtual_time(monkeypatch):
    naps: list[float] = []
    monkeypatch.setattr(simlab_module.time, "sleep", naps.append)
    lab = SimLab("1.29", quiet=True, pace=4.0)
    calls = []
    lab.add_listener(lambda trace: calls.append(trace.duration))
    lab.apply(JOB)
    lab.sleep(6)
    # 6 virtual seconds at 4x: 1.5 wall seconds, in naps of at most 0.5 virtual s each.
    assert sum(naps) == pytest.approx(1.5)
    assert max(naps) <= 0.5 / 4 + 1e-9
    assert len(calls) >= 12
    with pytest.raises(InvalidInput):
        SimLab("1.29", pace=0)


def test_connect_gives_a_simlab_and_context_manager(capsys):
    with labmod.connect(backend="sim", k8s_version="1.36", seed=1) as lab:
        assert isinstance(lab, SimLab) and lab.kubernetes_version == "1.36.0"
        assert lab.why == "backend='sim' was asked for"
        assert lab.feature_gates == {"SidecarContainers": True}  # 1.36 still has the gate, locked on (gone in 1.37)


def test_quiet_prints_nothing(capsys):
    lab = SimLab("1.29", quiet=True)
    lab.apply(JOB)
    lab.wait("job/sidecar-job", "Complete")
    lab.pods()
    assert capsys.readouterr().out == ""


def test_a_sim_lab_on_1_28_is_the_blogs_cluster_unless_told_otherwise():
    assert SimLab("1.28", quiet=True).feature_gates == {"SidecarContainers": True}
    assert SimLab("1.28", feature_gates={"SidecarContainers": False}, quiet=True).feature_gates == {
        "SidecarContainers": False}
    assert SimLab("1.33", quiet=True).feature_gates == {"SidecarContainers": True}


def test_pod_json_is_one_status_snapshot():
    """The pod's phase and its containers' states come from the same status the kubelet generated
    (generateAPIPodStatus), never from two moments: an app container is never shown running or
    terminated in a Pending pod, and a restart count never runs ahead of the reported run."""
    lab = SimLab("1.29", quiet=True)
    lab.apply(JOB)
    seen = set()
    for _ in range(400):
        lab.sleep(0.05)
        for pod in lab.cluster.pods.values():
            status = lab.pod_json(pod)["status"]
            apps = {next(iter(c["state"])) for c in status["containerStatuses"]}
            seen.add((status["phase"], tuple(sorted(apps))))
            if status["phase"] == "Pending":
                # waiting, or no statuses at all before the kubelet's first one
                assert apps <= {"waiting"}, status
    assert ("Running", ("terminated",)) in seen and ("Succeeded", ("terminated",)) in seen


def _blog_job(**conditions) -> Trace:
    lab = SimLab("1.37", quiet=True, **conditions)
    lab.apply(JOB)
    lab.wait("job/sidecar-job", "Complete")
    return lab.trace()


def test_relist_phase_sets_where_the_kubelet_acts_within_the_second():
    """The sidecar is Ready at the first relist after its startup probe's success, and the app's
    exit is seen at a later one: ticks half a second later in the second move both by that
    much (modulo the period), and nothing that does not wait for a relist."""
    early, late = _blog_job(relist_phase=0.3), _blog_job(relist_phase=0.8)
    for trace in (early, late):
        probe, ready = trace.first("StartupProbeSucceeded").t, trace.first("Ready", container="sws-init").t
        assert probe < ready <= probe + T.RELIST_PERIOD_S
    for what in (("Ready", "sws-init"), ("NotReady", "sidecar-job")):
        moved = late.first(what[0], container=what[1]).t - early.first(what[0], container=what[1]).t
        assert moved % T.RELIST_PERIOD_S == pytest.approx(0.5)
    assert late.first("StartupProbeSucceeded").t == pytest.approx(early.first("StartupProbeSucceeded").t)


def test_cpu_scales_stretch_the_throttled_starts_alone():
    """Half the CPU time for the sandbox's start (the pod's 20m) and then for a container's (10m):
    the sidecar starts that much sooner, and only a container's moves the app; the startup probe,
    ticking from the pod's first sync, moves with neither."""
    full = _blog_job()
    sandbox, container = _blog_job(sandbox_cpu_scale=0.5), _blog_job(container_cpu_scale=0.5)
    sidecar = {name: trace.first("Started", container="sws-init").t
               for name, trace in (("full", full), ("sandbox", sandbox), ("container", container))}
    assert sidecar["full"] - sidecar["sandbox"] == pytest.approx(
        T.throttled(T.SANDBOX_CPU_S, 0.02) - T.throttled(T.SANDBOX_CPU_S / 2, 0.02))
    assert sidecar["full"] - sidecar["container"] == pytest.approx(
        T.throttled(T.CONTAINER_CPU_S, 0.01) - T.throttled(T.CONTAINER_CPU_S / 2, 0.01))
    app = [trace.first("Started", container="sidecar-job").t for trace in (full, sandbox, container)]
    assert app[0] == pytest.approx(app[1]) and app[2] < app[0]
    probes = [trace.first("StartupProbeSucceeded").t for trace in (full, sandbox, container)]
    assert probes == pytest.approx([probes[0]] * 3)


@pytest.mark.parametrize("option, value", [("relist_phase", 1.0), ("relist_phase", -0.1), ("relist_phase", "0.3"),
                                           ("sandbox_cpu_scale", 0), ("container_cpu_scale", None)])
def test_bad_conditions_are_refused_by_name(option, value):
    with pytest.raises(InvalidInput, match=option):
        SimLab("1.37", quiet=True, **{option: value})
