"""Requests that change the served simulator's objects: POST, PUT (and PATCH's result), DELETE
and server-side dry-run of Pods, Jobs and Deployments, handed to the simulator (``World``), and
its validation errors as the API server's Status (422 with field causes, 400, 409).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from typing import Any

from ..errors import InvalidInput
from ..sim.api import admit
from ..sim.cluster import POD_UPDATE_FORBIDDEN, Cluster
from ..sim.pods import SimPod
from .world import (SIM_COMPONENT, SIM_WARNING, ApiError, Namespace, World, _qos, _ref, admitted_spec, log, not_found,
                    rfc3339)

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
        else:   # mutating admission runs on a dry-run too; only the scheduler's binding is missing
            stored["spec"] = admitted_spec(stored["spec"], lambda: "kube-api-access-" + world.suffix())
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
