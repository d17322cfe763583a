"""The served simulator's object store: what an API server keeps in etcd, in memory.

Every object lives under ``(resource, namespace, name)`` (namespace ``""`` for cluster-scoped
ones). Each write takes the next ``resourceVersion`` (one counter for everything, as etcd's
revision), is kept in a bounded history, and is handed to the watches that match it. A watch
that asks for a ``resourceVersion`` older than the history is told ``410 Gone``, as the API
server's watch cache does (``k8s.io/apiserver/pkg/storage/cacher/watch_cache.go``:
``errors.NewResourceExpired("too old resource version: %d (%d)")``).

Nothing here knows about HTTP or the simulator; :mod:`labkit.serve.world` writes into it and
the handlers (:mod:`labkit.serve.http`, :mod:`labkit.serve.watch`) read from it.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HISTORY = 10_000


class Gone(Exception):
    """A watch asked for a resourceVersion the history no longer holds."""

    def __init__(self, asked: int, oldest: int):
        self.asked, self.oldest = asked, oldest
        super().__init__(f"too old resource version: {asked} ({oldest})")


@dataclass
class Watch:
    """One client's watch: the events that match ``accepts`` are queued for it."""

    resource: str
    namespace: str | None
    accepts: Callable[[dict], bool]
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def offer(self, resource: str, namespace: str, etype: str, obj: dict, old: dict | None) -> None:
        if resource != self.resource or (self.namespace is not None and namespace != self.namespace):
            return
        now, before = self.accepts(obj), old is not None and self.accepts(old)
        # A selector watch sees an object leave (DELETED) or enter (ADDED) its selection,
        # as the watch cache's filter does (cacheWatcher.convertToWatchEvent).
        if etype == "DELETED":
            if before or now:
                self.queue.put_nowait((etype, obj))
        elif now and before:
            self.queue.put_nowait((etype, obj))
        elif now:
            self.queue.put_nowait(("ADDED", obj))
        elif before:
            self.queue.put_nowait(("DELETED", obj))


class Store:
    """Objects by (resource, namespace, name), one resourceVersion counter, watch fan-out."""

    def __init__(self, history: int = HISTORY):
        self.rv = 1
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.history: deque[tuple[int, str, str, str, dict, dict | None]] = deque(maxlen=history)
        self.watches: list[Watch] = []

    # -- reading ---------------------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> dict | None:
        return self.objects.get((resource, namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        found = [obj for (res, ns, _), obj in self.objects.items()
                 if res == resource and (namespace is None or ns == namespace)]
        found.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return found

    @property
    def oldest(self) -> int:
        """The oldest resourceVersion a watch may start after."""
        return self.history[0][0] - 1 if self.history else self.rv

    # -- writing ---------------------------------------------------------------------------
    def put(self, resource: str, obj: dict) -> dict:
        """Create or replace ``obj`` (its metadata names it); returns the stored object."""
        meta = obj["metadata"]
        key = (resource, meta.get("namespace", ""), meta["name"])
        old = self.objects.get(key)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self.objects[key] = obj
        self._publish("MODIFIED" if old is not None else "ADDED", resource, key[1], obj, old)
        return obj

    def remove(self, resource: str, namespace: str, name: str) -> dict | None:
        old = self.objects.pop((resource, namespace, name), None)
        if old is None:
            return None
        self.rv += 1
        gone = copy.copy(old)
        gone["metadata"] = {**old["metadata"], "resourceVersion": str(self.rv)}
        self._publish("DELETED", resource, namespace, gone, old)
        return gone

    def _publish(self, etype: str, resource: str, namespace: str, obj: dict, old: dict | None) -> None:
        self.history.append((self.rv, resource, namespace, etype, obj, old))
        for watch in self.watches:
            watch.offer(resource, namespace, etype, obj, old)

    # -- watching ----------------------------------------------------------------------------
    def watch(self, resource: str, namespace: str | None, accepts: Callable[[dict], bool],
              since: int | None) -> Watch:
        """A watch from ``since`` (replaying the history after it); None: from now on."""
        watch = Watch(resource, namespace, accepts)
        if since is not None:
            if since < self.oldest:   # watchCache: resourceVersion < oldest-1 -> "(oldest-1)"
                raise Gone(since, self.oldest)
            for rv, res, ns, etype, obj, old in self.history:
                if rv > since:
                    watch.offer(res, ns, etype, obj, old)
        self.watches.append(watch)
        return watch

    def unwatch(self, watch: Watch) -> None:
        if watch in self.watches:
            self.watches.remove(watch)


def get_path(obj: Any, path: str) -> Any:
    """``metadata.name`` of a dict, or None when a step is missing."""
    for part in path.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj
