"""Trace assembly of the simulated cluster: every change recorded as it happens, and the records
turned into a ``labkit.trace/v1`` trace with each pod's final state (docs/trace.md).

:class:`TraceAssembly` is one of the parts :class:`labkit.sim.cluster.Cluster` is made of.
"""

from __future__ import annotations

from typing import Any

from ..trace import ContainerFinal, ContainerInfo, Event, Pod, PodFinal, Trace
from .pods import SimPod

GENERATOR = "labkit simulator — a model of the kubelet, not a cluster"


def trace_owner(owner: dict | None) -> dict | None:
    """A pod's owner as a trace gives it: the workload (docs/trace.md), the ReplicaSet only as ``via``."""
    if owner is None:
        return None
    if owner["kind"] == "ReplicaSet" and owner.get("deployment"):
        return {"kind": "Deployment", "name": owner["deployment"],
                "via": {"kind": "ReplicaSet", "name": owner["name"]}}
    return {"kind": owner["kind"], "name": owner["name"]}


class TraceAssembly:
    """Record events; assemble the trace."""

    def _record(self, etype: str, pod: str | None, container: str | None, fields: dict) -> None:
        self.records.append((self.env.now, etype, pod, container, fields))
        self.changes += 1

    def _emit_pod(self, etype: str, pod: SimPod, container: str | None, **fields: Any) -> None:
        self._record(etype, pod.name, container, fields)

    def _emit_object(self, etype: str, ref: str, **fields: Any) -> None:
        self._record(etype, None, None, {"object": ref, **fields})

    def _trace(self) -> Trace:
        # docs/trace.md: t counts from the run's first event (here the first pod appearing, a
        # fraction of a second after the first apply), as the real recorders do.
        origin = self.trace_origin
        trace = Trace(
            backend="sim",
            kubernetes_version=str(self.version),
            feature_gates=dict(self.behaviour.feature_gates),
            origin=None,
            extra={"generator": GENERATOR, "seed": self.seed, "warnings": list(self.warnings),
                   "notes": list(self.notes)},
        )
        for pod in self.pods.values():
            owner = trace_owner(pod.owner)
            info = [ContainerInfo(c.name, c.role, tuple(p for p in ("startup", "readiness", "liveness") if p in c.probes))
                    for c in pod.containers]
            trace.add_pod(Pod(pod.name, pod.namespace, owner, info, self.final_status(pod)))
        events = trace.events
        for t, etype, pod_name, container, fields in self.records:
            events.append(Event.from_fields(round(max(0.0, t - origin), 6), etype, pod_name, container, "sim", fields))
        if events:  # watched until the virtual time the run reached, which may be long after the last event
            trace.observed_until = max(round(self.env.now - origin, 6), events[-1].t)
        return trace

    def final_status(self, pod: SimPod) -> PodFinal:
        containers = {}
        for c in pod.containers:
            inst = c.inst
            restarts = max(0, c.starts - 1)
            if inst is None:
                containers[c.name] = ContainerFinal("waiting", restarts, None, pod.waiting_reason_of(c))
            elif inst.end is None:
                containers[c.name] = ContainerFinal("running", restarts)
            elif c.waiting_reason == "CrashLoopBackOff" and not pod.terminated and pod.deletion_requested_at is None:
                containers[c.name] = ContainerFinal("waiting", restarts, None, "CrashLoopBackOff")
            else:
                containers[c.name] = ContainerFinal("terminated", restarts, inst.exit_code,
                                                    "Completed" if inst.exit_code == 0 else "Error")
        return PodFinal(pod.phase, pod.deleted, containers)
