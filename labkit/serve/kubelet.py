"""labkit's simulated kubelet as a Node of a real control plane (``labkit serve --control-plane real``).

As KWOK's fake kubelet does, it registers a Node (``labkit-sim-node``, which says it is simulated)
with a real kube-apiserver, keeps its Lease renewed, watches the pods the real scheduler binds to
it, and writes their status and the kubelet's Events through the API. What happens to each pod
is the simulator's: every bound pod is handed, as a bare pod, to a :class:`~.world.World` (the
same per-namespace model the served simulator runs, paced against the wall clock), and whatever
that model's kubelet reports is PATCHed to ``pods/status``. The real controllers do the rest
(Jobs, Deployments, ReplicaSets, garbage collection); the real API server does validation,
dry-run, diff, scale, explain, UIDs. A pod the API server marks deleted is stopped in the model
(its grace period, its preStop hooks, the sidecars last) and then deleted for good, as the
kubelet does. It serves the kubelet's ``containerLogs`` endpoint, so ``kubectl logs`` works
through the API server; exec, attach and port-forward are answered with a plain sentence.
docs/serve.md, "The real control plane".
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import ssl
import time
from typing import Any
from urllib.parse import quote

from ..served import SIMULATED_ANNOTATION
from .writes import create, delete
from .world import NODE, SIM_COMPONENT, ApiError, World, micro_time, rfc3339

log = logging.getLogger("labkit.serve")

LEASE_S = 40             # the kubelet's nodeLeaseDurationSeconds
RENEW_S = 10             # it renews every quarter of that
REPORTED = ("kubelet", SIM_COMPONENT)   # whose Events the model writes that the real cluster gets
NO_RUNTIME = ("labkit serve: no container runs on the simulated node {node}, so there is nothing to {what} "
              "(kubectl exec, attach, cp and port-forward need a container runtime; labkit's simulator has none)")


class SimulatedKubelet:
    """The Node ``labkit-sim-node`` of the control plane at ``url``; :meth:`start`, then :meth:`stop`."""

    def __init__(self, world: World, url: str, client_ssl: ssl.SSLContext, ca: bytes, version: str):
        self.world = world          # the model: its store is never served, only read here
        self.url = url
        self.client_ssl = client_ssl
        self.ca = ca
        self.version = version
        self.closing = False
        self.wake = asyncio.Event()
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}   # (ns, name) -> uid, the last real object, what was sent
        self.events_sent: dict[tuple[str, str], int] = {}       # (ns, Event name) -> count sent
        self.port = 0
        self._session = None
        self._runner = None
        self._tasks: list[asyncio.Task] = []

    # -- start and stop -----------------------------------------------------------------------------
    async def start(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.client_ssl))
        await self._serve_endpoint()
        await self._register()
        self._tasks = [asyncio.create_task(self._run(self._watch_pods)), asyncio.create_task(self._run(self._tick)),
                       asyncio.create_task(self._run(self._renew_lease))]

    async def stop(self) -> None:
        self.closing = True
        self.wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _run(self, loop) -> None:
        """Keep one of the kubelet's loops going: a failed request is logged and retried."""
        while not self.closing:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception as exc:   # the API server restarting, a dropped watch: say it, retry
                if not self.closing:
                    log.warning("simulated kubelet: %s: %s", loop.__name__.strip("_"), exc)
                    await asyncio.sleep(1)

    # -- talking to the API server -------------------------------------------------------------------
    async def _request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                       ok: tuple[int, ...] = ()) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        async with self._session.request(method, self.url + path, data=data,
                                         headers={"Content-Type": content_type, "Accept": "application/json"}) as answer:
            text = await answer.text()
            if answer.status >= 400 and answer.status not in ok:
                raise RuntimeError(f"{method} {path} -> {answer.status}: {text[:300]}")
            return answer.status, (json.loads(text) if text else None)

    async def _register(self) -> None:
        node = self.world._node()
        meta = node["metadata"]
        for key in ("uid", "creationTimestamp", "resourceVersion"):
            meta.pop(key, None)
        meta["labels"].pop("node-role.kubernetes.io/control-plane", None)   # the control plane runs elsewhere
        meta["annotations"][SIMULATED_ANNOTATION] = (
            f"labkit's simulated kubelet (a model, no containers run) under a real control plane {self.version}")
        node["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.port}}
        node["status"]["capacity"] = node["status"]["allocatable"] = {"cpu": "8", "memory": "32Gi", "pods": "110"}
        now = rfc3339(time.time())
        for condition in node["status"]["conditions"]:
            condition["lastHeartbeatTime"] = condition["lastTransitionTime"] = now
        await self._request("POST", "/api/v1/nodes", node, ok=(409,))

    async def _renew_lease(self) -> None:
        """The node's heartbeat (a Lease in kube-node-lease), or the node controller would taint it."""
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}"
        while not self.closing:
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": NODE, "namespace": "kube-node-lease"},
                     "spec": {"holderIdentity": NODE, "leaseDurationSeconds": LEASE_S,
                              "renewTime": micro_time(time.time())}}
            code, _ = await self._request("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                                          lease, ok=(409, 404))
            if code == 409:
                await self._request("PATCH", path, {"spec": lease["spec"]}, "application/merge-patch+json")
            await asyncio.sleep(RENEW_S if code != 404 else 0.5)   # 404: the namespace is not made yet

    # -- pods bound to the node ----------------------------------------------------------------------
    async def _watch_pods(self) -> None:
        import aiohttp

        selector = quote(f"spec.nodeName={NODE}")
        _, listed = await self._request("GET", f"/api/v1/pods?fieldSelector={selector}")
        for pod in listed["items"]:
            self._on_pod("ADDED", pod)
        version = listed["metadata"]["resourceVersion"]
        self.wake.set()
        path = (f"/api/v1/pods?watch=1&fieldSelector={selector}&resourceVersion={version}"
                "&allowWatchBookmarks=true&timeoutSeconds=300")
        async with self._session.get(self.url + path, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as answer:
            if answer.status != 200:
                raise RuntimeError(f"watch of the node's pods -> {answer.status}")
            async for line in answer.content:
                event = json.loads(line)
                if event["type"] == "ERROR":
                    return           # e.g. 410 Expired: list again
                if event["type"] != "BOOKMARK":
                    self._on_pod(event["type"], event["object"])
                    self.wake.set()

    def _on_pod(self, etype: str, pod: dict) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        known = self.pods.get(key)
        if known is not None and known["uid"] != meta["uid"]:     # the same name, another pod
            self._forget(key)
            known = None
        if etype == "DELETED":
            if known is not None:
                self._forget(key)
            return
        if known is None:
            if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return
            self._admit(key, pod)
            return
        known["real"] = pod
        if meta.get("deletionTimestamp") and not known["deleting"]:
            known["deleting"] = True
            with contextlib.suppress(ApiError):
                delete(self.world, "pods", key[0], key[1], grace=meta.get("deletionGracePeriodSeconds"),
                       propagation=None)

    def _admit(self, key: tuple[str, str], pod: dict) -> None:
        """Hand a newly bound pod to the model, as a bare pod (the real controllers own it)."""
        namespace, name = key
        if self.world.store.get("namespaces", "", namespace) is None:
            self.world.create_namespace({"metadata": {"name": namespace}})
        spec = {k: v for k, v in pod["spec"].items() if k != "nodeName"}
        meta = {k: v for k, v in pod["metadata"].items() if k in ("name", "namespace", "labels", "annotations")}
        self.pods[key] = {"uid": pod["metadata"]["uid"], "real": pod, "deleting": False, "sent": None}
        try:
            create(self.world, "pods", namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
        except ApiError as exc:
            log.warning("simulated kubelet: %s/%s: the simulator cannot run this pod: %s", namespace, name, exc.message)

    def _forget(self, key: tuple[str, str]) -> None:
        self.pods.pop(key, None)
        with contextlib.suppress(ApiError):
            delete(self.world, "pods", key[0], key[1], grace=0, propagation=None)

    # -- the model's reports, written through the API -----------------------------------------------
    async def _tick(self) -> None:
        """Advance the model to the wall clock, report what changed, sleep until its next event
        (or until the watch brings a pod): paced as the served simulator's ticker."""
        while not self.closing:
            self.wake.clear()
            nxt = self.world.advance()
            await self._report()
            delay = None if nxt is None else max(nxt - time.time(), 0.001)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=delay)

    async def _report(self) -> None:
        for key, known in list(self.pods.items()):
            namespace, name = key
            local = self.world.store.get("pods", namespace, name)
            path = f"/api/v1/namespaces/{namespace}/pods/{name}"
            if local is None:
                if known["deleting"]:      # every container stopped: the kubelet's final delete
                    self.pods.pop(key, None)
                    await self._request("DELETE", path, {"kind": "DeleteOptions", "apiVersion": "v1",
                                                         "gracePeriodSeconds": 0,
                                                         "preconditions": {"uid": known["uid"]}}, ok=(404, 409))
                continue
            version = local["metadata"].get("resourceVersion")
            if known["sent"] == version:
                continue
            known["sent"] = version
            code, answer = await self._request("PATCH", path + "/status", {"status": self._status(local, known)},
                                               "application/merge-patch+json", ok=(404, 422))
            if code == 422:     # the model reported what the API server refuses: say so, once per change
                log.warning("simulated kubelet: %s/%s: the API server refused the status: %s", namespace, name,
                            (answer or {}).get("message"))
        await self._report_events()

    def _status(self, local: dict, known: dict) -> dict:
        """The model's pod status, as a merge patch: what it no longer says is removed (None), and
        the conditions it does not write (the scheduler's PodScheduled) are kept."""
        status = copy.deepcopy(local["status"])
        status.pop("qosClass", None)          # the API server set it at create; it may not change
        real = (known["real"].get("status") or {})
        types = {c["type"] for c in status.get("conditions") or []}
        status["conditions"] = (status.get("conditions") or []) + [c for c in real.get("conditions") or []
                                                                   if c["type"] not in types]
        for key in known.get("keys", ()):
            status.setdefault(key, None)
        known["keys"] = [k for k, v in status.items() if v is not None]
        return status

    async def _report_events(self) -> None:
        for namespace in list(self.world.namespaces):
            for event in self.world.store.list("events", namespace):
                if (event.get("source") or {}).get("component") not in REPORTED:
                    continue
                involved = event["involvedObject"]
                known = self.pods.get((namespace, involved.get("name")))
                key = (namespace, event["metadata"]["name"])
                count = event.get("count") or 1
                if known is None or self.events_sent.get(key) == count:
                    continue
                if key in self.events_sent:
                    await self._request("PATCH", f"/api/v1/namespaces/{namespace}/events/{key[1]}",
                                        {"count": count, "lastTimestamp": event["lastTimestamp"]},
                                        "application/merge-patch+json", ok=(403, 404))
                else:
                    body = {**event, "metadata": {"name": key[1], "namespace": namespace},
                            "involvedObject": {**involved, "uid": known["uid"]}}
                    # 403: its namespace is being deleted (the API server refuses new content there)
                    await self._request("POST", f"/api/v1/namespaces/{namespace}/events", body, ok=(403, 404, 409))
                self.events_sent[key] = count

    # -- the kubelet's own endpoint: logs through the API server --------------------------------------
    async def _serve_endpoint(self) -> None:
        """HTTPS on 127.0.0.1 (the node's InternalIP), for the API server's node proxy: only clients
        with a certificate of the control plane's CA (the API server's kubelet client) get in."""
        from aiohttp import web

        from .tls import make_certificate, server_context

        cert, key = make_certificate("127.0.0.1")
        context = server_context(cert, key)
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=self.ca.decode())
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self._logs)
        app.router.add_get("/healthz", self._healthz)
        for verb in ("exec", "attach", "portForward", "run"):
            app.router.add_route("*", f"/{verb}/{{rest:.*}}", self._no_runtime)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _logs(self, request):
        from aiohttp import web

        from .logs import logs

        match = request.match_info
        self.world.advance()
        try:
            return await logs(self, request, match["namespace"], match["pod"], match["container"])
        except ApiError as exc:     # the kubelet answers errors as plain text
            return web.Response(status=exc.code, text=exc.message)

    async def _healthz(self, request):
        from aiohttp import web

        return web.Response(text="ok")

    async def _no_runtime(self, request):
        from aiohttp import web

        verb = request.path.split("/")[1]
        what = "port-forward to" if verb == "portForward" else verb
        return web.Response(status=400, text=NO_RUNTIME.format(node=NODE, what=what))
