"""``SimLab``: the lab contract (``labkit.contract.Lab``) on the simulator.

Every call prints the kubectl command it stands for and moves *virtual* time: ``wait``
and ``sleep`` advance the simulation until the condition holds or the time is up, so a
notebook that waits 30 s for a grace period runs in milliseconds. With ``pace=1.0`` time
advances with the wall clock instead, so a learner can watch a timeline grow (listeners
registered with ``add_listener`` are called as it does).

>>> lab = SimLab("1.29", quiet=True)
>>> lab.apply("manifests/job-sidecar.yaml")                          # doctest: +SKIP
['job.batch/sidecar-job created']
>>> round(lab.wait("job/sidecar-job", "Complete"), 1)                # doctest: +SKIP
12.6
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from typing import Any

from ..contract import DEFAULT_TIMEOUT_S, SELECTOR_GRACE_S, Listener
from ..errors import InvalidInput, LabkitError, WaitTimeout
from ..manifests import load_documents, manifest_input
from ..objects import wait_state
from ..printers import PodTable, describe_pods, format_time, pod_row
from ..refs import KIND_PLURALS, Ref, check_condition, parse_ref, show_command, wait_args
from ..trace import Trace
from ..versions import DEFAULT_K8S_VERSION, lab_feature_gates
from . import timing
from .behaviour import BEHAVIOUR_ANNOTATION
from .cluster import Cluster, Workload, gc_paused
from .pods import SimPod

# Pod JSON needs RFC 3339 timestamps (kubectl's rows compute AGE from them). The simulator has
# no date, so they count from the Unix epoch at the trace's t = 0: "1970-01-01T00:00:10.050Z"
# is t=10.05 s of the trace, a date nobody takes for a real one. Messages show t= instead.
SIM_EPOCH = 0.0



class SimLab:
    """A lab on the embedded simulator; same methods as the kind and cluster labs.

    ``k8s_version`` is a minor (``"1.29"``) or full version; ``feature_gates`` e.g.
    ``{"SidecarContainers": True}`` on 1.28; ``seed`` fixes every random choice (pod
    names, the kubelet's jitter); ``pace`` = virtual seconds per wall second (None: as
    fast as possible). Options of other backends (``cluster_name``, ``keep_cluster``, ...)
    are accepted and ignored so that a notebook runs unchanged.
    """

    backend = "sim"

    def __init__(self, k8s_version: str = DEFAULT_K8S_VERSION, feature_gates: dict[str, bool] | None = None, seed: int = 0,
                 pace: float | None = None, quiet: bool = False, **ignored_options: Any):
        if pace is not None and (not isinstance(pace, (int, float)) or pace <= 0):
            raise InvalidInput(f"pace must be a positive number of virtual seconds per second, got {pace!r}", field="pace")
        if feature_gates is None:  # a labkit cluster: 1.28 has the blog's gate on, as on kind
            feature_gates = lab_feature_gates(k8s_version)
        self._k8s_version = k8s_version
        self._feature_gates = dict(feature_gates)
        self.seed = seed
        self.pace = pace
        self.quiet = quiet
        self.why = "backend='sim' was asked for"
        self._listeners: list[Callable[[Trace], None]] = []
        self.cluster = Cluster(k8s_version, feature_gates, seed)

    # -- properties ------------------------------------------------------------------------
    @property
    def kubernetes_version(self) -> str:
        return str(self.cluster.version)

    @property
    def feature_gates(self) -> dict[str, bool]:
        return dict(self.cluster.behaviour.feature_gates)

    @property
    def now(self) -> float:
        """Virtual seconds since the first apply: the clock ``wait`` and ``sleep`` count on.
        The trace's t starts at its first event, a moment later (see ``trace_now``)."""
        return self.cluster.now()

    @property
    def trace_now(self) -> float:
        """The current virtual time as the trace's t: what messages show."""
        return self.cluster.env.now - self.cluster.trace_origin

    def __repr__(self) -> str:
        return f"<SimLab Kubernetes {self.kubernetes_version} (simulated), t={self.trace_now:.2f} s>"

    # -- printing ----------------------------------------------------------------------------
    def _show(self, argv: list[str]) -> None:
        if not self.quiet:
            show_command(argv)

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    # -- apply -------------------------------------------------------------------------------
    def apply(self, source: Any) -> list[str]:
        """``kubectl apply -f``: a path, YAML text, a dict or a list of them; scenario files too.

        Returns kubectl's lines (``job.batch/sidecar-job created``); warnings are printed
        and also kept in the trace's ``warnings``.
        """
        path = manifest_input(source)[0] if isinstance(source, (str, os.PathLike)) else None
        self._show(["kubectl", "apply", "-f", path or "-"])
        docs = load_documents(source)
        before = len(self.cluster.warnings)
        lines = []
        for doc in docs:
            if doc.is_scenario:
                from .run import apply_scenario

                lines.extend(apply_scenario(self.cluster, doc))
            else:
                lines.append(self.cluster.apply(doc.obj, source=doc.where))
        for line in lines:
            self._say(line)
        for warning in self.cluster.warnings[before:]:
            self._say(f"Warning: {warning}")
        return lines

    # -- time ----------------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of (virtual) time pass."""
        if seconds < 0:
            raise InvalidInput(f"cannot sleep a negative time ({seconds})", field="seconds")
        self._advance(self.cluster.env.now + seconds, None)

    def _advance(self, until: float, predicate: Callable[[], bool] | None) -> bool:
        """Run the simulation up to ``until`` (absolute env time) or until ``predicate`` holds."""
        with gc_paused():
            return self._run(until, predicate)

    def _run(self, until: float, predicate: Callable[[], bool] | None) -> bool:
        env = self.cluster.env
        cluster = self.cluster
        seen = -1
        notified = cluster.changes
        while True:
            if predicate is not None and cluster.changes != seen:
                seen = cluster.changes
                if predicate():
                    self._notify()
                    return True
            nxt = env.peek()
            if self.pace:
                self._wait_wall(env.now, min(nxt, until))
            if nxt > until or math.isinf(nxt):
                if until > env.now:
                    env.run(until=until)
                self._notify()
                return predicate() if predicate is not None else True
            env.step()
            # Listeners see each batch of events once time is about to move on.
            if self._listeners and cluster.changes != notified and env.peek() > env.now:
                notified = cluster.changes
                self._notify()

    def _wait_wall(self, start: float, target: float) -> None:
        """Pace virtual time to the wall clock, calling listeners every LISTENER_INTERVAL_S."""
        t = start
        while t < target:
            step = min(timing.LISTENER_INTERVAL_S, target - t)
            time.sleep(step / self.pace)
            t += step
            if self._listeners and t < target:
                self._notify()

    def _notify(self) -> None:
        if not self._listeners:
            return
        trace = self.trace()
        for fn in list(self._listeners):
            fn(trace)

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(trace)`` as virtual time advances (each batch of events, and every 0.5 s when
        paced); returns a function that removes it."""
        self._listeners.append(fn)
        return lambda: self.remove_listener(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    # -- references ------------------------------------------------------------------------------
    def _workload(self, kind: str, name: str) -> Workload | None:
        workload = self.cluster.workloads.get((kind, name))
        return None if workload is None or workload.deleted else workload

    def _pod(self, name: str) -> SimPod | None:
        pod = self.cluster.pods.get(name)
        return None if pod is None or pod.deleted else pod

    def _require(self, kind: str, name: str) -> Any:
        found = self._pod(name) if kind == "Pod" else self._workload(kind, name)
        if found is None:
            plural = KIND_PLURALS[kind]
            raise InvalidInput(f'Error from server (NotFound): {plural.split(".")[0]}s "{name}" not found', field="ref")
        return found

    def object_json(self, kind: str, target: SimPod | Workload | None) -> dict | None:
        """The object as the API server would return it (the part wait conditions read); None if gone."""
        if target is None or target.deleted:
            return None
        if kind == "Pod":
            return self.pod_json(target)
        conditions = []
        if kind == "Job":
            conditions = [{"type": "Complete", "status": str(target.complete)},
                          {"type": "Failed", "status": str(target.failed)}]
            if target.finished:
                conditions[0 if target.complete else 1].update(target.condition_detail)
        else:
            conditions = [{"type": "Available", "status": str(target.available)}]
        return {"kind": kind, "metadata": {"name": target.name}, "status": {"conditions": conditions}}

    # -- delete ------------------------------------------------------------------------------------
    def delete(self, ref: str, grace_period: int | None = None, wait: bool = True,
               timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
        """``kubectl delete``; with ``wait``, virtual time runs until the object and the pods it
        owns are gone (kubectl itself returns once the named object is gone). Returns kubectl's
        lines. ``grace_period=0`` is a force delete (the object goes at once, the kubelet still
        gives the containers 1 s)."""
        target_ref = parse_ref(ref)
        argv = ["kubectl", "delete", *target_ref.args]
        if grace_period is not None:
            if not isinstance(grace_period, int) or grace_period < 0:
                raise InvalidInput(f"grace_period must be a whole number of seconds >= 0, got {grace_period!r}",
                                   field="grace_period")
            argv.append(f"--grace-period={grace_period}")
            if grace_period == 0:
                argv.append("--force")
        self._show(argv)
        if target_ref.selector is not None:
            targets: list[Any] = self.cluster.select_pods(target_ref.selector)
            if not targets:
                self._say("No resources found")
                return []
        else:
            targets = [self._require(target_ref.kind, target_ref.name)]
        lines = []
        pods: list[SimPod] = []
        for target in targets:
            if isinstance(target, SimPod):
                self.cluster.delete_pod(target, grace_period, force=grace_period == 0)
                lines.append(f'pod "{target.name}" {"force deleted" if grace_period == 0 else "deleted"}')
                pods.append(target)
            else:
                self.cluster.delete_workload(target, grace_period)
                lines.append(f'{KIND_PLURALS[target.kind]} "{target.name}" deleted')
        for line in lines:
            self._say(line)
        if not wait:
            return lines
        start = self.cluster.env.now

        def gone() -> bool:
            if any(not p.deleted and not (p.finalizers and p.terminated) for p in pods):
                return False
            for target in targets:
                if isinstance(target, Workload):
                    if not target.deleted or any(not p.deleted for p in target.pods):
                        return False
            return True

        if not self._advance(start + timeout, gone):
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {ref} to be deleted "
                              f"(virtual time t={self.trace_now:.2f} s of the trace)\n"
                              + self._describe([p for t in targets for p in (t.pods if isinstance(t, Workload) else [t])]))
        return lines

    # -- wait ---------------------------------------------------------------------------------------
    def wait(self, ref: str, condition: str, timeout: float = DEFAULT_TIMEOUT_S) -> float:
        """``kubectl wait``: run virtual time until ``condition`` holds; returns the seconds waited.

        The conditions and what they mean are ``labkit.objects`` (``WAIT_CONDITIONS``,
        ``wait_state``), read from the same pod JSON the API would return. Raises WaitTimeout
        with the pods' conditions, container states and recent events when the time runs out.
        """
        target = parse_ref(ref)
        check_condition(target, condition)
        self._show(["kubectl", *wait_args(target, condition, timeout)])
        env = self.cluster.env
        start = env.now
        if target.selector is not None:
            # kubectl needs a moment to start; pods created by a controller just now exist by then.
            self._advance(start + min(SELECTOR_GRACE_S, timeout),
                          lambda: bool(self.cluster.select_pods(target.selector)))
            involved = self.cluster.select_pods(target.selector)
            if not involved:
                if condition == "Deleted":
                    return round(env.now - start, 6)
                raise InvalidInput(f"no matching resources found for {ref!r}", field="ref")
            objects: list[tuple[str, Any]] = [("Pod", p) for p in involved]
        elif target.kind == "Pod":
            pod = self.cluster.pods.get(target.name)
            if pod is None or (pod.deleted and condition != "Deleted"):
                if condition == "Deleted" and pod is None:
                    return 0.0
                raise InvalidInput(f'Error from server (NotFound): pods "{target.name}" not found', field="ref")
            objects, involved = [("Pod", pod)], [pod]
        else:
            workload = self.cluster.workloads.get((target.kind, target.name))
            if workload is None or (workload.deleted and condition != "Deleted"):
                if condition == "Deleted" and workload is None:
                    return 0.0
                raise InvalidInput(f'Error from server (NotFound): {KIND_PLURALS[target.kind].split(".")[0]}s '
                                   f'"{target.name}" not found', field="ref")
            objects, involved = [(target.kind, workload)], workload.pods
        never: list[str] = []
        waiting = iter(objects)
        current = next(waiting)

        def met() -> bool:
            # kubectl wait takes the objects one after another, each until it meets the condition;
            # so does this, which keeps a wait on many pods linear in the pods.
            nonlocal current
            while current is not None:
                kind, obj = current
                done, impossible = wait_state(kind, condition, self.object_json(kind, obj))
                if impossible:
                    never.append(impossible)
                    return True
                if not done:
                    return False
                current = next(waiting, None)
            return True

        if not self._advance(start + timeout, met):
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for condition {condition} on {ref} "
                              f"(virtual time t={self.trace_now:.2f} s of the trace)\n" + self._describe(involved))
        if never:
            raise LabkitError(f"{ref} will not become {condition}: {never[0]} "
                              f"(virtual time t={self.trace_now:.2f} s of the trace)\n" + self._describe(involved))
        waited = round(env.now - start, 6)
        self._say(self._wait_line(target, condition, involved))
        return waited

    @staticmethod
    def _wait_line(target: Ref, condition: str, pods: list[SimPod]) -> str:
        met = "deleted" if condition == "Deleted" else "condition met"
        if target.selector is not None:
            return "\n".join(f"pod/{p.name} {met}" for p in pods)
        return f"{KIND_PLURALS[target.kind]}/{target.name} {met}"

    def _describe(self, pods: list[SimPod]) -> str:
        """Pods and recent events for a timeout message, with times as the trace's t."""
        return describe_pods([self.pod_json(p) for p in pods[:5]], self._k8s_events(), origin=SIM_EPOCH)

    def _k8s_events(self) -> list[dict]:
        """The last few trace events, shaped like Kubernetes Events for describe_pods."""
        events = []
        origin = self.cluster.trace_origin
        for t, etype, pod, container, fields in self.cluster.records[-12:]:
            obj = {"kind": "Pod", "name": pod or fields.get("object", "")}
            if container:
                sim_pod = self.cluster.pods.get(pod)
                spec_c = sim_pod.by_name.get(container) if sim_pod is not None else None
                where = "containers" if spec_c is None or spec_c.role == "app" else "initContainers"
                obj["fieldPath"] = f"spec.{where}{{{container}}}"
            events.append({"type": "Normal", "reason": etype, "involvedObject": obj,
                           "message": ", ".join(f"{k}={v}" for k, v in fields.items()),
                           "lastTimestamp": format_time(SIM_EPOCH + t - origin)})
        return events

    # -- reading ---------------------------------------------------------------------------------------
    def pods(self) -> PodTable:
        """``kubectl get pods``: a table (prints like kubectl) that is also a list of rows."""
        self._show(["kubectl", "get", "pods"])
        now = SIM_EPOCH + self.trace_now
        return PodTable([pod_row(self.pod_json(p), now=now) for p in self.cluster.pods.values() if not p.deleted],
                        namespace="default")

    def pod_json(self, pod: SimPod) -> dict:
        """The pod as the API server would return it, built from what the kubelet last reported.

        Timestamps count from ``SIM_EPOCH`` (1970-01-01) at the trace's t = 0: the simulator has no date."""
        origin = self.cluster.trace_origin
        return pod_json(pod, lambda t: format_time(SIM_EPOCH + t - origin))

    def logs(self, pod: str, container: str | None = None, *, previous: bool = False) -> str:
        """``kubectl logs [--previous]``: the lines the process model can honestly produce (echo
        output); otherwise a line that says what the simulator cannot show."""
        ref = parse_ref(pod)
        if ref.selector is not None:
            raise InvalidInput(f"logs takes one pod, job/NAME or deployment/NAME, not a selector ({pod!r})",
                               field="pod")
        if ref.kind != "Pod":
            workload = self._require(ref.kind, ref.name)
            live = [p for p in workload.pods if not p.deleted]
            if not live:
                raise InvalidInput(f"{pod} has no pods", field="pod")
            target = live[0]
        else:
            target = self._require("Pod", ref.name)
        names = [c.name for c in target.apps] or target.container_names()
        if container is None:
            if len(names) > 1 or target.init:
                container = target.apps[0].name if target.apps else names[0]
        c = target.by_name.get(container or names[0])
        if c is None:
            raise InvalidInput(f"container {container!r} is not valid for pod {target.name} "
                               f"(containers: {', '.join(target.container_names())})", field="container")
        self._show(["kubectl", "logs", target.name] + (["-c", c.name] if container else [])
                   + (["--previous"] if previous else []))
        inst = c.inst
        if previous:
            # The run before the current one: what the status shows as lastState.
            inst = c.last_exit if c.last_exit is not None and c.last_exit is not c.inst else None
            if inst is None and c.waiting_reason == "CrashLoopBackOff":
                inst = c.inst
            if inst is None:
                raise InvalidInput(f'previous terminated container "{c.name}" in pod "{target.name}" not found',
                                   field="previous")
        if inst is None:
            return f'(container "{c.name}" in pod "{target.name}" is waiting to start: no logs yet)'
        end = (inst.end if inst.end is not None else self.cluster.env.now) - inst.start
        lines = [text for _, text in c.model.stdout_lines(0.0, end)]
        if lines:
            return "\n".join(lines)
        if c.model.kind in ("shell-script", "sleep") and not c.model.stdout and not c.model.loop_stdout:
            return ""
        return (f"(labkit simulator: the output of {c.name} ({c.model.description}) is not modelled; "
                "a real cluster shows the program's own log lines here)")

    def set_image(self, ref: str, container: str, image: str) -> list[str]:
        """``kubectl set image``: a pod's container in place (the kubelet restarts that container
        only; a sidecar gets a fresh back-off; never during termination), or a Deployment's
        template (a new ReplicaSet replaces the old pods)."""
        target = parse_ref(ref)
        if target.selector is not None or target.kind == "Job":
            raise InvalidInput(f"set image takes pod/NAME or deployment/NAME, not {ref!r} (a Job's template "
                               "cannot change)", field="ref")
        self._show(["kubectl", "set", "image", *target.args, f"{container}={image}"])
        found = self._require(target.kind, target.name)
        if target.kind == "Pod":
            self.cluster.set_image(found, container, image)
        else:
            obj = copy.deepcopy(found.obj)
            spec = obj["spec"]["template"]["spec"]
            matches = [c for c in (spec.get("initContainers") or []) + spec["containers"] if c["name"] == container]
            if not matches:
                raise InvalidInput(f"deployment {target.name} has no container {container!r}", field="container")
            matches[0]["image"] = image
            self.cluster.apply(obj, source=ref)
        line = f"{KIND_PLURALS[target.kind]}/{target.name} image updated"
        self._say(line)
        return [line]

    def trace(self) -> Trace:
        """Everything since the last reset, as a ``labkit.trace/v1`` trace."""
        return self.cluster.trace()

    # -- lifecycle -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start over on a fresh simulated cluster (same version, gates and seed)."""
        self.cluster = Cluster(self._k8s_version, self._feature_gates or None, self.seed)

    def close(self) -> None:
        """Nothing to clean up: the simulated cluster lives in memory."""
        self._listeners.clear()

    def __enter__(self) -> "SimLab":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def pod_json(pod: SimPod, ts: Callable[[float | None], str | None] | Callable[[float], str]) -> dict:
    """The pod as the API server would return it, built from what the kubelet last reported.

    ``ts`` turns a simulator time (``env.now``) into an RFC 3339 timestamp: the lab counts from
    1970-01-01 at the trace's t = 0, the served simulator (``labkit.serve``) from the wall clock."""
    def stamp(t: float | None) -> str | None:
        return None if t is None else ts(t)

    def terminated(run) -> dict:
        return {"exitCode": run.exit_code, "reason": "Completed" if run.exit_code == 0 else "Error",
                "startedAt": stamp(run.start), "finishedAt": stamp(run.end)}

    statuses = {"initContainerStatuses": [], "containerStatuses": []}
    for c in pod.containers:
        # The container as the kubelet last reported it (its status snapshot), so the states,
        # the phase and the conditions of one object belong to the same moment, as in
        # generateAPIPodStatus; the live process may already be further on.
        inst, state = c.st_inst, c.st_state
        # image and imageID are always written (no omitempty in k8s.io/api core/v1
        # ContainerStatus); imageID is "" until the runtime reports the container
        # (kubelet_pods.go convertToAPIContainerStatuses, its default waiting status)
        status: dict[str, Any] = {"name": c.name, "image": c.image, "imageID": "",
                                  "restartCount": inst.attempt if inst is not None else 0,
                                  "ready": c.st_ready, "started": c.st_started}
        if inst is None:
            reason = c.waiting_reason or ("PodInitializing" if pod.init else "ContainerCreating")
            status["state"] = {"waiting": {"reason": reason}}
        elif state == "running":
            status["state"] = {"running": {"startedAt": stamp(inst.start)}}
        elif state == "waiting" and not pod.terminated:   # exited, waiting out its back-off
            status["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
            status["lastState"] = {"terminated": terminated(inst)}
        else:
            status["state"] = {"terminated": terminated(inst)}
        if state in ("running", "terminated") and c.st_last is not None:
            status["lastState"] = {"terminated": terminated(c.st_last)}
        key = "containerStatuses" if c.role == "app" else "initContainerStatuses"
        statuses[key].append(status)
    if pod.reported:
        conditions = [
            {"type": "Initialized", "status": str(pod.initialized)},
            {"type": "Ready", "status": str(pod.ready)},
            {"type": "ContainersReady", "status": str(pod.containers_ready)},
            {"type": "PodScheduled", "status": "True"},
        ]
    else:
        # before the kubelet's first status: what the API server (PrepareForCreate: phase
        # Pending) and the scheduler (PodScheduled) wrote, no container statuses, so kubectl
        # prints STATUS Pending before Init:0/1
        statuses = {"initContainerStatuses": [], "containerStatuses": []}
        conditions = [{"type": "PodScheduled", "status": "True"}]
    meta = {"name": pod.name, "namespace": pod.namespace, "labels": dict(pod.labels),
            "creationTimestamp": stamp(pod.created_at)}
    if pod.deletion_requested_at is not None:
        meta["deletionTimestamp"] = stamp(pod.deletion_requested_at + (pod.deletion_grace or 0))
        meta["deletionGracePeriodSeconds"] = pod.deletion_grace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod.spec,
            "status": {"phase": pod.phase, "conditions": conditions, **statuses}}


__all__ = ["SimLab", "BEHAVIOUR_ANNOTATION", "pod_json"]
