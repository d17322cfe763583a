"""Property tests: the rules of docs/architecture.md ("The rules every backend shows") hold for generated pods on every version.

Hypothesis builds pods with random numbers of sidecars, plain init containers and app
containers, random process behaviours (run time, exit code, SIGTERM handling), startup
probes, preStop hooks, grace periods and restart policies, deletes some of them, and runs
each on 1.28 (gate on) to 1.37. Liveness probes and image changes are left out so that
every SIGTERM in a trace belongs to a pod kill, which keeps the invariants exact.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit.sim import simulate
import expected_timing as T  # written out, not read from labkit.sim.timing
from labkit.trace import Trace

VERSIONS = [("1.28", {"SidecarContainers": True})] + [(f"1.{m}", None) for m in range(29, 38)]
STOPS = ("Exited", "Killed")


@st.composite
def pods(draw):
    n_sidecars = draw(st.integers(0, 3))
    n_inits = draw(st.integers(0, 2))
    kinds = draw(st.permutations(["sidecar"] * n_sidecars + ["init"] * n_inits))
    n_apps = draw(st.integers(1, 3))
    restart = draw(st.sampled_from(["Never", "OnFailure", "Always"]))
    tgps = draw(st.integers(1, 40))
    init_specs, apps, behaviour = [], [], {}
    for i, kind in enumerate(kinds):
        name = f"{'side' if kind == 'sidecar' else 'init'}-{i}"
        spec = {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", "sleep 1"]}
        block = _process(draw, long=kind == "sidecar")
        if kind == "sidecar":
            spec["restartPolicy"] = "Always"
            if draw(st.booleans()):
                # A threshold no run reaches: doProbe carries its count of failures over to the
                # next container of a crash-looping sidecar, and a startup kill is not a pod kill.
                spec["startupProbe"] = {"exec": {"command": ["true"]}, "periodSeconds": draw(st.integers(1, 10)),
                                        "failureThreshold": 1000}
                block["probes"] = {"startup": {"result": {"success_after_seconds": draw(st.integers(0, 20))}}}
        else:
            block["run_seconds"] = draw(st.integers(0, 8))
            block["exit_code"] = draw(st.sampled_from([0, 0, 0, 1]))
        _maybe_prestop(draw, spec, block, kind)
        init_specs.append(spec)
        behaviour[name] = block
    for i in range(n_apps):
        name = f"app-{i}"
        spec = {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", "sleep 1"]}
        behaviour[name] = _process(draw, long=False)
        _maybe_prestop(draw, spec, behaviour[name], "app")
        apps.append(spec)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": tgps,
                    "initContainers": init_specs, "containers": apps}}
    action = "none"
    if draw(st.booleans()):
        action = {"delete_pod_after_seconds": draw(st.integers(0, 90))}
        if draw(st.booleans()):
            action["grace_period_seconds"] = draw(st.integers(0, 40))
    version, gates = draw(st.sampled_from(VERSIONS))
    return {"id": "generated", "pod": pod, "behaviour": behaviour, "action": action}, version, gates


def _process(draw, *, long: bool) -> dict:
    run = draw(st.one_of(st.none(), st.integers(1, 120 if long else 60)))
    block = {"process": "e2e-helper", "run_seconds": run, "exit_code": draw(st.sampled_from([0, 0, 1, 2])),
             "handles_sigterm": draw(st.booleans())}
    if block["handles_sigterm"]:
        block["sigterm_exit_after_seconds"] = draw(st.sampled_from([0, 0.5, 1, 3, 10, 45]))
        block["sigterm_exit_code"] = draw(st.sampled_from([0, 1, 143]))
    return block


def _maybe_prestop(draw, spec: dict, block: dict, kind: str) -> None:
    if kind == "init" or not draw(st.booleans()):
        return
    seconds = draw(st.one_of(st.none(), st.sampled_from([0.5, 1, 2.5, 5, 20])))
    spec["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "sleep 1"]}}}
    block["hooks"] = {"preStop": {"loop_forever": True} if seconds is None else {"run_seconds": seconds}}


# -- reading a trace ------------------------------------------------------------------------------
def _events(trace: Trace, name: str, *types: str):
    return [e for e in trace.events if e.container == name and e.type in types]


def _ready_time(trace: Trace, spec: dict) -> float | None:
    """When an init entry let the next one start: a plain one exited 0, a sidecar started."""
    name = spec["name"]
    if spec.get("restartPolicy") != "Always":
        done = [e.t for e in _events(trace, name, "Exited") if e.exit_code == 0]
        return done[0] if done else None
    if "startupProbe" in spec:
        ok = _events(trace, name, "StartupProbeSucceeded")
        return ok[0].t if ok else None
    started = _events(trace, name, "Started")
    return started[0].t if started else None


def _kill(trace: Trace, scenario: dict):
    """(T0, grace) of the pod kill, or None: the first stop signal or preStop in the trace."""
    signals = [e for e in trace.events if e.type in ("SIGTERM", "PreStop")]
    if not signals:
        return None
    t0 = signals[0].t
    asked = trace.first("DeleteRequested")
    if asked is not None and asked.t <= t0:
        return t0, max(T.MIN_POD_GRACE_S, asked.grace_period_seconds)
    return t0, scenario["pod"]["spec"]["terminationGracePeriodSeconds"]


def _running_at(trace: Trace, name: str, t: float) -> bool:
    state = False
    for e in trace.events:
        if e.t > t + 1e-9:
            break
        if e.container == name and e.type == "Started":
            state = True
        elif e.container == name and e.type in STOPS:
            state = False
    return state


# -- the property ------------------------------------------------------------------------------------
@settings(max_examples=int(__import__("os").environ.get("SIM_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods())
def test_sidecar_rules_hold_for_generated_pods(case):
    scenario, version, gates = case
    trace = simulate([scenario], k8s_version=version, feature_gates=gates, until_seconds=300, seed=1)
    again = simulate([scenario], k8s_version=version, feature_gates=gates, until_seconds=300, seed=1)
    assert trace.to_json() == again.to_json(), "not deterministic for a seed"
    Trace.from_dict(trace.to_dict())

    spec = scenario["pod"]["spec"]
    inits, apps = spec["initContainers"], spec["containers"]
    final = trace.pods[0].final
    kill = _kill(trace, scenario)
    t0 = kill[0] if kill else math.inf

    # 1. Start order: each init entry after the previous one is done/started, apps after all.
    previous_ready = 0.0
    for entry in inits + [None]:
        names = [entry["name"]] if entry else [a["name"] for a in apps]
        for name in names:
            first = _events(trace, name, "Started")
            if previous_ready is None:
                assert not first, f"{name} started although the entry before it never got ready"
            elif first:
                assert first[0].t > previous_ready, f"{name} started before the entry before it was ready"
        if entry is not None:
            previous_ready = _ready_time(trace, entry) if previous_ready is not None else None

    # 2. Restarts: sidecars on every exit whatever the policy; apps per the pod's policy;
    #    nothing starts once the pod is being killed. An exited app is not restarted while
    #    the last init entry (a sidecar) is down: computeInitContainerActions counts only a
    #    created/running app as "initialized", so a crash-looping sidecar can hold it back.
    sidecar_down = any(e.t < t0 for c in inits if c.get("restartPolicy") == "Always"
                       for e in _events(trace, c["name"], *STOPS))
    for c in inits + apps:
        name = c["name"]
        sidecar = c.get("restartPolicy") == "Always"
        starts = [e.t for e in _events(trace, name, "Started")]
        assert all(t <= t0 for t in starts), f"{name} started during termination"
        exits = [e for e in _events(trace, name, *STOPS) if e.t < t0]
        for k, ex in enumerate(exits):
            backoff = 0 if k == 0 else min(T.CRASHLOOP_INITIAL_S * 2 ** (k - 1), T.CRASHLOOP_MAX_S)
            # The retry after a back-off: the next [10 s, 15 s) requeue up to 1.34; from 1.35
            # wait.Jitter of the time left (capped at the resync interval), factor 0.5.
            late = (15 if int(version.split(".")[1]) < 35
                    else min(backoff, T.RESYNC_INTERVAL_S) * T.WORKER_BACKOFF_JITTER)
            deadline = ex.t + backoff + late + T.RELIST_PERIOD_S + T.CONTAINER_START_S + 1
            should = sidecar or (c in apps and (spec["restartPolicy"] == "Always" or
                                                (spec["restartPolicy"] == "OnFailure" and ex.exit_code != 0)))
            if c in inits and not sidecar:
                should = ex.exit_code != 0 and spec["restartPolicy"] != "Never"
            restarted = any(t > ex.t for t in starts)
            if should and deadline < min(t0, trace.duration) and not (c in apps and sidecar_down):
                assert restarted, f"{name} exited at {ex.t} and was not restarted"
            if not should and c in apps:
                assert not restarted, f"{name} was restarted under restartPolicy {spec['restartPolicy']}"

    # 3. The phase comes from regular containers only.
    if final.phase == "Succeeded":
        assert all(final.containers[a["name"]].exit_code == 0 for a in apps)
    app_exits = {a["name"]: _events(trace, a["name"], *STOPS) for a in apps}
    if (final.phase == "Failed" and not final.deleted and trace.first("DeleteRequested") is None
            and not any(e.exit_code for c in inits if c.get("restartPolicy") != "Always"
                        for e in _events(trace, c["name"], "Exited"))):
        assert any(evs and evs[-1].exit_code != 0 for evs in app_exits.values())

    # 4. Completion kills the pod (Never/OnFailure, all apps done for good).
    if spec["restartPolicy"] != "Always" and trace.first("DeleteRequested") is None:
        done = all(evs and (spec["restartPolicy"] == "Never" or evs[-1].exit_code == 0) and
                   final.containers[name].state == "terminated" for name, evs in app_exits.items())
        if done:
            assert final.phase in ("Succeeded", "Failed")
            assert all(c.state != "running" for c in final.containers.values())

    if kill is None:
        return
    t0, grace = kill
    running = [c["name"] for c in inits + apps if _running_at(trace, c["name"], t0 - 1e-9)
               or any(e.t == t0 for e in _events(trace, c["name"], "SIGTERM", "PreStop"))]
    stop_at = {}
    for name in running:
        stops = [e for e in _events(trace, name, *STOPS) if e.t >= t0]
        if stops:
            stop_at[name] = stops[0]

    # 5. Shared deadline: everything stops by T0 + G + 2 s (+ < 1 s of preStop truncation).
    for name in running:
        assert name in stop_at or trace.duration < t0 + grace + 3, f"{name} never stopped"
        if name in stop_at:
            assert stop_at[name].t < t0 + grace + T.MIN_GRACE_AFTER_SIGTERM_S + 1, f"{name} outlived the grace"

    # 6. Order (1.29+): a sidecar's SIGTERM comes after every app and every later sidecar
    #    stopped, unless the grace budget ran out first.
    sidecars = [c["name"] for c in inits if c.get("restartPolicy") == "Always"]
    ordered = version != "1.28"
    for i, name in enumerate(sidecars):
        sigterm = [e for e in _events(trace, name, "SIGTERM") if e.t >= t0]
        if not sigterm or name not in running:
            continue
        t = sigterm[0].t
        # Each sidecar waits for the apps and the *next* later sidecar only (a channel per
        # container, pre-closed when it was not running: kuberuntime_termination_order.go).
        waits_for = [a["name"] for a in apps] + sidecars[i + 1:i + 2]
        if ordered:
            index = trace.events.index(sigterm[0])
            done = all(w not in stop_at or trace.events.index(stop_at[w]) < index for w in waits_for if w in running)
            assert done or t >= t0 + grace - 1e-6, f"{name} got SIGTERM at {t} before its turn"
        elif "lifecycle" not in next(c for c in inits if c["name"] == name):
            assert t == t0, "1.28 stops sidecars together with the apps"
