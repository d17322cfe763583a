"""Run manifests and scenario files through the simulator in one go: ``simulate`` and the
``labkit sim run`` command's output.

A scenario file (the format of docs/scenarios.md) is applied as
its ``pod`` with its ``behaviour`` block, and its ``action`` is performed on virtual time:
``delete_pod_after_seconds`` (with ``grace_period_seconds``; the ``trigger`` text is
informational, the delete happens N seconds after the apply), ``update_image``, and the
``then:`` follow-up. ``node_reboot`` and ``kubelet_restart`` are not modelled: the pod runs
without them and the trace's warnings say so.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from ..manifests import Document, load_documents, source_names
from ..trace import Trace
from ..versions import SIDECAR_GATE, KubeVersion, gate_default, lab_feature_gates
from .cluster import GENERATOR, Cluster, gc_paused

UNSUPPORTED_ACTIONS = ("node_reboot", "kubelet_restart")


def updated_image(image: str) -> str:
    """A different image for an ``update_image`` action that names none."""
    last = image.rsplit("/", 1)[-1]
    return f"{image}-updated" if ":" in last else f"{image}:updated"


def apply_scenario(cluster: Cluster, doc: Document) -> list[str]:
    """Apply a scenario's pod with its behaviour and schedule its action."""
    scenario = doc.obj
    where = doc.where
    pod_obj = scenario.get("pod")
    if not isinstance(pod_obj, dict):
        raise InvalidInput("expected the scenario's Pod manifest", source=where, field="pod")
    line = cluster.apply(pod_obj, source=where, behaviour_block=scenario.get("behaviour"))
    name = pod_obj["metadata"]["name"]
    pod = cluster.pods[name]
    scenario_id = scenario.get("id", where)
    for capability in scenario.get("requires") or []:
        if capability in UNSUPPORTED_ACTIONS:
            cluster._warn(f"{where}: scenario {scenario_id} requires {capability}, which the simulator does not "
                          "model; the pod ran without it")
    action = scenario.get("action", "none")
    if action in (None, "none"):
        return [line]
    if not isinstance(action, dict):
        raise InvalidInput(f"expected 'none' or a mapping, got {action!r}", source=where, field="action")
    _schedule_action(cluster, pod, action, where, "action", 0.0)
    return [line]


def _schedule_action(cluster: Cluster, pod, action: dict, where: str, path: str, offset: float) -> None:
    for key in action:
        if key in UNSUPPORTED_ACTIONS:
            cluster._warn(f"{where}: {path}.{key} is not modelled by the simulator; the pod ran without it")
        elif key not in ("delete_pod_after_seconds", "grace_period_seconds", "trigger", "then", "update_image", "note"):
            raise InvalidInput(f"unknown action {key!r} (known: delete_pod_after_seconds, update_image, "
                               f"{', '.join(UNSUPPORTED_ACTIONS)})", source=where, field=f"{path}.{key}")
    if "delete_pod_after_seconds" in action:
        after = _seconds(action["delete_pod_after_seconds"], where, f"{path}.delete_pod_after_seconds")
        grace = action.get("grace_period_seconds")
        if grace is not None and (isinstance(grace, bool) or not isinstance(grace, int) or grace < 0):
            raise InvalidInput(f"expected whole seconds >= 0, got {grace!r}", source=where, field=f"{path}.grace_period_seconds")
        cluster._at(offset + after, cluster.delete_pod, pod, grace)
        if isinstance(action.get("then"), dict):
            _schedule_action(cluster, pod, action["then"], where, f"{path}.then", offset + after)
    if "update_image" in action:
        update = action["update_image"]
        upath = f"{path}.update_image"
        if not isinstance(update, dict) or update.get("container") not in pod.by_name:
            raise InvalidInput(f"expected {{container, after_seconds}} naming one of {', '.join(pod.container_names())}",
                               source=where, field=upath)
        after = _seconds(update.get("after_seconds", 0), where, f"{upath}.after_seconds")
        container = update["container"]
        image = update.get("image") or updated_image(pod.by_name[container].image)
        cluster._at(offset + after, cluster.set_image, pod, container, image)


def _seconds(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InvalidInput(f"expected seconds >= 0, got {value!r}", source=where, field=field)
    return float(value)


def simulate(documents_or_paths: Any, *, k8s_version: str, feature_gates: dict[str, bool] | None = None,
             delete_after: float | None = None, until_seconds: float = 300, seed: int = 0) -> Trace:
    """Apply manifests and/or scenario files to a fresh simulated cluster and return the trace.

    ``feature_gates=None`` means the gates of a cluster labkit makes
    (``labkit.versions.lab_feature_gates``: on 1.28 the blog's ``SidecarContainers=true``),
    so "1.28" is the same cluster here as in ``connect()`` and ``labkit up``; pass
    ``{"SidecarContainers": False}`` for 1.28's own default, ``{}`` for the API server's.
    The run ends when everything has finished (Jobs done, pods terminal) or been deleted,
    or after ``until_seconds`` of virtual time. ``delete_after`` deletes every applied
    object that many seconds after the apply (Deployments and Jobs through the garbage
    collector, each pod with its own grace period).
    """
    if until_seconds is None or until_seconds <= 0:
        raise InvalidInput(f"expected seconds > 0, got {until_seconds!r}", field="until_seconds")
    if delete_after is not None and delete_after < 0:
        raise InvalidInput(f"expected seconds >= 0, got {delete_after!r}", field="delete_after")
    if feature_gates is None:
        feature_gates = lab_feature_gates(k8s_version)
    cluster = Cluster(k8s_version, feature_gates, seed)
    docs = load_documents(documents_or_paths)
    if not docs:
        raise InvalidInput("nothing to simulate: no Kubernetes objects or scenarios in it (empty, or only comments)",
                           source=", ".join(source_names(documents_or_paths)))
    applied: list[tuple[str, str]] = []
    for doc in docs:
        if doc.is_scenario:
            apply_scenario(cluster, doc)
            applied.append(("Pod", doc.obj["pod"]["metadata"]["name"]))
        else:
            cluster.apply(doc.obj, source=doc.where)
            applied.append((doc.obj["kind"], doc.obj["metadata"]["name"]))
    pending = [0]
    if delete_after is not None:
        pending[0] += 1

        def delete_all() -> None:
            pending[0] -= 1
            for kind, name in applied:
                if kind == "Pod":
                    pod = cluster.pods.get(name)
                    if pod is not None and not pod.deleted:
                        cluster.delete_pod(pod)
                else:
                    workload = cluster.workloads.get((kind, name))
                    if workload is not None:
                        cluster.delete_workload(workload)

        cluster._at(delete_after, delete_all)
    run_until(cluster, until_seconds, lambda: pending[0] == 0 and cluster.done())
    return cluster.trace()


def run_until(cluster: Cluster, until_seconds: float, finished) -> None:
    """Advance the cluster to ``until_seconds`` after its origin, or until ``finished()``."""
    env = cluster.env
    end = (cluster.origin or 0.0) + until_seconds
    seen = -1
    with gc_paused():
        while True:
            if cluster.changes != seen:
                seen = cluster.changes
                if finished():
                    return
            if env.peek() > end:
                if end > env.now:      # an event may have landed exactly on the end
                    env.run(until=end)
                return
            env.step()


# -- the CLI's text output ------------------------------------------------------------------------
def describe_run(trace: Trace) -> str:
    """The first line: version, gates (and on 1.28 where the gate's value comes from), seed."""
    gates = ", ".join(f"{k}={str(v).lower()}" for k, v in trace.feature_gates.items()) or "none"
    minor = KubeVersion.parse(trace.kubernetes_version)
    if gate_default(minor.minor) is False and SIDECAR_GATE in trace.feature_gates:
        lab = lab_feature_gates(minor)[SIDECAR_GATE]
        name = f"{SIDECAR_GATE}={str(not lab).lower()}"
        if trace.feature_gates[SIDECAR_GATE] == lab:
            gates += f", as the blog's kind config sets it; --feature-gate {name} for {minor.minor_str}'s default"
        else:
            gates += f", {minor.minor_str}'s default; the blog's kind config sets {SIDECAR_GATE}={str(lab).lower()}"
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
    for e in trace.events:
        details = []
        for key in ("phase", "exit_code", "attempt", "grace_period_seconds", "reason"):
            value = getattr(e, key)
            if value is not None and not (key == "attempt" and e.type == "Restarted"):
                details.append(f"{key}={value}")
        kind = e.type
        if e.type == "SIGTERM":       # the trace's name for "the stop signal was sent"
            kind = "stop signal"
            details.append(f"signal={e.extra.get('signal') or 'SIGTERM'}")
        rows.append((f"{e.t:.2f}", e.pod or e.object or "-", e.container or "-", kind, " ".join(details)))
    headers = ("t", "pod", "container", "event", "details")
    widths = [max([len(headers[i])] + [len(r[i]) for r in rows]) for i in range(4)]
    lines.append("")
    lines.append(f"{headers[0]:>{widths[0]}}  {headers[1]:<{widths[1]}}  {headers[2]:<{widths[2]}}  "
                 f"{headers[3]:<{widths[3]}}  {headers[4]}")
    for r in rows:
        lines.append(f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:<{widths[3]}}  {r[4]}".rstrip())
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


def cli_main(args) -> int:
    """``labkit sim run``: simulate, then print the timeline (or the JSON trace) and plot."""
    gates: dict[str, bool] = {}
    for text in args.feature_gates:
        name, value = parse_gate(text)
        gates[name] = value
    try:
        trace = simulate(args.files, k8s_version=args.k8s_version, feature_gates=gates or None,
                         delete_after=args.delete_after, until_seconds=args.until_seconds, seed=args.seed)
    except InvalidInput as exc:
        if exc.source is None and exc.field in FLAGS:
            raise InvalidInput(exc.message, field=FLAGS[exc.field]) from None
        raise
    if args.json:
        print(trace.to_json())
    else:
        print(format_timeline(trace, args.until_seconds))
    if args.plot:
        from ..plot import plot_trace, save_figure

        path = save_figure(plot_trace(trace), args.plot)
        if not args.json:
            print(f"\nTimeline drawn to {path}")
    return 0
