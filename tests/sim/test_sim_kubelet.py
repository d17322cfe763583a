"""The kubelet model, one rule at a time: back-off, restart policies, hooks, probes, grace.

Pods are written in the scenario format (a Pod plus a ``behaviour`` block) so that each
test says exactly what the processes do.
"""

from __future__ import annotations

import pytest

from labkit.sim import simulate
import expected_timing as T  # written out, not read from labkit.sim.timing
from labkit.sim.cluster import Cluster
from labkit.versions import KubeVersion
from labkit.sim.run import run_until
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


def _restart_delays(trace: Trace, name: str) -> list[float]:
    """Seconds from each exit of ``name`` to its next start, less the container start time."""
    exits = sorted(times(trace, "Exited", name) + times(trace, "Killed", name))
    return [round(s - e - T.CONTAINER_START_S, 6) for e, s in zip(exits, times(trace, "Started", name)[1:])]


def _late_1_35(backoff: float) -> float:
    """How late a restart may come on 1.35+: completeWork enqueues the pod after
    wait.Jitter(expiry - now, 0.5), the wait capped at the 60 s resync interval."""
    return min(backoff, T.RESYNC_INTERVAL_S) * T.WORKER_BACKOFF_JITTER


def test_backoff_from_1_35_retries_after_the_expiry_within_half_the_remaining_wait():
    """PR #133066 (1.35): doBackOff returns NewBackoffError(ErrCrashLoopBackOff, FinishedAt +
    backoff) and pod_workers.go completeWork enqueues the pod after
    wait.Jitter(backoffAt - now, workerBackOffPeriodJitterFactor=0.5): never before the
    expiry, at most half the remaining wait after it (not "exactly when it expires")."""
    late = []
    for seed in range(4):
        delays = _restart_delays(_crashing_sidecar("1.35", seed=seed), "side")
        # First restart at once (at the sync after the exit, within a relist period).
        assert 0 < delays[0] <= T.RELIST_PERIOD_S
        for backoff, delay in zip([10, 20, 40, 80], delays[1:5]):
            assert backoff <= delay <= backoff + _late_1_35(backoff), (seed, backoff, delay)
            late.append(delay - backoff)
    assert max(late) > 1.0     # the jitter shows


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


@pytest.mark.parametrize(("version", "late"), [("1.29", lambda backoff: 15), ("1.35", _late_1_35)], ids=["1.29", "1.35"])
def test_backoff_doubles_up_to_the_five_minute_cap_and_stays_there(version, late):
    """MaxContainerBackOff (kubelet.go, 300 s): the waits double 10, 20, 40, 80, 160 s, then every
    later restart waits the cap, never more; 3000 virtual seconds reach it and stay on it."""
    doc = pod([("side", "sidecar")], behaviour={"side": helper(run=1, code=1), "app": helper(run=4000)})
    delays = _restart_delays(simulate([doc], k8s_version=version, until_seconds=3000), "side")
    assert len(delays) >= 12
    backoffs = [10, 20, 40, 80, 160] + [T.CRASHLOOP_MAX_S] * (len(delays) - 6)
    for backoff, delay in zip(backoffs, delays[1:]):
        assert backoff <= delay <= backoff + late(backoff), (backoff, delay)


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
    assert 10 <= starts[2] - exits[1] - T.CONTAINER_START_S <= 10 + _late_1_35(10)
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


# -- liveness restarts: doBackOff looks at the run *before* the killed one ---------------------------
def _unhealthy_sidecar(period: int, threshold: int) -> dict:
    """A sidecar whose liveness probe always fails; it exits 0.5 s after SIGTERM."""
    doc = pod([("side", "sidecar")], restart="Always", behaviour={
        "side": helper(term_after=0.5, probes={"liveness": {"result": "failure"}}), "app": helper(run=5000)})
    container(doc, "side")["livenessProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": period,
                                               "failureThreshold": threshold}
    return doc


def _expected_liveness_restarts(trace: Trace, version: str) -> list[str]:
    """Check every restart of the liveness-killed sidecar against doBackOff; return the kinds.

    SyncPod kills the container (step 3) and starts its replacement in the same sync (step
    6), with doBackOff reading the pod status taken at the start of that sync: the killed
    run is still running there, so the latest *exited* run is the one before it.

    - first kill: no exited run, doBackOff returns before backOff.Next: restart at once;
    - second kill: no back-off entry yet, IsInBackOffSince is false and Next creates 10 s:
      restart at once;
    - later kills: in back-off iff now (the end of the kill) - FinishedAt of the previous
      run < the current back-off. If not, restart at once; if so, the next syncs look at
      the killed run's FinishedAt and restart it once that back-off has passed, at the
      first retry of the pod: up to 1.34 every [10 s, 15 s) after the last failed sync
      (the PLEG sync right after the exit, which replaces the kill sync's retry on the
      work queue); from 1.35 within half the remaining wait after the expiry.
    Each restart after the first calls Next: 10, 20, 40, ... s.
    """
    exits = sorted(times(trace, "Exited", "side") + times(trace, "Killed", "side"))
    starts = times(trace, "Started", "side")
    not_ready = times(trace, "NotReady", "side")
    new = int(version.split(".")[1]) >= 35
    kinds, backoff, previous = [], None, None
    for exit_, start in zip(exits, starts[1:]):
        delay = start - exit_ - T.CONTAINER_START_S
        if previous is None or backoff is None or exit_ - previous >= backoff - 1e-6:
            assert delay == pytest.approx(0, abs=1e-6), (exit_, start)
            kinds.append("at once")
        else:
            late = _late_1_35(backoff) if new else 15
            assert backoff <= delay <= backoff + late, (exit_, start, backoff)
            if not new:
                # The status sync at the first relist after the exit shows it NotReady; that
                # sync failed too, and its retry is the one that counts.
                pleg_sync = min(t for t in not_ready if t > exit_)
                assert pleg_sync - exit_ <= T.RELIST_PERIOD_S
                assert start - T.CONTAINER_START_S >= pleg_sync + T.SYNC_ERROR_BACKOFF_S
            kinds.append("backed off")
        if previous is not None:
            backoff = T.CRASHLOOP_INITIAL_S if backoff is None else min(2 * backoff, T.CRASHLOOP_MAX_S)
        previous = exit_
    return kinds


@pytest.mark.parametrize("version", ["1.29", "1.34", "1.35", "1.37"])
@pytest.mark.parametrize(("period", "threshold"), [(1, 1), (2, 3), (3, 2), (5, 1), (10, 3)])
def test_liveness_restarts_of_a_sidecar_follow_do_backoff(version, period, threshold):
    for seed in range(3):
        trace = simulate([_unhealthy_sidecar(period, threshold)], k8s_version=version, until_seconds=600, seed=seed)
        kinds = _expected_liveness_restarts(trace, version)
        assert kinds[:2] == ["at once", "at once"] and "backed off" in kinds, kinds
        assert trace.pods[0].final.containers["app"].restart_count == 0


def test_a_liveness_killed_sidecar_can_restart_at_once_again_after_a_back_off():
    """The notebook's unhealthy sidecar (period 2 s, threshold 3) up to 1.34: at once, at
    once, ~10-15 s later, then often at once again: the third run started late, so when it
    is killed more than 20 s have passed since the second run finished."""
    kinds = [_expected_liveness_restarts(simulate([_unhealthy_sidecar(2, 3)], k8s_version="1.29",
                                                  until_seconds=120, seed=seed), "1.29")[:4]
             for seed in range(6)]
    assert all(k[:3] == ["at once", "at once", "backed off"] for k in kinds)
    assert ["at once", "at once", "backed off", "at once"] in kinds


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


@pytest.mark.parametrize(("restart", "code"), [("Always", 1), ("Never", 0)])
def test_a_container_that_exits_shows_not_ready_at_the_next_status_sync(restart, code):
    """generateAPIPodStatus + probeManager.UpdatePodStatus at the start of each sync: a
    container that is not running is not ready. The sync comes at the first PLEG relist
    after the exit (<= 1 s), and the pod's Ready condition is regenerated with it."""
    doc = pod([("side", "sidecar")], restart=restart, behaviour={"side": helper(), "app": helper(run=6, code=code)})
    trace = simulate([doc], k8s_version="1.29", until_seconds=60)
    exits = times(trace, "Exited", "app")
    assert exits and times(trace, "Ready", "app")[0] < exits[0]
    for exit_ in exits:
        not_ready = min(t for t in times(trace, "NotReady", "app") if t > exit_)
        assert not_ready - exit_ <= T.RELIST_PERIOD_S
        assert not_ready in times(trace, "PodNotReady")


def test_container_statuses_stay_as_they_were_while_the_pod_worker_kills_the_pod():
    """SyncTerminatingPod writes the pod status before killPod and again once every
    container has stopped; while killPod waits (here 30 s for the app, a shell loop that
    ignores SIGTERM) nothing regenerates the container statuses, so the sidecar that exited
    at once still shows ready (kubernetes/kubernetes#106896, #128820, both open). Only a
    readiness probe, which keeps running, can turn it false earlier (next test)."""
    trace = simulate(["manifests/deployment-sidecar.yaml"], k8s_version="1.28",
                     feature_gates={"SidecarContainers": True}, delete_after=20, until_seconds=120)
    exited = times(trace, "Exited", "sws-init")[0]
    killed = times(trace, "Killed", "sidecar-deploy")[0]
    assert killed - exited > 29
    assert times(trace, "NotReady", "sws-init") == [killed]
    assert trace.first("PodNotReady").t == killed


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


def test_a_startup_probe_counts_failures_across_restarts_of_a_crashing_sidecar():
    """doProbe resets resultRun only when it publishes a liveness/startup result (then the
    worker waits for a new container); a new container ID just lifts the hold. So the
    failures of a sidecar that crashes before its startup probe passes add up over runs."""
    doc = pod([("side", "sidecar")], behaviour={
        "side": helper(run=3, code=1, probes={"startup": {"result": "failure"}}), "app": helper()})
    container(doc, "side")["startupProbe"] = {"exec": {"command": ["false"]}, "periodSeconds": 1,
                                              "failureThreshold": 5}
    trace = simulate([doc], k8s_version="1.35", until_seconds=60)
    runs, failed = times(trace, "StartupProbeRun", "side"), times(trace, "StartupProbeFailed", "side")
    exits = times(trace, "Exited", "side")
    per_run = [len([t for t in runs if a < t < b]) for a, b in zip([0.0] + exits, exits)]
    assert max(per_run) < 5                              # no single run failed 5 times
    assert failed and failed[0] == runs[4]               # the fifth failure overall
    assert times(trace, "SIGTERM", "side")[0] >= failed[0]


def test_a_readiness_success_run_carries_over_to_the_next_container():
    """With successThreshold 2, one success of a container that then crashes counts: the
    next container is ready after its first successful probe."""
    doc = pod([("side", "sidecar")], restart="Always", behaviour={
        "side": helper(run=1.5, code=1), "app": helper(run=1000)})
    container(doc, "side")["readinessProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": 2,
                                                "successThreshold": 2}
    trace = simulate([doc], k8s_version="1.29", until_seconds=15)
    runs, ready = times(trace, "ReadinessProbeRun", "side"), times(trace, "Ready", "side")
    starts, exits = times(trace, "Started", "side"), times(trace, "Exited", "side")
    assert len([t for t in runs if starts[0] < t < exits[0]]) == 1     # one success, not ready
    assert not [t for t in ready if t < exits[0]]
    assert ready[0] == min(t for t in runs if t > starts[1])            # ready at once


def test_a_sleep_prestop_runs_its_full_length_when_the_container_exits_first():
    """The sleep action is a timer in the kubelet (runSleepHandler), not a process in the
    container: the kill goroutine waits for it even after the container exited, so an
    earlier sidecar's turn (kuberuntime_termination_order.go) comes only after it."""
    doc = pod([("s1", "sidecar"), ("s2", "sidecar")], behaviour={
        "s1": helper(), "s2": helper(run=25), "app": helper()}, action={"delete_pod_after_seconds": 20})
    container(doc, "s2")["lifecycle"] = {"preStop": {"sleep": {"seconds": 10}}}
    doc["behaviour"]["s2"].pop("hooks", None)
    trace = simulate([doc], k8s_version="1.30", until_seconds=120)
    prestop = times(trace, "PreStop", "s2")[0]
    assert prestop < times(trace, "Exited", "s2")[0] < prestop + 10     # s2 ends by itself meanwhile
    assert times(trace, "SIGTERM", "s1") == [pytest.approx(prestop + 10)]


# -- determinism ----------------------------------------------------------------------------------------------
def test_same_seed_same_trace_other_seed_other_names():
    doc = pod([("side", "sidecar")], behaviour={"side": helper(run=2, code=1), "app": helper(run=50)})
    a = simulate([doc, "manifests/job-sidecar.yaml"], k8s_version="1.29", seed=3, until_seconds=80)
    b = simulate([doc, "manifests/job-sidecar.yaml"], k8s_version="1.29", seed=3, until_seconds=80)
    c = simulate([doc, "manifests/job-sidecar.yaml"], k8s_version="1.29", seed=4, until_seconds=80)
    assert a.to_json() == b.to_json()
    assert [p.name for p in a.pods] != [p.name for p in c.pods]
    assert a.extra["seed"] == 3 and a.extra["generator"].startswith("labkit simulator")


def test_a_run_ends_cleanly_when_an_event_falls_exactly_on_its_end():
    cluster = Cluster(KubeVersion.parse("1.29"))
    fired = []
    for delay in (5.0, 7.0):
        cluster._at(delay, lambda: fired.append(cluster.env.now))
    run_until(cluster, 5.0, lambda: False)      # SimPy refuses run(until=now)
    assert fired == [5.0] and cluster.env.now == 5.0


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


def test_the_pods_cpu_limit_follows_the_kubelets_pod_limits():
    """The pod cgroup's quota (ResourceConfigForPod, PodLimits): regular containers and sidecars
    add up; an init container counts with the sidecars before it; no quota unless every container
    declares a CPU limit (then the pause container starts unthrottled)."""
    from types import SimpleNamespace

    from labkit.sim.pods import cpu_limit, pod_cpu_limit

    def c(name, cpu=None, sidecar=False):   # what pod_cpu_limit reads of a Container
        spec = {"name": name, **({"restartPolicy": "Always"} if sidecar else {})}
        if cpu is not None:
            spec["resources"] = {"limits": {"cpu": cpu, "memory": "10Mi"}}
        role = "sidecar" if sidecar else ("app" if name in ("app", "b") else "init")
        return SimpleNamespace(name=name, role=role, cpu_limit=cpu_limit(spec))

    assert pod_cpu_limit([c("sws", "10m", True)], [c("app", "10m")]) == pytest.approx(0.02)  # the blog
    assert pod_cpu_limit([c("sws", "100m", True), c("init", "1")], [c("app", "200m")]) == pytest.approx(1.1)
    assert pod_cpu_limit([c("init", "50m")], [c("app", "0.2"), c("b", "300m")]) == pytest.approx(0.5)
    assert pod_cpu_limit([c("sws", "10m", True)], [c("app")]) is None
    assert pod_cpu_limit([], [c("app", "2")]) == 2.0
