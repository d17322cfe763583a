"""The simulator behind an API server: what the served simulator stores and how it changes.

One :class:`labkit.sim.cluster.Cluster` per namespace that has workloads: the simulator's
objects have names unique in one cluster, and namespaces share nothing the simulator models
(one node, no quotas), so a namespace is a cluster of its own, all advanced to the same
wall-clock time. ``World.advance`` runs every namespace up to now (times ``pace``) and writes
what changed into the :class:`~labkit.serve.store.Store`. How a pod, a Job, a Deployment, its
ReplicaSets and the Events look is ``labkit.sim.view``'s, the one view SimLab reads too; this
module adds what an API server adds: uids, generations, resourceVersions (through the store),
the admission plugins' defaults (the token volume, tolerations, priority), the pod IP, condition
transition times, Event names and counts, the node, and the requests that change objects.

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
from ..sim.api import admit
from ..sim.cluster import POD_UPDATE_FORBIDDEN, Cluster, Workload, gc_paused
from ..sim.pods import SimPod
from ..sim.view import NODE, RUNTIME
from ..versions import DEFAULT_K8S_VERSION
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
    """An error the API answers with a metav1.Status (see ``labkit.serve.http.status_body``)."""

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


class World:
    """Namespaces of simulated clusters kept in step with the wall clock, written into a store."""

    def __init__(self, store: Store, k8s_version: str = DEFAULT_K8S_VERSION, feature_gates: dict[str, bool] | None = None,
                 pace: float = 1.0, seed: int = 0, clock: Callable[[], float] = time.time,
                 names_seed: int | None = None):
        if not isinstance(pace, (int, float)) or pace <= 0:
            raise InvalidInput(f"pace must be a positive number of simulated seconds per second, got {pace!r}",
                               field="--pace")
        self.store = store
        self.k8s_version = k8s_version
        self.feature_gates = feature_gates
        self.pace = float(pace)
        self.seed = seed
        self.clock = clock
        self.namespaces: dict[str, Namespace] = {}
        self.retired: list[Namespace] = []       # clusters of deleted namespaces (their traces)
        probe = Cluster(k8s_version, feature_gates, seed)
        self.version = probe.version
        self.behaviour = probe.behaviour
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
            cluster = Cluster(self.k8s_version, self.feature_gates, self.seed)
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
        """The spec as admission left it: the scheduler's nodeName, the ServiceAccount plugin's token
        volume (plugin/pkg/admission/serviceaccount mountServiceAccountToken), DefaultTolerationSeconds'
        two tolerations and the Priority plugin's priority 0 (no PriorityClass exists)."""
        spec = {**pod.spec, "nodeName": NODE}
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        if spec.get("automountServiceAccountToken") is not False:
            volume = self._token_volumes.get(pod)
            if volume is None:
                volume = self._token_volumes[pod] = "kube-api-access-" + self.suffix()
            mount = {"name": volume, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
            needed = False
            for key in ("initContainers", "containers"):
                if spec.get(key):
                    containers = []
                    for c in spec[key]:
                        mounts = c.get("volumeMounts") or []
                        if not any(m.get("mountPath") == TOKEN_MOUNT_PATH for m in mounts):
                            c = {**c, "volumeMounts": [*mounts, mount]}
                            needed = True
                        containers.append(c)
                    spec[key] = containers
            if needed and not any(v.get("name", "").startswith("kube-api-access-") for v in spec.get("volumes") or []):
                spec["volumes"] = [*(spec.get("volumes") or []), {"name": volume, "projected": TOKEN_VOLUME}]
        tolerations = list(spec.get("tolerations") or [])
        for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
            if not any(t.get("key") == key and t.get("effect") in (None, "", "NoExecute") for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
        spec["tolerations"] = tolerations
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        return spec

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


# -- requests that change the simulated objects -----------------------------------------------
SIM_KINDS = {"pods": "Pod", "jobs": "Job", "deployments": "Deployment"}
_CAUSES = {"Required value": "FieldValueRequired", "Invalid value": "FieldValueInvalid",
           "Unsupported value": "FieldValueNotSupported", "Duplicate value": "FieldValueDuplicate",
           "Forbidden": "FieldValueForbidden", "Not found": "FieldValueNotFound", "Too many": "FieldValueTooMany"}
_GROUPS = {"Pod": "", "Job": "batch", "Deployment": "apps"}


def invalid(kind: str, name: str, exc: InvalidInput) -> ApiError:
    """The simulator's validation error as the API server's Status: 400 for a body that does not
    decode (``... cannot be handled as a Pod: strict decoding error``), else 422 Invalid with
    every field error as a cause, as ``apimachinery/pkg/api/errors.NewInvalid`` builds it: the
    message is ``<Kind>.<group> "<name>" is invalid: <aggregate>`` where the aggregate
    (``util/errors.aggregate.Error``) is the one error, or ``[a, b, ...]`` without duplicates;
    each cause is ``{reason: field.Error.Type, message: ErrorBody(), field}``."""
    message, field = exc.message, exc.field
    if "cannot be handled as a" in message:
        return ApiError(400, "BadRequest", message)
    if "(AlreadyExists)" in message:
        return ApiError(409, "AlreadyExists", message.split("): ", 1)[-1],
                        details={"name": name, "group": _GROUPS[kind], "kind": kind.lower() + "s"})
    errors = getattr(exc, "causes", None)
    if not errors:
        if " is invalid: " in message and field and f"{field}: " in message:
            message = message.split(f"{field}: ", 1)[1]
        errors = [(field or "", message)]
    return invalid_object(kind, _GROUPS[kind], name, errors)


def invalid_object(kind: str, group: str, name: str, errors: list[tuple[str, str]]) -> ApiError:
    """``errors.NewInvalid(GroupKind, name, field.ErrorList)``: 422 with one cause per error."""
    causes = [{"reason": next((r for prefix, r in _CAUSES.items() if body.startswith(prefix)), "FieldValueInvalid"),
               "message": body, "field": path} for path, body in errors]
    texts = list(dict.fromkeys(f"{path}: {body}" if path else body for path, body in errors))
    aggregate = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = {"name": name, "group": group, "kind": kind, "causes": causes}
    if not group:
        del details["group"]
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {aggregate}', details=details)


def _find(ns: Namespace, resource: str, name: str) -> Any:
    if resource == "pods":
        pod = ns.cluster.pods.get(name)
        return None if pod is None or pod.deleted else pod
    w = ns.cluster.workloads.get((SIM_KINDS[resource], name))
    return None if w is None or w.deleted else w


def create(world: World, resource: str, namespace: str, obj: dict) -> dict:
    """POST of a Pod, Job or Deployment: admitted by the simulator's API server, then simulated."""
    kind = SIM_KINDS[resource]
    ns = world.namespace(namespace)
    world.advance_ns(ns, world.clock())
    name = (obj.get("metadata") or {}).get("name") or ""
    if world.store.get(resource, namespace, name) is not None:
        raise ApiError(409, "AlreadyExists", f'{_plural(resource)} "{name}" already exists',
                       details={"name": name, "group": _GROUPS[kind], "kind": resource})
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {})["namespace"] = namespace
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation"):
        obj["metadata"].pop(key, None)
    obj.pop("status", None)
    try:
        warnings = _warnings_of(ns.cluster, lambda: ns.cluster.apply(obj, source=f"{resource}/{name}"))
    except InvalidInput as exc:
        raise invalid(kind, name, exc) from None
    created = _find(ns, resource, name)
    if created is not None and resource != "pods":
        # the simulator's admission names a uid after the object (uuid5, for reproducible traces);
        # an API server gives every object a new one (uuid4), so a re-created Job is another Job
        ns.uid(created, str(uuid.uuid4()))
    if created is not None and warnings:
        # what the simulator had to assume (a program it cannot read): said in the server's log
        # and as a Warning Event on the object and (for a Job or Deployment) on each of its pods
        ns.warnings[created] = warnings
        for text in warnings:
            log.warning("%s/%s: %s", namespace, name, text)
            if resource != "pods":
                ref = _ref(kind, obj.get("apiVersion") or "", namespace, name, ns.uid(created))
                world._event(ns, ns.cluster.env.now, ref, SIM_WARNING, text, SIM_COMPONENT, warning=True)
    world.sync(ns)
    return world.store.get(resource, namespace, name)


def _warnings_of(cluster: Cluster, apply: Callable[[], Any]) -> list[str]:
    """The simulator's warnings about one apply, each said once for it (``Cluster.warnings`` keeps
    a text only once per cluster, and a re-created pod deserves its warning again); the
    ``source: kind/name:`` prefix left out."""
    before, cluster.warnings[:] = list(cluster.warnings), []
    try:
        apply()
        return [text.split(": ", 2)[-1] for text in cluster.warnings]
    finally:
        cluster.warnings[:] = before + [w for w in cluster.warnings if w not in before]


def replace(world: World, resource: str, namespace: str, name: str, obj: dict) -> dict:
    """PUT (or the result of a PATCH): labels and annotations change in place; a new spec goes
    through the simulator (an image of a pod, a Deployment's template or replicas; a Job's
    template is immutable), as ``kubectl apply`` of a changed manifest does."""
    kind = SIM_KINDS[resource]
    ns = world.namespace(namespace)
    world.advance_ns(ns, world.clock())
    current = world.store.get(resource, namespace, name)
    target = _find(ns, resource, name)
    if current is None or target is None:
        raise not_found(resource, name, _GROUPS[kind])
    asked = (obj.get("metadata") or {}).get("resourceVersion")
    if asked and asked != current["metadata"]["resourceVersion"]:
        raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {_plural(resource)} "{name}": the object '
                       "has been modified; please apply your changes to the latest version and try again",
                       details={"name": name, "group": _GROUPS[kind], "kind": resource})
    meta = obj.get("metadata") or {}
    spec = copy.deepcopy(obj.get("spec") or {})
    if resource == "pods":
        spec = _pod_update(world, ns, target, spec)
    desired = {"apiVersion": current["apiVersion"], "kind": kind,
               "metadata": {"name": name, "namespace": namespace, "labels": meta.get("labels") or {},
                            "annotations": meta.get("annotations") or {}}, "spec": spec}
    if not desired["metadata"]["labels"]:
        del desired["metadata"]["labels"]
    if not desired["metadata"]["annotations"]:
        del desired["metadata"]["annotations"]
    old_spec = copy.deepcopy(target.spec)
    try:
        ns.cluster.apply(desired, source=f"{resource}/{name}")
    except InvalidInput as exc:
        raise invalid(kind, name, exc) from None
    if resource == "pods":
        target.labels.clear()
        target.labels.update(meta.get("labels") or {})
        target.obj.setdefault("metadata", {})["annotations"] = dict(meta.get("annotations") or {})
    else:
        target.obj["metadata"]["labels"] = dict(meta.get("labels") or {})
        target.obj["metadata"]["annotations"] = dict(meta.get("annotations") or {})
        for key in ("labels", "annotations"):
            if not target.obj["metadata"][key]:
                del target.obj["metadata"][key]
        if target.spec != old_spec:
            ns.generations[target] = ns.generations.get(target, 1) + 1
    world.sync(ns)
    return world.store.get(resource, namespace, name)


def _pod_update(world: World, ns: Namespace, pod: SimPod, spec: dict) -> dict:
    """The spec to give the simulator for a pod update: the served spec (with what admission and
    the scheduler added) may change only where ValidatePodUpdate allows, which the simulator
    models for images; those go onto the pod's own spec."""
    changed = Cluster._image_only_changes(world._pod_spec(ns, pod), spec)
    if changed is None:
        raise invalid("Pod", pod.name, InvalidInput(
            f'The Pod "{pod.name}" is invalid: spec: {POD_UPDATE_FORBIDDEN}', field="spec"))
    own = copy.deepcopy(pod.obj["spec"])
    images = dict(changed)
    for key in ("initContainers", "containers"):
        for c in own.get(key) or []:
            if c["name"] in images:
                c["image"] = images[c["name"]]
    return own


def dry_run(world: World, resource: str, namespace: str, obj: dict, current: dict | None = None) -> dict:
    """What a create (``current`` None) or an update would store, validated and defaulted as
    without dry-run, with nothing stored and nothing handed to the simulator: the apiserver's
    ``dryRun=All`` (``k8s.io/apiserver/pkg/registry/generic/registry`` Store.Create/Update skip
    only the storage write)."""
    kind = SIM_KINDS[resource]
    name = (obj.get("metadata") or {}).get("name") or ""
    ns = world.namespace(namespace)
    if current is None and world.store.get(resource, namespace, name) is not None:
        raise ApiError(409, "AlreadyExists", f'{_plural(resource)} "{name}" already exists',
                       details={"name": name, "group": _GROUPS[kind], "kind": resource})
    request = copy.deepcopy(obj)
    request.setdefault("metadata", {})["namespace"] = namespace
    for key in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp",
                "deletionGracePeriodSeconds", "ownerReferences", "finalizers"):
        request["metadata"].pop(key, None)
    request.pop("status", None)
    if current is not None and resource == "pods":
        target = _find(ns, resource, name)
        request["spec"] = _pod_update(world, ns, target, request.get("spec") or {})
    try:
        stored = admit(request, world.behaviour, source=f"{resource}/{name}").obj
    except InvalidInput as exc:
        raise invalid(kind, name, exc) from None
    if current is None:
        stored["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=rfc3339(world.clock()))
        if resource != "pods":
            stored["metadata"]["generation"] = 1
            stored["status"] = {}
        else:
            stored["status"] = {"phase": "Pending", "qosClass": _qos(stored["spec"])}
        return stored
    if resource == "jobs" and stored["spec"].get("template") != current["spec"].get("template"):
        raise invalid(kind, name, InvalidInput(f'The Job "{name}" is invalid: spec.template: Invalid value: ...: '
                                               "field is immutable", field="spec.template"))
    result = copy.deepcopy(current)
    for key in ("labels", "annotations"):
        result["metadata"].pop(key, None)
        if stored["metadata"].get(key):
            result["metadata"][key] = stored["metadata"][key]
    if resource == "pods":
        images = {c["name"]: c["image"] for key in ("initContainers", "containers")
                  for c in stored["spec"].get(key) or []}
        for key in ("initContainers", "containers"):
            for c in result["spec"].get(key) or []:
                c["image"] = images.get(c["name"], c["image"])
    else:
        if stored["spec"] != current["spec"]:
            result["metadata"]["generation"] = int(current["metadata"].get("generation") or 1) + 1
        result["spec"] = stored["spec"]
    return result


def delete(world: World, resource: str, namespace: str, name: str, *, grace: int | None,
           propagation: str | None) -> tuple[dict, bool]:
    """DELETE: (the object, whether it is still there while it terminates)."""
    kind = SIM_KINDS[resource]
    ns = world.namespace(namespace) if namespace in world.namespaces else None
    current = world.store.get(resource, namespace, name)
    if ns is None or current is None:
        raise not_found(resource, name, _GROUPS[kind])
    world.advance_ns(ns, world.clock())
    target = _find(ns, resource, name)
    if target is None:
        raise not_found(resource, name, _GROUPS[kind])
    if resource == "pods":
        ns.cluster.delete_pod(target, grace, force=grace == 0)
    else:
        ns.cluster.delete_workload(target, grace)
        if propagation == "Foreground":
            ns.foreground.add(target)
            ns.deleting_at[target] = ns.cluster.env.now
    world.sync(ns)
    after = world.store.get(resource, namespace, name)
    return (after, True) if after is not None else (current, False)


def _plural(resource: str) -> str:
    return {"jobs": "jobs.batch", "deployments": "deployments.apps", "replicasets": "replicasets.apps"}.get(resource,
                                                                                                          resource)
