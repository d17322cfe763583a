"""``GET .../pods/NAME/log``: what the simulator's process model can honestly print.

Options as the API server takes them (``PodLogOptions``): ``container``, ``previous``,
``follow``, ``timestamps``, ``tailLines``, ``sinceSeconds``. Errors use the kubelet's and the
API server's wording (``pkg/registry/core/pod/strategy.go`` ``LogLocation``,
``pkg/kubelet/kubelet_pods.go`` ``validateContainerLogStatus``)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from aiohttp import web

from ..sim import view
from .world import ApiError, not_found


def _bool(query, key: str) -> bool:
    return query.get(key, "false").lower() in ("true", "1")


def _stamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


async def logs(api, request: web.Request, namespace: str, name: str, container: str | None = None) -> web.StreamResponse:
    """The log of one container (``container``, else the query's); ``api`` has the ``world`` and
    says when it is ``closing`` (the served API, or the simulated kubelet's log endpoint)."""
    world = api.world
    query = request.query
    ns = world.namespaces.get(namespace)
    pod = ns.cluster.pods.get(name) if ns is not None else None
    if pod is None or pod.deleted:
        raise not_found("pods", name)
    container = container or query.get("container")
    if not container:
        if len(pod.containers) == 1:
            container = pod.containers[0].name
        else:
            apps = " ".join(c.name for c in pod.apps)
            inits = " ".join(c.name for c in pod.init)
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: "
                           f"[{apps}]" + (f" or one of the init containers: [{inits}]" if inits else ""))
    c = pod.by_name.get(container)
    if c is None:
        raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
    previous = _bool(query, "previous")
    try:
        inst = view.log_run(pod, c, previous=previous)
    except view.LogUnavailable as exc:
        raise ApiError(400, "BadRequest", str(exc)) from None
    removed = view.removed_answer(ns.uid(pod), c, inst)
    if removed is not None:   # the kubelet writes its error into the stream it already answered 200
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(removed.encode())
        await response.write_eof()
        return response
    timestamps = _bool(query, "timestamps")
    try:
        tail = int(query["tailLines"]) if "tailLines" in query else None
        since = float(query["sinceSeconds"]) if "sinceSeconds" in query else None
    except ValueError:
        raise ApiError(400, "BadRequest", "tailLines and sinceSeconds must be numbers") from None
    follow = _bool(query, "follow") and not previous

    def lines(end: float) -> list[tuple[float, str]]:
        return view.log_lines(c, inst, inst.start + end)

    def now_offset() -> float:
        return (inst.end if inst.end is not None else ns.cluster.env.now) - inst.start

    def render(items: list[tuple[float, str]]) -> bytes:
        out = []
        for offset, text in items:
            wall = ns.wall(inst.start + offset)
            out.append((_stamp(wall) + " " if timestamps else "") + text + "\n")
        return "".join(out).encode()

    first = lines(now_offset())
    if since is not None:
        cutoff = (world.clock() - since - ns.wall(inst.start)) * ns.pace
        first = [item for item in first if item[0] >= cutoff]
    if tail is not None:
        first = first[-tail:] if tail > 0 else []
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    await response.write(render(first))
    sent_until = now_offset()
    try:
        while follow and not api.closing and inst.end is None:
            await asyncio.sleep(0.2)
            world.advance()
            upto = now_offset()
            new = [item for item in lines(upto) if item[0] > sent_until]
            sent_until = upto
            if new:
                await response.write(render(new))
        if follow and inst.end is not None:
            upto = now_offset()
            new = [item for item in lines(upto) if item[0] > sent_until]
            if new:
                await response.write(render(new))
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return response
