"""Table responses (``meta.k8s.io/v1`` Table): the columns and cells of kubectl's printers
(``pkg/printers/internalversion/printers.go``), so ``kubectl get`` prints what it prints
against a cluster. A pod's row is :func:`labkit.printers.pod_row`, the one home of kubectl's
pod STATUS rules."""

from __future__ import annotations

import json
import time
from typing import Any

from ..printers import human_duration, parse_time, pod_moments


def _col(name: str, kind: str = "string", priority: int = 0, fmt: str = "", description: str = "") -> dict:
    return {"name": name, "type": kind, "format": fmt, "description": description, "priority": priority}


NAME = _col("Name", fmt="name", description="Name must be unique within a namespace.")
AGE = _col("Age", description="CreationTimestamp is a timestamp representing the server time when this object was "
           "created.")
COLUMNS = {
    "Pod": [NAME, _col("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
            _col("Status", description="The aggregate status of the containers in this pod."),
            _col("Restarts", description="The number of times the containers in this pod have been restarted and "
                 "when the last container in this pod has restarted."), AGE,
            _col("IP", priority=1), _col("Node", priority=1), _col("Nominated Node", priority=1),
            _col("Readiness Gates", priority=1)],
    "Job": [NAME, _col("Status"), _col("Completions"), _col("Duration"), AGE, _col("Containers", priority=1),
            _col("Images", priority=1), _col("Selector", priority=1)],
    "Deployment": [NAME, _col("Ready"), _col("Up-to-date", "string"), _col("Available", "string"), AGE,
                   _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)],
    "ReplicaSet": [NAME, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"), AGE,
                   _col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)],
    "Namespace": [NAME, _col("Status"), AGE],
    "Node": [NAME, _col("Status"), _col("Roles"), AGE, _col("Version"), _col("Internal-IP", priority=1),
             _col("External-IP", priority=1), _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
             _col("Container-Runtime", priority=1)],
    "ServiceAccount": [NAME, AGE],
    "Service": [NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE,
                _col("Selector", priority=1)],
    "Event": [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Subobject", priority=1),
              _col("Source", priority=1), _col("Message"), _col("First Seen", priority=1),
              _col("Count", "integer", priority=1), _col("Name", priority=1)],
    "events.k8s.io": [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
}


def _age(stamp: str | None, now: float) -> str:
    when = parse_time(stamp)
    return "<unknown>" if when is None else human_duration(now - when)


def _selector_text(selector: dict | None) -> str:
    labels = (selector or {}).get("matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _template_cells(spec: dict) -> list[str]:
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return [",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers),
            _selector_text(spec.get("selector"))]


def _pod_wide(pod: dict) -> list[str]:
    """The pod's wide columns (IP, NODE, NOMINATED NODE, READINESS GATES)."""
    return [(pod.get("status") or {}).get("podIP") or "<none>", (pod.get("spec") or {}).get("nodeName") or "<none>",
            "<none>", "<none>"]


def _pod_cells(moments, wide: list[str], now: float) -> list[Any]:
    return moments.row(now).cells() + wide


def cells(kind: str, obj: dict, now: float) -> list[Any]:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    age = _age(meta.get("creationTimestamp"), now)
    if kind == "Pod":
        return _pod_cells(pod_moments(obj), _pod_wide(obj), now)
    if kind == "Job":
        types = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
        state = ("Complete" if "Complete" in types else "Failed" if "Failed" in types else
                 "Terminating" if meta.get("deletionTimestamp") else "FailureTarget" if "FailureTarget" in types else
                 "Suspended" if "Suspended" in types else "SuccessCriteriaMet" if "SuccessCriteriaMet" in types else
                 "Running")
        completions = spec.get("completions")
        done = f"{status.get('succeeded', 0)}/{completions}" if completions is not None else \
            f"{status.get('succeeded', 0)}/1 of {spec.get('parallelism', 1)}"
        start, end = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
        duration = "" if start is None else human_duration((end if end is not None else now) - start)
        return [meta.get("name"), state, done, duration, age, *_template_cells(spec)]
    if kind == "Deployment":
        return [meta.get("name"), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
                status.get("updatedReplicas", 0), status.get("availableReplicas", 0), age, *_template_cells(spec)]
    if kind == "ReplicaSet":
        return [meta.get("name"), spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0),
                age, *_template_cells(spec)]
    if kind == "Namespace":
        return [meta.get("name"), status.get("phase", ""), age]
    if kind == "Service":   # printService, for a ClusterIP Service
        ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
        selector = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
        return [meta.get("name"), spec.get("type"), spec.get("clusterIP"), "<none>", ports or "<none>", age, selector]
    if kind == "Node":
        # printNode, its wide columns included (the server's tables are generated wide)
        info = status.get("nodeInfo") or {}
        addresses = {a.get("type"): a.get("address") for a in reversed(status.get("addresses") or [])}
        kernel = info.get("kernelVersion") or "<unknown>"
        if info.get("architecture"):
            kernel += f" ({info['architecture']})"
        return [meta.get("name"), "Ready", "control-plane", age, info.get("kubeletVersion"),
                addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"),
                info.get("osImage") or "<unknown>", kernel, info.get("containerRuntimeVersion") or "<unknown>"]
    if kind in ("Event", "events.k8s.io"):
        regarding = obj.get("involvedObject") or obj.get("regarding") or {}
        last = obj.get("lastTimestamp") or obj.get("deprecatedLastTimestamp") or obj.get("eventTime")
        first = obj.get("firstTimestamp") or obj.get("deprecatedFirstTimestamp") or obj.get("eventTime")
        target = f"{str(regarding.get('kind', '')).lower()}/{regarding.get('name', '')}"
        message = obj.get("message") or obj.get("note") or ""
        if kind == "events.k8s.io":
            return [_age(last, now), obj.get("type"), obj.get("reason"), target, message]
        source = obj.get("source") or {}
        return [_age(last, now), obj.get("type"), obj.get("reason"), target, regarding.get("fieldPath", ""),
                ", ".join(v for v in (source.get("component"), source.get("host")) if v), message,
                _age(first, now), int(obj.get("count") or 1), meta.get("name")]
    return [meta.get("name"), age]


def _row_object(obj: dict, include: str) -> dict | None:
    if include == "Object":
        return obj
    if include != "None":
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}
    return None


def table(kind: str, objs: list[dict], rv: Any, *, include: str = "Metadata", headers: bool = True) -> dict:
    """A Table of ``objs``; ``include`` is the request's includeObject (None, Metadata, Object)."""
    now = time.time()
    rows = []
    for obj in objs:
        row: dict[str, Any] = {"cells": cells(kind, obj, now)}
        shown = _row_object(obj, include)
        if shown is not None:
            row["object"] = shown
        rows.append(row)
    body: dict[str, Any] = {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                            "metadata": {"resourceVersion": str(rv) if rv is not None else ""}, "rows": rows}
    body["columnDefinitions"] = COLUMNS.get(kind, [NAME, AGE]) if headers else []
    return body


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


_string = json.encoder.encode_basestring_ascii   # json.dumps of one str (ensure_ascii, as _dumps)


class TableCache:
    """List Tables encoded from parts kept per object version.

    ``kubectl get pods`` over 1,000 pods asks for a Table of all of them each time; what a row
    holds apart from its ages (a pod's STATUS and READY by kubectl's rules, the row's object)
    changes only when the object does. So each row's JSON is kept per object, keyed by its
    resourceVersion, around the cells that read the clock; only those are made per request
    (benchmarks/serve.py). The bytes are those of ``json.dumps(table(...), separators=(",",
    ":"))`` (tests/test_serve_tables.py).
    """

    LIMIT = 50_000   # entries; past it the cache starts again (deleted objects' entries go too)

    def __init__(self):
        # (kind, include, namespace, name) -> (resourceVersion, pod moments or None, JSON before and after
        # the clock's cells); a pod's clock cells are RESTARTS and AGE, other kinds' rows are made afresh
        self._rows: dict[tuple[str, str, str, str], tuple[Any, Any, str, str]] = {}

    def _parts(self, kind: str, obj: dict, include: str) -> tuple[Any, Any, str, str]:
        meta = obj.get("metadata") or {}
        key = (kind, include, meta.get("namespace") or "", meta.get("name") or "")
        version = meta.get("resourceVersion")
        found = self._rows.get(key)
        if found is not None and version is not None and found[0] == version:
            return found
        shown = _row_object(obj, include)
        after = "}" if shown is None else ',"object":' + _dumps(shown) + "}"
        if kind == "Pod":
            moments = pod_moments(obj)
            before = '{"cells":' + _dumps([moments.name, moments.ready, moments.status])[:-1] + ","
            after = "," + _dumps(_pod_wide(obj))[1:] + after
            found = (version, moments, before, after)
        else:
            found = (version, None, "", after)
        if len(self._rows) >= self.LIMIT:
            self._rows.clear()
        self._rows[key] = found
        return found

    def encode(self, kind: str, objs: list[dict], rv: Any, *, include: str = "Metadata") -> bytes:
        now = time.time()
        rows = []
        for obj in objs:
            _, moments, before, after = self._parts(kind, obj, include)
            if moments is not None:
                restarts, age = moments.row(now).cells()[3:]
                rows.append(f"{before}{_string(restarts)},{_string(age)}{after}")
            else:
                rows.append('{"cells":' + _dumps(cells(kind, obj, now)) + after)
        head = _dumps({"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                       "metadata": {"resourceVersion": str(rv) if rv is not None else ""}})
        return (head[:-1] + ',"rows":[' + ",".join(rows) + '],"columnDefinitions":'
                + _dumps(COLUMNS.get(kind, [NAME, AGE])) + "}").encode()
