"""labkit fidelity's comparison (labkit/fidelity.py), on traces: no cluster needed.

The job itself runs scenarios on kind in the notebooks-kind workflow; here a "cluster" trace
is made from the simulator's by reporting each transition the way the recorder does (the
kubelet's status time, whole seconds, and the watch's later arrival), then changed.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
import sys
from pathlib import Path

import pytest
import yaml

from labkit.sim import simulate
from labkit.trace import Event, Trace, load_trace
from labkit.versions import KubeVersion

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "data" / "scenarios" / "sidecars-reverse-order-after-main-completes.yaml"


from labkit import fidelity, median_run


@pytest.fixture(scope="module")
def scenario() -> dict:
    return yaml.safe_load(SCENARIO.read_text())


@pytest.fixture(scope="module")
def sim(scenario) -> Trace:
    return simulate([str(SCENARIO)], k8s_version="1.29", until_seconds=120, seed=0)


def as_recorded(sim: Trace, *, late: dict[str, float] | None = None, drop: str | None = None) -> Trace:
    """The simulator's trace as a recorder reports it: status (the kubelet's time, ``resolution_s`` 1)
    and watch (0.4 s later) for each start and end, watch only for the rest. ``late`` delays the
    "<container> <Type>" named; ``drop`` leaves one out."""
    late = late or {}
    real = Trace("kind", sim.kubernetes_version, dict(sim.feature_gates), origin="2026-01-01T00:00:00Z")
    for pod in sim.pods:
        real.add_pod(copy.deepcopy(pod))
    events = []
    for e in sim.events:
        name = f"{e.container} {e.type}"
        if name == drop:
            continue
        t = e.t + late.get(name, 0.0)
        fields = {k: v for k, v in e.to_dict().items() if k not in ("t", "type", "pod", "container", "source")}
        if e.type in fidelity.MULTI_SOURCE:
            events.append(Event(t, e.type, pod=e.pod, container=e.container, source="status",
                                **{**fields, "resolution_s": 1.0}))
        events.append(Event(t + 0.4, e.type, pod=e.pod, container=e.container, source="watch", **fields))
    for event in sorted(events, key=lambda e: e.t):
        real.add(event)
    return real


def test_one_report_each_keeps_the_status_report_of_a_start_or_end_and_every_other_event(sim):
    real = as_recorded(sim)
    view = fidelity.one_report_each(real)
    starts = [e for e in view.events if e.type == "Started"]
    assert {e.source for e in starts} == {"status"}
    assert len(starts) == len(sim.select("Started"))
    assert len(view.select("PodPhase")) == len(sim.select("PodPhase"))  # single-source events stay
    assert {e.source for e in view.select("PodPhase")} == {"watch"}
    assert [e.t for e in view.events] == sorted(e.t for e in view.events)


def test_a_faithful_recording_agrees_and_the_largest_difference_names_its_event(scenario, sim):
    row = fidelity.compare(scenario, as_recorded(sim, late={"regular-1 Exited": 1.5}), sim)
    assert row.on_cluster == [] and row.on_sim == [] and row.agrees
    assert row.largest == (pytest.approx(1.5), "regular-1 Exited")


def test_an_expectation_that_fails_on_the_cluster_only_is_a_disagreement(scenario, sim):
    # the app's exit never reported: "regular-1 Exited before restartable-init-N Exited" cannot hold
    row = fidelity.compare(scenario, as_recorded(sim, drop="regular-1 Exited"), sim)
    assert row.on_sim == [] and row.on_cluster and not row.agrees
    assert any("regular-1 Exited never happened" in p for p in row.on_cluster)


def test_the_table_says_what_held_where_and_why_not():
    rows = [fidelity.Row("a", on_cluster=[], on_sim=[], largest=(0.46, "c Started")),
            fidelity.Row("b", on_cluster=["order[0]: x never happened"], on_sim=[], largest=(2.0, "c Exited")),
            fidelity.Row("c", skipped="needs node_reboot"),
            fidelity.Row("blog-job", on_cluster=[], on_sim=[], largest=(0.64, "pod Succeeded"), real_runs=2)]
    assert fidelity.markdown(rows, version="1.29") == (
        "### Simulator against kind: Kubernetes 1.29\n"
        "\n"
        "4 scenarios, 1 skipped, 1 where the two disagree.\n"
        "\n"
        "| scenario | holds on kind | holds on the simulator | largest time difference (event) |\n"
        "|---|---|---|---|\n"
        "| a | yes | yes | 0.5 s (c Started) |\n"
        "| b ⚠ | **no** | yes | 2.0 s (c Exited) |\n"
        "| c | – | – | skipped: needs node_reboot |\n"
        "| blog-job | yes | yes | 0.6 s (pod Succeeded), median of 2 runs |\n"
        "\n"
        "What did not hold:\n"
        "\n"
        "- b, kind: order[0]: x never happened\n")
    assert [r.agrees for r in rows] == [True, False, True, True]


def test_a_scenario_that_fails_on_both_agrees():
    assert fidelity.Row("x", on_cluster=["p"], on_sim=["q"]).agrees


def test_which_scenarios_run_on_which_version():
    def scenario(**fields):
        return {"id": "s", "min_version": "1.29", **fields}

    assert fidelity.selection(scenario(), KubeVersion.parse("1.29")) == ({}, "")
    assert fidelity.selection(scenario(requires=["node_reboot"]), KubeVersion.parse("1.33")) == (None, "needs node_reboot")
    assert fidelity.selection(scenario(action={"update_image": {"container": "c", "after_seconds": 3}}), KubeVersion.parse("1.33"))[0] is None
    assert fidelity.selection(scenario(action={"update_image": {"container": "c", "image": "busybox:1.37"}}),
                              KubeVersion.parse("1.33")) == ({}, "")
    assert fidelity.selection(scenario(min_version="1.35"), KubeVersion.parse("1.33")) == (None, "holds from 1.35")
    assert fidelity.selection(scenario(), KubeVersion.parse("1.28")) == (None, "holds from 1.29")
    assert fidelity.selection(scenario(min_version_note="1.28 with gate on (…)"), KubeVersion.parse("1.28")) == (
        {"SidecarContainers": True}, "")


def test_actions_become_a_timeline_from_the_apply():
    action = {"delete_pod_after_seconds": 5, "grace_period_seconds": 30,
              "then": {"update_image": {"container": "c", "after_seconds": 2, "image": "busybox:1.37"}}}
    assert fidelity._timeline(action, 0.0) == [(5.0, "delete", 30), (7.0, "image", ("c", "busybox:1.37"))]
    assert fidelity._timeline("none", 0.0) == []


def test_every_scenario_file_is_either_run_or_skipped_with_a_reason_on_each_job_version():
    for path in sorted((ROOT / "tests" / "data" / "scenarios").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for version in ("1.28", "1.29", "1.33", "1.37"):
            gates, why = fidelity.selection(data, KubeVersion.parse(version))
            assert (gates is None) == bool(why), (path.name, version)


def test_main_writes_the_table_traces_and_stream_and_fails_on_a_disagreement(tmp_path, monkeypatch, sim):
    """The command's plumbing (labkit fidelity --backend cluster), with the real run replaced by a
    recording made from the simulator's trace."""
    from labkit.cli import main

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    stream = [{"arrival": "2026-01-01T00:00:00.5Z", "event": {"type": "ADDED", "object": {"kind": "Pod"}}}]
    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")

    def faithful(scenario, **options):
        assert options["version"] == KubeVersion(1, 29) and options["kubeconfig"] == str(kubeconfig)
        assert options["backend"] == "cluster"
        return as_recorded(sim), stream

    monkeypatch.setattr(fidelity, "run_on_backend", faithful)
    only = ["--scenario", "sidecars-reverse-order-after-main-completes",
            "--scenario", "sidecar-node-reboot-restart-order"]
    out = tmp_path / "out"
    argv = ["fidelity", "--backend", "cluster", "--k8s-version", "1.29", "--kubeconfig", str(kubeconfig)]
    assert main([*argv, "--out", str(out), *only]) == 0
    folder = out / "sidecars-reverse-order-after-main-completes"
    assert sorted(p.name for p in folder.iterdir()) == ["cluster-trace.json", "sim-trace.json", "watch-stream.json"]
    saved = json.loads((folder / "watch-stream.json").read_text())
    assert saved["provenance"].startswith(f"recorded: the cluster of {kubeconfig}, Kubernetes 1.29.0")
    assert saved["stream"] == stream
    table = (out / "fidelity.md").read_text()
    assert summary.read_text() == table
    assert "| sidecars-reverse-order-after-main-completes | yes | yes |" in table
    assert "| sidecar-node-reboot-restart-order | – | – | skipped: needs node_reboot |" in table
    rows = json.loads((out / "fidelity.json").read_text())["rows"]
    assert [r["scenario"] for r in rows] == ["sidecar-node-reboot-restart-order",
                                              "sidecars-reverse-order-after-main-completes"]
    assert rows[1]["holds_on_real"] is True and rows[1]["agrees"] is True

    monkeypatch.setattr(fidelity, "run_on_backend", lambda scenario, **options: (
        as_recorded(sim, drop="regular-1 Exited"), stream))
    assert main([*argv, "--out", str(tmp_path / "again"), *only]) == 1


def test_a_pod_that_could_not_pull_its_image_is_not_run_and_not_counted(tmp_path, monkeypatch, sim):
    from labkit.cli import main

    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    pulled_nothing = copy.deepcopy(as_recorded(sim))
    events = [e for e in pulled_nothing.events if e.container != "regular-1"]
    events.append(Event(t=1.0, pod=pulled_nothing.pods[0].name, container="regular-1", type="ImagePullFailed",
                        source="event", extra={"image": "registry.k8s.io/e2e-test-images/agnhost:9.9"}))
    pulled_nothing.events = sorted(events, key=lambda e: e.t)
    monkeypatch.setattr(fidelity, "run_on_backend", lambda scenario, **options: (pulled_nothing, []))
    out = tmp_path / "out"
    assert main(["fidelity", "--backend", "cluster", "--k8s-version", "1.29", "--kubeconfig", str(kubeconfig),
                 "--out", str(out), "--scenario", "sidecars-reverse-order-after-main-completes"]) == 0
    table = (out / "fidelity.md").read_text()
    assert "not run: registry.k8s.io/e2e-test-images/agnhost:9.9 could not be pulled" in table


def test_a_known_difference_is_reported_with_its_cause_and_does_not_fail_the_run(tmp_path, monkeypatch, sim):
    from labkit.cli import main

    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    known = tmp_path / "known.yaml"
    known.write_text("known:\n- scenario: sidecars-reverse-order-after-main-completes\n  backend: cluster\n"
                     "  fault: upstream\n  cause: a race, kubernetes/kubernetes#1\n")
    monkeypatch.setattr(fidelity, "KNOWN", known)
    monkeypatch.setattr(fidelity, "run_on_backend", lambda scenario, **options: (
        as_recorded(sim, drop="regular-1 Exited"), []))
    argv = ["fidelity", "--backend", "cluster", "--k8s-version", "1.29", "--kubeconfig", str(kubeconfig),
            "--scenario", "sidecars-reverse-order-after-main-completes"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    table = (tmp_path / "out" / "fidelity.md").read_text()
    assert "| sidecars-reverse-order-after-main-completes (known difference) | **no** | yes |" in table
    assert "a race, kubernetes/kubernetes#1 (fault: upstream)" in table
    known.write_text("known: []\n")
    assert main([*argv, "--out", str(tmp_path / "again")]) == 1


def _recorded_blog_job(shift: float = 0.0, late_after_creation: float = 0.0) -> tuple[Trace, Trace]:
    """The blog's Job in the simulator, and as a recorder would report it (:func:`_as_recorded`)."""
    sim = simulate([str(ROOT / "manifests" / "job-sidecar.yaml")], k8s_version="1.37")
    return _as_recorded(sim, shift, late_after_creation), sim


def _as_recorded(sim: Trace, shift: float = 0.0, late_after_creation: float = 0.0, watch_s: float = 0.2) -> Trace:
    """A simulated trace as a recorder would report it: starts and ends at the kubelet's
    whole-second status times, everything else at its watch arrival ``watch_s`` later; the whole
    recording ``shift`` s later on its clock, every event but the pod's creation
    ``late_after_creation`` s later still."""
    import math

    real = Trace("node", sim.kubernetes_version, dict(sim.feature_gates), origin="2026-01-01T00:00:00.300Z")
    for pod in sim.pods:
        real.add_pod(copy.deepcopy(pod))
    events = []
    for i, e in enumerate(sim.events):
        t = e.t + shift + (late_after_creation if i else 0.0)
        if e.type in fidelity.MULTI_SOURCE:
            events.append(replace(e, t=float(math.floor(t)), source="status", resolution_s=1.0))
        events.append(replace(e, t=t + (watch_s if i else 0.0), source="watch"))
    for event in sorted(events, key=lambda e: e.t):
        real.add(event)
    return fidelity.one_report_each(real)


def _fitted(real: Trace, sim: Trace) -> median_run.Fitted:
    """A real run compared with one simulation (no conditions to fit)."""
    return median_run.best_fit(real, [median_run.SimRun(0.0, 1.0, 1.0, sim, median_run.blog_events(sim))])


def test_blog_events_are_intervals_from_the_pods_creation_and_a_faithful_recording_agrees():
    real, sim = _recorded_blog_job(shift=7.0)   # the pod appeared 7 s after the recording began
    events = median_run.blog_events(real)
    low, high = events["sws-init Started"]
    assert high - low == 1.0 and low == int(low + 7.0) - 7.0          # a whole-second status time
    assert events["job/sidecar-job JobComplete"][0] == events["job/sidecar-job JobComplete"][1]  # a watch arrival
    medians = median_run.blog_medians([_fitted(real, sim)])
    assert {name for _, name, _, _ in medians} >= {"sws-init Started", "sidecar-job Exited", "pod Succeeded",
                                                   "job/sidecar-job JobComplete"}
    assert medians[0][0] == pytest.approx(-0.2)                      # only the watch's own delay, the simulator early


def test_blog_events_later_than_the_simulator_by_over_a_second_are_named():
    real, sim = _recorded_blog_job(late_after_creation=2.5)
    median, name, [(low, high)], [t] = median_run.blog_medians([_fitted(real, sim)])[0]
    assert median == pytest.approx(-2.7) and t - low == pytest.approx(median)
    assert all(abs(m) > median_run.BLOG_TOLERANCE_S for m, *_ in median_run.blog_medians([_fitted(real, sim)])[:5])


def test_the_blog_rows_hold_the_simulator_to_the_median_run():
    """One run seconds late on its own (a stalled first sync) does not fail the row; two do."""
    good, sim = _recorded_blog_job()
    late, _ = _recorded_blog_job(late_after_creation=2.0)
    good, late = _fitted(good, sim), _fitted(late, sim)
    assert abs(median_run.blog_medians([good, late, good])[0][0]) < median_run.BLOG_TOLERANCE_S
    median, name, intervals, _ = median_run.blog_medians([late, good, late])[0]
    assert median == pytest.approx(-2.2) and len(intervals) == 3


def test_real_runs_stop_once_more_could_not_change_the_verdict():
    """Two runs that agree settle the median of three, both ways; a split needs the third."""
    good, sim = _recorded_blog_job()
    late, _ = _recorded_blog_job(late_after_creation=2.0)

    def runs(*traces):
        asked = []
        sims = [median_run.SimRun(0.0, 1.0, 1.0, sim, median_run.blog_events(sim))]
        got = median_run.real_runs(lambda number: asked.append(number) or traces[number - 1], sims)
        assert [run.real for run in got] == list(traces[:len(asked)])
        return asked

    assert runs(good, good, late) == [1, 2]
    assert runs(late, late, good) == [1, 2]
    assert runs(good, late, good) == [1, 2, 3]
    assert runs(late, good, late) == [1, 2, 3]


@pytest.fixture(scope="module")
def blog_job_sims() -> list[median_run.SimRun]:
    """The blog's Job under part of the conditions ``labkit fidelity`` fits (all of them take 10 s):
    every relist phase and both CPU scales near the runs below, and the defaults."""
    import itertools

    return fidelity.blog_sims("blog-job", KubeVersion.parse("1.37"), itertools.product(
        median_run.RELIST_PHASES, (0.75, 1.0), (0.5, 0.6, 0.7, 0.8, 1.0)))


def _blog_job_at(relist_phase: float, sandbox_cpu_scale: float, container_cpu_scale: float) -> Trace:
    from labkit.sim import SimLab

    lab = SimLab("1.37", quiet=True, relist_phase=relist_phase, sandbox_cpu_scale=sandbox_cpu_scale,
                 container_cpu_scale=container_cpu_scale)
    try:
        return fidelity._drive_blog(lab, "blog-job")
    finally:
        lab.close()


def test_a_run_at_another_relist_phase_and_cpu_speed_is_fitted_to_them(blog_job_sims):
    """A node whose relist ticks fall elsewhere in the second, whose sandbox starts as the model's
    and whose containers start faster (the app exits before the next relist, so the pod finishes a
    second sooner: seen on labkit's node and in CI) is more than 1 s off the simulator's default
    conditions; fitted, the simulator finds all three and agrees."""
    real = _as_recorded(_blog_job_at(0.5, 1.0, 0.6), shift=3.0, watch_s=0.05)
    default = [run for run in blog_job_sims
               if (run.relist_phase, run.sandbox_cpu_scale, run.container_cpu_scale) == (0.65, 1.0, 1.0)]
    unfitted = median_run.best_fit(real, default)
    assert max(abs(d) for d in unfitted.offsets().values()) > median_run.BLOG_TOLERANCE_S
    fit = median_run.best_fit(real, blog_job_sims)
    assert fit.sim.relist_phase in (0.5, 0.55)    # the watch's delay looks like a later phase
    assert (fit.sim.sandbox_cpu_scale, fit.sim.container_cpu_scale) == (1.0, 0.6)
    assert max(abs(d) for d in fit.offsets().values()) < 0.1   # the watch's own delay


def test_the_fit_cannot_hide_a_wrong_gap_between_two_events(blog_job_sims):
    """The conditions move the pod's starts and the relist ticks, not the Job controller's batch:
    a Job that completes 2 s later after its pod's Succeeded than the simulator's stays 2 s off."""
    sim = _blog_job_at(0.4, 1.0, 0.8)
    late = Trace(sim.backend, sim.kubernetes_version, dict(sim.feature_gates))
    for pod in sim.pods:
        late.add_pod(copy.deepcopy(pod))
    for event in sim.events:
        late.add(replace(event, t=event.t + 2.0) if event.type == "JobComplete" else event)
    [(median, name, _, _), *_] = median_run.blog_medians([median_run.best_fit(_as_recorded(late), blog_job_sims)])
    assert name == "job/sidecar-job JobComplete" and median < -1.5


@pytest.mark.parametrize("trigger, until, holds", [
    ("pod Running and Ready", 7.2, False),   # Running at 1.25 s, Ready only at 7.25 s
    ("pod Running and Ready", 7.3, True),
    ("pod Running", 1.2, False),
    ("pod is Running", 1.3, True),
    ("pod Running (all containers started)", 1.3, True),
    ("pod Running and Ready", 40.0, False),  # NotReady again during termination
    ("initContainerStatuses[1] (restartable-init-2) is running and not started; pod Pending", 0.0, True),
])
def test_an_actions_trigger_is_read_from_the_recorded_pod(trigger, until, holds):
    """The harness acts once the scenario's trigger holds, as the upstream test waits for it: on a
    busy node 15 s after the apply may come before the pod is Ready."""
    path = ROOT / "tests" / "data" / "scenarios" / "sidecar-readiness-false-during-termination.yaml"
    full = simulate([str(path)], k8s_version="1.37")
    trace = Trace(full.backend, full.kubernetes_version, dict(full.feature_gates))
    for pod in full.pods:
        trace.add_pod(pod)
    for event in full.events:
        if event.t <= until:
            trace.add(event)
    assert fidelity.trigger_holds(trigger, trace, "probe-test") is holds


def _sidecar_start(trace: Trace, pod: str) -> tuple[float, float]:
    """The sidecar's start after its pod's creation, as the interval the recording allows: from the
    whole-second status time to the watch's arrival."""
    events = [e for e in trace.events if e.pod == pod]
    zero = events[0].t
    starts = [e for e in events if e.type == "Started" and e.container == "sws-init"]
    low = min(e.t for e in starts if e.source == "status") - zero
    return low, min(e.t for e in starts if e.source == "watch") - zero


def test_the_recording_shows_the_blogs_cpu_limits_delaying_its_start():
    """The blog's 10m CPU limits stretch a container's start on the node (runc's init runs in the
    throttled cgroup), by seconds in this recording: what the simulator's CPU-limit model fits."""
    trace = load_trace(ROOT / "tests" / "data" / "traces" / "node-1.37-cpu-limits-start.json")
    limited = [_sidecar_start(trace, name) for name in ("with-limits", "with-limits2")]
    free = [_sidecar_start(trace, name) for name in ("no-limits", "no-limits2")]
    assert min(low for low, _ in limited) > max(high for _, high in free) + 3.0


@pytest.mark.parametrize("pod, limits", [("with-limits", True), ("with-limits2", True), ("no-limits", False),
                                         ("no-limits2", False)])
def test_the_simulator_starts_the_blogs_sidecar_when_the_node_did_with_and_without_cpu_limits(pod, limits):
    """Counted from the pod's creation, within the fidelity tolerance of the interval the node's
    recording allows: seconds later under the blog's 10m limits (runc's CPU time over the quota,
    docs/timing.md "CPU limits"), well under one second without them."""
    trace = load_trace(ROOT / "tests" / "data" / "traces" / "node-1.37-cpu-limits-start.json")
    low, high = _sidecar_start(trace, pod)
    doc = yaml.safe_load((ROOT / "manifests" / "job-sidecar.yaml").read_text())
    if not limits:
        spec = doc["spec"]["template"]["spec"]
        for container in spec["initContainers"] + spec["containers"]:
            container.pop("resources")
    sim = simulate([doc], k8s_version="1.37")
    started = sim.first("Started", container="sws-init").t - sim.events[0].t
    assert low - median_run.BLOG_TOLERANCE_S <= started <= high + median_run.BLOG_TOLERANCE_S
    assert (started > 3.0) is limits


def test_an_unknown_scenario_is_refused_before_any_backend_starts(monkeypatch, capsys):
    """A misspelt --scenario names what exists instead of running nothing (or starting a node)."""
    from labkit.cli import main

    started = []
    monkeypatch.setattr("labkit.node.Node.up", lambda self, **kw: started.append(self))
    assert main(["fidelity", "--backend", "node", "--scenario", "blog-jbo"]) == 2
    err = capsys.readouterr().err
    assert "blog-jbo" in err and "blog-job or blog-deployment" in err and "--scenario" in err
    assert not started


def test_the_blogs_workloads_can_be_chosen_by_name(tmp_path, monkeypatch):
    """--scenario blog-job runs that row alone (no scenario of tests/data/scenarios)."""
    from labkit.cli import main

    kubeconfig = tmp_path / "kc"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    ran = []
    monkeypatch.setattr(fidelity, "blog_row", lambda name, **options: ran.append(name) or fidelity.Row(name))
    monkeypatch.setattr(fidelity, "run_scenario", lambda *a, **k: pytest.fail("no scenario was asked for"))
    assert main(["fidelity", "--backend", "cluster", "--kubeconfig", str(kubeconfig), "--out", str(tmp_path / "o"),
                 "--scenario", "blog-job"]) == 0
    assert ran == ["blog-job"]


class _Deleting:
    """What `kubectl get namespaces` and `get pods -A` answer while earlier runs are torn down: a pod
    of a namespace being deleted (looks 1-2), then with its own deletionTimestamp (look 3), then
    gone; the namespace stays Terminating a little longer, and a pod elsewhere keeps running."""

    def __init__(self):
        self.looks = 0

    def json(self, args, *, namespaced=True):
        assert not namespaced
        if args[1] == "namespaces":
            self.looks += 1
            return {"items": [{"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}},
                              {"metadata": {"name": "scenario-x"}, "status": {"phase": "Terminating"}}]}
        pods = [{"metadata": {"name": "coredns", "namespace": "kube-system"}}]
        if self.looks <= 2:
            pods.append({"metadata": {"name": "p", "namespace": "scenario-x"}})
        elif self.looks == 3:
            pods.append({"metadata": {"name": "p", "namespace": "scenario-x", "deletionTimestamp": "2026-12-06T06:00:00Z"}})
        return {"items": pods}


def test_the_blogs_rows_wait_until_nothing_is_being_deleted(monkeypatch, capsys):
    """A node still tearing down the scenarios starts pods late; the blog's rows, held to 1 s, wait
    until the pods being deleted are gone (running pods elsewhere and empty namespaces are not waited for)."""
    monkeypatch.setattr(fidelity.time, "sleep", lambda s: None)
    kubectl = _Deleting()
    fidelity.wait_until_at_rest(kubectl)
    assert kubectl.looks == 4
    assert "waiting until the 1 pod that earlier runs deleted is gone" in capsys.readouterr().err


def test_the_blogs_rows_stop_waiting_at_the_timeout_and_say_so(monkeypatch, capsys):
    monkeypatch.setattr(fidelity.time, "sleep", lambda s: None)
    kubectl = _Deleting()
    fidelity.wait_until_at_rest(kubectl, timeout_s=-1)
    assert kubectl.looks == 1
    assert "1 pod still being deleted after -1 s; the blog's row runs on a busy node" in capsys.readouterr().err
