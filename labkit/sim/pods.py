"""The objects the simulated kubelet works on: a pod, its containers, and each container's runs.

A :class:`SimPod` holds the spec and what the kubelet knows of it (phase, conditions, the
status it last reported); a :class:`Container` holds its process model, probes and back-off;
an :class:`Instance` is one run of a container (one container ID), from start to exit. A
:class:`Workload` is a Job or a Deployment and the pods it owns, what the controllers work on.
"""

from __future__ import annotations

import hashlib
import json
import re

import simpy

from ..objects import container_role
from . import timing
from .process import ProcessModel

TERMINAL = ("Succeeded", "Failed")


def spec_hash(container_spec: dict) -> str:
    """Stand-in for the kubelet's container hash: any change of the spec is a new hash."""
    return hashlib.sha1(json.dumps(container_spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


def spec_hashes(pod_spec: dict) -> dict[str, str]:
    """Each container's spec hash, computed once per template (its pods share the specs)."""
    return {c["name"]: spec_hash(c) for c in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])}


class Instance:
    """One run of a container (one container ID)."""

    __slots__ = ("attempt", "start", "end", "exit_code", "sigterm_at", "trap_at",
                 "done", "startup", "liveness", "readiness", "hash")

    def __init__(self, attempt: int, start: float, done: simpy.Event, hash_: str):
        self.attempt = attempt
        self.start = start
        self.end: float | None = None
        self.exit_code: int | None = None
        self.sigterm_at: float | None = None
        self.trap_at: float | None = None
        self.done = done
        self.startup: str | None = None      # probe results for this container ID
        self.liveness: str | None = None
        self.readiness: str | None = None
        self.hash = hash_


_QUANTITY = re.compile(r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)")
_SCALE = {None: 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
          "E": 1e18, "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40, "Pi": 2.0 ** 50,
          "Ei": 2.0 ** 60}


def cpu_limit(spec: dict) -> float | None:
    """A container's CPU limit in cores (None without one): a resource.Quantity, already validated.

    >>> cpu_limit({"resources": {"limits": {"cpu": "10m"}}}), cpu_limit({"resources": {"limits": {"cpu": 2}}})
    (0.01, 2.0)
    >>> cpu_limit({"resources": {"limits": {"memory": "10Mi"}}}) is None
    True
    """
    quantity = ((spec.get("resources") or {}).get("limits") or {}).get("cpu")
    if quantity is None:
        return None
    number, exponent, suffix = _QUANTITY.fullmatch(str(quantity).strip()).groups()
    cores = float(number) * (10.0 ** int(exponent) if exponent else _SCALE[suffix])
    return cores or None


def pod_cpu_limit(init: list[Container], apps: list[Container]) -> float | None:
    """The pod cgroup's CPU limit: the larger of what the regular containers and sidecars use
    together and what each init container uses beside the sidecars declared before it; None unless
    every container declares one (pkg/kubelet/cm ResourceConfigForPod, component-helpers
    resource.PodLimits at v0.37.2)."""
    if not init + apps or any(c.cpu_limit is None for c in init + apps):
        return None
    total = sum(c.cpu_limit for c in apps)
    sidecars = 0.0
    highest_init = 0.0
    for c in init:
        if c.role == "sidecar":
            sidecars += c.cpu_limit
            total += c.cpu_limit
            highest_init = max(highest_init, sidecars)
        else:
            highest_init = max(highest_init, c.cpu_limit + sidecars)
    return max(total, highest_init)


class Container:
    """A declared container and its runtime state on the node."""

    __slots__ = ("name", "role", "spec", "model", "probes", "image", "hash", "inst", "starts", "last_exit",
                 "backoff", "waiting_reason", "st_inst", "st_state", "st_last", "st_started", "st_ready", "st_event",
                 "ready_trigger", "cpu_limit")

    def __init__(self, name: str, role: str, spec: dict, model: ProcessModel, hash_: str, env: simpy.Environment):
        self.name = name
        self.role = role
        self.spec = spec
        self.model = model
        self.probes = {ptype: spec[f"{ptype}Probe"] for ptype in ("startup", "readiness", "liveness")
                       if spec.get(f"{ptype}Probe") and role != "init"}
        self.image = spec.get("image", "")
        self.cpu_limit = cpu_limit(spec)       # cores; its start runs under this quota
        self.hash = hash_
        self.inst: Instance | None = None
        self.starts = 0
        self.last_exit: Instance | None = None    # the latest exited instance (its FinishedAt, exit code)
        self.backoff: dict[str, tuple[float, float]] = {}   # key -> (backoff, lastUpdate)
        self.waiting_reason: str | None = None    # the kubelet's reason cache
        # What the status manager shows (probe workers read this, like doProbe does).
        self.st_inst: Instance | None = None
        self.st_state = "waiting"
        self.st_last: Instance | None = None      # the run before st_inst, as last reported (lastState)
        self.st_started = False
        self.st_ready = False
        self.st_event = env.event()
        self.ready_trigger = env.event()

    @property
    def running(self) -> bool:
        return self.inst is not None and self.inst.end is None

    def previous_run(self) -> Instance | None:
        """The run ``kubectl logs --previous`` reads: the one the pod's status shows as
        ``lastState.terminated`` (the kubelet's validateContainerLogStatus reads the container id
        from there) -- the exited run while it waits out CrashLoopBackOff, else the run before the
        current one; None when there is none. SimLab and the served simulator both ask here."""
        inst = self.st_inst if self.st_state == "waiting" and self.st_inst is not None else self.st_last
        return inst if inst is not None and inst.end is not None else None

    def previous_run_removed(self) -> bool:
        """Whether the kubelet has already deleted the container of :meth:`previous_run`. On each
        container death it keeps only the newest exited container of that name (kubelet.go
        cleanUpContainersInPod, podContainerDeletor with minDeadContainerInPod = 1), so from a run's
        death until the status shows it as lastState, the run the status still names is gone and the
        kubelet answers ``unable to retrieve container logs for <id>`` (recorded on labkit's node,
        kubelet v1.37.2). ``labkit.sim.view.removed_answer`` answers so for SimLab and the served simulator."""
        previous = self.previous_run()
        return previous is not None and self.last_exit is not None and self.last_exit is not previous


class SimPod:
    """A pod as the API server and the kubelet see it."""

    __slots__ = ("obj", "name", "namespace", "labels", "finalizers", "owner", "spec", "restart_policy", "tgps",
                 "init", "apps", "containers", "by_name", "has_sidecars", "created_at", "phase", "initialized",
                 "containers_ready", "ready", "deletion_grace", "deletion_requested_at",
                 "kill_requested", "deleted", "sandbox", "cpu_limit", "terminated", "settled", "liveness_stopped",
                 "probes_removed", "trigger_time", "wake", "armed_at", "last_sync_end", "requeue_at", "reported",
                 "relisted_at", "has_volumes", "mounted")

    def __init__(self, env: simpy.Environment, obj: dict, models: dict[str, ProcessModel], hashes: dict[str, str], *,
                 owner: dict | None, created_at: float):
        meta = obj.get("metadata") or {}
        spec = obj["spec"]
        self.obj = obj
        self.name: str = meta["name"]
        self.namespace: str = meta.get("namespace") or "default"
        self.labels: dict = dict(meta.get("labels") or {})
        self.finalizers = list(meta.get("finalizers") or [])
        self.owner = owner
        self.spec = spec
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        tgps = spec.get("terminationGracePeriodSeconds")
        self.tgps: int = timing.DEFAULT_TERMINATION_GRACE_S if tgps is None else int(tgps)
        self.init: list[Container] = []
        for c in spec.get("initContainers") or []:
            self.init.append(Container(c["name"], container_role("initContainers", c), c, models[c["name"]], hashes[c["name"]], env))
        self.apps = [Container(c["name"], "app", c, models[c["name"]], hashes[c["name"]], env)
                     for c in spec.get("containers") or []]
        self.containers = self.init + self.apps
        self.by_name = {c.name: c for c in self.containers}
        self.has_sidecars = any(c.role == "sidecar" for c in self.init)
        self.cpu_limit = pod_cpu_limit(self.init, self.apps)
        # admission adds the service account token's volume unless the pod opts out
        self.has_volumes = bool(spec.get("volumes")) or spec.get("automountServiceAccountToken") is not False
        self.created_at = created_at
        # API status
        self.phase = "Pending"
        self.initialized = not self.init
        self.containers_ready = False
        self.ready = False
        # deletion
        self.deletion_grace: int | None = None
        self.deletion_requested_at: float | None = None
        self.kill_requested = False        # the kubelet has seen the deletion
        self.deleted = False
        # kubelet bookkeeping
        self.sandbox = False
        self.mounted = False               # the first sync has waited for the volumes
        self.terminated = False            # the pod worker finished
        self.settled = False               # (cluster bookkeeping) finished or gone for good
        self.liveness_stopped = False
        self.probes_removed = False
        self.trigger_time: float | None = None
        self.wake: simpy.Event | None = None       # set while the pod worker waits
        self.armed_at: float | None = None         # when its wake-up timer fires
        self.last_sync_end: float | None = None
        self.relisted_at: float | None = None      # when the last on-demand relist ran
        self.requeue_at: float | None = None       # the pod's deadline on the kubelet's work queue
        # whether the kubelet has written a status yet: until then the API object has only what
        # the API server and the scheduler set (phase Pending, no container statuses)
        self.reported = False

    def any_running(self) -> bool:
        return any(c.running for c in self.containers)

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    def container_names(self) -> list[str]:
        return [c.name for c in self.containers]

    def waiting_reason_of(self, c: Container) -> str:
        """Why ``c`` has not started yet, as its status says: the kubelet's cached reason, else
        PodInitializing in a pod with init containers and ContainerCreating in one without (the
        one rule for the pod JSON, the served logs and the trace's final state)."""
        return c.waiting_reason or ("PodInitializing" if self.init else "ContainerCreating")


class Workload:
    """A Job or a Deployment and the pods it owns."""

    def __init__(self, kind: str, obj: dict, models: dict[str, ProcessModel]):
        self.kind = kind
        self.hashes = spec_hashes(obj["spec"]["template"]["spec"])
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
