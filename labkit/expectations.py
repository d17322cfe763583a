"""A checker for the ``expect`` block of the scenario format (docs/scenarios.md, tests/data/scenarios/README.md §5).

``check(trace, scenario)`` returns one message per expectation that does not hold, so a
failing test lists everything that is wrong at once. Event names are ``"<container>
<Event>"`` and mean the trace events of the scenario's pod with that container and type.
Pairing rules (the README's, made exact):

- ``[E1, before, E2]``: the first E1 comes before the last E2 (both must occur). On a real
  trace the times are bounds, not instants (docs/trace.md): a status time lies up to its
  ``resolution_s`` before the change, a watch arrival up to ``labkit.agree.NETWORK_S`` after it;
  the order fails only when those bounds prove E1 came after E2;
- ``overlaps``: some run of C1 and some run of C2 overlap in time (``overlaps_lhs_first``:
  and C1 started first);
- ``timing`` ``{from, to}``: from the first ``from`` to the first ``to`` at or after it;
- ``never_after``: none of ``events`` after the first ``anchor`` + ``offset_s``;
- ``pod_deleted_within_s``: from ``DeleteRequested`` to ``Deleted``.
"""

from __future__ import annotations

import math

from .agree import NETWORK_S
from .trace import Event, Trace

# Kubernetes Event texts in `events_never`, as the trace event types that would carry them.
EVENT_TEXTS = {
    "failed liveness probe": "LivenessProbeFailed",
    "failed startup probe": "StartupProbeFailed",
    "back-off restarting failed container": "Restarted",
}

CHECKED_KEYS = {"order", "final_phase", "phase_invariant", "restart_counts", "container_statuses",
                "container_waiting_reason", "pod_ready", "timing", "never_after", "pod_deleted_within_s",
                "events_never", "notes"}


class _View:
    def __init__(self, trace: Trace, pod: str):
        self.trace = trace
        self.pod = trace.pod(pod)
        self.events = [e for e in trace.events if e.pod == pod]
        self.index = {id(e): i for i, e in enumerate(self.events)}

    def find(self, name: str) -> list[Event]:
        container, _, etype = name.rpartition(" ")
        return [e for e in self.events if e.container == container and e.type == etype]

    def pod_events(self, etype: str) -> list[Event]:
        return [e for e in self.events if e.container is None and e.type == etype]

    def spans(self, container: str):
        return [s for s in self.trace.spans(self.pod.name) if s.container == container]


def check(trace: Trace, scenario: dict) -> list[str]:
    expect = scenario.get("expect") or {}
    unknown = set(expect) - CHECKED_KEYS - {"invariants_during_restart", "phase_invariant_after_reboot_until_reinitialized"}
    problems = [f"expect.{key}: no checker for this key" for key in sorted(unknown)]
    view = _View(trace, scenario["pod"]["metadata"]["name"])
    for i, row in enumerate(expect.get("order") or []):
        problems += _order(view, row, f"order[{i}]")
    if "final_phase" in expect and view.pod.final.phase != expect["final_phase"]:
        problems.append(f"final_phase: expected {expect['final_phase']}, got {view.pod.final.phase}"
                        f" (phases: {[e.phase for e in view.pod_events('PodPhase')]})")
    if "phase_invariant" in expect:
        phases = [e.phase for e in view.pod_events("PodPhase")] + [view.pod.final.phase]
        if any(p != expect["phase_invariant"] for p in phases):
            problems.append(f"phase_invariant: expected only {expect['phase_invariant']}, saw {phases}")
    for name, wanted in (expect.get("restart_counts") or {}).items():
        got = view.pod.final.containers[name].restart_count
        wanted = str(wanted)
        ok = got >= int(wanted[2:]) if wanted.startswith(">=") else got == int(wanted)
        if not ok:
            problems.append(f"restart_counts.{name}: expected {wanted}, got {got}")
    for name, wanted in (expect.get("container_statuses") or {}).items():
        final = view.pod.final.containers[name]
        got = {"exit_code": final.exit_code, "reason": final.reason}
        if final.state != "terminated" or any(got[k] != v for k, v in wanted.items()):
            problems.append(f"container_statuses.{name}: expected terminated {wanted}, got {final.state} {got}")
    waiting = expect.get("container_waiting_reason")
    if waiting:
        items = waiting.items() if isinstance(waiting, dict) else [(c.name, waiting) for c in view.pod.containers]
        for name, reason in items:
            final = view.pod.final.containers[name]
            if final.state != "waiting" or final.reason != reason:
                problems.append(f"container_waiting_reason.{name}: expected waiting {reason}, got {final.state} {final.reason}")
    if "pod_ready" in expect:
        problems += _pod_ready(view, expect["pod_ready"])
    for i, row in enumerate(expect.get("timing") or []):
        problems += _timing(view, row, f"timing[{i}]")
    rows = expect.get("never_after") or []
    for i, row in enumerate(rows if isinstance(rows, list) else [rows]):
        anchor = view.find(row["anchor"])
        if not anchor:
            problems.append(f"never_after[{i}]: anchor {row['anchor']!r} never happened")
            continue
        limit = anchor[0].t + row["offset_s"]
        for name in row["events"]:
            late = [e.t for e in view.find(name) if e.t > limit + 1e-9]
            if late:
                problems.append(f"never_after[{i}]: {name} at {late} after {row['anchor']} + {row['offset_s']} s = {limit:.2f}")
    if "pod_deleted_within_s" in expect:
        asked, gone = view.pod_events("DeleteRequested"), view.pod_events("Deleted")
        if not asked or not gone:
            problems.append(f"pod_deleted_within_s: DeleteRequested {bool(asked)}, Deleted {bool(gone)}")
        elif gone[0].t - asked[0].t > expect["pod_deleted_within_s"]:
            problems.append(f"pod_deleted_within_s: took {gone[0].t - asked[0].t:.2f} s > {expect['pod_deleted_within_s']}")
    for text in expect.get("events_never") or []:
        etype = EVENT_TEXTS.get(text.lower())
        if etype is None:
            problems.append(f"events_never: cannot express {text!r} as a trace event")
        elif any(e.type == etype for e in view.events):
            problems.append(f"events_never: {text!r} happened ({etype} at {[e.t for e in view.events if e.type == etype]})")
    return problems


def _earliest(event: Event) -> float:
    """The earliest instant a real report allows: a watch update arrives after its change."""
    return event.t - NETWORK_S if event.source == "watch" else event.t


def _latest(event: Event) -> float:
    """The latest instant: a status time is rounded down to whole seconds (``resolution_s``)."""
    return event.t + (event.resolution_s or 0.0)


def _order(view: _View, row: list, where: str) -> list[str]:
    if len(row) == 2:
        name, what = row
        found = view.find(name)
        if what == "occurs" and not found:
            return [f"{where}: {name} never happened"]
        if what == "never" and found:
            return [f"{where}: {name} happened at {[e.t for e in found]}"]
        return []
    left, relation, right = row
    if relation == "before":
        a, b = view.find(left), view.find(right)
        if not a or not b:
            return [f"{where}: {left if not a else right} never happened ({left} before {right})"]
        first, last = a[0], b[-1]
        if first.source == "sim" and last.source == "sim":
            disproved = view.index[id(first)] >= view.index[id(last)]
        else:
            disproved = _earliest(first) >= _latest(last)
        if disproved:
            return [f"{where}: first {left} at {first.t} is not before any {right} ({[e.t for e in b]})"]
        return []
    if relation in ("overlaps", "overlaps_lhs_first"):
        s1, s2 = view.spans(left), view.spans(right)
        if not s1 or not s2:
            return [f"{where}: {left if not s1 else right} never ran"]
        inf = math.inf
        ok = any(x.start < (y.end if y.end is not None else inf) and y.start < (x.end if x.end is not None else inf)
                 for x in s1 for y in s2)
        if not ok:
            return [f"{where}: {left} and {right} never ran at the same time"]
        if relation == "overlaps_lhs_first" and s1[0].start >= s2[0].start:
            return [f"{where}: {left} did not start first"]
        return []
    return [f"{where}: unknown relation {relation!r}"]


def _pair(view: _View, start: str, end: str) -> tuple[Event | None, Event | None]:
    a = view.find(start)
    if not a:
        return None, None
    b = [e for e in view.find(end) if view.index[id(e)] >= view.index[id(a[0])]]
    return a[0], b[0] if b else None


def _timing(view: _View, row: dict, where: str) -> list[str]:
    if "events" in row:
        firsts = []
        for name in row["events"]:
            found = view.find(name)
            if not found:
                return [f"{where}: {name} never happened"]
            firsts.append(found[0].t)
        spread = max(firsts) - min(firsts)
        return [] if spread <= row["within_s"] + 1e-9 else [f"{where}: {row['events']} spread over {spread:.2f} s > {row['within_s']}"]
    a, b = _pair(view, row["from"], row["to"])
    if a is None or b is None:
        return [f"{where}: {row['from'] if a is None else row['to']} never happened"]
    took = b.t - a.t
    if "approx_s" in row and abs(took - row["approx_s"]) > row.get("tolerance_s", 0) + 1e-9:
        return [f"{where}: {row['from']} -> {row['to']} took {took:.2f} s, expected {row['approx_s']} ± {row.get('tolerance_s', 0)}"]
    if "max_s" in row and took > row["max_s"] + 1e-9:
        return [f"{where}: {row['from']} -> {row['to']} took {took:.2f} s > {row['max_s']}"]
    return []


def _pod_ready(view: _View, spec: dict) -> list[str]:
    problems = []
    ready = view.pod_events("PodReady")
    if spec.get("becomes_true") and not ready:
        problems.append("pod_ready.becomes_true: the pod never became Ready")
    if "never_true_for_s" in spec:
        early = [e.t for e in ready if e.t <= spec["never_true_for_s"]]
        if early:
            problems.append(f"pod_ready.never_true_for_s: Ready at {early}")
        if view.trace.duration < spec["never_true_for_s"]:
            problems.append(f"pod_ready.never_true_for_s: the run covers only {view.trace.duration:.1f} s")
    # within_s_after and not_before are about when Ready came: a pod that never became Ready
    # fails them (it used to pass them unchecked), and so does a missing anchor event.
    for key in ("within_s_after", "not_before"):
        if key not in spec:
            continue
        anchor = view.find(spec[key]["event"])
        if not anchor:
            problems.append(f"pod_ready.{key}: {spec[key]['event']} never happened")
        elif not ready:
            problems.append(f"pod_ready.{key}: the pod never became Ready")
        elif key == "within_s_after":
            after = [e.t for e in ready if e.t >= anchor[0].t]
            if not after or after[0] - anchor[0].t > spec[key]["s"]:
                problems.append(f"pod_ready.within_s_after: Ready at {after[:1]}, anchor {anchor[0].t}")
        elif ready[0].t < anchor[0].t + spec[key]["plus_s"]:
            problems.append(f"pod_ready.not_before: Ready at {ready[0].t}")
    if spec.get("becomes_false_after_delete"):
        asked = view.pod_events("DeleteRequested")
        if not asked:
            problems.append("pod_ready.becomes_false_after_delete: the pod was never deleted")
        else:
            was_ready = [e for e in ready if e.t <= asked[0].t]
            not_ready = [e for e in view.pod_events("PodNotReady") if e.t >= asked[0].t]
            if not was_ready:
                problems.append("pod_ready.becomes_false_after_delete: the pod was not Ready when deleted")
            if not not_ready:
                problems.append("pod_ready.becomes_false_after_delete: no PodNotReady after the delete")
            elif any(view.pod_events("Deleted")) and not_ready[0].t > view.pod_events("Deleted")[0].t:
                problems.append("pod_ready.becomes_false_after_delete: NotReady only after the pod was gone")
    return problems


def scenario_version(scenario: dict) -> str:
    return scenario.get("min_version") or "1.29"


def describe(trace: Trace, pod: str) -> str:
    """The pod's events, one per line, for failure messages."""
    return "\n".join(str(e) for e in trace.events if e.pod == pod or e.pod is None)


__all__ = ["check", "describe", "scenario_version"]
