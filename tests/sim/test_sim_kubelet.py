"""The kubelet model, one rule at a time: back-off, restart policies, hooks, probes, grace.

Pods are written in the scenario format (a Pod plus a ``behaviour`` block) so that each
test says exactly what the processes do.
"""

from __future__ import annotations

import pytest

from labkit.sim import simulate
from labkit.sim import timing as T
from labkit.trace import Trace


def helper(run=600, code=0, term_after=0.0, term_code=0, **extra) -> dict:
    """The upstream e2e helper: runs ``run`` s, traps SIGTERM and exits after ``term_after``."""
    return {"process": "e2e-helper", "run_seconds": run, "exit_code": code, "handles_sigterm": True,
            "sigterm_exit_after_seconds": term_after, "sigterm_exit_code": term_code, **extra}


def ignores(run=None, **extra) -> dict:
    """A shell loop as PID 1: no handler, SIGTERM ignored."""
    return {"process": "shell-script", "run_seconds": run, "handles_sigterm": False, **extra}


def pod(init=(), apps=("app",), *, restart="Never", tgps=None, behaviour=None, action="none", **spec_extra) -> dict:
    """A scenario document: ``init`` entries are names (plain) or ("name", "sidecar")."""
    inits = []
    for entry in init:
        name, kind = (entry, "init") if isinstance(entry, str) else entry
        c = {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", "sleep 1"]}
        if kind == "sidecar":
            c["restartPolicy"] = "Always"
        inits.append(c)
    spec = {"restartPolicy": restart, "initContainers": inits,
            "containers": [{"name": n, "image": "busybox:1.36", "command": ["sh", "-c", "sleep 1"]} for n in apps]}
    if tgps is not None:
        spec["terminationGracePeriodSeconds"] = tgps
    spec.update(spec_extra)
    names = [c["name"] for c in inits] + list(apps)
    return {"id": "t", "pod": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec},
            "behaviour": {n: (behaviour or {}).get(n, helper()) for n in names}, "action": action}


def container(doc: dict, name: str) -> dict:
    spec = doc["pod"]["spec"]
    return next(c for c in spec["initContainers"] + spec["containers"] if c["name"] == name)


def _running(trace: Trace, name: str, t: float) -> bool:
    starts = [x for x in times(trace, "Started", name) if x <= t]
    stops = [x for x in times(trace, "Exited", name) + times(trace, "Killed", name) if x <= t]
    return bool(starts) and (not stops or max(starts) > max(stops))


def times(trace: Trace, type_: str, name: str | None = None) -> list[float]:
    return [e.t for e in trace.events if e.type == type_ and (name is None or e.container == name)]


# -- CrashLoopBackOff ---------------------------------------------------------------------------
def _crashing_sidecar(version: str, seed: int = 0, until: float = 200) -> Trace:
    doc = pod([("side", "sidecar")], behaviour={"side": helper(run=1, code=1), "app": helper(run=1000)})
    return simulate([doc], k8s_version=version, until_seconds=until, seed=seed)


def test_backoff_from_1_35_restarts_exactly_when_it_expires():
    trace = _crashing_sidecar("1.35")
    exits, starts = times(trace, "Exited", "side"), times(trace, "Started", "side")
    delays = [round(s - e - T.CONTAINER_START_S, 6) for e, s in zip(exits, starts[1:])]
    # First restart at once (at the sync after the exit, within a relist period), then
    # 10, 20, 40, 80 s after FinishedAt: the pod worker is requeued at the exact expiry.
    assert 0 < delays[0] <= T.RELIST_PERIOD_S
    assert delays[1:5] == [10, 20, 40, 80]


def test_backoff_before_1_35_waits_for_the_jittered_resync():
    trace = _crashing_sidecar("1.29")
    exits, starts = times(trace, "Exited", "side"), times(trace, "Started", "side")
    delays = [s - e - T.CONTAINER_START_S for e, s in zip(exits, starts[1:])]
    assert 0 < delays[0] <= T.RELIST_PERIOD_S
    for backoff, delay in zip([10, 20, 40], delays[1:4]):
        # The restart happens at the first resync after the back-off expired; resyncs come
        # every [10 s, 15 s) after a sync that hit the back-off.
        assert backoff <= delay < backoff + 15, (backoff, delay)
    assert any(d != b for b, d in zip([10, 20, 40], delays[1:4]))


def test_the_jittered_requeue_is_deterministic_for_a_seed():
    a, b, c = (_crashing_sidecar("1.29", seed=s, until=120) for s in (7, 7, 8))
    assert a.to_json() == b.to_json()
    assert times(a, "Started", "side") != times(c, "Started", "side")


def test_backoff_resets_after_ten_minutes_of_running():
    runs = [{"run_seconds": 1, "exit_code": 1}, {"run_seconds": 1, "exit_code": 1},
            {"run_seconds": 700, "exit_code": 1}, {"run_seconds": 1, "exit_code": 1}]
    doc = pod([("side", "sidecar")], behaviour={"side": helper(runs=runs), "app": helper(run=2000)})
    trace = simulate([doc], k8s_version="1.35", until_seconds=900)
    exits, starts = times(trace, "Exited", "side"), times(trace, "Started", "side")
    assert starts[2] - exits[1] == pytest.approx(10 + T.CONTAINER_START_S)
    # The third instance ran 700 s > 2 x 300 s: its back-off entry expired, so the restart
    # after it is immediate again (next sync), not 20 s later.
    assert starts[3] - exits[2] <= T.RELIST_PERIOD_S + T.CONTAINER_START_S


def test_an_image_change_gives_a_crashlooping_sidecar_a_fresh_backoff():
    doc = pod([("side", "sidecar")], behaviour={"side": helper(run=1, code=1), "app": helper(run=1000)},
              action={"update_image": {"container": "side", "after_seconds": 100}})
    trace = simulate([doc], k8s_version="1.35", until_seconds=130)
    starts = times(trace, "Started", "side")
    # Without the change the restart after the exit at ~82 s would wait 80 s (until ~163 s).
    after = [s for s in starts if s > 100]
    assert after and after[0] < 100 + T.API_WATCH_S + T.RELIST_PERIOD_S + T.CONTAINER_START_S + 1e-6


# -- restart policies -----------------------------------------------------------------------------
@pytest.mark.parametrize(("policy", "code", "restarts", "phase"), [
    ("Never", 1, 0, "Failed"), ("Never", 0, 0, "Succeeded"),
    ("OnFailure", 0, 0, "Succeeded"), ("OnFailure", 1, ">0", "Running"),
    ("Always", 0, ">0", "Running"), ("Always", 1, ">0", "Running"),
])
def test_regular_containers_follow_the_pod_restart_policy(policy, code, restarts, phase):
    doc = pod([("side", "sidecar")], restart=policy, behaviour={"side": helper(), "app": helper(run=2, code=code)})
    trace = simulate([doc], k8s_version="1.29", until_seconds=60)
    final = trace.pods[0].final
    count = final.containers["app"].restart_count
    assert count > 0 if restarts == ">0" else count == restarts
    assert final.phase == phase
    assert final.containers["side"].restart_count == 0


@pytest.mark.parametrize("policy", ["Never", "OnFailure", "Always"])
def test_a_sidecar_restarts_on_every_exit_whatever_the_policy(policy):
    doc = pod([("side", "sidecar")], restart=policy, behaviour={"side": helper(run=3, code=0), "app": helper(run=1000)})
    trace = simulate([doc], k8s_version="1.29", until_seconds=60)
    assert trace.pods[0].final.containers["side"].restart_count >= 2
    assert trace.pods[0].final.phase == "Running"


def test_sidecar_exit_codes_do_not_decide_the_phase():
    doc = pod([("side", "sidecar")], behaviour={"side": helper(term_code=1, term_after=0), "app": helper(run=3)})
    trace = simulate([doc], k8s_version="1.29")
    final = trace.pods[0].final
    assert final.containers["side"].exit_code == 1
    assert final.phase == "Succeeded"


# -- images ---------------------------------------------------------------------------------------------
def test_an_image_that_cannot_be_pulled_keeps_the_pod_pending():
    doc = pod([("side", "sidecar")], behaviour={"side": helper(image_pull_fails=True), "app": helper()})
    trace = simulate([doc], k8s_version="1.29", until_seconds=120)
    pulls = times(trace, "ImagePullFailed", "side")
    assert len(pulls) >= 3
    assert all(b - a >= 10 for a, b in zip(pulls, pulls[1:]))     # image pull back-off
    final = trace.pods[0].final
    assert final.containers["side"].state == "waiting"
    assert final.containers["side"].reason in ("ImagePullBackOff", "ErrImagePull")
    assert {e.phase for e in trace.select("PodPhase")} == {"Pending"}
    assert not times(trace, "Started")


# -- hooks --------------------------------------------------------------------------------------------------
def test_post_start_blocks_the_next_container():
    doc = pod([("side", "sidecar")], apps=("one", "two"),
              behaviour={"side": helper(hooks={"postStart": {"run_seconds": 5}}),
                         "one": helper(hooks={"postStart": {"run_seconds": 3}}), "two": helper()})
    container(doc, "side")["lifecycle"] = {"postStart": {"exec": {"command": ["sleep", "5"]}}}
    container(doc, "one")["lifecycle"] = {"postStart": {"exec": {"command": ["sleep", "3"]}}}
    trace = simulate([doc], k8s_version="1.29", until_seconds=30)
    side, one, two = (times(trace, "Started", n)[0] for n in ("side", "one", "two"))
    assert times(trace, "PostStart", "side") == [side]
    assert one - side >= 5            # the sidecar counts as started only after its postStart
    assert two - one == pytest.approx(3 + T.CONTAINER_START_S)   # within one sync, after one's hook


def test_a_failing_post_start_kills_the_container():
    doc = pod(apps=("app",), behaviour={"app": helper(hooks={"postStart": {"run_seconds": 1, "exit_code": 1}})},
              restart="Always")
    container(doc, "app")["lifecycle"] = {"postStart": {"exec": {"command": ["sh", "-c", "exit 1"]}}}
    trace = simulate([doc], k8s_version="1.29", until_seconds=30)
    assert times(trace, "SIGTERM", "app")
    assert trace.pods[0].final.containers["app"].restart_count >= 1


# -- termination ------------------------------------------------------------------------------------------
def test_one_grace_budget_shared_by_prestop_and_the_sidecar_wait():
    doc = pod([("side", "sidecar")], tgps=10, behaviour={
        "side": helper(term_after=0.5, hooks={"preStop": {"run_seconds": 2}}),
        "app": ignores(hooks={"preStop": {"run_seconds": 5}})},
        action={"delete_pod_after_seconds": 20})
    container(doc, "side")["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "2"]}}}
    container(doc, "app")["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    trace = simulate([doc], k8s_version="1.29")
    t0 = times(trace, "PreStop", "app")[0]
    assert times(trace, "PreStop", "side") == [t0]                 # all preStops at T0
    assert times(trace, "SIGTERM", "app") == [pytest.approx(t0 + 5)]
    assert times(trace, "Killed", "app") == [pytest.approx(t0 + 10)]    # 10 - 5 = 5 s left
    # The sidecar: preStop 2 s, then waits 8 s for the app: 10 - 2 - 8 = 0 -> the 2 s minimum.
    assert times(trace, "SIGTERM", "side") == [pytest.approx(t0 + 10)]
    assert times(trace, "Exited", "side") == [pytest.approx(t0 + 10.5)]


def test_a_preStop_longer_than_the_grace_is_cut_and_sigterm_still_gets_two_seconds():
    doc = pod(tgps=5, behaviour={"app": ignores(hooks={"preStop": {"loop_forever": True}})},
              action={"delete_pod_after_seconds": 10})
    container(doc, "app")["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "while true; do sleep 1; done"]}}}
    trace = simulate([doc], k8s_version="1.29")
    t0 = times(trace, "PreStop", "app")[0]
    assert times(trace, "SIGTERM", "app") == [pytest.approx(t0 + 5)]
    assert times(trace, "Killed", "app") == [pytest.approx(t0 + 7)]


def test_force_delete_removes_the_object_at_once_and_the_kubelet_still_gives_one_second():
    doc = pod(behaviour={"app": ignores()}, action={"delete_pod_after_seconds": 5, "grace_period_seconds": 0})
    trace = simulate([doc], k8s_version="1.29")
    asked = trace.first("DeleteRequested")
    assert asked.grace_period_seconds == 0
    assert trace.first("Deleted").t == asked.t
    # Effective grace max(0, 1) = 1 s, and SIGKILL never comes earlier than 2 s after SIGTERM.
    sigterm = times(trace, "SIGTERM", "app")[0]
    assert times(trace, "Killed", "app") == [pytest.approx(sigterm + 2)]


def test_liveness_kill_uses_the_probe_grace_period():
    doc = pod([("side", "sidecar")], restart="Always", tgps=60, behaviour={
        "side": ignores(probes={"liveness": {"result": "failure"}}), "app": helper(run=1000)})
    container(doc, "side")["livenessProbe"] = {"exec": {"command": ["false"]}, "failureThreshold": 1,
                                               "terminationGracePeriodSeconds": 7}
    trace = simulate([doc], k8s_version="1.29", until_seconds=60)
    failed = times(trace, "LivenessProbeFailed", "side")[0]
    sigterm = times(trace, "SIGTERM", "side")[0]
    assert 0 <= sigterm - failed <= T.RELIST_PERIOD_S
    assert times(trace, "Killed", "side")[0] == pytest.approx(sigterm + 7)
    assert trace.pods[0].final.containers["app"].restart_count == 0     # only the sidecar restarts


def test_no_restarts_and_no_liveness_while_terminating():
    doc = pod([("side", "sidecar")], tgps=60, behaviour={
        "side": helper(run=25, term_after=100, probes={"liveness": {"result": "success_until_sigterm"}}),
        "app": ignores()}, action={"delete_pod_after_seconds": 15})
    container(doc, "side")["livenessProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 1, "failureThreshold": 1}
    trace = simulate([doc], k8s_version="1.29")
    asked = trace.first("DeleteRequested").t
    # The sidecar's own run ends at ~26 s, during the app's 60 s grace: it is not restarted.
    assert [t for t in times(trace, "Exited", "side") if t > asked]
    assert not [t for t in times(trace, "Started", "side") if t > asked]
    assert not [t for t in times(trace, "LivenessProbeRun", "side") if t > asked + T.API_WATCH_S + T.RELIST_PERIOD_S]


def test_readiness_keeps_running_during_termination_and_turns_false():
    doc = pod([("side", "sidecar")], restart="Always", behaviour={
        "side": helper(term_after=20, probes={"readiness": {"result": "success_until_sigterm"}}),
        "app": helper()}, action={"delete_pod_after_seconds": 20})
    container(doc, "side")["readinessProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 2}
    trace = simulate([doc], k8s_version="1.29")
    sigterm = times(trace, "SIGTERM", "side")[0]
    not_ready = [t for t in times(trace, "NotReady", "side") if t > sigterm]
    # Three consecutive failures (the default threshold), one period apart.
    runs = [t for t in times(trace, "ReadinessProbeRun", "side") if t > sigterm]
    assert not_ready and not_ready[0] == runs[2] and runs[0] - sigterm <= 2
    assert trace.first("PodNotReady").t == not_ready[0]


def test_termination_on_1_29_is_reverse_order_and_on_1_28_all_at_once():
    behaviour = {"s1": helper(term_after=3), "s2": helper(term_after=3), "app": helper(term_after=3)}
    doc = pod([("s1", "sidecar"), ("s2", "sidecar")], behaviour=behaviour, action={"delete_pod_after_seconds": 10})
    ordered = simulate([doc], k8s_version="1.29")
    t = {n: times(ordered, "SIGTERM", n)[0] for n in ("app", "s1", "s2")}
    assert t["s2"] == pytest.approx(t["app"] + 3) and t["s1"] == pytest.approx(t["s2"] + 3)
    alpha = simulate([doc], k8s_version="1.28", feature_gates={"SidecarContainers": True})
    assert len({times(alpha, "SIGTERM", n)[0] for n in ("app", "s1", "s2")}) == 1


def test_shared_process_namespace_lets_a_shell_loop_die_on_sigterm():
    doc = pod(behaviour={}, shareProcessNamespace=True, action={"delete_pod_after_seconds": 5})
    doc["behaviour"] = {}
    container(doc, "app")["command"] = ["sh", "-c", "while true; do sleep 1; done"]
    trace = simulate([doc], k8s_version="1.29")
    exited = trace.first("Exited")
    assert exited.exit_code == 143 and exited.t == trace.first("SIGTERM").t


# -- probes ----------------------------------------------------------------------------------------------------
def test_an_exec_probe_that_outlives_its_timeout_fails_after_the_timeout():
    doc = pod([("side", "sidecar")], restart="Always", behaviour={
        "side": ignores(probes={"liveness": {"result": "timeout", "exec_seconds": 10}}), "app": helper(run=1000)})
    container(doc, "side")["livenessProbe"] = {"exec": {"command": ["sleep", "10"]}, "timeoutSeconds": 2,
                                               "failureThreshold": 1}
    trace = simulate([doc], k8s_version="1.29", until_seconds=40)
    run, failed = times(trace, "LivenessProbeRun", "side")[0], times(trace, "LivenessProbeFailed", "side")[0]
    assert failed == pytest.approx(run + 2)


def test_failure_threshold_counts_consecutive_failures():
    doc = pod([("side", "sidecar")], behaviour={
        "side": ignores(probes={"startup": {"result": "failure"}}), "app": helper()})
    container(doc, "side")["startupProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 2, "failureThreshold": 4}
    trace = simulate([doc], k8s_version="1.29", until_seconds=30)
    runs = times(trace, "StartupProbeRun", "side")
    assert times(trace, "StartupProbeFailed", "side")[0] == runs[3]
    assert [b - a for a, b in zip(runs, runs[1:4])] == [pytest.approx(2)] * 3
    assert not times(trace, "Started", "app")


def test_initial_delay_uses_whole_seconds_since_the_container_started():
    doc = pod([("side", "sidecar")], behaviour={"side": helper(), "app": helper()})
    container(doc, "side")["startupProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 1,
                                              "initialDelaySeconds": 4}
    trace = simulate([doc], k8s_version="1.29", until_seconds=30)
    started = times(trace, "Started", "side")[0]
    run = times(trace, "StartupProbeRun", "side")[0]
    assert int(round(run - started, 6)) >= 4 and int(round(run - started - 1, 6)) < 4


def test_sidecar_probe_workers_before_1_35_can_die_with_a_sidecar_in_a_never_pod():
    """kubernetes#132826 (fixed by #133072 in 1.35): a probe tick that sees the sidecar
    Terminated ends the worker when the pod's restartPolicy is Never."""
    doc = pod([("side", "sidecar")], behaviour={
        "side": ignores(runs=[{"run_seconds": 0, "exit_code": 1}, {"run_seconds": 120, "exit_code": 0}]),
        "app": helper()})
    container(doc, "side")["startupProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 2,
                                              "initialDelaySeconds": 3, "failureThreshold": 10}
    old = simulate([doc], k8s_version="1.29", until_seconds=90)
    new = simulate([doc], k8s_version="1.35", until_seconds=90)
    assert not times(old, "Started", "app") and not times(old, "StartupProbeSucceeded")
    assert times(new, "StartupProbeSucceeded", "side") and times(new, "Started", "app")


# -- determinism ----------------------------------------------------------------------------------------------
def test_same_seed_same_trace_other_seed_other_names():
    doc = pod([("side", "sidecar")], behaviour={"side": helper(run=2, code=1), "app": helper(run=50)})
    a = simulate([doc, "manifests/job-sidecar.yaml"], k8s_version="1.29", seed=3, until_seconds=80)
    b = simulate([doc, "manifests/job-sidecar.yaml"], k8s_version="1.29", seed=3, until_seconds=80)
    c = simulate([doc, "manifests/job-sidecar.yaml"], k8s_version="1.29", seed=4, until_seconds=80)
    assert a.to_json() == b.to_json()
    assert [p.name for p in a.pods] != [p.name for p in c.pods]
    assert a.extra["seed"] == 3 and a.extra["generator"].startswith("labkit simulator")


def test_a_sidecar_waits_only_for_the_next_sidecar_that_is_running():
    """newTerminationOrdering links each sidecar to the next later one only; a sidecar that
    is not running has a pre-closed channel, so the one before it does not wait at all."""
    doc = pod([("s0", "sidecar"), ("s1", "sidecar"), ("s2", "sidecar")], tgps=10, behaviour={
        "s0": ignores(), "s1": helper(run=5), "s2": ignores(), "app": helper(term_after=1)},
        action={"delete_pod_after_seconds": 20})
    trace = simulate([doc], k8s_version="1.29")
    t0 = times(trace, "SIGTERM", "app")[0]
    # s1 exits every 5 s and is in back-off when the pod is deleted: s0 goes right after
    # the app, together with s2, instead of waiting for s2.
    assert not _running(trace, "s1", t0)
    assert times(trace, "SIGTERM", "s2") == [pytest.approx(t0 + 1)]
    assert times(trace, "SIGTERM", "s0") == [pytest.approx(t0 + 1)]


def test_an_exited_app_waits_for_a_crashlooping_last_sidecar():
    """computeInitContainerActions counts only a created/running app as proof that the pod
    was initialized: while the last init entry (a sidecar) is down, the app is not restarted."""
    doc = pod([("side", "sidecar")], restart="Always", behaviour={
        "side": helper(run=8, code=1), "app": helper(run=18)})
    trace = simulate([doc], k8s_version="1.35", until_seconds=60)
    side_starts, app_exit = times(trace, "Started", "side"), times(trace, "Exited", "app")[0]
    app_restart = [t for t in times(trace, "Started", "app") if t > app_exit][0]
    back = [t for t in side_starts if t > app_exit][0]
    assert app_restart > back      # the app came back only after the sidecar did
