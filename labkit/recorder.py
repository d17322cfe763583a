"""Recording a real cluster as a trace: the watch threads that feed a :class:`TraceBuilder`.

:class:`Recorder` lists and watches pods, Jobs, Deployments and Events of one namespace with the
``kubernetes`` client in background threads, so that it also works inside Jupyter's running
event loop, and hands every event, as the API server's JSON, to a
:class:`~labkit.trace_builder.TraceBuilder`, which holds every rule for what the events mean
(docs/trace.md, "Recording a real cluster"). This module is only the watching: list, watch
from the list's resourceVersion with bookmarks, list again when that version has expired,
resume from a saved version, stop. ``TraceBuilder`` is importable from here too, as every
recording makes one: ``from labkit.recorder import Recorder, TraceBuilder``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .trace_builder import TraceBuilder

__all__ = ["Recorder", "TraceBuilder"]


def _version_number(text: Any) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


class _WatchEnded(Exception):
    """The server ended a watch with an ERROR event."""


def _status_text(status: Any) -> str:
    if not isinstance(status, dict):
        return str(status)
    return f"{status.get('code')} {status.get('reason')}: {status.get('message')}"


class Recorder:
    """Watches pods, Jobs, Deployments and Events of one namespace into a TraceBuilder.

    Each kind is listed, then watched from the list's resourceVersion in a daemon thread with a
    short server-side timeout, resuming from the last resourceVersion seen (bookmarks included),
    so a lost connection is retried. When the server says that version has expired (a real one
    sends HTTP 200 and an ``ERROR`` event with a ``Status`` of code 410; HTTP 410 is handled too),
    the kind is listed again and the list compared with what the builder knows (docs/trace.md);
    ``relists`` says when, ``errors`` collects real trouble.
    ``stop()`` ends the watches (it closes their connections), waits for the threads and closes
    the API client.
    ``on_events`` is called (from a watch thread) after events were added.

    The client never rewrites the user's kubeconfig (``persist_config=False``: with an
    ``oidc`` or ``gcp`` auth provider a token refresh would otherwise save it), and the
    watch events stay raw JSON (``deserialize=False``): the builder reads only the JSON, and
    a client model that rejected an object would fail the watch on every retry.
    """

    WATCH_TIMEOUT_S = 5

    def __init__(self, builder: TraceBuilder, *, namespace: str, kubeconfig: str | None = None,
                 context: str | None = None, on_events: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time, watch_log: Callable[[float, str, dict], None] | None = None,
                 resume_from: dict[str, str] | None = None):
        self.builder = builder
        # kind -> resourceVersion to watch from instead of listing first (resuming a recording,
        # e.g. from a saved stream's last version; an expired one is listed again as usual)
        self.resume_from = dict(resume_from or {})
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        self.context = context
        self.on_events = on_events
        self.clock = clock
        self.watch_log = watch_log  # called with (arrival, kind, event) for every event, e.g. to save the stream
        self.errors: list[str] = []
        self.relists: list[str] = []  # watches that ended with an expired resourceVersion, and were listed again
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._streams: dict[str, Any] = {}
        self._streams_lock = threading.Lock()
        self._api = None
        self._first_list: dict[str, bool] = {}
        self._seen: dict[tuple[str, str], int] = {}   # (kind, name) -> the newest resourceVersion taken
        self._taken = 0                                 # how many object changes were taken so far
        self._seen_changed = threading.Condition()

    def start(self) -> "Recorder":
        from kubernetes import client, config

        self._api = config.new_client_from_config(config_file=self.kubeconfig, context=self.context,
                                                  persist_config=False)
        core, batch, apps = client.CoreV1Api(self._api), client.BatchV1Api(self._api), client.AppsV1Api(self._api)
        watches = [("Pod", core.list_namespaced_pod), ("Job", batch.list_namespaced_job),
                   ("Deployment", apps.list_namespaced_deployment), ("Event", core.list_namespaced_event)]
        self.builder.watching(self.clock)
        for kind, list_func in watches:
            thread = threading.Thread(target=self._watch, args=(kind, list_func), daemon=True,
                                      name=f"labkit-watch-{kind.lower()}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """End every watch, wait for its thread (at most ``timeout``, default one watch period) and close the client."""
        with self._streams_lock:
            self._stop.set()
        self.builder.watching(None)
        deadline = time.monotonic() + (self.WATCH_TIMEOUT_S + 2.0 if timeout is None else timeout)
        # Again until the threads end: a watch whose request was still in flight at the first pass
        # has no response to shut yet, and would otherwise block until its server-side timeout.
        while self.running and time.monotonic() < deadline:
            self._shut_streams()
            for thread in self._threads:
                thread.join(min(0.05, max(0.0, deadline - time.monotonic())))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            self._note(f"watch threads still running after stop(): {', '.join(alive)}")
        self._threads = [t for t in self._threads if t.is_alive()]
        if self._api is not None:
            self._api.close()
            self._api = None

    def _shut_streams(self) -> None:
        with self._streams_lock:
            streams = list(self._streams.values())
        for stream in streams:
            stream.stop()  # kubernetes >= 33 also shuts the connection's socket, so a blocked read returns
            response = getattr(stream, "_resp", None)  # the response being read (kubernetes.watch keeps it)
            if response is not None and hasattr(response, "shutdown"):  # urllib3 >= 2.3, any HTTP version
                try:
                    response.shutdown()
                except Exception:  # it ended meanwhile
                    pass

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _watch(self, kind: str, list_func: Callable[..., Any]) -> None:
        """List, then watch from the list's resourceVersion, as client-go's reflector does; list again
        when the server says the resourceVersion has expired (docs/trace.md)."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        resource_version = self.resume_from.get(kind)  # None: list (again) before watching
        expiries = 0  # expired watches in a row with nothing in between
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list(kind, list_func)
                stream = watch.Watch()
                with self._streams_lock:  # stop() sets the flag under this lock: no watch opens after it
                    if self._stop.is_set():
                        return
                    self._streams[kind] = stream
                for event in stream.stream(list_func, self.namespace, resource_version=resource_version,
                                           allow_watch_bookmarks=True, timeout_seconds=self.WATCH_TIMEOUT_S,
                                           deserialize=False):
                    if self._stop.is_set():
                        stream.stop()
                        break
                    # the API server's JSON as it came: {"type": ..., "object": {...}}
                    raw = {"type": event.get("type"), "object": event.get("object") or {}}
                    if raw["type"] == "ERROR":  # a client that hands the ERROR event over
                        self._take(kind, raw)
                        raise _WatchEnded(_status_text(raw["object"]))
                    version = ((raw["object"].get("metadata") or {}).get("resourceVersion")
                               if isinstance(raw["object"], dict) else None)
                    if version:  # also a BOOKMARK's: the server says it is safe to resume from here
                        resource_version = version
                    expiries = 0
                    self._take(kind, raw)
                expiries = 0  # the server ended the watch (timeoutSeconds): resume from resource_version
                continue
            except ApiException as exc:
                if self._stop.is_set():
                    return
                if exc.status != 410:
                    self._note(f"watching {kind}s: {exc.status} {exc.reason}")
                    self._stop.wait(1.0)
                    continue
                ended = f"HTTP {exc.status} {exc.reason}"
            except KeyError as exc:
                if self._stop.is_set():
                    return
                if exc.args != ("raw_object",):
                    self._note(f"watching {kind}s: KeyError: {exc}")
                    self._stop.wait(1.0)
                    continue
                # kubernetes 34-37: with deserialize=False, Watch.stream meets an ERROR event (a real
                # server's expired resourceVersion: HTTP 200 and {"type": "ERROR", "object": Status 410})
                # and reads a key only its deserialising path sets.
                ended = "an ERROR event"
            except _WatchEnded as exc:
                if self._stop.is_set():
                    return
                ended = f"an ERROR event ({exc})"
            except Exception as exc:  # connection refused, cluster deleted under us, ...
                if self._stop.is_set():
                    return
                self._note(f"watching {kind}s: {type(exc).__name__}: {exc}")
                self._stop.wait(1.0)
                continue
            # The watch ended with an error (an expired resourceVersion, mostly): list again, which
            # also reports what changed meanwhile, and watch from the new list.
            if len(self.relists) < 50:  # normal on a real server (its watch cache forgets), not trouble
                self.relists.append(f"watching {kind}s from resourceVersion {resource_version} ended with {ended}; "
                                    "listed again")
            resource_version = None
            expiries += 1
            if expiries > 1:  # the fresh list's version expired at once too: do not spin
                self._stop.wait(1.0)

    def _list(self, kind: str, list_func: Callable[..., Any]) -> str:
        """List every object of ``kind`` into the builder; the list's resourceVersion, to watch from.

        The listed objects are compared with what the builder knows, so a transition that happened
        while no watch ran is still recorded (at the list's arrival), and a pod the list no longer
        has is reported deleted, as client-go's DeltaFIFO.Replace does."""
        import json

        response = list_func(self.namespace, _preload_content=False)
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        item_kind = str(body.get("kind") or f"{kind}List").removesuffix("List")
        api_version = body.get("apiVersion")
        items = []
        for item in body.get("items") or []:
            # a list's items carry no kind or apiVersion; add them so the logged stream replays
            item = {"kind": item_kind, **({"apiVersion": api_version} if api_version else {}), **item}
            items.append({"type": "ADDED" if self._first_list.get(kind, True) else "MODIFIED", "object": item})
        self._first_list[kind] = False
        items += self.builder.missing_from_list(kind, [i["object"] for i in items])
        for raw in items:
            self._take(kind, raw)
        return str((body.get("metadata") or {}).get("resourceVersion") or "")

    def _take(self, kind: str, raw: dict) -> None:
        arrival = self.clock()
        if self.watch_log is not None:
            self.watch_log(arrival, kind, raw)
        if self.builder.feed(arrival, raw, kind=kind) and self.on_events is not None:
            self.on_events()
        meta = raw["object"].get("metadata") if isinstance(raw.get("object"), dict) else None
        version = _version_number((meta or {}).get("resourceVersion"))
        if raw.get("type") in ("ADDED", "MODIFIED", "DELETED") and version is not None and meta.get("name"):
            with self._seen_changed:
                key = (kind, meta["name"])
                self._seen[key] = max(self._seen.get(key, -1), version)
                self._taken += 1
                self._seen_changed.notify_all()

    def has_taken(self, kind: str, name: str, resource_version: str | None, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until the watches have handed over ``kind``/``name`` at
        ``resource_version`` or a later one: an object just read with kubectl can be ahead of its
        watch. resourceVersions are compared as numbers, which etcd's revisions and the served
        simulator's are; one that is not a number is not waited for."""
        target = _version_number(resource_version)
        if target is None:
            return True
        with self._seen_changed:
            return self._seen_changed.wait_for(
                lambda: self._seen.get((kind, name), -1) >= target or self._stop.is_set(), timeout)

    def changes(self) -> int:
        """How many object changes the watches have handed over so far (for :meth:`wait_for_change`)."""
        with self._seen_changed:
            return self._taken

    def wait_for_change(self, after: int, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until a watched object changes after the ``after``-th
        change: a wait can look again when something changed instead of polling (kubectl wait
        watches too)."""
        with self._seen_changed:
            return self._seen_changed.wait_for(lambda: self._taken > after, timeout)

    def _note(self, message: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(message)
