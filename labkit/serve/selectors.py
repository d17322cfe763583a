"""Label and field selectors (``?labelSelector=``, ``?fieldSelector=``) as the API server reads them.

The syntax is ``apimachinery/pkg/labels/selector.go``'s and ``apimachinery/pkg/fields``'; the
field paths each resource can be selected by are its registry's ``ToSelectableFields``
(``pkg/registry/core/pod/strategy.go``, ``core/event/strategy.go``). List, watch and
deletecollection (:mod:`.http`, :mod:`.watch`) all filter through :func:`selector`.
"""

from __future__ import annotations

from .resources import Resource
from .store import get_path
from .world import ApiError

# what fieldSelector may name, per resource (metadata.name and metadata.namespace on every one)
FIELD_PATHS = {
    "pods": ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "status.phase",
             "spec.serviceAccountName", "status.podIP"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
               "reportingComponent", "source", "type", "metadata.name", "metadata.namespace",
               "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "regarding.apiVersion",
               "regarding.resourceVersion", "regarding.fieldPath", "reportingController", "note"),
}


def selector(query, resource: Resource):
    """A test of one object (as served: events.k8s.io Events converted) against the query's
    selectors; a selector that does not parse is a 400 here, before any object is read."""
    labels = parse_labels(query.get("labelSelector", ""))
    fields = parse_fields(query.get("fieldSelector", ""), resource)

    def accepts(obj: dict) -> bool:
        have = (obj.get("metadata") or {}).get("labels") or {}
        for key, op, values in labels:
            present = key in have
            if op == "exists" and not present or op == "!exists" and present:
                return False
            if op == "in" and (not present or have[key] not in values):
                return False
            if op == "notin" and present and have[key] in values:
                return False
        for path, equal, value in fields:
            actual = get_path(obj, path)
            if path == "source" and isinstance(actual, dict):
                actual = actual.get("component")
            actual = "" if actual is None else str(actual)
            if (actual == value) != equal:
                return False
        return True

    return accepts


def parse_labels(text: str) -> list[tuple[str, str, set[str]]]:
    """``a=b,c!=d,e in (x,y),f notin (z),g,!h`` (``apimachinery/pkg/labels/selector.go``)."""
    result = []
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    for part in (p.strip() for p in parts):
        if not part:
            continue
        words = part.split()
        if len(words) >= 2 and words[1] in ("in", "notin"):
            values = part.split(None, 2)[2].strip()
            if not (values.startswith("(") and values.endswith(")")):
                raise ApiError(400, "BadRequest", f"unable to parse requirement: found '{values}', expected: '('")
            result.append((words[0], words[1], {v.strip() for v in values[1:-1].split(",") if v.strip()}))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            result.append((key.strip(), "notin", {value.strip()}))
        elif "==" in part or "=" in part:
            key, value = part.split("==", 1) if "==" in part else part.split("=", 1)
            result.append((key.strip(), "in", {value.strip()}))
        elif part.startswith("!"):
            result.append((part[1:].strip(), "!exists", set()))
        else:
            if any(ch in part for ch in " ()<>"):
                raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
            result.append((part, "exists", set()))
    return result


def parse_fields(text: str, resource: Resource) -> list[tuple[str, bool, str]]:
    result = []
    allowed = FIELD_PATHS.get(resource.key, ()) + ("metadata.name", "metadata.namespace")
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if "!=" in part:
            path, value = part.split("!=", 1)
            equal = False
        elif "==" in part:
            path, value = part.split("==", 1)
            equal = True
        elif "=" in part:
            path, value = part.split("=", 1)
            equal = True
        else:
            raise ApiError(400, "BadRequest", f"invalid selector: '{text}'; can't understand '{part}'")
        path = path.strip()
        if path not in allowed:
            raise ApiError(400, "BadRequest", f'field label not supported: {path}')
        if path.startswith("regarding.") and resource.group_version != "events.k8s.io/v1":
            raise ApiError(400, "BadRequest", f'field label not supported: {path}')
        result.append((path, equal, value.strip()))
    return result
