"""The simulator behind an API server: what the served simulator stores and how it changes.

One :class:`labkit.sim.cluster.Cluster` per namespace that has workloads: the simulator's
objects have names unique in one cluster, and namespaces share nothing the simulator models
(one node, no quotas), so a namespace is a cluster of its own, all advanced to the same
wall-clock time. ``World.advance`` runs every namespace up to now (times ``pace``) and writes
what changed into the :class:`~labkit.serve.store.Store`. How a pod, a Job, a Deployment, its
ReplicaSets and the Events look is ``labkit.sim.view``'s, the one view SimLab reads too; this
module adds what an API server adds: uids, generations, resourceVersions (through the store),
the admission plugins' defaults (the token volume, tolerations, priority), the pod IP, condition
transition times, Event names and counts, the node. Requests that change objects are
``labkit.serve.writes``'s.

Times are wall-clock dates at whole seconds, as the API server serialises ``metav1.Time``
(RFC 3339, ``time.RFC3339`` in ``apimachinery/pkg/apis/meta/v1/time.go``).
"""

from __future__ import annotations

import copy
import functools
import logging
import random
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidInput
from ..served import PACE_ANNOTATION, SIMULATED_ANNOTATION
from ..sim import view
from ..sim.cluster import Cluster, gc_paused
from ..sim.pods import SimPod, Workload
from ..sim.view import NODE, RUNTIME
from ..versions import KubeVersion, behaviour
from .store import Store

log = logging.getLogger("labkit.serve")

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"   # apimachinery/pkg/util/rand alphanums
SIM_WARNING, SIM_COMPONENT = "SimulatorAssumption", "labkit-simulator"   # the simulator's own Warning Events
TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
# plugin/pkg/admission/serviceaccount TokenVolumeSource (expirationSeconds: WarnOnlyBoundTokenExpirationSeconds)
TOKEN_VOLUME = {"defaultMode": 420, "sources": [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}


def rfc3339(epoch: float) -> str:
    """``metav1.Time``: UTC, whole seconds (truncated, as Go's time.Format does)."""
    return _rfc3339_second(int(epoch // 1))


@functools.lru_cache(maxsize=4096)
def _rfc3339_second(second: int) -> str:
    # every pod's status names a few of the same seconds: format each once (benchmarks/serve.py)
    return datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(epoch: float) -> str:
    """``metav1.MicroTime``: RFC 3339 with microseconds."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    """An error the API answers with a metav1.Status (see ``labkit.serve.responses.status_body``)."""

    def __init__(self, code: int, reason: str, message: str, *, details: dict | None = None):
        if details is not None and details.get("group") == "":
            details = {k: v for k, v in details.items() if k != "group"}   # StatusDetails: group,omitempty
        self.code, self.reason, self.message, self.details = code, reason, message, details
        super().__init__(message)


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    plural = f"{resource}.{group}" if group else resource
    return ApiError(404, "NotFound", f'{plural} "{name}" not found',
                    details={"name": name, "group": group, "kind": resource} if group else
                    {"name": name, "kind": resource})


class Namespace:
    """One namespace's simulated cluster and what the world remembers about its objects."""

    def __init__(self, name: str, cluster: Cluster, wall0: float, pace: float):
        self.name = name
        self.cluster = cluster
        self.wall0 = wall0
        self.pace = pace
        self.seen = 0                     # records already turned into objects and Events
        # SimPod or Workload -> uid, keyed by the object itself: an id() is reused once its
        # object is gone, and a re-created Job must not inherit the deleted one's uid (and Events)
        self.uids: dict[Any, str] = {}
        self.generations: dict[Any, int] = {}
        self.foreground: set[Any] = set()  # workloads deleted with propagationPolicy=Foreground
        self.deleting_at: dict[Any, float] = {}
        self.scalings_seen: dict[Any, int] = {}   # Deployment -> how many of its scalings became Events
        self.warnings: dict[Any, list[str]] = {}   # SimPod or Workload -> what the simulator had to assume
        self.stopping: set = set()        # (pod, container) whose preStop hook gave its Killing Event
        self.terminating = False

    def wall(self, t: float) -> float:
        return self.wall0 + t / self.pace

    def ts(self, t: float) -> str:
        return rfc3339(self.wall(t))

    def now(self, clock: float) -> float:
        return max(0.0, (clock - self.wall0) * self.pace)

    def uid(self, thing: Any, given: str | None = None) -> str:
        """The uid of a SimPod, a Workload (its own, if the simulator's admission named one) or a
        ReplicaSet (``(deployment, name)``)."""
        uid = self.uids.get(thing)
        if uid is None:
            if given is None and isinstance(thing, Workload):
                given = thing.obj["metadata"].get("uid")
            uid = self.uids[thing] = given or str(uuid.uuid4())
        return uid


def admitted_spec(spec: dict, token_volume: Callable[[], str]) -> dict:
    """A pod spec as the admission plugins leave it, on a create and on its dry-run alike: the
    ServiceAccount plugin's ``default`` account and token volume (plugin/pkg/admission/serviceaccount
    mountServiceAccountToken; ``token_volume()`` names it), DefaultTolerationSeconds' two
    tolerations and the Priority plugin's priority 0 (no PriorityClass exists)."""
    spec = dict(spec)
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    if spec.get("automountServiceAccountToken") is not False:
        mount: dict | None = None
        for key in ("initContainers", "containers"):
            if spec.get(key):
                containers = []
                for c in spec[key]:
                    mounts = c.get("volumeMounts") or []
                    if not any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                        mount = mount or {"name": token_volume(), "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
                        c = {**c, "volumeMounts": [*mounts, mount]}
                    containers.append(c)
                spec[key] = containers
        if mount and not any(v.get("name", "").startswith("kube-api-access-") for v in spec.get("volumes") or []):
            spec["volumes"] = [*(spec.get("volumes") or []), {"name": mount["name"], "projected": TOKEN_VOLUME}]
    tolerations = list(spec.get("tolerations") or [])
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not any(t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    spec["tolerations"] = tolerations
    spec.setdefault("priority", 0)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    return spec


class World:
    """Namespaces of simulated clusters kept in step with the wall clock, written into a store."""

    def __init__(self, store: Store, version: KubeVersion, feature_gates: dict[str, bool] | None = None,
                 pace: float = 1.0, seed: int = 0, clock: Callable[[], float] = time.time,
                 names_seed: int | None = None):
        if not isinstance(pace, (int, float)) or pace <= 0:
            raise InvalidInput(f"pace must be a positive number of simulated seconds per second, got {pace!r}",
                               field="--pace")
        self.store = store
        self.version = version
        self.feature_gates = feature_gates
        self.pace = float(pace)
        self.seed = seed
        self.clock = clock
        self.namespaces: dict[str, Namespace] = {}
        self.retired: list[Namespace] = []       # clusters of deleted namespaces (their traces)
        self.behaviour = behaviour(version, feature_gates)
        self.started = clock()
        # generated names (pods of Jobs and ReplicaSets, generateName, token volumes): random per
        # server and per namespace, as the API server's (apiserver storage/names, 5 characters of
        # apimachinery util/rand's alphabet); reproducible only when a seed is given
        self.names_seed = names_seed
        self._names = random.Random(f"labkit-serve/{names_seed}") if names_seed is not None else random.SystemRandom()
        self._pod_ips: dict[SimPod, str] = {}
        self._next_ip = 0
        self._token_volumes: dict[SimPod, str] = {}
        self._event_keys: dict[tuple, str] = {}
        self._event_nanos = 0
        for name in SYSTEM_NAMESPACES:
            self.create_namespace({"metadata": {"name": name}})
        self.store.put("nodes", self._node())

    def suffix(self) -> str:
        """Five random characters, as ``names.SimpleNameGenerator`` appends to a generateName."""
        return "".join(self._names.choice(NAME_ALPHABET) for _ in range(5))

    def put_kubernetes_service(self, port: int) -> None:
        """default/kubernetes, as the API server's controller writes it
        (pkg/controlplane/controller/kubernetesservice; 10.96.0.1 is the first address of kind's
        and kubeadm's service CIDR, 10.96.0.0/12); its target is the port this server listens on."""
        now = rfc3339(self.clock())
        self.store.put("services", {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "uid": str(uuid.uuid4()), "creationTimestamp": now,
                         "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": port}],
                     "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "type": "ClusterIP",
                     "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                     "internalTrafficPolicy": "Cluster"},
            "status": {"loadBalancer": {}}})

    # -- namespaces ----------------------------------------------------------------------------
    def create_namespace(self, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        now = self.clock()
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=rfc3339(now))
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.update(apiVersion="v1", kind="Namespace", spec={"finalizers": ["kubernetes"]}, status={"phase": "Active"})
        stored = self.store.put("namespaces", obj)
        # The ServiceAccount controller makes "default" in every namespace.
        self.store.put("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {
            "name": "default", "namespace": name, "uid": str(uuid.uuid4()), "creationTimestamp": rfc3339(now)}})
        return stored

    def delete_namespace(self, name: str) -> dict:
        obj = copy.deepcopy(self.store.get("namespaces", "", name))
        obj["metadata"]["deletionTimestamp"] = rfc3339(self.clock())
        obj["status"] = {"phase": "Terminating"}
        stored = self.store.put("namespaces", obj)
        ns = self.namespaces.get(name)
        if ns is not None:
            ns.terminating = True
            self.advance_ns(ns, self.clock())
            for workload in list(ns.cluster.workloads.values()):
                ns.cluster.delete_workload(workload)
            for pod in list(ns.cluster.pods.values()):
                if not pod.deleted and pod.owner is None:
                    ns.cluster.delete_pod(pod)
            self.sync(ns)
        else:
            self._finish_namespace(name)
        return stored

    def _finish_namespace(self, name: str) -> None:
        for resource in ("serviceaccounts", "services", "events", "pods", "jobs", "deployments", "replicasets"):
            for obj in self.store.list(resource, name):
                self.store.remove(resource, name, obj["metadata"]["name"])
        self.store.remove("namespaces", "", name)
        ns = self.namespaces.pop(name, None)
        if ns is not None:
            self.retired.append(ns)

    def namespace(self, name: str) -> Namespace:
        """The simulated cluster of namespace ``name`` (made when it is first needed)."""
        nsobj = self.store.get("namespaces", "", name)
        if nsobj is None:
            raise ApiError(404, "NotFound", f'namespaces "{name}" not found', details={"name": name, "kind": "namespaces"})
        if nsobj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"unable to create new content in namespace {name} because it is "
                           "being terminated", details={"name": name, "kind": "namespaces"})
        ns = self.namespaces.get(name)
        if ns is None:
            cluster = Cluster(self.version, self.feature_gates, self.seed)
            cluster.name_rng = (random.Random(f"labkit-serve/{self.names_seed}/{name}") if self.names_seed is not None
                                else random.Random(secrets.randbits(64)))
            ns = Namespace(name, cluster, self.clock(), self.pace)
            self.namespaces[name] = ns
        return ns

    def trace(self, namespace: str):
        """The simulator's own trace of one namespace (also after the namespace was deleted), placed
        on the wall clock: ``origin`` is the wall time of its t = 0 and ``t`` counts simulated
        seconds (wall = origin + t / pace), as a trace recorded from this server does."""
        from ..printers import format_time

        for ns in [self.namespaces.get(namespace), *reversed(self.retired)]:
            if ns is not None and ns.name == namespace:
                trace = ns.cluster.trace()
                trace.origin = format_time(ns.wall(ns.cluster.trace_origin))
                trace.extra["served_simulator"] = {"server_version": f"v{self.version}-labkit-sim", "pace": self.pace}
                return trace
        raise KeyError(namespace)

    # -- time ----------------------------------------------------------------------------------
    def advance(self) -> float | None:
        """Run every namespace up to now; returns the wall time of the next thing to happen (None:
        nothing is on any calendar, only a request can change anything)."""
        now = self.clock()
        nxt = None
        with gc_paused():   # as the simulator runs (labkit/sim/cluster.py): no full passes mid-burst
            for ns in list(self.namespaces.values()):
                self.advance_ns(ns, now)
                peek = ns.cluster.env.peek()
                if peek != float("inf"):
                    wall = ns.wall(peek)
                    nxt = wall if nxt is None else min(nxt, wall)
        return nxt

    def advance_ns(self, ns: Namespace, clock: float) -> None:
        env = ns.cluster.env
        target = ns.now(clock)
        while env.peek() <= target:
            at = env.peek()
            while env.peek() == at:
                env.step()
            self.sync(ns)
        if target > env.now:
            env.run(until=target)
            # simpy puts the event that stopped run() back on the calendar at `now` (Environment.step,
            # on StopSimulation): take it off, or the next thing due would always be "now" and the
            # ticker would never sleep (anything else due now is processed with it)
            while env.peek() <= env.now:
                env.step()
        self.sync(ns)

    # -- writing the simulator's state into the store -----------------------------------------
    def sync(self, ns: Namespace) -> None:
        """Write what changed in ``ns`` since the last sync: the pods the records name or whose
        status snapshot changed (``Cluster.status_changed``), every workload, the new Events.
        Nothing is re-read on a timer: a pod at rest costs nothing (benchmarks/serve_idle.py)."""
        cluster = ns.cluster
        records = cluster.records[ns.seen:]
        ns.seen = len(cluster.records)
        dirty: dict[str, None] = dict(cluster.status_changed)
        cluster.status_changed.clear()
        for _, _, pod, _, _ in records:
            if pod is not None:
                dirty[pod] = None
        for name in dirty:
            pod = cluster.pods.get(name)
            if pod is not None:
                self._put_pod(ns, pod)
        for workload in list(cluster.workloads.values()):
            self._put_workload(ns, workload)
        for record in records:
            self._events_of(ns, record)
        if ns.terminating and cluster.done() and all(p.deleted for p in cluster.pods.values()) \
                and all(w.deleted for w in cluster.workloads.values()):
            self._finish_namespace(ns.name)

    def _changed(self, resource: str, obj: dict) -> bool:
        old = self.store.get(resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if old is None:
            return True
        obj["metadata"]["resourceVersion"] = old["metadata"].get("resourceVersion")
        return obj != old

    def pod_object(self, ns: Namespace, pod: SimPod) -> dict:
        obj = view.pod_json(pod, ns.ts)
        given = pod.obj.get("metadata") or {}
        meta = obj["metadata"]
        meta["uid"] = ns.uid(pod)
        if not meta.get("labels"):
            meta.pop("labels", None)      # ObjectMeta: labels,omitempty
        for key in ("annotations", "generateName"):
            if given.get(key):
                meta[key] = copy.deepcopy(given[key])
        if pod.finalizers:
            meta["finalizers"] = list(pod.finalizers)
        owner = self._pod_owner(ns, pod)
        if owner is not None:
            meta["generateName"] = pod.name[:-5]
            meta["ownerReferences"] = [owner]
        obj["spec"] = self._pod_spec(ns, pod)
        status = obj["status"]
        status.update(hostIP="127.0.0.1", hostIPs=[{"ip": "127.0.0.1"}], startTime=ns.ts(pod.created_at),
                      qosClass=_qos(pod.spec))
        if pod.sandbox or pod in self._pod_ips:   # the sandbox's network is set up: the pod has its IP
            ip = self._pod_ip(pod)
            status.update(podIP=ip, podIPs=[{"ip": ip}])
        if pod.reported and self.behaviour.pod_ready_to_start_condition:
            # generateAPIPodStatus puts it first (status/generate.go GeneratePodReadyToStartContainersCondition)
            cond = {"type": "PodReadyToStartContainers", "status": "True" if pod.sandbox else "False"}
            status["conditions"].insert(0, cond)
        for key in ("initContainerStatuses", "containerStatuses"):
            for cs in status[key]:
                inst = pod.by_name[cs["name"]].st_inst
                if inst is not None:   # simulated ids: no runtime made them, and the image was not pulled
                    cs["containerID"] = self.container_id(ns, pod, pod.by_name[cs["name"]], inst)
                    cs["imageID"] = cs["image"]
            if not status[key]:
                del status[key]
        self._condition_times(ns, pod, obj)
        return obj

    @staticmethod
    def container_id(ns: Namespace, pod: SimPod, c, inst) -> str:
        return view.container_id(ns.uid(pod), c, inst)

    def _pod_ip(self, pod: SimPod) -> str:
        """The pod's IP, one per pod from the node's pod CIDR (10.244.0.0/16, as kind's), .1 being the gateway."""
        ip = self._pod_ips.get(pod)
        if ip is None:
            self._next_ip += 1
            n = 1 + self._next_ip % 65533
            ip = self._pod_ips[pod] = f"10.244.{n // 256}.{n % 256}"
        return ip

    def _pod_spec(self, ns: Namespace, pod: SimPod) -> dict:
        """The spec as admission left it (:func:`admitted_spec`, the token volume named once per pod)
        and the scheduler bound it (``nodeName``)."""
        def token_volume() -> str:
            if pod not in self._token_volumes:
                self._token_volumes[pod] = "kube-api-access-" + self.suffix()
            return self._token_volumes[pod]

        return {**admitted_spec(pod.spec, token_volume), "nodeName": NODE}

    def _condition_times(self, ns: Namespace, pod: SimPod, obj: dict) -> None:
        """lastTransitionTime of each pod condition: when its status last changed."""
        old = self.store.get("pods", ns.name, pod.name)
        before = {c["type"]: c for c in ((old or {}).get("status") or {}).get("conditions") or []}
        now = ns.ts(ns.cluster.env.now)
        for cond in obj["status"]["conditions"]:
            prev = before.get(cond["type"])
            cond["lastProbeTime"] = None
            cond["lastTransitionTime"] = prev["lastTransitionTime"] if prev and prev["status"] == cond["status"] else now

    def _pod_owner(self, ns: Namespace, pod: SimPod) -> dict | None:
        if pod.owner is None:
            return None
        workload = ns.cluster._owner_workload(pod)
        if pod.owner["kind"] == "Job":
            return {"apiVersion": "batch/v1", "kind": "Job", "name": pod.owner["name"],
                    "uid": ns.uid(workload) if workload else "", "controller": True, "blockOwnerDeletion": True}
        return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": pod.owner["name"],
                "uid": ns.uid((workload, pod.owner["name"])) if workload else "", "controller": True,
                "blockOwnerDeletion": True}

    def _put_pod(self, ns: Namespace, pod: SimPod) -> None:
        if pod.deleted:
            self.store.remove("pods", ns.name, pod.name)
            return
        obj = self.pod_object(ns, pod)
        if self._changed("pods", obj):
            self.store.put("pods", obj)

    def _workload_meta(self, ns: Namespace, w: Workload) -> dict:
        meta = copy.deepcopy(w.obj["metadata"])
        meta["uid"] = ns.uid(w)
        meta["creationTimestamp"] = ns.ts(w.created_at)
        meta["generation"] = ns.generations.setdefault(w, 1)
        if w.deleting and w in ns.foreground:
            meta["deletionTimestamp"] = ns.ts(ns.deleting_at.get(w, ns.cluster.env.now))
            meta["deletionGracePeriodSeconds"] = 0
            meta["finalizers"] = ["foregroundDeletion"]
        return meta

    def _put_workload(self, ns: Namespace, w: Workload) -> None:
        resource = "jobs" if w.kind == "Job" else "deployments"
        if w.deleted and not (w in ns.foreground and any(not p.deleted for p in w.pods)):
            if self.store.get(resource, ns.name, w.name) is not None and \
                    self.store.get(resource, ns.name, w.name)["metadata"]["uid"] == ns.uid(w):
                self.store.remove(resource, ns.name, w.name)
                for rs_name in w.replicasets:
                    self.store.remove("replicasets", ns.name, rs_name)
            return
        if w.kind == "Job":
            obj = view.job_json(w, ns.ts, self.behaviour, self._workload_meta(ns, w))
        else:
            for event in view.scaling_events(w, self.behaviour, ns.scalings_seen.get(w, 0), ns.uid(w)):
                self._put_event(ns, event)
            ns.scalings_seen[w] = len(w.scalings)
            owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name, "uid": ns.uid(w),
                     "controller": True, "blockOwnerDeletion": True}
            for rs in view.replicasets_json(w, ns.ts, ns.name, owner, lambda name: ns.uid((w, name))):
                if self._changed("replicasets", rs):
                    self.store.put("replicasets", rs)
            obj = view.deployment_json(w, ns.ts, self._workload_meta(ns, w))
        if self._changed(resource, obj):
            self.store.put(resource, obj)

    # -- Events -----------------------------------------------------------------------------------
    def _events_of(self, ns: Namespace, record: tuple) -> None:
        """The Kubernetes Events of one simulator record (``labkit.sim.view``), and the simulator's
        own Warning Events on a new pod (what it had to assume about its program)."""
        t, etype, pod_name, _, fields = record
        pod = ns.cluster.pods.get(pod_name) if pod_name else None
        if pod is not None and etype == "PodPhase" and fields.get("phase") == "Pending" and t == pod.created_at:
            workload = ns.cluster._owner_workload(pod)
            for text in ns.warnings.get(pod, []) + ns.warnings.get(workload, []):
                self._event(ns, t, _ref("Pod", "v1", ns.name, pod.name, ns.uid(pod)), SIM_WARNING, text,
                            SIM_COMPONENT, warning=True)
        for event in view.events_of(ns.cluster, record, self.behaviour, NODE, ns.stopping, ns.uid):
            self._put_event(ns, event)

    def _put_event(self, ns: Namespace, event: view.EventView) -> None:
        involved = _ref(event.kind, event.api_version, ns.name, event.name, event.uid)
        if event.field_path:
            involved["fieldPath"] = event.field_path
        self._event(ns, event.t, involved, event.reason, event.message, event.component, warning=event.warning)

    def _event(self, ns: Namespace, t: float, involved: dict, reason: str, message: str, component: str,
               *, warning: bool = False) -> None:
        """One core/v1 Event; a repeat (same object, reason and message) raises its count, as the
        event recorder's aggregation does (``client-go/tools/record/events_cache.go``)."""
        key = (ns.name, involved.get("uid"), involved.get("fieldPath"), reason, message)
        stamp = ns.ts(t)
        name = self._event_keys.get(key)
        if name is not None:
            old = self.store.get("events", ns.name, name)
            if old is not None:
                obj = copy.deepcopy(old)
                obj["count"] = int(obj.get("count") or 1) + 1
                obj["lastTimestamp"] = stamp
                self.store.put("events", obj)
                return
        # the event recorder's name, "<object>.<UnixNano in hex>" (client-go tools/record/event.go
        # makeEvent), so that a list (sorted by name) reads in time order per object
        nanos = max(int(ns.wall(t) * 1e9), self._event_nanos + 1)
        self._event_nanos = nanos
        name = f"{involved['name']}.{nanos:x}"
        self._event_keys[key] = name
        source = {"component": component}
        if component == "kubelet":
            source["host"] = NODE
        self.store.put("events", {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns.name, "uid": str(uuid.uuid4()), "creationTimestamp": stamp},
            "involvedObject": involved, "reason": reason, "message": message, "source": source,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "type": "Warning" if warning else "Normal", "eventTime": None,
            "reportingComponent": component, "reportingInstance": NODE if component == "kubelet" else ""})

    # -- the node ---------------------------------------------------------------------------------
    def _node(self) -> dict:
        now = rfc3339(self.started)
        version = f"v{self.version}-labkit-sim"
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": NODE, "uid": str(uuid.uuid4()), "creationTimestamp": now,
                             "labels": {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                                        "node-role.kubernetes.io/control-plane": ""},
                             "annotations": {SIMULATED_ANNOTATION: "labkit's model of the kubelet, not a real node",
                                             # simulated seconds per wall-clock second: a recorder
                                             # turns wall-clock times into the simulation's
                                             PACE_ANNOTATION: f"{self.pace:g}"}},
                "spec": {},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "labkit simulator: a model of the kubelet",
                                           "lastHeartbeatTime": now, "lastTransitionTime": now}],
                           "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                         {"type": "Hostname", "address": NODE}],
                           "nodeInfo": {"kubeletVersion": version, "kubeProxyVersion": version,
                                        # simulated, and named so: no runtime, OS or kernel runs the pods
                                        "containerRuntimeVersion": f"{RUNTIME}://{_labkit_version()}",
                                        "operatingSystem": "linux", "architecture": "amd64",
                                        "osImage": "labkit simulator (no OS)", "kernelVersion": "none (simulated)",
                                        "machineID": "", "systemUUID": "", "bootID": ""}}}


def _labkit_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sidecar-lab")
    except PackageNotFoundError:
        return "0"


def _ref(kind: str, api_version: str, namespace: str, name: str, uid: str) -> dict:
    return {"kind": kind, "namespace": namespace, "name": name, "uid": uid, "apiVersion": api_version}


def _qos(spec: dict) -> str:
    """The pod's QoS class (``pkg/apis/core/helper/qos``), enough for the blog's pods."""
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
    requests = [(c.get("resources") or {}).get("requests") or {} for c in containers]
    limits = [(c.get("resources") or {}).get("limits") or {} for c in containers]
    if not any(requests) and not any(limits):
        return "BestEffort"
    if all(lim.get("cpu") and lim.get("memory") and (req == lim or not req) for req, lim in zip(requests, limits)):
        return "Guaranteed"
    return "Burstable"
