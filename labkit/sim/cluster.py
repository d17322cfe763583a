"""A simulated one-node cluster: the API's apply step, pods, names; made of its controllers.

:class:`Cluster` owns the SimPy environment and everything in it, and is made of parts as
upstream's controller-manager is of controllers: the Job controller (``jobs.py``), the
Deployment and ReplicaSet controllers (``deployments.py``), the garbage collector
(``garbage_collector.py``) and the trace assembly (``cluster_trace.py``). ``apply`` admits an
object through the simulated API server (``labkit.sim.api``), works out what each
container's process does (``labkit.sim.infer``), and hands pods to the node's kubelet
(``labkit.sim.kubelet``). Controllers react to pod changes one watch hop later, the way
the real ones do, and every change is recorded as a trace event. Names look like real
ones: ReplicaSets are ``<deployment>-<template hash>`` and pods get five random characters
from the seeded RNG (``sidecar-job-7xk2p``).
"""

from __future__ import annotations

import copy
import gc
import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import simpy

from ..errors import InvalidInput
from ..objects import pod_spec_of
from ..refs import KIND_PLURALS
from ..trace import Trace
from ..versions import KubeVersion, behaviour as version_behaviour
from . import timing
from .api import admit
from .behaviour import BEHAVIOUR_ANNOTATION, parse_behaviour_annotation, validate_behaviour
from .cluster_trace import GENERATOR, TraceAssembly
from .deployments import ALPHANUMS, DeploymentController, template_hash
from .garbage_collector import GarbageCollector
from .infer import build
from .jobs import JobController
from .kubelet import Kubelet, NodeConditions
from .pods import TERMINAL, SimPod, Workload, spec_hashes
from .process import ProcessModel
from .validation import selector_matches

POD_UPDATE_FORBIDDEN = ("Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                        "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only "
                        "additions to existing tolerations) or `spec.terminationGracePeriodSeconds`")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while the event loop runs.

    SimPy allocates an event per step; with 10,000 pods the collector's full passes over
    every live object made a run quadratic (12 s instead of 3.5 s). Nothing the
    simulator builds needs the collector to be freed promptly.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Cluster(TraceAssembly, JobController, DeploymentController, GarbageCollector):
    """One simulated cluster of Kubernetes ``version`` with ``feature_gates``."""

    def __init__(self, version: KubeVersion, feature_gates: dict[str, bool] | None = None, seed: int = 0,
                 conditions: NodeConditions = NodeConditions()):
        self.version = version
        self.behaviour = version_behaviour(version, feature_gates)
        self.seed = seed
        self.env = simpy.Environment()
        self.rng = random.Random(f"labkit-sim/{seed}/timing")
        self.name_rng = random.Random(f"labkit-sim/{seed}/names")
        self.records: list[tuple[float, str, str | None, str | None, dict]] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []          # which image table row modelled which container
        self.origin: float | None = None
        self.kubelet = Kubelet(self.env, self.behaviour, self.rng, self._emit_pod, self._pod_changed, conditions)
        self.pods: dict[str, SimPod] = {}
        self.workloads: dict[tuple[str, str], Workload] = {}
        self._names: set[str] = set()
        self.changes = 0               # bumped on every recorded event (cheap "did anything happen")
        self.open_pods = 0             # pods neither finished nor deleted
        self.open_workloads = 0        # Jobs not finished, Deployments not deleted
        self.status_changed: dict[str, None] = {}   # pods whose reported container states changed

    def _at(self, delay: float, fn: Callable, *args: Any) -> None:
        ev = self.env.timeout(max(0.0, delay))
        ev.callbacks.append(lambda _ev: fn(*args))

    # -- names ------------------------------------------------------------------------------
    def _suffix_name(self, prefix: str) -> str:
        while True:
            name = prefix + "".join(self.name_rng.choice(ALPHANUMS) for _ in range(5))
            if name not in self._names:
                self._names.add(name)
                return name

    # -- apply -------------------------------------------------------------------------------
    def apply(self, obj: dict, *, source: str = "<input>", behaviour_block: dict | None = None) -> str:
        """Create (or re-apply) one object; returns kubectl's line, e.g. ``job.batch/x created``."""
        admitted = admit(obj, self.behaviour, source=source)
        stored = admitted.obj
        kind = stored["kind"]
        name = stored["metadata"]["name"]
        for warning in admitted.warnings:
            self._warn(f"{source}: {warning}")
        if self.origin is None:
            self.origin = self.env.now
        existing = self.pods.get(name) if kind == "Pod" else self.workloads.get((kind, name))
        if existing is not None and not existing.deleted:
            if getattr(existing, "deletion_requested_at", None) is not None or getattr(existing, "deleting", False):
                raise InvalidInput(f'Error from server (AlreadyExists): object is being deleted: '
                                   f'{KIND_PLURALS[kind].split(".")[0]}s "{name}" already exists', source=source,
                                   field="metadata.name")
            return self._reapply(kind, existing, stored, source)
        models = self._models(stored, source, behaviour_block)
        if kind == "Pod":
            self._create_pod(stored, models, spec_hashes(stored["spec"]), owner=None)
        else:
            workload = Workload(kind, stored, models)
            workload.created_at = self.env.now
            self.workloads[(kind, name)] = workload
            self.open_workloads += 1
            if kind == "Job":
                self._at(timing.CONTROLLER_S, self._job_sync, workload)
            else:
                self._at(timing.CONTROLLER_S, self._deployment_create_rs, workload)
        return f"{KIND_PLURALS[kind]}/{name} created"

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def _models(self, obj: dict, source: str, block: dict | None) -> dict[str, ProcessModel]:
        spec, prefix = pod_spec_of(obj)
        meta = obj["metadata"] if obj["kind"] == "Pod" else (obj["spec"]["template"].get("metadata") or {})
        names = [c["name"] for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])]
        blocks: dict = {}
        annotation = (meta.get("annotations") or {}).get(BEHAVIOUR_ANNOTATION)
        meta_path = "metadata" if obj["kind"] == "Pod" else "spec.template.metadata"
        if annotation is not None:
            where = f"{meta_path}.annotations[{BEHAVIOUR_ANNOTATION}]"
            blocks = validate_behaviour(parse_behaviour_annotation(annotation, source=source, where=where),
                                        names, source=source, where=where)
        if block:
            blocks = {**blocks, **validate_behaviour(block, names, source=source)}
        shared = bool(spec.get("shareProcessNamespace"))
        models = {}
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            model, warnings = build(c, blocks.get(c["name"]), shared_pid_namespace=shared)
            models[c["name"]] = model
            for warning in warnings:
                self._warn(f"{source}: {obj['kind'].lower()}/{obj['metadata']['name']}: {warning}")
            if model.image_row is not None:
                note = f"{source}: {obj['kind'].lower()}/{obj['metadata']['name']}: container {c['name']}: {model.description}"
                if note not in self.notes:
                    self.notes.append(note)
        return models

    def _reapply(self, kind: str, existing: Any, stored: dict, source: str) -> str:
        name = stored["metadata"]["name"]
        label = f"{KIND_PLURALS[kind]}/{name}"
        old = existing.obj
        if json.dumps(old.get("spec"), sort_keys=True) == json.dumps(stored.get("spec"), sort_keys=True):
            return f"{label} unchanged"
        if kind == "Pod":
            changed = self._image_only_changes(old["spec"], stored["spec"])
            if changed is None:
                raise InvalidInput(f'The Pod "{name}" is invalid: spec: {POD_UPDATE_FORBIDDEN}', source=source,
                                   field="spec")
            for container, image in changed:
                self.set_image(existing, container, image)
            return f"{label} configured"
        if kind == "Job":
            raise InvalidInput(f'The Job "{name}" is invalid: spec.template: Invalid value: ...: field is immutable',
                               source=source, field="spec.template")
        self._deployment_update(existing, stored)
        return f"{label} configured"

    @staticmethod
    def _image_only_changes(old: dict, new: dict) -> list[tuple[str, str]] | None:
        changes = []
        trimmed_old, trimmed_new = copy.deepcopy(old), copy.deepcopy(new)
        for group in ("initContainers", "containers"):
            for a, b in zip(trimmed_old.get(group) or [], trimmed_new.get(group) or []):
                if a.get("image") != b.get("image"):
                    changes.append((b["name"], b["image"]))
                a.pop("image", None), b.pop("image", None)
                a.pop("imagePullPolicy", None), b.pop("imagePullPolicy", None)
        if json.dumps(trimmed_old, sort_keys=True) != json.dumps(trimmed_new, sort_keys=True):
            return None
        return changes

    # -- pods -----------------------------------------------------------------------------------
    def _create_pod(self, obj: dict, models: dict[str, ProcessModel], hashes: dict[str, str],
                    owner: dict | None) -> SimPod:
        self._names.add(obj["metadata"]["name"])
        pod = SimPod(self.env, obj, models, hashes, owner=owner, created_at=self.env.now)
        self.pods[pod.name] = pod
        self.open_pods += 1
        self._emit_pod("PodPhase", pod, None, phase="Pending")
        self.kubelet.add_pod(pod)
        return pod

    def _pod_from_template(self, workload: Workload, name: str, owner: dict) -> SimPod:
        template = workload.spec["template"]
        meta = dict(template.get("metadata") or {})
        meta["name"] = name
        meta["namespace"] = workload.obj["metadata"].get("namespace", "default")
        # The pods of a workload share the template's spec: nothing in the simulator changes
        # a spec in place (an image update makes a new container dict), and 10,000 copies
        # would cost more than the simulation itself.
        obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
        pod = self._create_pod(obj, workload.models, workload.hashes, owner)
        workload.pods.append(pod)
        workload.live[pod] = None
        return pod

    def delete_pod(self, pod: SimPod, grace: int | None = None, *, force: bool = False) -> None:
        if pod.deleted or pod.deletion_requested_at is not None and grace is None:
            return
        grace = pod.tgps if grace is None else int(grace)
        if pod.phase in TERMINAL:
            # The API server removes a pod that has finished at once, whatever grace was asked
            # for (podStrategy.CheckGracefulDelete, pkg/registry/core/pod/strategy.go; docs/timing.md).
            grace = 0
        self._emit_pod("DeleteRequested", pod, None, grace_period_seconds=grace)
        # A delete with grace 0 removes the object at once (what kubectl --force sends), unless
        # finalizers keep it.
        self.kubelet.request_deletion(pod, grace, force=force or grace == 0)
        self._settle(pod)
        owner = self._owner_workload(pod)
        if owner is not None:
            self._at(timing.API_WATCH_S, self._owner_saw_pod, owner, pod)

    def set_image(self, pod: SimPod, container: str, image: str) -> None:
        if container not in pod.by_name:
            raise InvalidInput(f"pod {pod.name} has no container {container!r} "
                               f"(containers: {', '.join(pod.container_names())})", field="container")
        self.kubelet.update_image(pod, container, image)

    def _owner_workload(self, pod: SimPod) -> Workload | None:
        if pod.owner is None:
            return None
        kind = "Job" if pod.owner["kind"] == "Job" else "Deployment"
        name = pod.owner["name"] if kind == "Job" else pod.owner.get("deployment", "")
        return self.workloads.get((kind, name))

    def _settle(self, pod: SimPod) -> None:
        """Keep ``open_pods`` right: a pod is settled when the kubelet is done with it and
        its object is gone or stays (no deletion asked, or a finalizer keeps it)."""
        settled = pod.terminated and (pod.deleted or pod.deletion_requested_at is None or bool(pod.finalizers))
        if settled != pod.settled:
            pod.settled = settled
            self.open_pods += -1 if settled else 1

    def _pod_changed(self, pod: SimPod, what: str) -> None:
        if what == "status":     # a new status snapshot: only the served API shows it (labkit.serve)
            self.status_changed[pod.name] = None
            return
        self._settle(pod)
        owner = self._owner_workload(pod)
        if owner is not None:
            self._at(timing.API_WATCH_S, self._owner_saw_pod, owner, pod)

    def _owner_saw_pod(self, workload: Workload, pod: SimPod) -> None:
        if workload.kind == "Job":
            # A pod change queues the Job with AddAfter(SyncJobBatchPeriod); one already queued
            # keeps its earlier time (job_controller.go updatePod -> enqueueSyncJobBatched).
            if not workload.sync_due:
                workload.sync_due = True
                self._at(timing.JOB_SYNC_BATCH_S, self._batched_job_sync, workload)
        else:
            self._deployment_sync(workload, pod)

    def trace(self) -> Trace:
        with gc_paused():
            return self._trace()

    # -- queries ---------------------------------------------------------------------------------------
    def now(self) -> float:
        return self.env.now - (self.origin if self.origin is not None else self.env.now)

    @property
    def trace_origin(self) -> float:
        """The env time of the trace's t = 0: its first event (docs/trace.md), before that the first apply."""
        return self.records[0][0] if self.records else (self.origin if self.origin is not None else self.env.now)

    def done(self) -> bool:
        """Nothing left to happen by itself: every pod finished or gone, every Job finished."""
        return self.open_pods <= 0 and self.open_workloads <= 0 and all(
            w.deleted or (w.kind == "Job" and w.finished) for w in self.workloads.values())

    def select_pods(self, selector: dict[str, str]) -> list[SimPod]:
        return [p for p in self.pods.values() if not p.deleted and selector_matches({"matchLabels": selector}, p.labels)]

__all__ = ["Cluster", "GENERATOR", "TERMINAL", "Workload", "template_hash"]


