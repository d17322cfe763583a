"""The Kubernetes REST API over the served simulator (aiohttp).

One asyncio loop owns everything: a task advances the simulator to the wall clock (times
``pace``) and the request handlers and watches run on the same loop, so the store needs no
locks. Paths, verbs, bodies and errors follow the API conventions
(``k8s.io/apiserver/pkg/endpoints``): every error is a ``metav1.Status`` with the upstream
``reason`` and ``code``; lists carry a ``resourceVersion``; watches stream one JSON event per
line; ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` gets a Table (the columns of
kubectl's printers, ``pkg/printers/internalversion/printers.go``).

This module is where requests become store operations: the routing, the error middleware and
the verbs (get, list, create, update, patch, delete, deletecollection, scale), as the apiserver's
``handlers`` package. What they share lives beside it, one job a module: :mod:`.discovery` (the
group and resource lists), :mod:`.watch` (the watch stream), :mod:`.selectors` (label and field
selectors), :mod:`.bodies` (decoding and checking a request body), :mod:`.responses` (JSON
bodies and Status), and ``resources``, ``patch``, ``tables``, ``logs``, ``openapi``, ``world``.
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

from . import discovery
from . import world as W
from . import writes as R
from .bodies import check_body, read_body
from .patch import PATCH_TYPES, PatchError
from .resources import BY_PATH, GROUP_VERSIONS, Resource, convert, old_event
from .responses import json_response, status_body
from .selectors import selector
from .store import Store
from .tables import TableCache, table
from .watch import watch
from .world import ApiError, World

log = logging.getLogger("labkit.serve")

# The API server's limit on a request body (apiserver/pkg/server/config.go MaxRequestBodyBytes)
MAX_BODY = 3 * 1024 * 1024
READ_ONLY = {"nodes", "replicasets", "services"}     # the simulator makes these itself


def no_route() -> ApiError:
    """A path the server does not serve: go-restful's 404 through the apiserver's
    ``serviceErrorHandler`` (``apierrors.NewGenericServerResponse``): empty ``details``."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", details={})


def method_not_allowed() -> ApiError:
    """A verb the path does not take (``NewGenericServerResponse(405, ...)``): empty ``details``."""
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                    details={})


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
            response = json_response(status_body(exc.code, exc.reason, exc.message, exc.details), exc.code)
        except web.HTTPRequestEntityTooLarge:
            # errors.NewRequestEntityTooLargeError("limit is %d")
            response = json_response(status_body(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}"),
                                     413)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:   # a bug of ours: a Status 500, never a dead server
            log.exception("%s %s -> 500 internal error (%.1f ms)", request.method, request.path_qs,
                          (time.perf_counter() - started) * 1000)
            return json_response(status_body(500, "InternalError", f"labkit serve: internal error: "
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
            return json_response(discovery.root())
        if parts[0] in ("healthz", "livez", "readyz") and len(parts) == 1:
            return web.Response(text="ok")
        if parts == ["version"]:
            return json_response(self.version_info)
        if parts == ["openapi", "v2"]:
            # kubectl reads v3 and falls back to v2 (protobuf only) for a kind v3 does not list, such
            # as one no server has: an empty gnostic Document (no bytes) says "none here" and lets
            # kubectl go on to its own `no matches for kind "Foo" in version "v1"`
            return web.Response(body=b"", content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        if parts[0] == "openapi":
            from .openapi import openapi

            return json_response(openapi(parts[1:], request.query))
        if parts[0] == "api":
            if len(parts) == 1:   # the core group's aggregated discovery (the legacy "/api" manager) or APIVersions
                aggregated = discovery.aggregated(request, self.world.behaviour.aggregated_discovery)
                return aggregated if aggregated is not None else json_response(discovery.api_versions(request.host))
            if parts[1] != "v1":
                raise no_route()
            return await self.resource_request(request, "v1", parts[2:], method)
        if parts[0] == "apis":
            if len(parts) == 1:
                aggregated = discovery.aggregated(request, self.world.behaviour.aggregated_discovery)
                return aggregated if aggregated is not None else json_response(discovery.group_list())
            if len(parts) == 2:
                if not any(gv.startswith(parts[1] + "/") for gv in GROUP_VERSIONS):
                    raise no_route()
                return json_response(discovery.api_group(parts[1]))
            gv = f"{parts[1]}/{parts[2]}"
            if gv not in GROUP_VERSIONS:
                raise no_route()
            return await self.resource_request(request, gv, parts[3:], method)
        raise no_route()

    # -- resources -------------------------------------------------------------------------------------
    async def resource_request(self, request: web.Request, gv: str, rest: list[str], method: str):
        if not rest:
            if method != "GET":
                raise method_not_allowed()
            return json_response(discovery.resource_list(gv))
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
            return json_response(self_subject_access_review(await read_body(request)), 201)
        if sub in ("exec", "attach", "portforward"):
            self._get(resource, namespace or "", name)      # a pod that is not there is a 404 first
            raise ApiError(400, "BadRequest", f"labkit serve: no container runs on the simulated node {W.NODE}, so "
                           f"there is nothing to {'port-forward to' if sub == 'portforward' else sub} (kubectl exec, "
                           "attach, cp and port-forward need a container runtime; labkit's simulator has none)")
        dry = bool(query.get("dryRun"))
        if name is None:
            if method == "GET":
                if query.get("watch") in ("true", "1"):
                    return await watch(self, request, resource, namespace)
                return self.list(request, resource, namespace)
            if method == "POST":
                if resource.namespaced and namespace is None:
                    raise no_route()
                return self.create(resource, namespace or "", await read_body(request), query)
            if method == "DELETE":
                return self.delete_collection(request, resource, namespace, await read_body(request, optional=True))
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
            body = await read_body(request)
            return self.respond(request, resource, self.update(resource, namespace or "", name, body, dry=dry))
        if method == "PATCH":
            return self.respond(request, resource, await self.patch(request, resource, namespace or "", name, dry=dry))
        if method == "DELETE":
            return self.delete(resource, namespace or "", name, await read_body(request, optional=True), query)
        raise method_not_allowed()

    async def scale(self, request: web.Request, resource: Resource, namespace: str, name: str, dry: bool):
        """The ``scale`` subresource (``autoscaling/v1`` Scale), as the registry's ScaleREST for
        Deployments (pkg/registry/apps/deployment/storage): spec.replicas read and written
        through the Deployment."""
        current = self._get(resource, namespace, name)
        if request.method == "GET":
            return json_response(_scale_of(current))
        if request.method not in ("PUT", "PATCH"):
            raise method_not_allowed()
        if request.method == "PUT":
            scale = await read_body(request)
        else:
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            apply = PATCH_TYPES.get(content_type)
            if apply is None:
                raise unsupported_patch_type()
            try:
                scale = apply(_scale_of(current), await read_body(request))
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
        return json_response(_scale_of(self.update(resource, namespace, name, new, dry=dry)))

    def _get(self, resource: Resource, namespace: str, name: str) -> dict:
        if resource.name == "namespaces":
            obj = self.store.get("namespaces", "", name)
        else:
            obj = self.store.get(resource.key, namespace, name)
        if obj is None:
            raise W.not_found(resource.name, name, resource.group)
        return obj

    # -- output ------------------------------------------------------------------------------------------
    def respond(self, request: web.Request, resource: Resource, obj: dict, status: int = 200) -> web.Response:
        obj = convert(resource, obj)
        if "as=Table" in request.headers.get("Accept", ""):
            return json_response(table(resource.table_kind, [obj], self.store.rv,
                                       include=request.query.get("includeObject", "Metadata")), status)
        return json_response(obj, status)

    def list(self, request: web.Request, resource: Resource, namespace: str | None) -> web.Response:
        accepts = selector(request.query, resource)
        objs = [convert(resource, o) for o in self.store.list(resource.key, namespace)]
        objs = [o for o in objs if accepts(o)]
        rv = str(self.store.rv)
        if "as=Table" in request.headers.get("Accept", ""):
            return web.Response(body=self.tables.encode(resource.table_kind, objs, rv,
                                                        include=request.query.get("includeObject", "Metadata")),
                                content_type="application/json")
        return json_response({"kind": f"{resource.kind}List", "apiVersion": resource.group_version,
                              "metadata": {"resourceVersion": rv}, "items": objs})

    # -- writing ---------------------------------------------------------------------------------------------
    def create(self, resource: Resource, namespace: str, obj: Any, query) -> web.Response:
        obj = check_body(self.world, resource, obj, namespace)
        name = obj["metadata"]["name"]
        if resource.name in READ_ONLY:
            raise ApiError(405, "MethodNotAllowed", f"labkit serve: {resource.name} are made by the simulator")
        if query.get("dryRun"):
            # validated and defaulted as without it, nothing stored (registry Store.Create with dryRun)
            if resource.key in R.SIM_KINDS:
                return json_response(R.dry_run(self.world, resource.key, namespace, obj), 201)
            if self.store.get(resource.key, namespace, name) is not None:
                raise ApiError(409, "AlreadyExists", f'{resource.name} "{name}" already exists',
                               details={"name": name, "kind": resource.name})
            if resource.name != "namespaces" and resource.namespaced:
                self.world.namespace(namespace)      # 404 or 403 (terminating) as without dry-run
            return json_response(obj, 201)
        if resource.key in R.SIM_KINDS:
            return json_response(R.create(self.world, resource.key, namespace, obj), 201)
        if self.store.get(resource.key, namespace, name) is not None:
            raise ApiError(409, "AlreadyExists", f'{resource.name} "{name}" already exists',
                           details={"name": name, "kind": resource.name})
        if resource.name == "namespaces":
            return json_response(self.world.create_namespace(copy.deepcopy(obj)), 201)
        obj = copy.deepcopy(obj)
        obj["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), creationTimestamp=W.rfc3339(time.time()))
        if resource.group_version == "events.k8s.io/v1":
            obj = old_event(obj)
        return json_response(convert(resource, self.store.put(resource.key, obj)), 201)

    def update(self, resource: Resource, namespace: str, name: str, obj: Any, *, dry: bool = False) -> dict:
        obj = check_body(self.world, resource, obj, namespace, name)
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
            new = old_event(new)
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
        body = await read_body(request)
        current = convert(resource, self._get(resource, namespace, name))
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
            current = convert(resource, self._get(resource, namespace, name))
            if resource.name == "pods" or resource.name == "namespaces":
                return json_response(current)
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "details": {"name": name, "group": resource.group, "kind": resource.name,
                                              "uid": current["metadata"].get("uid")}})
        if resource.key in R.SIM_KINDS:
            obj, staying = R.delete(self.world, resource.key, namespace, name, grace=grace, propagation=propagation)
            if resource.name == "pods" or staying:   # 200 either way (handlers/delete.go: 202 only for the
                return json_response(obj)             # deprecated orphanDependents=false)
            return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                  "details": {"name": name, "group": resource.group, "kind": resource.name,
                                              "uid": obj["metadata"].get("uid")}})
        current = self._get(resource, namespace, name)
        if resource.name == "namespaces":
            return json_response(self.world.delete_namespace(name))
        self.store.remove(resource.key, namespace, name)
        return json_response(convert(resource, current))

    def delete_collection(self, request: web.Request, resource: Resource, namespace: str | None, options: Any):
        if resource.name in READ_ONLY or resource.name == "namespaces":
            raise method_not_allowed()
        accepts = selector(request.query, resource)
        deleted = []
        for obj in list(self.store.list(resource.key, namespace)):
            if accepts(convert(resource, obj)):
                meta = obj["metadata"]
                try:
                    self.delete(resource, meta["namespace"], meta["name"], options, request.query)
                except ApiError as exc:
                    if exc.code != 404:
                        raise
                deleted.append(convert(resource, obj))
        return json_response({"kind": f"{resource.kind}List", "apiVersion": resource.group_version,
                              "metadata": {"resourceVersion": str(self.store.rv)}, "items": deleted})


def _scale_of(obj: dict) -> dict:
    """A Deployment's ``autoscaling/v1`` Scale (pkg/registry/apps/deployment/storage scaleFromDeployment)."""
    meta = obj["metadata"]
    label_selector = (obj.get("spec") or {}).get("selector") or {}
    parts = [f"{k}={v}" for k, v in sorted((label_selector.get("matchLabels") or {}).items())]
    for expr in label_selector.get("matchExpressions") or []:
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
