"""``GET ...?watch=true``: the watch stream, one JSON event per line.

A watch is not one answer but a stream held open until its timeout, the client leaving or the
server closing, with a protocol of its own: the resourceVersion to start from (or an
``410 Expired`` event), ``sendInitialEvents`` ending in a bookmark, periodic bookmarks, a Table
row per event. So it lives apart from the other verbs (:mod:`.http`), as upstream's
``k8s.io/apiserver/pkg/endpoints/handlers/watch.go`` does.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from .resources import Resource, convert
from .responses import status_body
from .selectors import selector
from .store import Gone
from .tables import table
from .world import ApiError


async def watch(api, request: web.Request, resource: Resource, namespace: str | None) -> web.StreamResponse:
    """Watch ``resource`` in ``namespace`` (None: all) for ``request``'s query; ``api`` has the
    ``store`` and says when it is ``closing`` (the served API)."""
    query = request.query
    accepts = selector(query, resource)
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
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    await response.prepare(request)

    def encode(etype: str, obj: dict) -> bytes:
        if etype != "BOOKMARK":
            obj = convert(resource, obj)
            if as_table:
                obj = table(resource.table_kind, [obj], obj["metadata"].get("resourceVersion"), include="Object")
        return json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n"

    async def send(etype: str, obj: dict) -> None:
        await response.write(encode(etype, obj))

    try:
        watch = api.store.watch(resource.key, namespace, accepts, None if (since is None or initial) else since)
    except Gone as exc:
        await send("ERROR", status_body(410, "Expired", str(exc)))
        await response.write_eof()
        return response
    try:
        if since is None or initial:
            initial_events = b"".join(encode("ADDED", obj) for obj in api.store.list(resource.key, namespace)
                                      if accepts(convert(resource, obj)))
            if initial_events:
                await response.write(initial_events)
            if initial:
                await send("BOOKMARK", {"kind": resource.kind, "apiVersion": resource.group_version, "metadata": {
                    "resourceVersion": str(api.store.rv), "annotations": {"k8s.io/initial-events-end": "true"}}})
        deadline = time.monotonic() + timeout
        while not api.closing:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                etype, obj = await asyncio.wait_for(watch.queue.get(), timeout=min(left, 5.0))
            except asyncio.TimeoutError:
                if bookmarks:
                    await send("BOOKMARK", {"kind": resource.kind, "apiVersion": resource.group_version,
                                            "metadata": {"resourceVersion": str(api.store.rv)}})
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
        api.store.unwatch(watch)
    try:
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response
