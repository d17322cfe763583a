"""Discovery: what the served simulator says it serves, read by kubectl's RESTMapper.

The root's path list, ``/api``'s APIVersions, ``/apis``'s APIGroupList and each APIGroup, each
group/version's APIResourceList (the legacy lists, ``k8s.io/apiserver/pkg/endpoints/discovery``)
and aggregated discovery (``endpoints/discovery/aggregated``, KEP-3352), chosen by the Accept
header. All of it is read from :mod:`.resources`; which path gets which answer is
:mod:`.http`'s routing. Apart from the handlers, as upstream keeps it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .resources import GROUP_VERSIONS, RESOURCES, SUBRESOURCES
from .responses import json_response


def root() -> dict:
    """``GET /``: the paths this server answers."""
    return {"paths": sorted(["/api", "/api/v1", "/apis", "/version", "/openapi/v2", "/openapi/v3",
                             "/healthz", "/livez", "/readyz"]
                            + [f"/apis/{gv}" for gv in GROUP_VERSIONS if "/" in gv])}


def api_versions(host: str) -> dict:
    """``GET /api``: the core group's versions, and the address a client at ``host`` reached."""
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}


def group_list() -> dict:
    """``GET /apis`` without aggregated discovery."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(gv.split("/")[0])
                                                                   for gv in GROUP_VERSIONS if "/" in gv]}


def api_group(group: str) -> dict:
    """``GET /apis/GROUP`` (a group this server serves)."""
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group)}


def _group(group: str) -> dict:
    gv = next(g for g in GROUP_VERSIONS if g.startswith(group + "/"))
    entry = {"groupVersion": gv, "version": gv.split("/")[1]}
    return {"name": group, "versions": [entry], "preferredVersion": entry}


def resource_list(gv: str) -> dict:
    """``GET /api/v1``, ``GET /apis/GROUP/VERSION``: the legacy APIResourceList."""
    resources = []
    for r in RESOURCES:
        if r.group_version != gv:
            continue
        entry: dict[str, Any] = {"name": r.name, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short:
            entry["shortNames"] = list(r.short)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub in r.subresources:
            verbs, group, version, kind = SUBRESOURCES.get(sub, (("get", "patch", "update"), None, None, r.kind))
            entry = {"name": f"{r.name}/{sub}", "singularName": "", "namespaced": r.namespaced}
            if group:
                entry.update(group=group, version=version)
            resources.append({**entry, "kind": kind, "verbs": list(verbs)})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def aggregated_version(request: web.Request, served: tuple[str, ...]) -> str | None:
    """The aggregated discovery version to answer with: the first the Accept header lists that
    this version serves (v2beta1 from 1.26, v2 from 1.30: kubernetes#122882), else None (the
    legacy lists), as the apiserver's negotiation does (KEP-3352, "Version Skew Strategy").
    ``served``: the versions this Kubernetes version serves (``Behaviour.aggregated_discovery``)."""
    for media in request.headers.get("Accept", "").split(","):
        params = dict(part.strip().partition("=")[::2] for part in media.split(";")[1:])
        if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" \
                and params.get("v") in served:
            return params["v"]
    return None


def aggregated(request: web.Request, served: tuple[str, ...]) -> web.Response | None:
    """Aggregated discovery (``apidiscovery.k8s.io``, KEP-3352), asked for by kubectl's Accept
    header: at ``/api`` the core group, at ``/apis`` every other group (the apiserver's two
    discovery managers); None if it asks for no version in ``served`` (then the legacy list answers)."""
    version = aggregated_version(request, served)
    if version is None:
        return None
    wants_core = request.path.rstrip("/") == "/api"
    items = []
    for gv in GROUP_VERSIONS:
        if ("/" in gv) == wants_core:
            continue
        resources = []
        for r in RESOURCES:
            if r.group_version != gv:
                continue
            entry: dict[str, Any] = {"resource": r.name, "responseKind": {"group": r.group, "version": gv.split("/")[-1],
                                                                          "kind": r.kind},
                                     "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
                                     "verbs": list(r.verbs)}
            if r.short:
                entry["shortNames"] = list(r.short)
            if r.categories:
                entry["categories"] = list(r.categories)
            if r.subresources:
                entry["subresources"] = []
                for sub in r.subresources:
                    verbs, group, sub_version, kind = SUBRESOURCES.get(
                        sub, (("get", "patch", "update"), r.group, gv.split("/")[-1], r.kind))
                    entry["subresources"].append({"subresource": sub, "responseKind": {
                        "group": group, "version": sub_version, "kind": kind}, "verbs": list(verbs)})
            resources.append(entry)
        name = gv.split("/")[0] if "/" in gv else ""
        items.append({"metadata": {"name": name, "creationTimestamp": None},
                      "versions": [{"version": gv.split("/")[-1], "resources": resources, "freshness": "Current"}]})
    body = {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}
    response = json_response(body)
    response.content_type = "application/json"
    response.headers["Content-Type"] = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
    return response

