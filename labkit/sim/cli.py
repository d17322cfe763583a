"""``labkit sim run``: its flags read into ``simulate``'s arguments, and the run printed as a
table (timeline, each pod's final status, where observation stopped) or as the JSON trace.

``labkit/cli.py`` parses the command line and calls :func:`main`.
"""

from __future__ import annotations

from ..errors import InvalidInput
from ..trace import Trace
from ..versions import SIDECAR_GATE, KubeVersion, gate_default, lab_feature_gates
from .cluster import GENERATOR, gc_paused
from .run import simulate


def describe_run(trace: Trace) -> str:
    """The first line: version, gates (and on 1.28 where the gate's value comes from), seed."""
    gates = ", ".join(f"{k}={str(v).lower()}" for k, v in trace.feature_gates.items()) or "none"
    version = KubeVersion.parse(trace.kubernetes_version)
    if gate_default(version.minor) is False and SIDECAR_GATE in trace.feature_gates:
        lab = lab_feature_gates(version)[SIDECAR_GATE]
        name = f"{SIDECAR_GATE}={str(not lab).lower()}"
        if trace.feature_gates[SIDECAR_GATE] == lab:
            gates += f", as the blog's kind config sets it; --feature-gate {name} for {version.minor_str}'s default"
        else:
            gates += f", {version.minor_str}'s default; the blog's kind config sets {SIDECAR_GATE}={str(lab).lower()}"
    return (f"Simulation of Kubernetes {trace.kubernetes_version} (feature gates: {gates}), seed "
            f"{trace.extra.get('seed', 0)}: {GENERATOR}.")


def seconds_text(t: float) -> str:
    """``t=10.05 s``, ``t=299.9 s``: the table's precision without trailing zeros."""
    return f"t={f'{t:.2f}'.rstrip('0').rstrip('.')} s"


def _named(kind: str, names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
    return f"{kind}{'s' if len(names) > 1 else ''} {shown}"


def closing_line(trace: Trace, until_seconds: float | None = None) -> str:
    """Where observation stopped and what was unfinished then (Jobs not complete, pods not done)."""
    ended = {e.object for e in trace.select({"JobComplete", "JobFailed"})}
    jobs: dict[str, bool] = {}                    # Job -> has a pod that was not deleted
    pods_by_phase: dict[str, list[str]] = {}
    for pod in trace.pods:
        final = pod.final
        if pod.owner and pod.owner.get("kind") == "Job":
            jobs[pod.owner["name"]] = jobs.get(pod.owner["name"], False) or not (final and final.deleted)
        if final is not None and not final.deleted and final.phase not in ("Succeeded", "Failed"):
            pods_by_phase.setdefault(final.phase, []).append(pod.name)
    unfinished = [f"job/{name} not complete" for name, alive in jobs.items() if alive and f"job/{name}" not in ended]
    unfinished += [f"{_named('pod', names)} still {phase}" for phase, names in pods_by_phase.items()]
    limit = f" (--until-seconds {until_seconds:g})" if until_seconds is not None else " (the time limit)"
    if unfinished:
        return f"Stopped at {seconds_text(trace.duration)}{limit}: {'; '.join(unfinished)}."
    last = trace.events[-1].t if trace.events else 0.0
    if trace.duration - last >= 0.05:           # kept watching, e.g. for a --delete-after still to come
        return f"Everything finished at {seconds_text(last)}; stopped watching at {seconds_text(trace.duration)}{limit}."
    return f"Everything finished at {seconds_text(last)}."


def format_timeline(trace: Trace, until_seconds: float | None = None) -> str:
    """The run as a table: t, pod, container, event, details; then each pod's final status and
    one line saying where the run stopped (``until_seconds``: the limit it was given)."""
    lines = [describe_run(trace)]
    for warning in trace.extra.get("warnings") or []:
        lines.append(f"Warning: {warning}")
    for note in trace.extra.get("notes") or []:
        lines.append(f"Process: {note}")
    rows = []
    for e in trace.events:  # one row each: 190,000 for 10,000 pods, so attributes are read directly
        details = []
        if e.phase is not None:
            details.append(f"phase={e.phase}")
        if e.exit_code is not None:
            details.append(f"exit_code={e.exit_code}")
        if e.attempt is not None and e.type != "Restarted":
            details.append(f"attempt={e.attempt}")
        if e.grace_period_seconds is not None:
            details.append(f"grace_period_seconds={e.grace_period_seconds}")
        if e.reason is not None:
            details.append(f"reason={e.reason}")
        kind = e.type
        if kind == "SIGTERM":       # the trace's name for "the stop signal was sent"
            kind = "stop signal"
            details.append(f"signal={e.extra.get('signal') or 'SIGTERM'}")
        rows.append((f"{e.t:.2f}", e.pod or e.object or "-", e.container or "-", kind, " ".join(details)))
    headers = ("t", "pod", "container", "event", "details")
    columns = list(zip(*rows))[:4] if rows else [()] * 4
    widths = [max(len(headers[i]), max(map(len, columns[i]), default=0)) for i in range(4)]
    lines.append("")
    lines.append(f"{headers[0]:>{widths[0]}}  {headers[1]:<{widths[1]}}  {headers[2]:<{widths[2]}}  "
                 f"{headers[3]:<{widths[3]}}  {headers[4]}")
    t_w, pod_w, container_w, event_w = widths
    lines.extend(f"{t:>{t_w}}  {pod:<{pod_w}}  {container:<{container_w}}  {kind:<{event_w}}  {details}".rstrip()
                 for t, pod, container, kind, details in rows)
    lines.append("")
    lines.append("Final pod status:")
    for pod in trace.pods:
        final = pod.final
        if final is None:
            continue
        lines.append(f"  {pod.name}: {final.phase}{' (deleted)' if final.deleted else ''}")
        for info in pod.containers:
            c = final.containers.get(info.name)
            if c is None:
                continue
            state = c.state
            if c.exit_code is not None:
                state += f" exit {c.exit_code}"
            if c.reason:
                state += f" ({c.reason})"
            lines.append(f"    {info.name:<20} {info.role:<8} {state}, restarts {c.restart_count}")
    lines.append("")
    lines.append(closing_line(trace, until_seconds))
    return "\n".join(lines)


def parse_gate(text: str) -> tuple[str, bool]:
    """``SidecarContainers=true`` -> ("SidecarContainers", True)."""
    name, sep, value = text.partition("=")
    if not sep or value.strip().lower() not in ("true", "false") or not name.strip():
        raise InvalidInput(f"expected NAME=true or NAME=false, got {text!r}", field="--feature-gate")
    return name.strip(), value.strip().lower() == "true"


# simulate()'s parameters and the flags that set them, so that a bad value is reported by its flag.
FLAGS = {"k8s_version": "--k8s-version", "feature_gates": "--feature-gate", "delete_after": "--delete-after",
         "until_seconds": "--until-seconds"}


def main(args) -> Trace:
    """``labkit sim run``: simulate, then print the timeline (or the JSON trace); returns the trace
    (``labkit.cli`` draws it with ``--plot``: the simulator imports no view)."""
    gates: dict[str, bool] = {}
    for text in args.feature_gates:
        name, value = parse_gate(text)
        gates[name] = value
    with gc_paused():  # the trace's text is as many objects again as the run (see gc_paused)
        try:
            trace = simulate(args.files, k8s_version=args.k8s_version, feature_gates=gates or None,
                             delete_after=args.delete_after, until_seconds=args.until_seconds, seed=args.seed)
        except InvalidInput as exc:
            if exc.source is None and exc.field in FLAGS:
                raise InvalidInput(exc.message, field=FLAGS[exc.field]) from None
            raise
        print(trace.to_json() if args.json else format_timeline(trace, args.until_seconds))
    return trace
