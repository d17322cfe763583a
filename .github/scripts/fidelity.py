"""How faithful is the simulator? Run the scenarios on a real cluster and in the simulator, and compare.

For each scenario of tests/data/scenarios that can run on this version: apply its pod to the
cluster (labkit's cluster backend, a fresh namespace), do its action, record it with the
recorder until the pod is done (or ``--observe-s``), and save the trace and the raw watch
stream; run the same scenario in the simulator for the same version and as long; check both
traces with the checker of the simulator's conformance tests (tests/sim/sim_expectations.py)
and write a table: scenario, holds on the cluster, holds in the simulator, the largest time
difference of one event. Exit status 1 when a scenario holds on one and not the other.

    python .github/scripts/fidelity.py --k8s-version 1.29 --kubeconfig K --context C --out DIR

A real trace reports one transition from several sources (TRACE.md); the checker reads one
report per transition: the kubelet's own status time (whole seconds) where there is one,
else the Kubernetes Event, else the watch's arrival (:func:`one_report_each`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "data" / "scenarios"
sys.path.insert(0, str(ROOT / "tests" / "sim"))  # the conformance tests' checker, as it is

from sim_expectations import check, scenario_version  # noqa: E402

from labkit.trace import Event, Trace  # noqa: E402
from labkit.versions import KubeVersion  # noqa: E402

# The kind job cannot do these to its node; they are reported as skipped.
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

    @property
    def agrees(self) -> bool:
        if self.skipped:
            return True
        return (not self.on_cluster) == (not self.on_sim)


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


def markdown(rows: list[Row], *, version: str, cluster: str = "kind") -> str:
    """The table for the job summary and the artifact, then what did not hold."""
    disagree = [r for r in rows if not r.agrees]
    lines = [f"### Simulator against {cluster}: Kubernetes {version}", "",
             f"{len(rows)} scenarios, {sum(1 for r in rows if r.skipped)} skipped, "
             f"{len(disagree)} where the two disagree.", "",
             f"| scenario | holds on {cluster} | holds on the simulator | largest time difference (event) |",
             "|---|---|---|---|"]
    for row in rows:
        if row.skipped:
            lines.append(f"| {row.scenario} | – | – | skipped: {row.skipped} |")
            continue
        diff = f"{row.largest[0]:.1f} s ({row.largest[1]})" if row.largest else "–"
        mark = "" if row.agrees else " ⚠"
        lines.append(f"| {row.scenario}{mark} | {_holds(row.on_cluster)} | {_holds(row.on_sim)} | {diff} |")
    failing = [r for r in rows if r.on_cluster or r.on_sim]
    if failing:
        lines += ["", "What did not hold:", ""]
        for row in failing:
            for where, problems in ((cluster, row.on_cluster), ("simulator", row.on_sim)):
                for problem in problems or []:
                    lines.append(f"- {row.scenario}, {where}: {problem}")
    return "\n".join(lines) + "\n"


def selection(scenario: dict, version: str) -> tuple[dict | None, str]:
    """The feature gates to run ``scenario`` with on ``version``, or None and why it is skipped."""
    minor = KubeVersion.parse(version).minor
    needs = [c for c in scenario.get("requires") or [] if c in NODE_ACTIONS]
    if needs:
        return None, f"needs {', '.join(needs)}"
    if _needs_second_image(scenario.get("action")):
        return None, "updates an image but names no second image to pull on a real cluster"
    if minor == 28:
        if "1.28 with gate" in str(scenario.get("min_version_note", "")):
            return {"SidecarContainers": True}, ""
        return None, "holds from 1.29"
    wanted = KubeVersion.parse(scenario_version(scenario)).minor
    if minor < wanted:
        return None, f"holds from 1.{wanted}"
    return {}, ""


def _needs_second_image(action) -> bool:
    if not isinstance(action, dict):
        return False
    update = action.get("update_image")
    if isinstance(update, dict) and not update.get("image"):
        return True
    return _needs_second_image(action.get("then"))


# -- running on a cluster (needs one; run by the workflow) ------------------------------------------
def run_on_cluster(scenario: dict, *, kubeconfig: str, context: str | None, version: str,
                   observe_s: float) -> tuple[Trace, list[dict]]:
    """Apply the scenario's pod, do its action, record until the pod is done; the trace and the raw stream."""
    from labkit.cluster import ClusterLab
    from labkit.printers import format_time

    stream: list[dict] = []

    def log(arrival: float, kind: str, event: dict) -> None:
        stream.append({"arrival": format_time(arrival), "event": event})

    gates, _ = selection(scenario, version)
    lab = ClusterLab(k8s_version=version, kubeconfig=kubeconfig, context=context, feature_gates=gates or None,
                     watch_log=log)
    try:
        pod = scenario["pod"]["metadata"]["name"]
        lab.apply(scenario["pod"])
        started = time.monotonic()
        actions = _timeline(scenario.get("action"), 0.0)
        while time.monotonic() - started < observe_s:
            now = time.monotonic() - started
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
                lab.sleep(3)  # the last status updates
                break
            lab.sleep(0.5)
        return lab.trace(), stream
    finally:
        lab.close()


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k8s-version", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--context", default=None)
    parser.add_argument("--cluster-name", default="kind", help="what the table calls the cluster")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--observe-s", type=float, default=120.0, help="the longest a scenario is watched")
    parser.add_argument("--only", nargs="*", default=None, help="scenario ids (default: all)")
    args = parser.parse_args(argv)
    from labkit.sim import simulate

    version = KubeVersion.parse(args.k8s_version).minor_str
    rows: list[Row] = []
    for path in sorted(SCENARIOS.glob("*.yaml")):
        scenario = yaml.safe_load(path.read_text())
        if args.only and scenario["id"] not in args.only:
            continue
        gates, why = selection(scenario, version)
        if gates is None:
            rows.append(Row(scenario["id"], skipped=why))
            continue
        folder = args.out / scenario["id"]
        try:
            real, stream = run_on_cluster(scenario, kubeconfig=args.kubeconfig, context=args.context,
                                          version=version, observe_s=args.observe_s)
        except Exception as exc:  # one broken scenario must not hide the others
            rows.append(Row(scenario["id"], on_cluster=[f"could not run: {type(exc).__name__}: {exc}"], on_sim=[]))
            continue
        until = max(1.0, math.ceil(real.duration))
        sim = simulate([str(path)], k8s_version=version, feature_gates=gates or None, until_seconds=until, seed=0)
        real.save(folder / "cluster-trace.json")
        sim.save(folder / "sim-trace.json")
        recorded = {"provenance": f"recorded: {args.cluster_name} cluster, Kubernetes {real.kubernetes_version}, "
                                  f"{time.strftime('%Y-%m-%d', time.gmtime())}, scenario {scenario['id']}",
                    "description": f"scenario {scenario['id']} as the recorder saw it",
                    "kubernetes_version": real.kubernetes_version, "stream": stream}
        (folder / "watch-stream.json").write_text(json.dumps(recorded, indent=1) + "\n", encoding="utf-8")
        rows.append(compare(scenario, real, sim))
        print(f"{scenario['id']}: cluster {'holds' if not rows[-1].on_cluster else 'does not hold'}, "
              f"simulator {'holds' if not rows[-1].on_sim else 'does not hold'}", flush=True)
    table = markdown(rows, version=version, cluster=args.cluster_name)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fidelity.md").write_text(table, encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(table)
    print(table)
    return 0 if all(row.agrees for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
