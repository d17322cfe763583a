"""``labkit fidelity``: how faithful is the simulator? Every scenario on a real backend and in the simulator.

For each scenario of tests/data/scenarios that can run on this version, and for the blog's Job
and Deployment: apply its pod to the real backend (labkit's node, a kind cluster, or a cluster
given by its kubeconfig; a fresh namespace), do its action, record it with the recorder until
the pod is done, and save the trace and the raw watch stream; run the same scenario in the
simulator for the same version and as long; check both traces with the scenario checker
(:mod:`labkit.expectations`) and write a table: scenario, holds on the real backend, holds in
the simulator, the largest time difference of one event. Exit status 1 when a scenario holds on
one and not the other. A scenario whose image the backend cannot pull is listed as not run,
with the image, and not counted. docs/fidelity.md has the table measured on labkit's node.

    labkit fidelity --backend node --out build/fidelity

A real trace reports one transition from several sources (docs/trace.md); the checker reads one
report per transition: the kubelet's own status time (whole seconds) where there is one,
else the Kubernetes Event, else the watch's arrival (:func:`one_report_each`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInput
from .expectations import check, scenario_version
from .median_run import (BLOG_RUNS, BLOG_TOLERANCE_S, CONTAINER_CPU_SCALES, RELIST_PHASES, SANDBOX_CPU_SCALES, Fitted,
                         SimRun, blog_events, blog_medians, real_runs)
from .trace import Event, Trace
from .versions import KubeVersion

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "tests" / "data" / "scenarios"
# A real backend cannot do these to its node; they are reported as not run.
NODE_ACTIONS = ("node_reboot", "kubelet_restart")
# Transitions a real cluster reports from several sources, and which report the checker reads.
MULTI_SOURCE = ("Started", "Restarted", "Exited", "Killed", "DeleteRequested")
PREFERENCE = ("status", "event", "watch")


@dataclass
class Row:
    """One scenario's line of the table."""

    scenario: str
    on_cluster: list[str] | None = None  # the checker's problems; None: not run
    on_sim: list[str] | None = None
    largest: tuple[float, str] | None = None  # (seconds, "container Type")
    skipped: str = ""
    notes: list[str] = field(default_factory=list)
    known: str = ""  # the cause, when tests/data/fidelity/known-differences.yaml lists this difference
    real_runs: int = 1  # the blog's rows: how many real runs ``largest`` is the median over

    @property
    def agrees(self) -> bool:
        if self.skipped:
            return True
        return (not self.on_cluster) == (not self.on_sim)

    @property
    def fails_run(self) -> bool:
        """A disagreement nobody has explained."""
        return not self.agrees and not self.known

    def as_json(self) -> dict:
        return {"scenario": self.scenario, "holds_on_real": None if self.on_cluster is None else not self.on_cluster,
                "holds_in_simulator": None if self.on_sim is None else not self.on_sim,
                "real_problems": self.on_cluster, "simulator_problems": self.on_sim,
                "largest_difference_s": self.largest[0] if self.largest else None,
                "largest_difference_event": self.largest[1] if self.largest else None,
                "not_run": self.skipped or None, "agrees": self.agrees, "known_difference": self.known or None,
                "real_runs": self.real_runs, "notes": self.notes}


# -- the comparison (pure: unit-tested in tests/test_fidelity.py) -------------------------------
def one_report_each(trace: Trace) -> Trace:
    """The trace with one report per transition: for each (pod, container, type, attempt) of a
    multi-source type the best source's report (status, then event, then watch); other events as they are."""
    best: dict[tuple, Event] = {}
    for event in trace.events:
        if event.type not in MULTI_SOURCE or event.source not in PREFERENCE:
            continue
        key = (event.pod, event.container, event.type, event.attempt)
        kept = best.get(key)
        if kept is None or PREFERENCE.index(event.source) < PREFERENCE.index(kept.source):
            best[key] = event
    chosen = {id(e) for e in best.values()}
    result = Trace(trace.backend, trace.kubernetes_version, dict(trace.feature_gates), origin=trace.origin,
                   extra=dict(trace.extra))
    for pod in trace.pods:
        result.add_pod(pod)
    kept = [e for e in trace.events if e.type not in MULTI_SOURCE or e.source not in PREFERENCE or id(e) in chosen]
    for event in sorted(kept, key=lambda e: e.t):  # stable: ties keep the order they happened in
        result.add(event)
    result.observed_until = trace.observed_until
    return result


def _firsts(trace: Trace, pod: str) -> dict[str, float]:
    """First time of each "<container> <Type>" of the pod, counted from the pod's first Started."""
    events = [e for e in trace.events if e.pod == pod and e.container is not None]
    starts = [e.t for e in events if e.type == "Started"]
    if not starts:
        return {}
    zero = min(starts)
    firsts: dict[str, float] = {}
    for event in events:
        firsts.setdefault(f"{event.container} {event.type}", event.t - zero)
    return firsts


def largest_difference(real: Trace, sim: Trace, pod: str) -> tuple[float, str] | None:
    """The event (first occurrence, both traces aligned on the pod's first container start) whose
    times differ most, and by how much; None when they share no event."""
    a, b = _firsts(real, pod), _firsts(sim, pod)
    shared = [(abs(a[name] - b[name]), name) for name in a if name in b]
    return max(shared) if shared else None


def compare(scenario: dict, real: Trace, sim: Trace) -> Row:
    pod = scenario["pod"]["metadata"]["name"]
    view = one_report_each(real)
    return Row(scenario["id"], on_cluster=check(view, scenario), on_sim=check(sim, scenario),
               largest=largest_difference(view, sim, pod))


def _holds(problems: list[str] | None) -> str:
    return "–" if problems is None else ("yes" if not problems else "**no**")


def markdown(rows: list[Row], *, version: str, cluster: str = "kind", title: str | None = None) -> str:
    """The table for the job summary and the artifact, then what did not hold. ``cluster`` names the
    real backend in the columns, ``title`` (default: the same) in the heading."""
    disagree = [r for r in rows if not r.agrees]
    lines = [f"### Simulator against {title or cluster}: Kubernetes {version}", "",
             f"{len(rows)} scenarios, {sum(1 for r in rows if r.skipped)} skipped, "
             f"{len(disagree)} where the two disagree.", "",
             f"| scenario | holds on {cluster} | holds on the simulator | largest time difference (event) |",
             "|---|---|---|---|"]
    for row in rows:
        if row.skipped:
            lines.append(f"| {row.scenario} | – | – | skipped: {row.skipped} |")
            continue
        diff = f"{row.largest[0]:.1f} s ({row.largest[1]})" if row.largest else "–"
        if row.largest and row.real_runs > 1:
            diff += f", median of {row.real_runs} runs"
        mark = "" if row.agrees else (" (known difference)" if row.known else " ⚠")
        lines.append(f"| {row.scenario}{mark} | {_holds(row.on_cluster)} | {_holds(row.on_sim)} | {diff} |")
    known = [r for r in rows if r.known and not r.agrees]
    if known:
        lines += ["", "Known differences (tests/data/fidelity/known-differences.yaml):", ""]
        lines += [f"- {row.scenario}: {row.known}" for row in known]
    failing = [r for r in rows if r.on_cluster or r.on_sim]
    if failing:
        lines += ["", "What did not hold:", ""]
        for row in failing:
            for where, problems in ((cluster, row.on_cluster), ("simulator", row.on_sim)):
                for problem in problems or []:
                    lines.append(f"- {row.scenario}, {where}: {problem}")
    return "\n".join(lines) + "\n"


def selection(scenario: dict, version: KubeVersion) -> tuple[dict | None, str]:
    """The feature gates to run ``scenario`` with on ``version``, or None and why it is skipped."""
    from .versions import behaviour, minor_in_span

    needs = [c for c in scenario.get("requires") or [] if c in NODE_ACTIONS]
    if needs:
        return None, f"needs {', '.join(needs)}"
    if _needs_second_image(scenario.get("action")):
        return None, "updates an image but names no second image to pull on a real cluster"
    if behaviour(version, {}).sidecar_gate == "alpha":  # 1.28: sidecars only with the gate on
        if "1.28 with gate" in str(scenario.get("min_version_note", "")):
            return {"SidecarContainers": True}, ""
        return None, "holds from 1.29"
    wanted = KubeVersion.parse(scenario_version(scenario))
    if not minor_in_span(version.minor, wanted.minor, None):  # the scenario's own minimum
        return None, f"holds from {wanted.minor_str}"
    return {}, ""


def _needs_second_image(action) -> bool:
    if not isinstance(action, dict):
        return False
    update = action.get("update_image")
    if isinstance(update, dict) and not update.get("image"):
        return True
    return _needs_second_image(action.get("then"))


# -- running on a real backend ----------------------------------------------------------------------
def pod_images(pod: dict) -> list[str]:
    spec = pod.get("spec") or {}
    return [c.get("image", "") for key in ("initContainers", "containers") for c in spec.get(key) or []]


def image_pull_failure(trace: Trace) -> str | None:
    """The image a real run could not pull (the pod sat in ErrImagePull), if that is what happened."""
    for event in trace.events:
        if event.type == "ImagePullFailed":
            return event.extra.get("image") or event.extra.get("message") or event.container or "an image"
    for pod in trace.pods:
        for name, final in (pod.final.containers if pod.final else {}).items():
            if final.reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                return f"the image of container {name} ({final.reason})"
    return None


def open_lab(backend: str, version: KubeVersion, *, kubeconfig: str | None, gates: dict | None, watch_log=None):
    """A lab on the real backend, in a namespace of its own; the node and kind ones are left running."""
    from .lab import connect

    options: dict = {"feature_gates": gates or None, "watch_log": watch_log, "quiet": True}
    if backend == "cluster":
        options["kubeconfig"] = kubeconfig
    else:
        options["keep_cluster"] = True
    return connect(backend, version, **options)


def run_on_backend(scenario: dict, *, backend: str, kubeconfig: str | None, version: KubeVersion,
                   observe_s: float) -> tuple[Trace, list[dict]]:
    """Apply the scenario's pod, do its action, record until the pod is done; the trace and the raw stream."""
    from .printers import format_time

    stream: list[dict] = []

    def log(arrival: float, kind: str, event: dict) -> None:
        stream.append({"arrival": format_time(arrival), "event": event})

    gates, _ = selection(scenario, version)
    lab = open_lab(backend, version, kubeconfig=kubeconfig, gates=gates, watch_log=log)
    try:
        pod = scenario["pod"]["metadata"]["name"]
        lab.apply(scenario["pod"])
        started = time.monotonic()
        actions = _timeline(scenario.get("action"), 0.0)
        action = scenario.get("action")
        trigger = action.get("trigger") if isinstance(action, dict) else None
        while time.monotonic() - started < observe_s:
            now = time.monotonic() - started
            if trigger and actions and actions[0][0] <= now and not trigger_holds(trigger, lab.trace(), pod):
                # the scenario acts once its trigger holds, as the upstream test waits for it:
                # a slow real pod moves the action, and every later one with it
                late = now - actions[0][0]
                actions = [(at + late, kind, args) for at, kind, args in actions]
            elif actions and actions[0][0] <= now:
                trigger = None
            while actions and actions[0][0] <= now:
                _, kind, args = actions.pop(0)
                if kind == "delete":
                    lab.delete(f"pod/{pod}", grace_period=args, wait=False)
                else:
                    lab.set_image(f"pod/{pod}", *args)
            trace = lab.trace()
            done = trace.select("Deleted", pod=pod) or any(
                e.phase in ("Succeeded", "Failed") for e in trace.select("PodPhase", pod=pod))
            if done and not actions:
                time.sleep(3)  # the last status updates
                break
            if not actions and image_pull_failure(trace):
                break
            time.sleep(0.5)
        return lab.trace(), stream
    finally:
        if scenario["pod"]["metadata"].get("finalizers"):
            # the upstream tests' pods carry a finalizer the test removes at its end; without that the
            # pod, and the lab's namespace with it, would stay Terminating for ever
            try:
                lab.kubectl.run(["patch", "pod", scenario["pod"]["metadata"]["name"], "--type=merge",
                                 "-p", '{"metadata":{"finalizers":null}}'], show=False)
            except Exception as exc:  # gone already, or the backend is down: nothing left to free
                print(f"labkit fidelity: could not remove the test finalizer: {exc}", file=sys.stderr)
        lab.close()


def trigger_holds(trigger: str, trace: Trace, pod: str) -> bool:
    """Whether a scenario action's ``trigger`` (free text, tests/data/scenarios/README.md §4) holds
    on a recorded trace. The forms about the pod are read: "pod Running", "pod is Running",
    "pod Running (all containers started)", "pod Running and Ready"; any other trigger is taken
    as holding, and the action's own time decides."""
    text = trigger.lower()
    if not text.startswith("pod") or "running" not in text:
        return True
    phases = [e.phase for e in trace.select("PodPhase", pod=pod)]
    if not phases or phases[-1] != "Running":
        return False
    if "all containers started" in text:
        info = next((p for p in trace.pods if p.name == pod), None)
        started = {e.container for e in trace.select("Started", pod=pod)}
        if info is None or any(c.name not in started for c in info.containers if c.role != "init"):
            return False
    if "ready" in text:
        ready = [e.type for e in trace.events if e.pod == pod and e.type in ("PodReady", "PodNotReady")]
        return bool(ready) and ready[-1] == "PodReady"
    return True


def _timeline(action, offset: float) -> list[tuple[float, str, object]]:
    if not isinstance(action, dict):
        return []
    steps: list[tuple[float, str, object]] = []
    if "delete_pod_after_seconds" in action:
        at = offset + float(action["delete_pod_after_seconds"])
        steps.append((at, "delete", action.get("grace_period_seconds")))
        steps += _timeline(action.get("then"), at)
    if isinstance(action.get("update_image"), dict):
        update = action["update_image"]
        steps.append((offset + float(update.get("after_seconds", 0)), "image", (update["container"], update["image"])))
    return sorted(steps, key=lambda step: step[0])


# -- the blog's workloads: real against simulated, event by event ------------------------------------
BLOG = {"blog-job": ("manifests/job-sidecar.yaml", "job/sidecar-job", "Complete"),
        "blog-deployment": ("manifests/deployment-sidecar.yaml", "deployment/sidecar-deploy", "Available")}


def _drive_blog(lab, name: str) -> Trace:
    """The blog's workload ``name`` on ``lab``, as the notebooks run it: apply, wait, then delete the
    Deployment 5 s after it is Available, or record the Job for 3 s more once it is Complete."""
    manifest, ref, condition = BLOG[name]
    lab.apply(str(ROOT / manifest))
    lab.wait(ref, condition, timeout=180)
    if condition == "Available":
        lab.sleep(5)
        lab.delete(ref, wait=True, timeout=180)
    else:
        lab.sleep(3)
    return lab.trace()


def blog_sims(name: str, version: KubeVersion,
              conditions: Iterable[tuple[float, float, float]] | None = None) -> list[SimRun]:
    """The simulator's runs of the blog's workload ``name`` under each (relist phase, sandbox CPU
    scale, container CPU scale) of ``conditions``; by default all those a real run is fitted to
    (labkit/median_run.py): 1,100 runs of 7-8 ms each."""
    from .sim import SimLab

    sims = []
    for phase, sandbox, container in conditions or itertools.product(RELIST_PHASES, SANDBOX_CPU_SCALES,
                                                                      CONTAINER_CPU_SCALES):
        lab = SimLab(k8s_version=version, seed=0, quiet=True, relist_phase=phase,
                     sandbox_cpu_scale=sandbox, container_cpu_scale=container)
        try:
            trace = _drive_blog(lab, name)
        finally:
            lab.close()
        sims.append(SimRun(phase, sandbox, container, trace, blog_events(trace)))
    return sims


def blog_row(name: str, *, backend: str, kubeconfig: str | None, version: KubeVersion, out: Path) -> Row:
    """Run one of the blog's workloads up to BLOG_RUNS times on the real backend (each deleted after
    it, the next on a node at rest), fit the simulator's relist phase and start times to each run,
    and hold the median of every event's difference over the runs to BLOG_TOLERANCE_S; the runs
    stop once more could not change that verdict (labkit/median_run.py)."""
    sims = blog_sims(name, version)

    def run_once(number: int) -> Trace:
        print(f"labkit fidelity: {name}: real run {number} of at most {BLOG_RUNS} (the median run is held "
              f"to {BLOG_TOLERANCE_S:.0f} s; two runs that agree settle it)", file=sys.stderr, flush=True)
        lab = open_lab(backend, version, kubeconfig=kubeconfig, gates=None)
        try:
            wait_until_at_rest(lab.kubectl)
            real = one_report_each(_drive_blog(lab, name))
        finally:
            lab.close()
        real.save(out / name / f"cluster-trace-{number}.json")
        return real

    runs = real_runs(run_once, sims)
    for number, run in enumerate(runs, 1):
        run.sim.trace.save(out / name / f"sim-trace-{number}.json")
    medians = blog_medians(runs)
    problems_real = [f"{event}: {_runs_text(event, runs)} after the pod's creation"
                     for median, event, _, _ in medians if abs(median) > BLOG_TOLERANCE_S]
    simulated = set().union(*[run.sim.events for run in runs])
    seen = set().union(*[run.events for run in runs])
    missing = sorted(simulated ^ seen)
    partly = sorted(event for event in simulated & seen if not all(event in run.events for run in runs))
    notes = [_fits_text(runs)]
    if missing:
        notes.append(f"seen on one side only: {', '.join(missing)}")
    if partly:
        notes.append(f"seen in some real runs only (the median is over those): {', '.join(partly)}")
    largest = (abs(medians[0][0]), medians[0][1]) if medians else None
    return Row(name, on_cluster=problems_real, on_sim=[], largest=largest, notes=notes, real_runs=len(runs))


def wait_until_at_rest(kubectl, timeout_s: float = 240.0) -> None:
    """Wait until no pod of the cluster is being deleted (nor lives in a namespace being deleted).

    The blog's rows are held to 1 s per event, and a node that is still tearing down what ran
    before (the scenarios' namespaces, a test suite's) starts and syncs pods late: a throttled
    container start or a relist takes longer on busy cores (docs/fidelity.md). What is left of a
    namespace once its pods are gone costs the node nothing, and is not waited for. Past the
    timeout the row runs anyway, and its differences say what the busy node did."""
    deadline = time.monotonic() + timeout_s
    said = False
    while True:
        namespaces = kubectl.json(["get", "namespaces"], namespaced=False)["items"]
        pods = kubectl.json(["get", "pods", "--all-namespaces"], namespaced=False)["items"]
        going = {n["metadata"]["name"] for n in namespaces if n.get("status", {}).get("phase") == "Terminating"}
        deleting = [p for p in pods if p["metadata"].get("deletionTimestamp") or p["metadata"].get("namespace") in going]
        if not deleting:
            return
        one = len(deleting) == 1
        pods_text = f"{len(deleting)} pod{'' if one else 's'}"
        if time.monotonic() > deadline:
            print(f"labkit fidelity: {pods_text} still being deleted after {timeout_s:.0f} s; "
                  f"the blog's row runs on a busy node", file=sys.stderr, flush=True)
            return
        if not said:
            print(f"labkit fidelity: waiting until the {pods_text} that earlier runs deleted {'is' if one else 'are'} "
                  f"gone, so that the blog's row runs on a node at rest", file=sys.stderr, flush=True)
            said = True
        time.sleep(1)


def _interval(low: float, high: float) -> str:
    return f"{low:.1f}" if high == low else f"[{low:.1f}, {high:.1f})"


def _runs_text(event: str, runs: list[Fitted]) -> str:
    """An event's real interval and fitted simulated time, run by run.

    >>> sim = SimRun(0.3, 1.0, 0.8, None, {"sws-init Started": (4.1, 4.1)})
    >>> _runs_text("sws-init Started", [Fitted(None, {"sws-init Started": (5.8, 6.8)}, sim), Fitted(None, {}, sim)])
    'run 1 [5.8, 6.8) s on the real backend, 4.1 s in the simulator fitted to it; run 2 not seen'
    """
    return "; ".join(f"run {number} " + (f"{_interval(*run.events[event])} s on the real backend, "
                                         f"{run.sim.events[event][0]:.1f} s in the simulator fitted to it"
                                         if event in run.events else "not seen")
                     for number, run in enumerate(runs, 1))


def _fits_text(runs: list[Fitted]) -> str:
    """The conditions fitted to each real run.

    >>> sim = SimRun(0.3, 1.25, 0.8, None, {})
    >>> _fits_text([Fitted(None, {}, sim), Fitted(None, {}, sim._replace(relist_phase=0.85, container_cpu_scale=1.2))])
    'fitted to each real run (relist ticks into each second, CPU time of the sandbox and of a container start): 0.30 s, x1.25, x0.8 (run 1); 0.85 s, x1.25, x1.2 (run 2)'
    """
    return ("fitted to each real run (relist ticks into each second, CPU time of the sandbox and of a container "
            "start): " + "; ".join(f"{run.sim.relist_phase:.2f} s, x{run.sim.sandbox_cpu_scale:g}, "
                                   f"x{run.sim.container_cpu_scale:g} (run {number})" for number, run in enumerate(runs, 1)))


SHORT_NAMES = {"node": "the real node", "kind": "kind", "cluster": "the cluster"}


def write_results(rows: list[Row], out: Path, *, version: str, backend: str, what: str) -> str:
    table = markdown(rows, version=version, cluster=SHORT_NAMES[backend], title=what)
    out.mkdir(parents=True, exist_ok=True)
    (out / "fidelity.md").write_text(table, encoding="utf-8")
    (out / "fidelity.json").write_text(json.dumps({
        "backend": backend, "real": what, "kubernetes_version": version,
        "date": time.strftime("%Y-%m-%d", time.gmtime()), "rows": [r.as_json() for r in rows],
    }, indent=1) + "\n", encoding="utf-8")
    return table


def run_scenario(path: Path, scenario: dict, *, backend: str, kubeconfig: str | None, version: KubeVersion,
                 out: Path, observe_s: float, what: str) -> Row:
    from .sim import simulate

    folder = out / scenario["id"]
    real, stream = run_on_backend(scenario, backend=backend, kubeconfig=kubeconfig, version=version,
                                  observe_s=observe_s)
    real.save(folder / "cluster-trace.json")
    recorded = {"provenance": f"recorded: {what}, Kubernetes {real.kubernetes_version}, "
                              f"{time.strftime('%Y-%m-%d', time.gmtime())}, scenario {scenario['id']}",
                "description": f"scenario {scenario['id']} as the recorder saw it",
                "kubernetes_version": real.kubernetes_version, "stream": stream}
    (folder / "watch-stream.json").write_text(json.dumps(recorded, indent=1) + "\n", encoding="utf-8")
    failed_pull = image_pull_failure(real)
    if failed_pull:
        return Row(scenario["id"], skipped=f"not run: {failed_pull} could not be pulled on {what}")
    gates, _ = selection(scenario, version)
    until = max(1.0, math.ceil(real.duration))
    sim = simulate([str(path)], k8s_version=version, feature_gates=gates or None, until_seconds=until, seed=0)
    sim.save(folder / "sim-trace.json")
    return compare(scenario, real, sim)


def main(args: argparse.Namespace) -> int:
    """``labkit fidelity``: the table, written to ``--out``; exit 1 on any disagreement."""
    from concurrent.futures import ThreadPoolExecutor

    import yaml

    backend = args.backend
    if backend == "cluster" and not args.kubeconfig:
        raise InvalidInput("--backend cluster needs --kubeconfig", field="--kubeconfig")
    if not SCENARIOS.is_dir():
        raise InvalidInput(f"no scenarios at {SCENARIOS}: labkit fidelity runs from a clone of the repository")
    scenarios = [(path, yaml.safe_load(path.read_text())) for path in sorted(SCENARIOS.glob("*.yaml"))]
    unknown = sorted(set(args.scenarios or ()) - {scenario["id"] for _, scenario in scenarios} - set(BLOG))
    if unknown:   # before any backend starts
        raise InvalidInput(f"no scenario {', '.join(unknown)} in {SCENARIOS} (nor {' or '.join(BLOG)})",
                           field="--scenario")
    if backend == "node":
        from .node import Node, default_minor

        version = KubeVersion.parse(args.k8s_version or default_minor(), field="--k8s-version")
        node = Node(version)
        node.up()
        what = node.describe()
        available = {image["ref"] for image in node.images()[0]}
    else:
        from .versions import DEFAULT_K8S_VERSION

        version = KubeVersion.parse(args.k8s_version or DEFAULT_K8S_VERSION, field="--k8s-version")
        what = "a kind cluster" if backend == "kind" else f"the cluster of {args.kubeconfig}"
        available = None
    out = Path(args.out)
    chosen = []
    rows: dict[str, Row] = {}
    for path, scenario in scenarios:
        if args.scenarios and scenario["id"] not in args.scenarios:
            continue
        gates, why = selection(scenario, version)
        missing = [image for image in pod_images(scenario["pod"])
                   if available is not None and not _served(image, available)]
        if gates is None:
            rows[scenario["id"]] = Row(scenario["id"], skipped=why)
        elif missing:
            rows[scenario["id"]] = Row(scenario["id"], skipped=f"not run: {what} has no image {', '.join(missing)}")
        else:
            chosen.append((path, scenario))
            rows[scenario["id"]] = Row(scenario["id"])

    def one(item) -> Row:
        path, scenario = item
        try:
            row = run_scenario(path, scenario, backend=backend, kubeconfig=args.kubeconfig, version=version,
                               out=out, observe_s=args.observe_s, what=what)
        except Exception as exc:  # one broken scenario must not hide the others
            row = Row(scenario["id"], on_cluster=[f"could not run: {type(exc).__name__}: {exc}"], on_sim=[])
        print(f"labkit fidelity: {row.scenario}: " + (row.skipped or
              f"real {'holds' if not row.on_cluster else 'does not hold'}, "
              f"simulator {'holds' if not row.on_sim else 'does not hold'}"), file=sys.stderr, flush=True)
        return row

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for row in pool.map(one, chosen):
            rows[row.scenario] = row
    ordered = [rows[key] for key in sorted(rows)]
    for name in BLOG:
        if not args.scenarios or name in args.scenarios:
            try:
                ordered.append(blog_row(name, backend=backend, kubeconfig=args.kubeconfig, version=version, out=out))
            except Exception as exc:   # as for a scenario: one failure must not hide the others
                ordered.append(Row(name, on_cluster=[f"could not run: {type(exc).__name__}: {exc}"], on_sim=[]))
    for row in ordered:
        row.known = known_differences(backend).get(row.scenario, "")
    table = write_results(ordered, out, version=version.minor_str, backend=backend, what=what)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(table)
    print(table)
    return 1 if any(row.fails_run for row in ordered) else 0


KNOWN = ROOT / "tests" / "data" / "fidelity" / "known-differences.yaml"


def known_differences(backend: str, path: Path | None = None) -> dict[str, str]:
    """scenario -> cause of the differences measured and explained for this backend."""
    import yaml

    path = KNOWN if path is None else path
    if not path.is_file():
        return {}
    rows = yaml.safe_load(path.read_text()).get("known") or []
    return {row["scenario"]: f"{row['cause']} (fault: {row['fault']})" for row in rows if row.get("backend") == backend}


def _served(image: str, available: set[str]) -> bool:
    from .node import repository

    tag = image.split("@")[0].rsplit(":", 1)[1] if ":" in image.split("/")[-1] else "latest"
    return any(repository(ref) == repository(image) and ref.rsplit(":", 1)[1] == tag for ref in available)
