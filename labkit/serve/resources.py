"""The resources the served simulator offers, as discovery, OpenAPI and the router list them.

Events are stored once, as core/v1 Events, and served in ``events.k8s.io/v1`` too: the
conversion between the two lives here, beside the resource that says so (``store="events"``),
for every handler that reads or writes them (:mod:`.http`, :mod:`.watch`).
"""

from __future__ import annotations

from dataclasses import dataclass

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group_version: str
    name: str
    kind: str
    namespaced: bool
    short: tuple[str, ...] = ()
    singular: str = ""
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    store: str = ""         # the store's key (events.k8s.io events are the core ones, converted)
    verbs: tuple[str, ...] = tuple(VERBS)

    @property
    def group(self) -> str:
        return self.group_version.split("/")[0] if "/" in self.group_version else ""

    @property
    def key(self) -> str:
        return self.store or self.name

    @property
    def table_kind(self) -> str:
        """Whose printer columns a Table of this resource has (:mod:`.tables`): events.k8s.io's
        Events print their own, not core Events'."""
        return self.kind if self.group_version != "events.k8s.io/v1" else "events.k8s.io"


RESOURCES = [
    Resource("v1", "namespaces", "Namespace", False, ("ns",), "namespace", (), ("status",)),
    Resource("v1", "nodes", "Node", False, ("no",), "node", (), ("status",), verbs=("get", "list", "watch")),
    Resource("v1", "pods", "Pod", True, ("po",), "pod", ("all",), ("attach", "exec", "log", "portforward", "status")),
    Resource("v1", "serviceaccounts", "ServiceAccount", True, ("sa",), "serviceaccount"),
    # only default/kubernetes, the API server's own Service (nothing routes to anything here)
    Resource("v1", "services", "Service", True, ("svc",), "service", ("all",), verbs=("get", "list", "watch")),
    Resource("v1", "events", "Event", True, ("ev",), "event"),
    Resource("apps/v1", "deployments", "Deployment", True, ("deploy",), "deployment", ("all",), ("scale", "status")),
    Resource("apps/v1", "replicasets", "ReplicaSet", True, ("rs",), "replicaset", ("all",), ("status",)),
    Resource("batch/v1", "jobs", "Job", True, (), "job", ("all",), ("status",)),
    Resource("events.k8s.io/v1", "events", "Event", True, ("ev",), "event", (), (), "events"),
    # kubectl auth can-i: the one user (the kubeconfig's token) may do everything
    Resource("authorization.k8s.io/v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
             verbs=("create",)),
]
# pods/exec etc. (the core API's registry, pkg/registry/core/pod/rest): (verbs, response group, version, kind)
SUBRESOURCES = {
    "attach": (("create", "get"), "", "v1", "PodAttachOptions"),
    "exec": (("create", "get"), "", "v1", "PodExecOptions"),
    "log": (("get",), "", "v1", "Pod"),
    "portforward": (("create", "get"), "", "v1", "PodPortForwardOptions"),
    "scale": (("get", "patch", "update"), "autoscaling", "v1", "Scale"),
}
BY_PATH = {(r.group_version, r.name): r for r in RESOURCES}
GROUP_VERSIONS = ["v1", "apps/v1", "batch/v1", "events.k8s.io/v1", "authorization.k8s.io/v1"]


def convert(resource: Resource, obj: dict) -> dict:
    """A stored object as ``resource`` serves it."""
    if resource.group_version == "events.k8s.io/v1":
        return new_event(obj)
    return obj


def new_event(ev: dict) -> dict:
    """A core/v1 Event as ``events.k8s.io/v1`` writes it (``pkg/apis/events/v1/conversion.go``)."""
    meta = ev.get("metadata") or {}
    out = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta,
           "eventTime": ev.get("eventTime"), "reportingController": ev.get("reportingComponent") or
           (ev.get("source") or {}).get("component"), "reportingInstance": ev.get("reportingInstance"),
           "action": ev.get("action"), "reason": ev.get("reason"), "regarding": ev.get("involvedObject"),
           "note": ev.get("message"), "type": ev.get("type"),
           "deprecatedSource": ev.get("source"), "deprecatedFirstTimestamp": ev.get("firstTimestamp"),
           "deprecatedLastTimestamp": ev.get("lastTimestamp"), "deprecatedCount": ev.get("count")}
    return {k: v for k, v in out.items() if v is not None}


def old_event(ev: dict) -> dict:
    """An ``events.k8s.io/v1`` Event as the core/v1 one the store keeps; anything else as it is."""
    if ev.get("apiVersion") != "events.k8s.io/v1":
        return ev
    return {"apiVersion": "v1", "kind": "Event", "metadata": ev.get("metadata") or {},
            "involvedObject": ev.get("regarding") or {}, "reason": ev.get("reason"), "message": ev.get("note"),
            "type": ev.get("type"), "eventTime": ev.get("eventTime"), "reportingComponent": ev.get("reportingController"),
            "reportingInstance": ev.get("reportingInstance"), "source": ev.get("deprecatedSource") or {},
            "firstTimestamp": ev.get("deprecatedFirstTimestamp"), "lastTimestamp": ev.get("deprecatedLastTimestamp"),
            "count": ev.get("deprecatedCount")}
