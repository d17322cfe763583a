"""The Kubernetes REST API over the served simulator (aiohttp).

One asyncio loop owns everything: a task advances the simulator to the wall clock (times
``pace``) and the request handlers and watches run on the same loop, so the store needs no
locks. Paths, verbs, bodies and errors follow the API conventions
(``k8s.io/apiserver/pkg/endpoints``): every error is a ``metav1.Status`` with the upstream
``reason`` and ``code``; lists carry a ``resourceVersion``; watches stream one JSON event per
line; ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` gets a Table (the columns of
kubectl's printers, ``pkg/printers/internalversion/printers.go``).

It is long (~750 lines) because it is the one place requests become store operations: routing,
the verbs, selectors and the watch protocol read best side by side, as in the apiserver's
``handlers`` package. What is not request handling lives beside it (``resources``, ``patch``,
``tables``, ``logs``, ``openapi``, ``world``).
"""

from __future__ import annotations

import asyncio
import copy
import hmac
import json
import logging
import time
import uuid
from typing import Any

from aiohttp import web

from ..sim.decoding import json_type
from ..sim.validation import object_meta_errors
from . import writes as R
from . import world as W
from .patch import PATCH_TYPES, PatchError
from .resources import BY_PATH, GROUP_VERSIONS, RESOURCES, SUBRESOURCES, Resource
from .store import Gone, Store, get_path
from .tables import TableCache, table
from .world import ApiError, World

log = logging.getLogger("labkit.serve")

# The API server's limit on a request body (apiserver/pkg/server/config.go MaxRequestBodyBytes)
MAX_BODY = 3 * 1024 * 1024
READ_ONLY = {"nodes", "replicasets", "services"}     # the simulator makes these itself


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A failure ``metav1.Status``, its keys in the order the API server writes them."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason:          # StatusReasonUnknown is "", left out (omitempty)
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def no_route() -> ApiError:
    """A path the server does not serve: go-restful's 404 through the apiserver's
    ``serviceErrorHandler`` (``apierrors.NewGenericServerResponse``): empty ``details``."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


def method_not_allowed() -> ApiError:
    """A verb the path does not take (``NewGenericServerResponse(405, ...)``): empty ``details``."""
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                    details={})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


class Api:
    """The routes of one served simulator."""

    def __init__(self, world: World, token: str, *, version_info: dict):
        self.world = world
        self.store: Store = world.store
        self.token = token
        self.version_info = version_info
        self.wake = asyncio.Event()
        self.closing = False
        self.timings: list[tuple[str, float]] | None = None   # (path, seconds in the handler); benchmarks/serve.py
        self.tables = TableCache()   # list Tables from parts kept per object version

    # -- the app ----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self.route)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        started = time.perf_counter()
        try:
            auth = request.headers.get("Authorization", "")
            if not hmac.compare_digest(auth.encode(), f"Bearer {self.token}".encode()) and not _public(request):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            response = await handler(request)
            if request.method != "GET":
                # a change may have put something on the simulator's calendar sooner than the
                # ticker's next wake-up: let it recompute, so watchers see it on time
                self.wake.set()
        except ApiError as exc:
            response = _json(status_body(exc.code, exc.reason, exc.message, exc.details), exc.code)
        except web.HTTPRequestEntityTooLarge:
            # errors.NewRequestEntityTooLargeError("limit is %d")
            response = _json(status_body(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}"),
                             413)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:   # a bug of ours: a Status 500, never a dead server
            log.exception("%s %s -> 500 internal error (%.1f ms)", request.method, request.path_qs,
                          (time.perf_counter() - started) * 1000)
            return _json(status_body(500, "InternalError", f"labkit serve: internal error: "
                                     f"{type(exc).__name__}: {exc}"), 500)
        if self.timings is not None:
            self.timings.append((request.path, time.perf_counter() - started))
        if isinstance(response, web.Response) and response.status >= 400:
            # a GET of something absent is how kubectl apply asks whether to create: not news
            quiet = response.status == 404 and request.method == "GET"
            log.log(logging.DEBUG if quiet else logging.WARNING, "%s %s -> %d %s (%.1f ms)", request.method, request.path_qs, response.status,
                        _reason_of(response), (time.perf_counter() - started) * 1000)
        return response

    async def route(self, request: web.Request):
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if not parts:
            return _json({"paths": sorted(["/api", "/api/v1", "/apis", "/version", "/openapi/v2", "/openapi/v3",
                                           "/healthz", "/livez", "/readyz"]
                                          + [f"/apis/{gv}" for gv in GROUP_VERSIONS if "/" in gv])})
        if parts[0] in ("healthz", "livez", "readyz") and len(parts) == 1:
            return web.Response(text="ok")
        if parts == ["version"]:
            return _json(self.version_info)
        if parts == ["openapi", "v2"]:
            # kubectl reads v3 and falls back to v2 (protobuf only) for a kind v3 does not list, such
            # as one no server has: an empty gnostic Document (no bytes) says "none here" and lets
            # kubectl go on to its own `no matches for kind "Foo" in version "v1"`
            return web.Response(body=b"", content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        if parts[0] == "openapi":
            from .openapi import openapi

            return _json(openapi(parts[1:], request.query))
        if parts[0] == "api":
            if len(parts) == 1:
                return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})
            if parts[1] != "v1":
                raise no_route()
            return await self.resource_request(request, "v1", parts[2:], method)
        if parts[0] == "apis":
            if len(parts) == 1:
                if self._discovery_version(request):
                    return self.aggregated(request)
                return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(gv.split("/")[0])
                                                                                     for gv in GROUP_VERSIONS if "/" in gv]})
            if len(parts) == 2:
                if not any(gv.startswith(parts[1] + "/") for gv in GROUP_VERSIONS):
                    raise no_route()
                return _json({"kind": "APIGroup", "apiVersion": "v1", **self._group(parts[1])})
            gv = f"{parts[1]}/{parts[2]}"
            if gv not in GROUP_VERSIONS:
                raise no_route()
            return await self.resource_request(request, gv, parts[3:], method)
        raise no_route()

    # -- discovery -----------------------------------------------------------------------------------
    def _group(self, group: str) -> dict:
        gv = next(g for g in GROUP_VERSIONS if g.startswith(group + "/"))
        entry = {"groupVersion": gv, "version": gv.split("/")[1]}
        return {"name": group, "versions": [entry], "preferredVersion": entry}

    def resource_list(self, gv: str) -> dict:
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

    def _discovery_version(self, request: web.Request) -> str | None:
        """The aggregated discovery version to answer with: the first the Accept header lists that
        this version serves (v2beta1 from 1.26, v2 from 1.30: kubernetes#122882), else None (the
        legacy lists), as the apiserver's negotiation does (KEP-3352, "Version Skew Strategy")."""
        served = self.world.behaviour.aggregated_discovery
        for media in request.headers.get("Accept", "").split(","):
            params = dict(part.strip().partition("=")[::2] for part in media.split(";")[1:])
            if params.get("as") == "APIGroupDiscoveryList" and params.get("g") == "apidiscovery.k8s.io" \
                    and params.get("v") in served:
                return params["v"]
        return None

    def aggregated(self, request: web.Request) -> web.Response:
        """Aggregated discovery (``apidiscovery.k8s.io``, KEP-3352), asked for by kubectl's Accept header."""
        version = self._discovery_version(request) or "v2"
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
        response = _json(body)
        response.content_type = "application/json"
        response.headers["Content-Type"] = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
        return response

    # -- resources -------------------------------------------------------------------------------------
    async def resource_request(self, request: web.Request, gv: str, rest: list[str], method: str):
        if not rest:
            if method != "GET":
                raise method_not_allowed()
            if gv == "v1" and self._discovery_version(request):
                return self.aggregated(request)
            return _json(self.resource_list(gv))
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (gv, rest[2]) in BY_PATH:
            namespace, rest = rest[1], rest[2:]
        resource = BY_PATH.get((gv, rest[0]))
        if resource is None or len(rest) > 3:
            raise no_route()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in resource.subresources:
            raise no_route()
        if namespace is not None and not resource.namespaced:
            raise no_route()
        if namespace is not None and self.store.get("namespaces", "", namespace) is None and method != "GET":
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                           details={"name": namespace, "kind": "namespaces"})
        if resource.namespaced and namespace is None and name is not None:
            raise no_route()
        self.world.advance()
        query = request.query
        if resource.name == "selfsubjectaccessreviews":
            if method != "POST" or name is not None:
                raise method_not_allowed()
            return _json(self_subject_access_review(await self.body(request)), 201)
        if sub in ("exec", "attach", "portforward"):
            self._get(resource, namespace or "", name)      # a pod that is not there is a 404 first
            raise ApiError(400, "BadRequest", f"labkit serve: no container runs on the simulated node {W.NODE}, so "
                           f"there is nothing to {'port-forward to' if sub == 'portforward' else sub} (kubectl exec, "
                           "attach, cp and port-forward need a container runtime; labkit's simulator has none)")
        dry = bool(query.get("dryRun"))
        if name is None:
            if method == "GET":
                if query.get("watch") in ("true", "1"):
                    return await self.watch(request, resource, namespace)
                return self.list(request, resource, namespace)
            if method == "POST":
                if resource.namespaced and namespace is None:
                    raise no_route()
                return self.create(resource, namespace or "", await self.body(request), query)
            if method == "DELETE":
                return self.delete_collection(request, resource, namespace, await self.body(request, optional=True))
            raise method_not_allowed()
        if sub == "log":
            if method != "GET":
                raise method_not_allowed()
            from .logs import logs

            return await logs(self, request, namespace or "", name)
        if sub == "scale":
            return await self.scale(request, resource, namespace or "", name, dry)
        if method == "GET":
            obj = self._get(resource, namespace or "", name)
            return self.respond(request, resource, obj)
        if sub == "status" and method in ("PUT", "PATCH"):
            raise ApiError(405, "MethodNotAllowed", f"labkit serve: the status of {resource.name} is written by the "
                           "simulated kubelet and controllers, not by clients")
        if method == "PUT":
            body = await self.body(request)
            return self.respond(request, resource, self.update(resource, namespace or "", name, body, dry=dry))
        if method == "PATCH":
            return self.respond(request, resource, await self.patch(request, resource, namespace or "", name, dry=dry))
        if method == "DELETE":
            return self.delete(resource, namespace or "", name, await self.body(request, optional=True), query)
        raise method_not_allowed()

    async def scale(self, request: web.Request, resource: Resource, namespace: str, name: str, dry: bool):
        """The ``scale`` subresource (``autoscaling/v1`` Scale), as the registry's ScaleREST for
        Deployments (pkg/registry/apps/deployment/storage): spec.replicas read and written
        through the Deployment."""
        current = self._get(resource, namespace, name)
        if request.method == "GET":
            return _json(_scale_of(current))
        if request.method not in ("PUT", "PATCH"):
            raise method_not_allowed()
        if request.method == "PUT":
            scale = await self.body(request)
        else:
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            apply = PATCH_TYPES.get(content_type)
            if apply is None:
                raise unsupported_patch_type()
            try:
                scale = apply(_scale_of(current), await self.body(request))
            except PatchError as exc:
                raise ApiError(exc.code, "BadRequest" if exc.code == 400 else "", str(exc)) from None
        replicas = ((scale or {}).get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            # ValidateScale: spec.replicas must be a non-negative integer
            raise R.invalid_object("Scale", "autoscaling", name, [(
                "spec.replicas", f"Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0")])
        asked = ((scale.get("metadata") or {}).get("resourceVersion"))
        new = copy.deepcopy(current)
        new["spec"]["replicas"] = replicas
        if asked and asked != current["metadata"]["resourceVersion"]:
            new["metadata"]["resourceVersion"] = asked      # a stale precondition: 409 Conflict
        else:
            new["metadata"].pop("resourceVersion", None)
        return _json(_scale_of(self.update(resource, namespace, name, new, dry=dry)))

    async def body(self, request: web.Request, *, optional: bool = False) -> Any:
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

    def _get(self, resource: Resource, namespace: str, name: str) -> dict:
        if resource.name == "namespaces":
            obj = self.store.get("namespaces", "", name)
        else:
            obj = self.store.get(resource.key, namespace, name)
        if obj is None:
            raise W.not_found(resource.name, name, resource.group)
        return obj

    # -- output ------------------------------------------------------------------------------------------
    def convert(self, resource: Resource, obj: dict) -> dict:
        if resource.group_version == "events.k8s.io/v1":
            return _new_event(obj)
        return obj

    def respond(self, request: web.Request, resource: Resource, obj: dict, status: int = 200) -> web.Response:
        obj = self.convert(resource, obj)
        if "as=Table" in request.headers.get("Accept", ""):
            return _json(table(resource.kind if resource.group_version != "events.k8s.io/v1" else "events.k8s.io",
                               [obj], self.store.rv, include=request.query.get("includeObject", "Metadata")), status)
        return _json(obj, status)

    def list(self, request: web.Request, resource: Resource, namespace: str | None) -> web.Response:
        accepts = _selector(request.query, resource)
        objs = [self.convert(resource, o) for o in self.store.list(resource.key, namespace)]
        objs = [o for o in objs if accepts(o)]
        rv = str(self.store.rv)
        if "as=Table" in request.headers.get("Accept", ""):
            kind = resource.kind if resource.group_version != "events.k8s.io/v1" else "events.k8s.io"
            return web.Response(body=self.tables.encode(kind, objs, rv, include=request.query.get("includeObject",
                                                                                                  "Metadata")),
                                content_type="application/json")
        return _json({"kind": f"{resource.kind}List", "apiVersion": resource.group_version,
                      "metadata": {"resourceVersion": rv}, "items": objs})

    async def watch(self, request: web.Request, resource: Resource, namespace: str | None) -> web.StreamResponse:
        query = request.query
        accepts = _selector(query, resource)
        rv_text = query.get("resourceVersion", "")
        initial = query.get("sendInitialEvents") == "true"
        try:
            since = int(rv_text) if rv_text not in ("", "0") else None
        except ValueError:
            raise ApiError(400, "BadRequest", f'invalid resource version "{rv_text}"') from None
        try:
            timeout = float(query.get("timeoutSeconds", "1800"))
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid timeoutSeconds {query.get('timeoutSeconds')!r}") from None
        bookmarks = query.get("allowWatchBookmarks") == "true"
        as_table = "as=Table" in request.headers.get("Accept", "")
        table_kind = resource.kind if resource.group_version != "events.k8s.io/v1" else "events.k8s.io"
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        await response.prepare(request)

        def encode(etype: str, obj: dict) -> bytes:
            if etype != "BOOKMARK":
                obj = self.convert(resource, obj)
                if as_table:
                    obj = table(table_kind, [obj], obj["metadata"].get("resourceVersion"), include="Object")
            return json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"

        async def send(etype: str, obj: dict) -> None:
            await response.write(encode(etype, obj))

        try:
            watch = self.store.watch(resource.key, namespace, accepts, None if (since is None or initial) else since)
        except Gone as exc:
            await send("ERROR", status_body(410, "Expired", str(exc)))
            await response.write_eof()
            return response
        try:
            if since is None or initial:
                initial_events = b"".join(encode("ADDED", obj) for obj in self.store.list(resource.key, namespace)
                                          if accepts(self.convert(resource, obj)))
                if initial_events:
                    await response.write(initial_events)
                if initial:
                    await send("BOOKMARK", {"kind": resource.kind, "apiVersion": resource.group_version, "metadata": {
                        "resourceVersion": str(self.store.rv), "annotations": {"k8s.io/initial-events-end": "true"}}})
            deadline = time.monotonic() + timeout
            while not self.closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    etype, obj = await asyncio.wait_for(watch.queue.get(), timeout=min(left, 5.0))
                except asyncio.TimeoutError:
                    if bookmarks:
                        await send("BOOKMARK", {"kind": resource.kind, "apiVersion": resource.group_version,
                                                "metadata": {"resourceVersion": str(self.store.rv)}})
                    continue
                # what else is already queued goes in the same write: one TLS record and one
                # syscall for a burst, not one per event (benchmarks/serve.py, the 1,000-pod watch)
                chunk = [encode(etype, obj)]
                while not watch.queue.empty() and len(chunk) < 256:
                    chunk.append(encode(*watch.queue.get_nowait()))
                await response.write(b"".join(chunk))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(watch)
        try:
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response

    # -- writing ---------------------------------------------------------------------------------------------
    def _check_body(self, resource: Resource, obj: Any, namespace: str, name: str | None = None) -> dict:
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
            meta["name"] = str(meta["generateName"]) + self.world.suffix()
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

    def create(self, resource: Resource, namespace: str, obj: Any, query) -> web.Response:
        obj = self._check_body(resource, obj, namespace)
        name = obj["metadata"]["name"]
        if resource.name in READ_ONLY:
            raise ApiError(405, "MethodNotAllowed", f"labkit serve: {resource.name} are made by the simulator")
        if query.get("dryRun"):
            # validated and defaulted as without it, nothing stored (registry Store.Create with dryRun)
            if resource.key in R.SIM_KINDS:
                return _json(R.dry_run(self.world, resource.key, namespace, obj), 201)
            if self.store.get(resource.key, namespace, name) is not None:
                raise ApiError(409, "AlreadyExists", f'{resource.name} "{name}" already exists',
                               details={"name": name, "kind": resource.name})
            if resource.name != "namespaces" and resource.namespaced:
                self.world.namespace(namespace)      # 404 or 403 (terminating) as without dry-run
            return _json(obj, 201)
        if resource.key in R.SIM_KINDS:
            return _json(R.create(self.world, resource.key, namespace, obj), 201)
        if self.store.get(resource.key, namespace, name) is not None:
            raise ApiError(409, "AlreadyExists", f'{resource.name} "{name}" already exists',
                           details={"name": name, "kind": resource.name})
        if resource.name == "namespaces":
            return _json(self.world.create_namespace(copy.deepcopy(obj)), 201)
        obj = copy.deepcopy(obj)
        obj["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=W.rfc3339(time.time()))
        if resource.group_version == "events.k8s.io/v1":
            obj = _old_event(obj)
        return _json(self.convert(resource, self.store.put(resource.key, obj)), 201)

    def update(self, resource: Resource, namespace: str, name: str, obj: Any, *, dry: bool = False) -> dict:
        obj = self._check_body(resource, obj, namespace, name)
        current = self._get(resource, namespace, name)
        if resource.name in READ_ONLY:
            raise ApiError(405, "MethodNotAllowed", f"labkit serve: {resource.name} are managed by the simulator")
        asked = obj["metadata"].get("resourceVersion")
        if asked and asked != current["metadata"]["resourceVersion"]:
            plural = f"{resource.name}.{resource.group}" if resource.group else resource.name
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {plural} "{name}": the object '
                           "has been modified; please apply your changes to the latest version and try again",
                           details={"name": name, **({"group": resource.group} if resource.group else {}),
                                    "kind": resource.name})
        if resource.key in R.SIM_KINDS:
            if dry:
                return R.dry_run(self.world, resource.key, namespace, obj, current)
            return R.replace(self.world, resource.key, namespace, name, obj)
        new = copy.deepcopy(obj)
        if resource.group_version == "events.k8s.io/v1":
            new = _old_event(new)
        for key in ("uid", "creationTimestamp", "namespace", "deletionTimestamp"):
            if key in current["metadata"]:
                new["metadata"][key] = current["metadata"][key]
        if resource.name == "namespaces":
            new["spec"], new["status"] = current.get("spec"), current.get("status")
        if dry:
            new["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return new
        return self.store.put(resource.key, new)

    async def patch(self, request: web.Request, resource: Resource, namespace: str, name: str, *,
                    dry: bool = False) -> dict:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == "application/apply-patch+yaml":
            raise ApiError(415, "UnsupportedMediaType", "labkit serve does not do server-side apply; use kubectl "
                           "apply without --server-side")
        apply = PATCH_TYPES.get(content_type)
        if apply is None:
            raise unsupported_patch_type()
        body = await self.body(request)
        current = self.convert(resource, self._get(resource, namespace, name))
        try:
            new = apply(current, body)
        except PatchError as exc:
            if exc.code == 422:   # NewGenericServerResponse(422, ...): the generic message, empty details
                raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request",
                               details={}) from None
            raise ApiError(exc.code, "BadRequest" if exc.code == 400 else "", str(exc)) from None
        if not isinstance(new, dict):
            raise ApiError(400, "BadRequest", "the patch does not leave an object")
        new.setdefault("metadata", {})
        if not isinstance(new["metadata"], dict):
            raise ApiError(422, "Invalid", "metadata must be an object")
        # A patch is re-applied to the latest object until it sticks (GuaranteedUpdate in the
        # registry's Store.Update): only a resourceVersion the patch itself sets is a precondition.
        if new["metadata"].get("resourceVersion") == current["metadata"]["resourceVersion"]:
            del new["metadata"]["resourceVersion"]
        return self.update(resource, namespace, name, new, dry=dry)

    def delete(self, resource: Resource, namespace: str, name: str, options: Any, query) -> web.Response:
        options = options if isinstance(options, dict) else {}
        grace = options.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        try:
            grace = None if grace is None else int(grace)
        except (TypeError, ValueError):
            raise ApiError(400, "BadRequest", f"invalid gracePeriodSeconds {grace!r}") from None
        if grace is not None and grace < 0:
            grace = 1
        propagation = options.get("propagationPolicy", query.get("propagationPolicy"))
        if propagation not in (None, "Background", "Foreground", "Orphan"):
            raise ApiError(400, "BadRequest", f'propagationPolicy: Unsupported value: "{propagation}"')
        if resource.name in READ_ONLY:
            raise ApiError(405, "MethodNotAllowed", f"labkit serve: {resource.name} are managed by the simulator")
        if query.get("dryRun") or options.get("dryRun"):
            # what the delete would answer, nothing deleted and no grace period started
            current = self.convert(resource, self._get(resource, namespace, name))
            if resource.name == "pods" or resource.name == "namespaces":
                return _json(current)
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "details": {"name": name, "group": resource.group, "kind": resource.name,
                                      "uid": current["metadata"].get("uid")}})
        if resource.key in R.SIM_KINDS:
            obj, staying = R.delete(self.world, resource.key, namespace, name, grace=grace, propagation=propagation)
            if resource.name == "pods" or staying:
                return _json(obj, 200 if staying or resource.name == "pods" else 200)
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "details": {"name": name, "group": resource.group, "kind": resource.name,
                                      "uid": obj["metadata"].get("uid")}})
        current = self._get(resource, namespace, name)
        if resource.name == "namespaces":
            return _json(self.world.delete_namespace(name))
        self.store.remove(resource.key, namespace, name)
        return _json(self.convert(resource, current))

    def delete_collection(self, request: web.Request, resource: Resource, namespace: str | None, options: Any):
        if resource.name in READ_ONLY or resource.name == "namespaces":
            raise method_not_allowed()
        accepts = _selector(request.query, resource)
        deleted = []
        for obj in list(self.store.list(resource.key, namespace)):
            if accepts(self.convert(resource, obj)):
                meta = obj["metadata"]
                try:
                    self.delete(resource, meta["namespace"], meta["name"], options, request.query)
                except ApiError as exc:
                    if exc.code != 404:
                        raise
                deleted.append(self.convert(resource, obj))
        return _json({"kind": f"{resource.kind}List", "apiVersion": resource.group_version,
                      "metadata": {"resourceVersion": str(self.store.rv)}, "items": deleted})


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


def _scale_of(obj: dict) -> dict:
    """A Deployment's ``autoscaling/v1`` Scale (pkg/registry/apps/deployment/storage scaleFromDeployment)."""
    meta = obj["metadata"]
    selector = (obj.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, values = expr.get("operator"), ",".join(sorted(expr.get("values") or []))
        parts.append({"In": f"{expr['key']} in ({values})", "NotIn": f"{expr['key']} notin ({values})",
                      "Exists": expr["key"], "DoesNotExist": f"!{expr['key']}"}.get(op, expr["key"]))
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": int(obj["spec"].get("replicas", 1))},
            "status": {"replicas": int((obj.get("status") or {}).get("replicas") or 0), "selector": ",".join(sorted(parts))}}


def unsupported_patch_type() -> ApiError:
    """A PATCH whose Content-Type no route consumes: go-restful refuses it before the patch handler
    runs, with its own message (emicklei/go-restful route selection; recorded from kube-apiserver
    v1.37.2 by tests/test_serve_differential.py)."""
    return ApiError(415, "UnsupportedMediaType", "415: Unsupported Media Type")


def self_subject_access_review(body: Any) -> dict:
    """``kubectl auth can-i``: the token in the kubeconfig is the served simulator's one user, and it
    may do everything (as the cluster-admin of a kind cluster's kubeconfig)."""
    if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
        raise ApiError(400, "BadRequest", "a SelfSubjectAccessReview needs a spec")
    return {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "metadata": {}, "spec": body["spec"], "status": {"allowed": True}}


def _public(request: web.Request) -> bool:
    """What a real API server answers without credentials: the ``system:public-info-viewer``
    ClusterRole (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go) grants anonymous
    GETs of exactly these URLs."""
    return request.method == "GET" and request.path in ("/livez", "/readyz", "/healthz", "/version", "/version/")


def _reason_of(response: web.Response) -> str:
    try:
        return json.loads(response.body).get("reason", "")
    except Exception:
        return ""


# -- selectors -----------------------------------------------------------------------------------------------
FIELD_PATHS = {
    "pods": ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "status.phase",
             "spec.serviceAccountName", "status.podIP"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
               "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
               "reportingComponent", "source", "type", "metadata.name", "metadata.namespace",
               "regarding.kind", "regarding.namespace", "regarding.name", "regarding.uid", "regarding.apiVersion",
               "regarding.resourceVersion", "regarding.fieldPath", "reportingController", "note"),
}


def _selector(query, resource: Resource):
    labels = _parse_labels(query.get("labelSelector", ""))
    fields = _parse_fields(query.get("fieldSelector", ""), resource)

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


def _parse_labels(text: str) -> list[tuple[str, str, set[str]]]:
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


def _parse_fields(text: str, resource: Resource) -> list[tuple[str, bool, str]]:
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


# -- events.k8s.io/v1 <-> core/v1 Events (pkg/apis/events/v1/conversion.go) ---------------------------------------
def _new_event(ev: dict) -> dict:
    meta = ev.get("metadata") or {}
    out = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta,
           "eventTime": ev.get("eventTime"), "reportingController": ev.get("reportingComponent") or
           (ev.get("source") or {}).get("component"), "reportingInstance": ev.get("reportingInstance"),
           "action": ev.get("action"), "reason": ev.get("reason"), "regarding": ev.get("involvedObject"),
           "note": ev.get("message"), "type": ev.get("type"),
           "deprecatedSource": ev.get("source"), "deprecatedFirstTimestamp": ev.get("firstTimestamp"),
           "deprecatedLastTimestamp": ev.get("lastTimestamp"), "deprecatedCount": ev.get("count")}
    return {k: v for k, v in out.items() if v is not None}


def _old_event(ev: dict) -> dict:
    if ev.get("apiVersion") != "events.k8s.io/v1":
        return ev
    return {"apiVersion": "v1", "kind": "Event", "metadata": ev.get("metadata") or {},
            "involvedObject": ev.get("regarding") or {}, "reason": ev.get("reason"), "message": ev.get("note"),
            "type": ev.get("type"), "eventTime": ev.get("eventTime"), "reportingComponent": ev.get("reportingController"),
            "reportingInstance": ev.get("reportingInstance"), "source": ev.get("deprecatedSource") or {},
            "firstTimestamp": ev.get("deprecatedFirstTimestamp"), "lastTimestamp": ev.get("deprecatedLastTimestamp"),
            "count": ev.get("deprecatedCount")}
