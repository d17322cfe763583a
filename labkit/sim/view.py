"""The simulated cluster seen as API objects: the one view SimLab and the served simulator read.

A pod with its status snapshot, a Job with the status the Job controller writes, a Deployment
and its ReplicaSets, the Events the kubelet and the controllers record, a container's log and
``logs --previous``: each is built here once, from the simulator's state. ``ts`` turns a
simulator time (``env.now``) into an RFC 3339 timestamp: SimLab counts from 1970-01-01 at the
trace's t = 0, the served simulator (``labkit.serve``) from the wall clock. What only an API
server adds (uids, resourceVersions, generations, managedFields, ownerReferences' uids, the
admission plugins' defaults, Event names and counts) is the caller's: ``labkit.serve.world``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..versions import Behaviour
from .deployments import max_surge
from .jobs import JOB_CONDITIONS
from .pods import TERMINAL, Container, Instance, SimPod

Stamp = Callable[[float], str]
RUNTIME = "labkit-sim"     # containerIDs: no container runtime made them
NODE = "labkit-sim-node"   # the one node; the name says what it is

# -- pods -------------------------------------------------------------------------------------
def pod_json(pod: SimPod, ts: Stamp) -> dict:
    """The pod as the API server would return it, built from what the kubelet last reported."""
    def stamp(t: float | None) -> str | None:
        return None if t is None else ts(t)

    def terminated(run: Instance) -> dict:
        return {"exitCode": run.exit_code, "reason": "Completed" if run.exit_code == 0 else "Error",
                "startedAt": stamp(run.start), "finishedAt": stamp(run.end)}

    statuses: dict[str, list] = {"initContainerStatuses": [], "containerStatuses": []}
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
            status["state"] = {"waiting": {"reason": pod.waiting_reason_of(c)}}
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


# -- workloads --------------------------------------------------------------------------------
def job_json(job: Any, ts: Stamp, behaviour: Behaviour, metadata: dict) -> dict:
    """A Job (``labkit.sim.pods.Workload``) with the status the Job controller writes."""
    pods = [p for p in job.pods if not p.deleted or p.phase in TERMINAL]
    active = [p for p in job.pods if p.phase not in TERMINAL and p.deletion_requested_at is None]
    status: dict[str, Any] = {}
    if job.pods:
        status["startTime"] = ts(min(p.created_at for p in job.pods))
    if active:
        status["active"] = len(active)
    status["ready"] = sum(1 for p in active if p.ready)
    if behaviour.job_status_terminating:   # JobPodReplacementPolicy (beta in 1.29) adds status.terminating
        status["terminating"] = sum(1 for p in job.pods if p.deletion_requested_at is not None and not p.deleted
                                    and p.phase not in TERMINAL)
    succeeded = sum(1 for p in pods if p.phase == "Succeeded")
    failed = sum(1 for p in pods if p.phase == "Failed")
    if succeeded:
        status["succeeded"] = succeeded
    if failed:
        status["failed"] = failed
    status["uncountedTerminatedPods"] = {}
    conditions = []
    for _, kind, pre, reason, message in JOB_CONDITIONS:
        if not (job.complete if kind == "Complete" else job.failed):
            continue
        when = ts(job.finished_at)
        if behaviour.job_success_criteria_met:   # delayTerminalCondition (kubernetes#125510)
            conditions.append({"type": pre, "status": "True", "reason": reason, "message": message,
                               "lastProbeTime": when, "lastTransitionTime": when})
        condition = {"type": kind, "status": "True", "lastProbeTime": when, "lastTransitionTime": when}
        if behaviour.job_success_criteria_met or kind == "Failed":
            condition.update(reason=reason, message=message)
        conditions.append(condition)
        if kind == "Complete":
            status["completionTime"] = when
    if conditions:
        status["conditions"] = conditions
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": copy.deepcopy(job.spec),
            "status": status}


def replicasets_json(deploy: Any, ts: Stamp, namespace: str, owner: dict, uid: Callable[[str], str]) -> list[dict]:
    """The Deployment's ReplicaSets, as the deployment and ReplicaSet controllers keep them;
    ``owner`` is the ownerReference to the Deployment, ``uid`` gives a ReplicaSet's uid."""
    result = []
    replicas = int(deploy.spec.get("replicas", 1))
    for name, rs in deploy.replicasets.items():
        pod_hash = name.rsplit("-", 1)[1]
        live = [p for p in deploy.pods if p.owner and p.owner.get("name") == name and p in deploy.live]
        ready = [p for p in live if p.ready]
        template = copy.deepcopy(rs["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = pod_hash
        selector = copy.deepcopy(deploy.spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        status: dict[str, Any] = {"replicas": len(live), "fullyLabeledReplicas": len(live), "observedGeneration": 1}
        if ready:
            status.update(readyReplicas=len(ready), availableReplicas=len(ready))
        result.append({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": namespace, "uid": uid(name), "generation": 1,
                         "creationTimestamp": ts(rs["created"]), "labels": dict(template["metadata"]["labels"]),
                         "annotations": {"deployment.kubernetes.io/desired-replicas": str(replicas),
                                         "deployment.kubernetes.io/max-replicas": str(replicas + max_surge(deploy.spec, replicas)),
                                         "deployment.kubernetes.io/revision": str(rs["revision"])},
                         "ownerReferences": [owner]},
            "spec": {"replicas": 0 if deploy.deleting else deploy.rs_replicas.get(name, 0), "selector": selector,
                     "template": template},
            "status": status})
    return result


def deployment_json(deploy: Any, ts: Stamp, metadata: dict) -> dict:
    """A Deployment with the status and conditions the deployment controller writes."""
    meta = metadata
    current = deploy.replicasets.get(deploy.rs_name)
    meta.setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(current["revision"] if current else 1)
    replicas = int(deploy.spec.get("replicas", 1))
    live = list(deploy.live)
    updated = [p for p in live if p.owner and p.owner.get("name") == deploy.rs_name]
    ready = [p for p in live if p.ready]
    status: dict[str, Any] = {"observedGeneration": meta.get("generation", 1)}
    if deploy.rs_name is not None:
        status["replicas"] = len(live)
        status["updatedReplicas"] = len(updated)
        if ready:
            status["readyReplicas"] = len(ready)
            status["availableReplicas"] = len(ready)
        if len(live) - len(ready) > 0 or replicas - len(ready) > 0:
            status["unavailableReplicas"] = max(len(live), replicas) - len(ready)
        created = ts(deploy.created_at)
        if deploy.available:
            when = ts(deploy.available_at) if deploy.available_at is not None else created
            available = {"type": "Available", "status": "True", "lastUpdateTime": when, "lastTransitionTime": when,
                         "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."}
        else:
            available = {"type": "Available", "status": "False", "lastUpdateTime": created,
                         "lastTransitionTime": created, "reason": "MinimumReplicasUnavailable",
                         "message": "Deployment does not have minimum availability."}
        done = len(updated) == replicas and len(ready) >= replicas and len(live) == replicas
        status["conditions"] = [available, {
            "type": "Progressing", "status": "True", "lastUpdateTime": created, "lastTransitionTime": created,
            "reason": "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
            "message": (f'ReplicaSet "{deploy.rs_name}" has successfully progressed.' if done else
                        f'ReplicaSet "{deploy.rs_name}" is progressing.')}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": copy.deepcopy(deploy.spec),
            "status": status}


# -- Events -----------------------------------------------------------------------------------
@dataclass
class EventView:
    """One core/v1 Event as the kubelet or a controller records it, about the object ``kind``/``name``
    whose uid is ``uid`` (the caller's: see ``events_of``)."""

    t: float
    kind: str
    api_version: str
    name: str
    uid: str
    reason: str
    message: str
    component: str
    warning: bool = False
    field_path: str | None = None


def kubelet_container_messages(behaviour: Behaviour, container: str) -> tuple[str, str]:
    """The kubelet's Created and Started Event messages for this version (labkit.versions.Behaviour
    says which wording, read at the release tags)."""
    if behaviour.kubelet_container_events_unnamed:     # the Event's fieldPath names the container
        return "Container created", "Container started"
    if behaviour.kubelet_created_with_colon:
        return f"Created container: {container}", f"Started container {container}"
    return f"Created container {container}", f"Started container {container}"


def scaling_message(behaviour: Behaviour, rs: str, before: int, after: int, *, created: bool) -> str:
    """The deployment controller's ScalingReplicaSet message for this version (getNewReplicaSet
    for a new ReplicaSet, scaleReplicaSet after)."""
    direction = "up" if after > before else "down"
    if behaviour.scaling_from_to:
        return f"Scaled {direction} replica set {rs} from {before} to {after}"
    if created:
        return f"Scaled up replica set {rs} to {after}"
    return f"Scaled {direction} replica set {rs} to {after} from {before}"


def scaling_events(deploy: Any, behaviour: Behaviour, start: int, uid: str) -> list[EventView]:
    """The ScalingReplicaSet Events of the Deployment (uid ``uid``) for its scalings from number ``start`` on."""
    events = []
    for i, (t, rs_name, before, after) in enumerate(deploy.scalings[start:], start=start):
        first = not any(name == rs_name for _, name, _, _ in deploy.scalings[:i])
        events.append(EventView(t, "Deployment", "apps/v1", deploy.name, uid, "ScalingReplicaSet",
                                scaling_message(behaviour, rs_name, before, after, created=first),
                                "deployment-controller"))
    return events


def events_of(cluster: Any, record: tuple, behaviour: Behaviour, node: str, stopping: set,
              uid: Callable[[Any], str]) -> list[EventView]:
    """The Kubernetes Events the kubelet, the scheduler and the controllers record for one simulator
    record (``Cluster.records``). ``stopping`` remembers the containers whose preStop hook already
    gave their Killing Event (the caller keeps it across records); ``uid`` gives the uid of a
    SimPod, a Workload or a ReplicaSet (``(deployment Workload, name)``)."""
    t, etype, pod_name, container, fields = record
    pod = cluster.pods.get(pod_name) if pod_name else None
    if pod is not None:
        return _pod_events(cluster, pod, t, etype, container, fields, behaviour, node, stopping, uid)
    ref = fields.get("object")
    if not ref:
        return []
    kind, _, name = ref.partition("/")
    workload = cluster.workloads.get(("Job" if kind == "job" else "Deployment", name))
    if workload is None:
        return []
    if etype == "JobComplete":
        return [EventView(t, "Job", "batch/v1", name, uid(workload), "Completed", "Job completed", "job-controller")]
    if etype == "JobFailed":
        _, _, _, reason, message = JOB_CONDITIONS[1]
        return [EventView(t, "Job", "batch/v1", name, uid(workload), reason, message, "job-controller", warning=True)]
    return []


def _pod_events(cluster: Any, pod: SimPod, t: float, etype: str, container: str | None, fields: dict,
                behaviour: Behaviour, node: str, stopping: set, uid: Callable[[Any], str]) -> list[EventView]:
    def on_pod(reason: str, message: str, component: str, *, warning: bool = False, path: str | None = None) -> EventView:
        return EventView(t, "Pod", "v1", pod.name, uid(pod), reason, message, component, warning, path)

    if etype == "PodPhase" and fields.get("phase") == "Pending" and t == pod.created_at:
        events = []
        if pod.owner is not None:
            name, created = pod.owner["name"], f"Created pod: {pod.name}"
            if pod.owner["kind"] == "Job":
                job = cluster.workloads.get(("Job", name))
                events.append(EventView(t, "Job", "batch/v1", name, uid(job) if job is not None else "",
                                        "SuccessfulCreate", created, "job-controller"))
            else:
                deploy = cluster.workloads.get(("Deployment", pod.owner.get("deployment", "")))
                events.append(EventView(t, "ReplicaSet", "apps/v1", name, uid((deploy, name)),
                                        "SuccessfulCreate", created, "replicaset-controller"))
        events.append(on_pod("Scheduled", f"Successfully assigned {pod.namespace}/{pod.name} to {node}",
                             "default-scheduler"))
        return events
    if container is None:
        return []
    c = pod.by_name.get(container)
    where = "initContainers" if c is not None and c.role != "app" else "containers"
    path = f"spec.{where}{{{container}}}"
    if etype == "Started":
        created, started = kubelet_container_messages(behaviour, container)
        return [on_pod("Pulled", f'Container image "{c.image if c is not None else ""}" already present on machine',
                       "kubelet", path=path),
                on_pod("Created", created, "kubelet", path=path), on_pod("Started", started, "kubelet", path=path)]
    if etype in ("PreStop", "SIGTERM"):
        key = (pod, container)
        if etype == "SIGTERM" and c is not None and c.model.pre_stop is not None and key in stopping:
            return []
        if etype == "PreStop":
            stopping.add(key)
        return [on_pod("Killing", f"Stopping container {container}", "kubelet", path=path)]
    if etype == "ImagePullFailed":
        return [on_pod("Failed", fields.get("message") or "Failed to pull image", "kubelet", warning=True, path=path)]
    if etype == "Restarted" and c is not None:
        return [on_pod("BackOff", f"Back-off restarting failed container {container} in pod "
                       f"{pod.name}_{pod.namespace}({uid(pod)})", "kubelet", warning=True, path=path)]
    return []


# -- logs -------------------------------------------------------------------------------------
class LogUnavailable(Exception):
    """The API server's or the kubelet's 400 for a log that cannot be read (its message as kubectl prints it)."""


def container_id(pod_uid: str, c: Container, run: Instance) -> str:
    """A run's containerID: simulated (no runtime made it), stable per pod, container and attempt."""
    return f"{RUNTIME}://{uuid.uuid5(uuid.NAMESPACE_OID, pod_uid + c.name + str(run.attempt)).hex}"


def log_run(pod: SimPod, c: Container, *, previous: bool) -> Instance:
    """The run whose log ``logs`` (or ``logs --previous``) reads. --previous reads the run the
    status shows as lastState (``Container.previous_run``), else the 400 of the kubelet's
    validateContainerLogStatus (pkg/kubelet/kubelet_pods.go)."""
    if previous:
        run = c.previous_run()
        if run is None:
            raise LogUnavailable(f'previous terminated container "{c.name}" in pod "{pod.name}" not found')
        return run
    if c.inst is None:
        raise LogUnavailable(f'container "{c.name}" in pod "{pod.name}" is waiting to start: {pod.waiting_reason_of(c)}')
    return c.inst


def removed_answer(pod_uid: str, c: Container, run: Instance) -> str | None:
    """What the kubelet answers instead of the log of ``run`` once it has deleted that container
    (``Container.previous_run_removed``: the run --previous names, after the next run died);
    None while the run can be read. The kubelet writes it into a stream it already answered 200."""
    if run is c.previous_run() and c.previous_run_removed():
        return f"unable to retrieve container logs for {container_id(pod_uid, c, run)}"
    return None


def log_lines(c: Container, run: Instance, now: float, start: float = 0.0) -> list[tuple[float, str]]:
    """The lines of ``run`` the process model can honestly produce, up to ``now`` (env time), each
    with its offset in seconds from the run's start."""
    return c.model.stdout_lines(start, (run.end if run.end is not None else now) - run.start)


__all__ = ["pod_json", "job_json", "replicasets_json", "deployment_json", "events_of", "scaling_events",
           "EventView", "LogUnavailable", "log_run", "log_lines", "removed_answer", "container_id",
           "kubelet_container_messages", "scaling_message", "RUNTIME", "NODE"]
