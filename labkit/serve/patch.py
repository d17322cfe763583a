"""The three PATCH bodies the API server takes: JSON merge (RFC 7386), JSON patch (RFC 6902,
by the ``jsonpatch`` library) and Kubernetes' strategic merge patch.

Strategic merge patch has no Python library; this is the subset the served types need
(``apimachinery/pkg/util/strategicpatch/patch.go``): lists with a merge key (from the Go
struct tags ``patchStrategy:"merge" patchMergeKey:"..."`` of ``k8s.io/api``) merge item by
item; other lists are replaced; ``null`` deletes a key; the directives kubectl sends are
understood: ``$patch: replace|delete|merge``, ``$setElementOrder/<list>``, ``$retainKeys``,
``$deleteFromPrimitiveList/<list>``.
"""

from __future__ import annotations

import copy
from typing import Any

# List field name -> merge key, for the fields of Pod, Job, Deployment, ReplicaSet, Namespace,
# ServiceAccount and ObjectMeta that have patchStrategy merge in k8s.io/api (types.go).
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
    "env": "name", "ports": "containerPort", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "conditions": "type", "imagePullSecrets": "name", "ownerReferences": "uid", "hostAliases": "ip",
    "resourceClaims": "name", "secrets": "name", "tolerations": None, "finalizers": None,
    "topologySpreadConstraints": "topologyKey", "readinessGates": None, "schedulingGates": "name",
}
# Lists of scalars merged as sets (patchStrategy:"merge" without a key).
PRIMITIVE_MERGE = {"finalizers"}


class PatchError(ValueError):
    """A patch that cannot be applied, with the status the API server answers for it
    (``apiserver/pkg/endpoints/handlers/patch.go``): 400 for a patch that does not decode, 422
    (a generic Invalid, no causes) for a JSON patch whose operations fail, and, for a strategic
    merge patch item without its merge key, the plain error the registry returns, which the
    server writes as a 500 without a reason (``interpretStrategicMergePatchError``'s default)."""

    def __init__(self, message: str, code: int = 400):
        super().__init__(message)
        self.code = code


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, patch: Any) -> Any:
    import jsonpatch

    if not isinstance(patch, list) or not all(isinstance(op, dict) for op in patch):
        raise PatchError("json: cannot unmarshal the patch into a list of operations")
    try:
        return jsonpatch.apply_patch(target, patch)
    except jsonpatch.InvalidJsonPatch as exc:
        raise PatchError(str(exc)) from None
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, IndexError, TypeError,
            ValueError) as exc:
        raise PatchError(f"the json patch could not be applied: {exc}", 422) from None


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _merge_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch)


def _merge_map(original: dict, patch: dict) -> dict:
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(original.get(name), list) and isinstance(value, list):
                original[name] = [v for v in original[name] if v not in value]
            continue
        if value is None:
            original.pop(key, None)
        elif isinstance(value, dict):
            current = original.get(key)
            merged = _merge_map(current if isinstance(current, dict) else {}, value)
            if value.get("$patch") == "delete":
                original.pop(key, None)
            else:
                original[key] = merged
        elif isinstance(value, list):
            original[key] = _merge_list(key, original.get(key), value)
        else:
            original[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        for key in list(original):
            if key not in retain:
                del original[key]
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(order, list):
            name = key.split("/", 1)[1]
            if isinstance(original.get(name), list):
                original[name] = _ordered(name, original[name], order)
    return original


def _merge_list(key: str, original: Any, patch: list) -> list:
    merge_key = MERGE_KEYS.get(key)
    if not isinstance(original, list):
        original = []
    if key in PRIMITIVE_MERGE:
        result = list(original)
        for value in patch:
            if value not in result:
                result.append(copy.deepcopy(value))
        return result
    if merge_key is None:
        if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
            return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
        return copy.deepcopy(patch)
    if any(isinstance(v, dict) and v.get("$patch") == "replace" for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and v.get("$patch") == "replace")]
    result = [copy.deepcopy(v) for v in original]
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(f"map: {_go(item)} does not contain declared merge key: {merge_key}", 500)
        index = next((i for i, v in enumerate(result) if isinstance(v, dict) and v.get(merge_key) == item[merge_key]),
                     None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
            continue
        if index is None:
            result.append(_merge_map({}, item))
        else:
            result[index] = _merge_map(result[index], item)
    return result


def _go(value: Any) -> str:
    """Go's ``%v`` of a decoded JSON value (``map[a:1 b:[x y]]``, keys sorted), for error texts."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _ordered(name: str, items: list, order: list) -> list:
    merge_key = MERGE_KEYS.get(name)

    def key_of(value: Any) -> Any:
        return value.get(merge_key) if merge_key and isinstance(value, dict) else value

    wanted = [key_of(v) for v in order]
    rank = {k: i for i, k in enumerate(wanted) if isinstance(k, (str, int, float))}
    indexed = list(enumerate(items))
    indexed.sort(key=lambda pair: (rank.get(key_of(pair[1]), len(rank) + pair[0]) if isinstance(
        key_of(pair[1]), (str, int, float)) else len(rank) + pair[0]))
    return [v for _, v in indexed]


PATCH_TYPES = {
    "application/merge-patch+json": merge_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
    "application/json-patch+json": json_patch,
}
