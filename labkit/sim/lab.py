"""``SimLab``: the lab contract (``labkit.contract.Lab``) on the simulator.

Every call prints the kubectl command it stands for and moves *virtual* time: ``wait``
and ``sleep`` advance the simulation until the condition holds or the time is up, so a
notebook that waits 30 s for a grace period runs in milliseconds. With ``pace=1.0`` time
advances with the wall clock instead, so a learner can watch a timeline grow (listeners
registered with ``add_listener`` are called as it does).

>>> from labkit.notebook import repo_path
>>> lab = SimLab("1.29", quiet=True)
>>> lab.apply(repo_path("manifests/job-sidecar.yaml"))
['job.batch/sidecar-job created']
>>> round(lab.wait("job/sidecar-job", "Complete"), 1)                # virtual seconds, at once
16.9
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

from ..contract import LabBody
from ..errors import InvalidInput
from ..manifests import load_documents
from ..printers import describe_pods, format_time
from ..refs import KIND_PLURALS, Ref, show_command
from ..trace import Trace
from ..versions import DEFAULT_K8S_VERSION, KubeVersion, lab_feature_gates
from . import timing, view
from .behaviour import BEHAVIOUR_ANNOTATION
from .cluster import Cluster, gc_paused
from .kubelet import NodeConditions
from .pods import Workload
from .pods import SimPod

# Pod JSON needs RFC 3339 timestamps (kubectl's rows compute AGE from them). The simulator has
# no date, so they count from the Unix epoch at the trace's t = 0: "1970-01-01T00:00:10.050Z"
# is t=10.05 s of the trace, a date nobody takes for a real one. Messages show t= instead.
SIM_EPOCH = 0.0



class SimLab(LabBody):
    """A lab on the embedded simulator; same methods as the kind and cluster labs.

    ``k8s_version`` is a minor (``"1.29"``) or full version; ``feature_gates`` e.g.
    ``{"SidecarContainers": True}`` on 1.28; ``seed`` fixes every random choice (pod
    names, the kubelet's jitter, where its relist ticks fall in the second); ``relist_phase``
    sets that last one instead, in seconds after each whole second, and ``sandbox_cpu_scale`` and
    ``container_cpu_scale`` the CPU time a pod's sandbox and a container take to start under a CPU
    limit, against the machine ``timing.py`` was fitted on (``labkit fidelity`` fits all three to
    each real run, docs/fidelity.md); ``pace`` = virtual seconds per wall second (None: as
    fast as possible). Options of other backends (``cluster_name``, ``keep_cluster``, ...)
    are accepted and ignored so that a notebook runs unchanged. The contract's methods are
    :class:`labkit.contract.LabBody`'s; this class is the transport: the simulated cluster,
    and virtual time that runs until a wait's condition holds.
    """

    backend = "sim"

    def __init__(self, k8s_version: str | KubeVersion = DEFAULT_K8S_VERSION, feature_gates: dict[str, bool] | None = None, seed: int = 0,
                 pace: float | None = None, quiet: bool = False, relist_phase: float | None = None,
                 sandbox_cpu_scale: float = 1.0, container_cpu_scale: float = 1.0, **ignored_options: Any):
        if pace is not None and (not isinstance(pace, (int, float)) or pace <= 0):
            raise InvalidInput(f"pace must be a positive number of virtual seconds per second, got {pace!r}", field="pace")
        self.conditions = NodeConditions(relist_phase, sandbox_cpu_scale, container_cpu_scale)
        version = KubeVersion.parse(k8s_version)
        feature_gates = lab_feature_gates(version, feature_gates)  # 1.28 has the blog's gate on, as on kind
        self._init_body()
        self._feature_gates = feature_gates
        self.seed = seed
        self.pace = pace
        self.quiet = quiet
        self.why = "backend='sim' was asked for"
        self.cluster = Cluster(version, feature_gates, seed, self.conditions)

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
        return f"<SimLab Kubernetes {self.kubernetes_version} (simulated), t={self.trace_now:.2f} s" \
               f"{' (closed)' if self.closed else ''}>"

    # -- the transport: showing, applying --------------------------------------------------------
    def _show(self, argv: list[str]) -> None:
        if not self.quiet:
            show_command(argv)

    def _apply(self, source: Any) -> list[str]:
        """Objects and scenario files; warnings are printed and also kept in the trace's ``warnings``."""
        docs = load_documents(source)
        before = len(self.cluster.warnings)
        lines = []
        for doc in docs:
            if doc.is_scenario:
                from .run import apply_scenario

                lines.extend(apply_scenario(self.cluster, doc))
            else:
                lines.append(self.cluster.apply(doc.obj, source=doc.where))
        for warning in self.cluster.warnings[before:]:
            self._say(f"Warning: {warning}")
        return lines

    # -- time ----------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.cluster.env.now

    def _pass(self, seconds: float, until: Callable[[], bool] | None) -> bool:
        return self._advance(self.cluster.env.now + seconds, until)

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

    # -- the transport: reading ------------------------------------------------------------------
    def _find(self, ref: Ref) -> SimPod | Workload | None:
        """The pod or workload ``ref`` names while it exists: a workload until its pods are gone
        too (deleted in the foreground, as the cluster backend deletes it)."""
        if ref.kind == "Pod":
            pod = self.cluster.pods.get(ref.name)
            return None if pod is None or pod.deleted else pod
        workload = self.cluster.workloads.get((ref.kind, ref.name))
        if workload is None or workload.deleted and all(p.deleted for p in workload.pods):
            return None
        return workload

    def _get(self, ref: Ref) -> dict | None:
        found = self._find(ref)
        return None if found is None else self.object_json(ref.kind, found)

    def _select(self, ref: Ref) -> list[str]:
        return [p.name for p in self.cluster.select_pods(ref.selector)]

    def object_json(self, kind: str, target: SimPod | Workload | None) -> dict | None:
        """The object as the API server would return it (``labkit.sim.view``); None if gone."""
        if target is None:
            return None
        if kind == "Pod":
            return None if target.deleted else self.pod_json(target)
        meta = {"name": target.name, "namespace": target.obj["metadata"].get("namespace", "default"),
                "creationTimestamp": self._ts(target.created_at)}
        if kind == "Job":
            return view.job_json(target, self._ts, self.cluster.behaviour, meta)
        return view.deployment_json(target, self._ts, meta)

    def _story(self, ref: Ref) -> str:
        """The involved pods and recent events for an error message, with times as the trace's t."""
        if ref.selector is not None:
            pods = self.cluster.select_pods(ref.selector)
        elif ref.kind == "Pod":
            pods = [p for p in [self.cluster.pods.get(ref.name)] if p is not None]
        else:
            workload = self.cluster.workloads.get((ref.kind, ref.name))
            pods = workload.pods if workload is not None else []
        return (f"(virtual time t={self.trace_now:.2f} s of the trace)\n"
                + describe_pods([self.pod_json(p) for p in pods[:5]], self._k8s_events(), origin=SIM_EPOCH))

    def _k8s_events(self) -> list[dict]:
        """The last few trace events, shaped like Kubernetes Events for describe_pods. These are the
        trace's records (StartupProbeSucceeded, Exited, ...), not the Events a cluster records
        (``labkit.sim.view.events_of``): a story names what the trace will show."""
        events = []
        for t, etype, pod, container, fields in self.cluster.records[-12:]:
            obj = {"kind": "Pod", "name": pod or fields.get("object", "")}
            if container:
                sim_pod = self.cluster.pods.get(pod)
                spec_c = sim_pod.by_name.get(container) if sim_pod is not None else None
                where = "containers" if spec_c is None or spec_c.role == "app" else "initContainers"
                obj["fieldPath"] = f"spec.{where}{{{container}}}"
            events.append({"type": "Normal", "reason": etype, "involvedObject": obj,
                           "message": ", ".join(f"{k}={v}" for k, v in fields.items()),
                           "lastTimestamp": self._ts(t)})
        return events

    def _pod_list(self) -> tuple[list[dict], float]:
        return ([self.pod_json(p) for p in self.cluster.pods.values() if not p.deleted],
                SIM_EPOCH + self.trace_now)

    @property
    def namespace(self) -> str:
        return "default"

    def pod_json(self, pod: SimPod) -> dict:
        """The pod as the API server would return it, built from what the kubelet last reported
        (``labkit.sim.view``)."""
        return view.pod_json(pod, self._ts)

    def _ts(self, t: float) -> str:
        """A simulator time as a timestamp: counting from ``SIM_EPOCH`` (1970-01-01) at the trace's
        t = 0, since the simulator has no date."""
        return format_time(SIM_EPOCH + t - self.cluster.trace_origin)

    # -- the transport: changing -----------------------------------------------------------------
    def _delete(self, ref: Ref, grace_period: int | None) -> list[str]:
        """``grace_period=0`` is a force delete (the object goes at once, the kubelet still gives
        the containers 1 s)."""
        if ref.selector is not None:
            targets: list[Any] = self.cluster.select_pods(ref.selector)
        else:
            targets = [self._find(ref)]
        lines = []
        for target in targets:
            if isinstance(target, SimPod):
                self.cluster.delete_pod(target, grace_period, force=grace_period == 0)
                lines.append(f'pod "{target.name}" {"force deleted" if grace_period == 0 else "deleted"}')
            else:
                self.cluster.delete_workload(target, grace_period)
                lines.append(f'{KIND_PLURALS[target.kind]} "{target.name}" deleted')
        return lines

    def _logs(self, ref: Ref, container: str | None, previous: bool) -> str:
        """The lines the process model can honestly produce (echo output); otherwise a line that
        says what the simulator cannot show."""
        found = self._find(ref)
        if isinstance(found, Workload):
            live = [p for p in found.pods if not p.deleted]
            if not live:
                raise InvalidInput(f"{' '.join(ref.args)} has no pods", field="pod")
            target = live[0]
        else:
            target = found
        names = [c.name for c in target.apps] or target.container_names()
        if container is None:
            if len(names) > 1 or target.init:
                container = target.apps[0].name if target.apps else names[0]
        c = target.by_name.get(container or names[0])
        if c is None:
            raise InvalidInput(f"container {container!r} is not valid for pod {target.name} "
                               f"(containers: {', '.join(target.container_names())})", field="container")
        try:
            run = view.log_run(target, c, previous=previous)
        except view.LogUnavailable as exc:
            if not previous:   # the API's 400; a notebook gets a line that says why instead
                return f'(container "{c.name}" in pod "{target.name}" is waiting to start: no logs yet)'
            raise InvalidInput(f"Error from server (BadRequest): {exc}") from None
        removed = view.removed_answer(target.name, c, run)
        if removed is not None:       # the kubelet's answer, printed by kubectl as the log
            return removed
        lines = [text for _, text in view.log_lines(c, run, self.cluster.env.now)]
        if lines:
            return "\n".join(lines)
        if c.model.kind in ("shell-script", "sleep") and not c.model.stdout and not c.model.loop_stdout:
            return ""
        return (f"(labkit simulator: the output of {c.name} ({c.model.description}) is not modelled; "
                "a real cluster shows the program's own log lines here)")

    def _set_image(self, ref: Ref, container: str, image: str) -> list[str]:
        """A pod's container in place (the kubelet restarts that container only; a sidecar gets a
        fresh back-off; never during termination), or a Deployment's template (a new ReplicaSet
        replaces the old pods)."""
        found = self._find(ref)
        if ref.kind == "Pod":
            self.cluster.set_image(found, container, image)
        else:
            obj = copy.deepcopy(found.obj)
            spec = obj["spec"]["template"]["spec"]
            matches = [c for c in (spec.get("initContainers") or []) + spec["containers"] if c["name"] == container]
            if not matches:
                raise InvalidInput(f"deployment {ref.name} has no container {container!r}", field="container")
            matches[0]["image"] = image
            self.cluster.apply(obj, source=" ".join(ref.args))
        return [f"{KIND_PLURALS[ref.kind]}/{ref.name} image updated"]

    def trace(self) -> Trace:
        """Everything since the last reset, as a ``labkit.trace/v1`` trace."""
        return self.cluster.trace()

    # -- lifecycle -----------------------------------------------------------------------------------
    def _reset(self) -> None:
        """Start over on a fresh simulated cluster (same version, gates and seed)."""
        self.cluster = Cluster(self.cluster.version, self._feature_gates, self.seed, self.conditions)

    def _close(self) -> None:
        """Nothing to clean up: the simulated cluster lives in memory."""


__all__ = ["SimLab", "BEHAVIOUR_ANNOTATION"]
