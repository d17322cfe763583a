"""The OpenAPI v3 documents ``kubectl apply`` reads, and only what it reads of them.

kubectl (1.27+) validates with ``--validate=strict`` by default; it asks the server to do it
(``fieldValidation=Strict``) when the server's OpenAPI v3 document lists that query parameter
on the PATCH operation of the resource's path (``k8s.io/cli-runtime`` ``resource.QueryParamVerifierV3``,
looked up by the operation's ``x-kubernetes-group-version-kind``). The simulator's API server
does validate strictly (``labkit.sim.api.admit``: unknown fields are refused), so that is what
it advertises: the paths and operations of the served resources, with the parameters the
real server lists for them.

Its ``components.schemas`` are a real kube-apiserver's (``openapi_schemas.json``, taken by
tools/serve_openapi.py from the Kubernetes repository's recorded ``api/openapi-spec/v3`` at a
release tag): ``kubectl explain`` reads its fields and descriptions there, and ``kubectl apply``
the strategic-merge keys (``x-kubernetes-patch-merge-key``), which are the upstream ones.
``/openapi/v2`` is absent (404), as kubectl only falls back to it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources as package_files

from .resources import GROUP_VERSIONS, RESOURCES
from .world import ApiError

_PARAM = {
    "dryRun": "When present, indicates that modifications should not be persisted.",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
                       "containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
    "force": "Force is going to \"force\" Apply requests.",
    "pretty": "If 'true', then the output is pretty printed.",
}


def _params(*names: str) -> list[dict]:
    return [{"name": n, "in": "query", "description": _PARAM[n], "schema": {"type": "boolean" if n == "force" else "string"},
             "uniqueItems": True} for n in names]


def _document(group_version: str) -> dict:
    group, _, version = group_version.rpartition("/")
    base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    paths = {}
    for r in RESOURCES:
        if r.group_version != group_version:
            continue
        gvk = {"group": group, "version": version, "kind": r.kind}
        item = f"{base}/namespaces/{{namespace}}/{r.name}/{{name}}" if r.namespaced else f"{base}/{r.name}/{{name}}"
        collection = item.rsplit("/", 1)[0]
        op = lambda verb, *extra: {"operationId": f"{verb}{r.kind}", "x-kubernetes-action": verb,  # noqa: E731
                                   "x-kubernetes-group-version-kind": gvk, "parameters": _params(*extra),
                                   "responses": {"200": {"description": "OK"}}}
        writes = r.name not in ("nodes", "replicasets")
        paths[item] = {"get": op("get")}
        paths[collection] = {"get": op("list")}
        if writes:
            paths[item].update(put=op("put", "dryRun", "fieldManager", "fieldValidation"),
                               patch=op("patch", "dryRun", "fieldManager", "fieldValidation", "force"),
                               delete=op("delete", "dryRun"))
            paths[collection].update(post=op("post", "dryRun", "fieldManager", "fieldValidation"),
                                     delete=op("deletecollection", "dryRun"))
    recorded = _schemas()
    schemas = {name: recorded["schemas"][name] for name in recorded["groups"].get(group_version, [])}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (labkit simulator)", "version": "labkit-sim"},
            "paths": paths, "components": {"schemas": schemas}}


@functools.lru_cache(maxsize=1)
def _schemas() -> dict:
    return json.loads(package_files.files(__package__).joinpath("openapi_schemas.json").read_text())


def openapi(parts: list[str], query) -> dict:
    if parts == ["v3"]:
        return {"paths": {("api/v1" if gv == "v1" else f"apis/{gv}"): {
            "serverRelativeURL": f"/openapi/v3/{'api/v1' if gv == 'v1' else 'apis/' + gv}?hash={_hash(gv)}"}
            for gv in GROUP_VERSIONS}}
    if len(parts) >= 3 and parts[0] == "v3":
        gv = "/".join(parts[2:]) if parts[1] == "apis" else "/".join(parts[1:])
        if parts[1:] == ["api", "v1"]:
            gv = "v1"
        if gv in GROUP_VERSIONS:
            return _document(gv)
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


@functools.lru_cache(maxsize=None)
def _hash(group_version: str) -> str:
    return hashlib.sha512(json.dumps(_document(group_version), sort_keys=True).encode()).hexdigest()[:64].upper()
