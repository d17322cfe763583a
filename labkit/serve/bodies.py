"""What a request body must be before a verb stores it.

Every verb of :mod:`.http` with a body reads it here: decoded from JSON or YAML (the metadata of
a Namespace or ServiceAccount from protobuf). Create and update (a patch's result too) then
check it here: a JSON object of the URL's kind, namespace and name, a name made from
``generateName``, and, for the objects stored as they come, metadata of the right types (the
decoder's 400s) and valid (``ValidateObjectMeta``'s 422s), as ``rest.BeforeCreate``
(``k8s.io/apiserver/pkg/registry/rest/create.go``) does. Pods, Jobs and Deployments get the
simulator's own admission instead (:mod:`.writes`).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..sim.decoding import json_type
from ..sim.validation import object_meta_errors
from . import writes as R
from .resources import Resource
from .world import ApiError, World


async def read_body(request: web.Request, *, optional: bool = False) -> Any:
    """The decoded body (``{}`` for an empty one that is ``optional``, as a DELETE's options)."""
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "BadRequest", "the body of the request was empty")
    content_type = request.headers.get("Content-Type", "application/json")
    if "protobuf" in content_type:
        from .protobuf import Unreadable, decode

        try:
            return decode(raw)
        except Unreadable as exc:
            raise ApiError(415, "UnsupportedMediaType", f"labkit serve reads JSON and YAML bodies (and the "
                           f"metadata of a Namespace or ServiceAccount in protobuf), not {exc}") from None
    if "cbor" in content_type:
        raise ApiError(415, "UnsupportedMediaType", 'the body of the request was in an unknown format - '
                       'accepted media types include: application/json, application/yaml')
    try:
        if "yaml" in content_type:
            import yaml

            data = yaml.safe_load(raw.decode("utf-8"))
        else:
            data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format - accepted media "
                       f"types include: application/json, application/yaml ({type(exc).__name__}: "
                       f"{str(exc)[:200]})") from None
    except Exception as exc:   # yaml errors
        raise ApiError(400, "BadRequest", f"error converting YAML to JSON: {str(exc)[:200]}") from None
    return data


def check_body(world: World, resource: Resource, obj: Any, namespace: str, name: str | None = None) -> dict:
    """``obj`` fit to be ``resource`` in ``namespace`` (named ``name`` by the URL of a PUT), its
    ``apiVersion``, ``kind`` and a ``generateName``'s name filled in (``world`` draws the suffix)."""
    if not isinstance(obj, dict):
        raise ApiError(400, "BadRequest", f"the body must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("kind")
    if kind is not None and kind != resource.kind:
        raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) and kind "
                       f"({kind}) do not match the {resource.kind} this URL is for")
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise ApiError(400, "BadRequest", "metadata must be a JSON object")
    if resource.namespaced and meta.get("namespace") not in (None, "", namespace):
        raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                       "sent on the request")
    if name is not None and meta.get("name") not in (None, name):
        raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)"
                       % (meta.get("name"), name))
    if not meta.get("name") and meta.get("generateName") and name is None:
        meta["name"] = str(meta["generateName"]) + world.suffix()
    if not isinstance(meta.get("name"), str) or not meta.get("name"):
        qualified = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
        raise ApiError(422, "Invalid", f"{qualified} \"\" is invalid: metadata.name: Required value: name or "
                       "generateName is required", details={**({"group": resource.group} if resource.group else {}), "kind": resource.kind, "causes": [{
                           "reason": "FieldValueRequired", "message": "Required value: name or generateName is "
                           "required", "field": "metadata.name"}]})
    obj.setdefault("apiVersion", resource.group_version)
    obj.setdefault("kind", resource.kind)
    if resource.key not in R.SIM_KINDS:   # the simulator's admission checks its own kinds
        _check_meta(resource, meta, namespace)
    return obj


def _check_meta(resource: Resource, meta: dict, namespace: str) -> None:
    """The decoder's type errors (400) and ValidateObjectMeta's field errors (422, every one) for
    the objects stored as they come; Pods, Jobs and Deployments go through the simulator's own
    admission instead."""
    where = f'{resource.kind} in version "{resource.group_version.split("/")[-1]}" cannot be handled as a {resource.kind}'
    for key in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        if key in meta and not isinstance(meta[key], str):
            raise ApiError(400, "BadRequest", f"{where}: json: cannot unmarshal {json_type(meta[key])} into Go struct "
                           f"field ObjectMeta.metadata.{key} of type string")
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ApiError(400, "BadRequest", f"{where}: json: cannot unmarshal {json_type(value)} into Go struct "
                           f"field ObjectMeta.metadata.{key} of type map[string]string")
        bad = [v for v in value.values() if not isinstance(v, str)]
        if bad:
            bad = bad[0]
            raise ApiError(400, "BadRequest", f"{where}: json: cannot unmarshal {json_type(bad)} into Go struct "
                           f"field ObjectMeta.metadata.{key} of type string")

    errors = object_meta_errors({**meta, "namespace": namespace} if resource.namespaced else meta,
                                cluster_scoped_label=resource.name == "namespaces")
    if errors:
        raise R.invalid_object(resource.kind, resource.group, meta.get("name", ""), errors)
