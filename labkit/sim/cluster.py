"""A simulated one-node cluster: API objects, the Job and Deployment controllers, the trace.

:class:`Cluster` owns the SimPy environment and everything in it. ``apply`` admits an
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
from ..trace import ContainerFinal, ContainerInfo, Event, Pod, PodFinal, Trace
from ..versions import DEFAULT_K8S_VERSION, KubeVersion, behaviour as version_behaviour
from . import timing
from .api import admit
from .behaviour import BEHAVIOUR_ANNOTATION, parse_behaviour_annotation, validate_behaviour
from .infer import build
from .kubelet import Kubelet
from .pods import TERMINAL, SimPod, spec_hash
from .process import ProcessModel
from .validation import selector_matches

GENERATOR = "labkit simulator — a model of the kubelet, not a cluster"
POD_UPDATE_FORBIDDEN = ("Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                        "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` (only "
                        "additions to existing tolerations) or `spec.terminationGracePeriodSeconds`")
# k8s.io/apimachinery/pkg/util/rand: no vowels, no confusable characters.
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


def _safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped onto the alphabet."""
    return "".join(_ALPHANUMS[ord(ch) % len(_ALPHANUMS)] for ch in text)


def _fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def template_hash(template: dict) -> str:
    """A pod-template-hash like the Deployment controller's (fnv32a, safe-encoded), of the template
    with empty objects left out: ``"resources": {}`` and no ``resources`` are the same Go struct, so
    a rollback (``kubectl rollout undo`` sends the ReplicaSet's template as Go encodes it) finds
    the old ReplicaSet again, as the controller's EqualIgnoreHash does."""
    return _safe_encode(str(_fnv32a(json.dumps(_without_empty_objects(template), sort_keys=True).encode())))


def _without_empty_objects(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _without_empty_objects(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [_without_empty_objects(v) for v in value]
    return value


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


def trace_owner(owner: dict | None) -> dict | None:
    """A pod's owner as a trace gives it: the workload (docs/trace.md), the ReplicaSet only as ``via``."""
    if owner is None:
        return None
    if owner["kind"] == "ReplicaSet" and owner.get("deployment"):
        return {"kind": "Deployment", "name": owner["deployment"],
                "via": {"kind": "ReplicaSet", "name": owner["name"]}}
    return {"kind": owner["kind"], "name": owner["name"]}


def _hashes(pod_spec: dict) -> dict[str, str]:
    """Each container's spec hash, computed once per template (its pods share the specs)."""
    return {c["name"]: spec_hash(c) for c in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])}


class Workload:
    """A Job or a Deployment and the pods it owns."""

    def __init__(self, kind: str, obj: dict, models: dict[str, ProcessModel]):
        self.kind = kind
        self.hashes = _hashes(obj["spec"]["template"]["spec"])
        self.obj = obj
        self.name: str = obj["metadata"]["name"]
        self.spec: dict = obj["spec"]
        self.models = models
        self.pods: list[SimPod] = []
        self.deleted = False          # the API object is gone
        self.deleting = False
        # Job
        self.complete = False
        self.failed = False
        self.created_at = 0.0           # env time of the create (set by the apply step)
        self.finished_at: float | None = None    # when the Job controller set Complete or Failed
        self.failures_seen = 0
        self.creating = 0             # pods the controller is about to create
        self.next_create_at = 0.0
        self.sync_due = False         # a batched sync after a pod change is queued
        # Deployment: pods neither deleting nor finished, and the ready ones among them,
        # kept up to date as the controller sees pod changes (no scans over all pods).
        self.rs_name: str | None = None
        self.rs_replicas: dict[str, int] = {}    # ReplicaSet name -> its spec.replicas
        # ReplicaSet name -> {template, revision, created}: the revision annotation the controller
        # writes (SetNewReplicaSetAnnotations: a rollback makes an old ReplicaSet the newest)
        self.replicasets: dict[str, dict] = {}
        self.available_at: float | None = None   # when the Deployment became Available
        # (sim time, ReplicaSet, from, to) of each scaling, for the ScalingReplicaSet Events
        self.scalings: list[tuple[float, str, int, int]] = []
        self.available = False
        self.live: dict[SimPod, None] = {}
        self.ready: dict[SimPod, None] = {}

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    @property
    def finished(self) -> bool:
        return self.complete or self.failed


class Cluster:
    """One simulated cluster of Kubernetes ``k8s_version`` with ``feature_gates``."""

    def __init__(self, k8s_version: str = DEFAULT_K8S_VERSION, feature_gates: dict[str, bool] | None = None, seed: int = 0):
        self.version = KubeVersion.parse(k8s_version)
        self.behaviour = version_behaviour(self.version, feature_gates)
        self.seed = seed
        self.env = simpy.Environment()
        self.rng = random.Random(f"labkit-sim/{seed}/timing")
        self.name_rng = random.Random(f"labkit-sim/{seed}/names")
        self.records: list[tuple[float, str, str | None, str | None, dict]] = []
        self.warnings: list[str] = []
        self.notes: list[str] = []          # which image table row modelled which container
        self.origin: float | None = None
        self.kubelet = Kubelet(self.env, self.behaviour, self.rng, self._emit_pod, self._pod_changed)
        self.pods: dict[str, SimPod] = {}
        self.workloads: dict[tuple[str, str], Workload] = {}
        self._names: set[str] = set()
        self.changes = 0               # bumped on every recorded event (cheap "did anything happen")
        self.open_pods = 0             # pods neither finished nor deleted
        self.open_workloads = 0        # Jobs not finished, Deployments not deleted
        self.status_changed: dict[str, None] = {}   # pods whose reported container states changed

    # -- recording ------------------------------------------------------------------------
    def _record(self, etype: str, pod: str | None, container: str | None, fields: dict) -> None:
        self.records.append((self.env.now, etype, pod, container, fields))
        self.changes += 1

    def _emit_pod(self, etype: str, pod: SimPod, container: str | None, **fields: Any) -> None:
        self._record(etype, pod.name, container, fields)

    def _emit_object(self, etype: str, ref: str, **fields: Any) -> None:
        self._record(etype, None, None, {"object": ref, **fields})

    def _at(self, delay: float, fn: Callable, *args: Any) -> None:
        ev = self.env.timeout(max(0.0, delay))
        ev.callbacks.append(lambda _ev: fn(*args))

    # -- names ------------------------------------------------------------------------------
    def _suffix_name(self, prefix: str) -> str:
        while True:
            name = prefix + "".join(self.name_rng.choice(_ALPHANUMS) for _ in range(5))
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
            self._create_pod(stored, models, _hashes(stored["spec"]), owner=None)
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
        self._emit_pod("DeleteRequested", pod, None, grace_period_seconds=grace)
        # A delete with grace 0 removes the object at once (what kubectl --force sends).
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

    def _batched_job_sync(self, job: Workload) -> None:
        job.sync_due = False
        self._job_sync(job)

    # -- Job controller ---------------------------------------------------------------------------
    def _job_sync(self, job: Workload) -> None:
        if job.finished or job.deleted:
            return
        spec = job.spec
        completions = spec.get("completions")
        parallelism = int(spec.get("parallelism", 1))
        backoff_limit = int(spec.get("backoffLimit", timing.JOB_DEFAULT_BACKOFF_LIMIT))
        succeeded = sum(1 for p in job.pods if p.phase == "Succeeded")
        failed = sum(1 for p in job.pods if p.phase == "Failed")
        active = [p for p in job.pods if not p.terminal and p.deletion_requested_at is None]
        terminating = [p for p in job.pods if not p.terminal and p.deletion_requested_at is not None and not p.deleted]
        restart_policy = spec["template"]["spec"].get("restartPolicy")
        if restart_policy == "OnFailure":
            # pastBackoffLimitOnFailure: restarts of every container, sidecars included.
            restarts = sum(max(0, c.starts - 1) for p in active for c in p.containers)
            if restarts and (restarts >= backoff_limit or backoff_limit == 0):
                failed = backoff_limit + 1
        target = completions if completions is not None else 1
        if failed > backoff_limit:
            self._job_finish(job, "JobFailed", active, terminating, reason="BackoffLimitExceeded",
                             message="Job has reached the specified backoff limit")
            return
        if succeeded >= target or (completions is None and succeeded and not active):
            # A pod counts as succeeded only once its phase is Succeeded, which the kubelet
            # writes after the sidecar has stopped.
            self._job_finish(job, "JobComplete", active, terminating)
            return
        want = min(parallelism, target - succeeded) - len(active) - job.creating
        if want <= 0:
            return
        delay = timing.CONTROLLER_S
        if failed > job.failures_seen:
            job.failures_seen = failed
            backoff = min(timing.JOB_POD_FAILURE_BACKOFF_S * 2 ** (failed - 1), timing.JOB_POD_FAILURE_BACKOFF_MAX_S)
            # counted from the failed pod's last container exit (backoff_utils.go getFinishedTime)
            finished = max(_finished_at(p) for p in job.pods if p.phase == "Failed")
            job.next_create_at = finished + backoff
        delay = max(delay, job.next_create_at - self.env.now)
        job.creating += want
        self._at(delay, self._job_create_pods, job, want)

    def _job_finish(self, job: Workload, event: str, active: list[SimPod], terminating: list[SimPod],
                    **fields: str) -> None:
        """The success or failure rule is met: delete the pods still running, then set the
        terminal condition. From 1.31 (delayTerminalCondition, PR #125510) the controller
        first writes SuccessCriteriaMet/FailureTarget and adds Complete/Failed only when no
        pod is terminating any more; before, at once (kubernetes#123775)."""
        for pod in active:
            self.delete_pod(pod)
        if self.behaviour.job_success_criteria_met and (active or terminating):
            return
        if event == "JobComplete":
            job.complete = True
        else:
            job.failed = True
        job.finished_at = self.env.now
        self.open_workloads -= 1
        self._emit_object(event, job.ref, **fields)

    def _job_create_pods(self, job: Workload, count: int) -> None:
        job.creating -= count
        if job.finished or job.deleted or job.deleting:
            return
        for _ in range(count):
            self._pod_from_template(job, self._suffix_name(f"{job.name}-"), {"kind": "Job", "name": job.name})

    # -- Deployment controller ---------------------------------------------------------------------
    def _deployment_create_rs(self, deploy: Workload) -> None:
        if deploy.deleted:
            return
        deploy.rs_name = name = f"{deploy.name}-{template_hash(deploy.spec['template'])}"
        revision = 1 + max((rs["revision"] for rs in deploy.replicasets.values()), default=0)
        if name in deploy.replicasets:
            deploy.replicasets[name]["revision"] = revision
        else:
            deploy.replicasets[name] = {"template": copy.deepcopy(deploy.spec["template"]), "revision": revision,
                                        "created": self.env.now}
        self._at(timing.CONTROLLER_S, self._deployment_scale, deploy)

    def _owner_ref(self, deploy: Workload) -> dict:
        return {"kind": "ReplicaSet", "name": deploy.rs_name, "deployment": deploy.name}

    def _deployment_scale(self, deploy: Workload) -> None:
        """One sync of the deployment controller (pkg/controller/deployment): the new ReplicaSet
        scaled up and the old ones down within maxSurge and maxUnavailable (rolling.go
        reconcileNewReplicaSet, reconcileOldReplicaSets), or the old ones first to 0 and then
        the new one up (recreate.go); then each ReplicaSet's pods made to match its replicas."""
        if deploy.deleted or deploy.deleting or deploy.rs_name is None:
            return
        new_rs = deploy.rs_name
        replicas = int(deploy.spec.get("replicas", 1))
        live = list(deploy.live)
        mine = {name: [p for p in live if p.owner and p.owner.get("name") == name]
                for name in dict.fromkeys([new_rs, *deploy.rs_replicas])}
        old = [name for name in mine if name != new_rs]
        old_count = sum(len(mine[name]) for name in old)
        strategy = deploy.spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            for name in old:
                self._scale_rs(deploy, name, 0)
            going = any(p.owner and p.owner.get("name") != new_rs and not p.deleted for p in deploy.pods)
            if not going:
                self._scale_rs(deploy, new_rs, replicas)
        elif not old_count:
            self._scale_rs(deploy, new_rs, replicas)
            for name in old:
                self._scale_rs(deploy, name, 0)
        else:
            surge, unavailable = self._max_surge(deploy, replicas), self._max_unavailable(deploy, replicas)
            if surge == 0 and unavailable == 0:
                unavailable = 1      # deployment util ResolveFenceposts
            # counts of pods are the ReplicaSets' replicas, as the controller's are
            new_count = deploy.rs_replicas.get(new_rs, 0)
            want = min(replicas, new_count + max(0, replicas + surge - sum(deploy.rs_replicas.values())))
            if want > new_count:
                self._scale_rs(deploy, new_rs, want)
            # reconcileOldReplicaSets: never below replicas - maxUnavailable available pods,
            # counting the new ReplicaSet's pods that are not available yet
            min_available = replicas - unavailable
            new_unavailable = deploy.rs_replicas.get(new_rs, 0) - sum(1 for p in mine[new_rs] if p in deploy.ready)
            budget = sum(deploy.rs_replicas.values()) - min_available - new_unavailable
            ready_now = len([p for p in live if p in deploy.ready])
            for unready_first in (True, False):
                for name in old:
                    for pod in sorted(mine[name], key=lambda p: -p.created_at):
                        if budget <= 0:
                            break
                        if unready_first and pod in deploy.ready:
                            continue
                        if not unready_first:
                            if ready_now - 1 < min_available:
                                break
                            ready_now -= 1
                        budget -= 1
                        mine[name].remove(pod)
                        self._scale_rs(deploy, name, len(mine[name]), delete=pod)
        self._rs_match(deploy, new_rs, mine[new_rs])

    def _scale_rs(self, deploy: Workload, name: str, count: int, *, delete: SimPod | None = None) -> None:
        before = deploy.rs_replicas.get(name, 0)
        if count == before and delete is None:
            return
        deploy.rs_replicas[name] = count
        if count != before:
            deploy.scalings.append((self.env.now, name, before, count))
        if delete is not None:
            self.delete_pod(delete)
        elif name != deploy.rs_name:
            for pod in [p for p in deploy.live if p.owner and p.owner.get("name") == name][count:]:
                self.delete_pod(pod)

    def _rs_match(self, deploy: Workload, name: str, pods: list[SimPod]) -> None:
        """The ReplicaSet controller: create or delete the new ReplicaSet's pods to match its replicas."""
        want = deploy.rs_replicas.get(name, 0)
        labels = dict((deploy.spec["template"].get("metadata") or {}).get("labels") or {})
        for _ in range(want - len(pods)):
            pod = self._pod_from_template(deploy, self._suffix_name(f"{name}-"), self._owner_ref(deploy))
            pod.labels.setdefault("pod-template-hash", name.rsplit("-", 1)[1])
            pod.labels.update(labels)
        if len(pods) > want:
            # controller.ActivePods ranking, simplified: not-ready pods first, then the newest
            for pod in sorted(pods, key=lambda p: (p in deploy.ready, -p.created_at))[:len(pods) - want]:
                self.delete_pod(pod)

    def _deployment_update(self, deploy: Workload, stored: dict) -> None:
        old_template = deploy.spec["template"]
        deploy.obj = stored
        deploy.spec = stored["spec"]
        if template_hash(old_template) != template_hash(stored["spec"]["template"]):
            # A new template: a new ReplicaSet, rolled out within maxSurge/maxUnavailable.
            deploy.models = self._models(stored, "<input>", None)
            deploy.hashes = _hashes(stored["spec"]["template"]["spec"])
            deploy.available = len(deploy.ready) >= int(deploy.spec.get("replicas", 1)) - \
                self._max_unavailable(deploy, int(deploy.spec.get("replicas", 1)))
            self._deployment_create_rs(deploy)
            return
        self._at(timing.CONTROLLER_S, self._deployment_scale, deploy)

    def _deployment_sync(self, deploy: Workload, pod: SimPod) -> None:
        going = pod.deletion_requested_at is not None or pod.terminal
        if pod.ready and not going:
            deploy.ready[pod] = None
        else:
            deploy.ready.pop(pod, None)
        if going and pod in deploy.live:
            del deploy.live[pod]
            if not deploy.deleted:
                # The ReplicaSet replaces a pod that is going away.
                self._at(timing.CONTROLLER_S, self._deployment_scale, deploy)
        elif not going and not deploy.deleted and any(n != deploy.rs_name and count for n, count in deploy.rs_replicas.items()):
            # a pod's readiness changed during a rollout: the controller may go on with it
            self._at(timing.CONTROLLER_S, self._deployment_scale, deploy)
        if deploy.deleted:
            return
        replicas = int(deploy.spec.get("replicas", 1))
        if not deploy.available:
            if len(deploy.ready) >= replicas - self._max_unavailable(deploy, replicas):
                # Available = availableReplicas >= replicas - maxUnavailable (deployment
                # util); minReadySeconds is 0, so available means ready.
                deploy.available = True
                deploy.available_at = self.env.now
                self._emit_object("DeploymentAvailable", deploy.ref)

    @staticmethod
    def _max_surge(deploy: Workload, replicas: int) -> int:
        value = ((deploy.spec.get("strategy") or {}).get("rollingUpdate") or {}).get("maxSurge", "25%")
        if isinstance(value, str) and value.endswith("%"):
            return -(-replicas * int(value[:-1]) // 100)     # rounded up, like the controller
        return int(value)

    @staticmethod
    def _max_unavailable(deploy: Workload, replicas: int) -> int:
        strategy = deploy.spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return 0
        value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
        if isinstance(value, str) and value.endswith("%"):
            return (replicas * int(value[:-1])) // 100     # rounded down, like the controller
        return int(value)

    # -- deletion of workloads ---------------------------------------------------------------------
    def delete_workload(self, workload: Workload, grace: int | None = None) -> None:
        """kubectl delete (background cascade): the object goes, the garbage collector then
        deletes its pods, each with its own grace period."""
        if workload.deleted or workload.deleting:
            return
        workload.deleting = True
        self._at(timing.API_WATCH_S, self._workload_gone, workload)

    def _workload_gone(self, workload: Workload) -> None:
        workload.deleted = True
        if workload.kind == "Deployment" or not workload.finished:
            self.open_workloads -= 1
        hops = 2 if workload.kind == "Deployment" else 1     # Deployment -> ReplicaSet -> pods
        self._at(hops * timing.API_WATCH_S, self._collect_pods, workload)

    def _collect_pods(self, workload: Workload) -> None:
        for pod in workload.pods:
            if not pod.deleted:
                self.delete_pod(pod)

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

    # -- the trace ----------------------------------------------------------------------------------------
    def trace(self) -> Trace:
        with gc_paused():
            return self._trace()

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


__all__ = ["Cluster", "GENERATOR", "TERMINAL", "Workload", "template_hash"]


def _finished_at(pod: SimPod) -> float:
    """When the pod's last container exited: the finishedAt the Job controller's back-off counts from."""
    return max((c.last_exit.end for c in pod.containers if c.last_exit is not None), default=0.0)
