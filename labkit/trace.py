"""The trace: labkit's one data contract (``labkit.trace/v1``).

Every backend produces a :class:`Trace`; plots, self-checks and reports only read one.
This module loads and saves the JSON form, rejects malformed files with a message that
names the file and the field, and derives per-container :class:`Span` s, the one place
where timelines are computed. It stays one module (~630 lines) on purpose: it is the format
every backend writes and every view reads, its types, JSON, checks and spans together.

>>> trace = Trace(backend="sim", kubernetes_version="1.29.0")
>>> _ = trace.add_pod(Pod("web", containers=[ContainerInfo("proxy", "sidecar"), ContainerInfo("app", "app")]))
>>> _ = trace.add(Event(0.0, "Started", pod="web", container="proxy", attempt=0))
>>> _ = trace.add(Event(1.5, "Exited", pod="web", container="proxy", exit_code=0))
>>> [(s.container, s.start, s.end, s.exit_code) for s in trace.spans()]
[('proxy', 0.0, 1.5, 0)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import TraceError
from .objects import normal_stop_exit

SCHEMA = "labkit.trace/v1"
BACKENDS = ("sim", "kind", "cluster", "node", "replay")
ROLES = ("sidecar", "init", "app")
SOURCES = ("sim", "watch", "status", "event", "log")
CONTAINER_STATES = ("waiting", "running", "terminated")
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")

CONTAINER_EVENTS = frozenset({
    "Started", "Restarted", "PostStart", "PostStartDone", "StartupProbeSucceeded", "StartupProbeFailed",
    "LivenessProbeFailed", "StartupProbeRun", "ReadinessProbeRun", "LivenessProbeRun",
    "Ready", "NotReady", "PreStop", "SIGTERM", "Exited", "Killed", "ImagePullFailed",
})
POD_EVENTS = frozenset({"PodPhase", "PodReady", "PodNotReady", "DeleteRequested", "Deleted"})
WORKLOAD_EVENTS = frozenset({"JobComplete", "JobFailed", "DeploymentAvailable"})
EVENT_TYPES = CONTAINER_EVENTS | POD_EVENTS | WORKLOAD_EVENTS

# Keys an event may carry besides t/pod/container/type/source; anything else is kept
# in ``Event.extra`` and written back unchanged.
_EVENT_FIELDS = ("exit_code", "attempt", "phase", "reason", "message", "resolution_s", "object", "grace_period_seconds")


@dataclass(slots=True)
class Event:
    """One timed lifecycle event. ``t`` is seconds since the trace's origin."""

    t: float
    type: str
    pod: str | None = None
    container: str | None = None
    source: str = "sim"
    exit_code: int | None = None
    attempt: int | None = None
    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    resolution_s: float | None = None
    object: str | None = None
    grace_period_seconds: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_fields(cls, t: float, type: str, pod: str | None, container: str | None, source: str,
                    fields: dict[str, Any]) -> "Event":
        """An event from a recorder's flat ``fields``: known keys become attributes (None ones are left
        out), any other key goes to ``extra``."""
        if not fields:  # most of a simulation's events
            return cls(t, type, pod, container, source)
        known = {key: value for key, value in fields.items() if key in _EVENT_FIELDS and value is not None}
        extra = {key: value for key, value in fields.items() if key not in _EVENT_FIELDS}
        return cls(t, type, pod, container, source, extra=extra, **known)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"t": self.t, "pod": self.pod, "container": self.container, "type": self.type}
        for key in _EVENT_FIELDS:
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data.update(self.extra)
        data["source"] = self.source
        return data

    def __str__(self) -> str:
        who = "/".join(part for part in (self.object or self.pod, self.container) if part)
        details = ", ".join(f"{key}={getattr(self, key)}" for key in _EVENT_FIELDS
                            if key not in ("object",) and getattr(self, key) is not None)
        return f"{self.t:8.2f}s  {who:<40} {self.type}{f' ({details})' if details else ''}"


@dataclass(slots=True)
class ContainerInfo:
    """A container as declared: its name, role and which probes it has."""

    name: str
    role: str
    probes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "role": self.role}
        if self.probes:
            data["probes"] = list(self.probes)
        return data


@dataclass(slots=True)
class ContainerFinal:
    """A container's status at the end of the trace."""

    state: str
    restart_count: int = 0
    exit_code: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"restart_count": self.restart_count, "state": self.state}
        if self.exit_code is not None:
            data["exit_code"] = self.exit_code
        if self.reason is not None:
            data["reason"] = self.reason
        return data


@dataclass(slots=True)
class PodFinal:
    phase: str
    deleted: bool = False
    containers: dict[str, ContainerFinal] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "deleted": self.deleted,
                "containers": {name: c.to_dict() for name, c in self.containers.items()}}


@dataclass(slots=True)
class Pod:
    """A watched pod: its containers in declaration order (sidecars and init first)."""

    name: str
    namespace: str = "default"
    owner: dict[str, str] | None = None
    containers: list[ContainerInfo] = field(default_factory=list)
    final: PodFinal | None = None

    def container(self, name: str) -> ContainerInfo:
        for info in self.containers:
            if info.name == name:
                return info
        raise KeyError(f"pod {self.name} has no container {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "owner": self.owner,
            "containers": [c.to_dict() for c in self.containers],
            "final": self.final.to_dict() if self.final else None,
        }


@dataclass(slots=True)
class Span:
    """One running instance of a container: from ``Started`` to ``Exited``/``Killed``.

    ``started_at`` is when the container counted as started: running, its postStart hook
    returned (``PostStartDone``) and its startup probe passed, each where it has one (KEP-753;
    the kubelet runs postStart inside ``startContainer`` before anything else of the pod); ``end`` is None when it was still running when the trace
    ended. ``marks`` are the (t, type) events inside the span, such as SIGTERM.
    """

    pod: str
    container: str
    role: str
    attempt: int
    start: float
    started_at: float | None = None
    end: float | None = None
    end_type: str | None = None
    exit_code: int | None = None
    sigterm_at: float | None = None
    stop_signal: str | None = None
    marks: list[tuple[float, str]] = field(default_factory=list)
    ready: list[tuple[float, float | None]] = field(default_factory=list)
    # The API still showed the container ready after it exited, until this time: the kubelet
    # writes a deleted pod's status before it stops the containers and again once all have
    # stopped, nothing in between (SyncTerminatingPod; docs/timing.md). None: no such lag seen.
    ready_reported_until: float | None = None

    @property
    def stopped_by_kubelet(self) -> bool:
        """True when the kubelet asked the container to stop (SIGTERM) before it ended."""
        return self.sigterm_at is not None and self.end is not None

    @property
    def failed(self) -> bool:
        """A real failure: non-zero exit, except a sidecar's exit by its stop signal or the final
        SIGKILL during shutdown (``labkit.objects.normal_stop_exit``), which is normal.

        A sidecar stopped because its own liveness or startup probe failed is a failure too.
        """
        if self.exit_code in (None, 0):
            return False
        probe_failed = any(kind in ("LivenessProbeFailed", "StartupProbeFailed") for _, kind in self.marks)
        if self.role == "sidecar" and self.stopped_by_kubelet and normal_stop_exit(self.exit_code, self.stop_signal) \
                and not probe_failed:
            return False
        return True


@dataclass
class Trace:
    """A run's lifecycle: pods, their final status, and the events in time order.

    ``observed_until`` is how long the run was watched (seconds, the clock of ``t``): a
    stuck pod's trace goes on after its last event, and "nothing happened for 60 s" is part
    of what it shows. None when unknown; then the trace ends at its last event.
    """

    backend: str
    kubernetes_version: str
    feature_gates: dict[str, bool] = field(default_factory=dict)
    origin: str | None = None
    pods: list[Pod] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    observed_until: float | None = None

    # -- building -------------------------------------------------------------------
    def add_pod(self, pod: Pod) -> Pod:
        self.pods.append(pod)
        return pod

    def add(self, event: Event) -> Event:
        """Append an event; events must arrive in time order (ties keep arrival order)."""
        if self.events and event.t < self.events[-1].t:
            raise ValueError(f"event at t={event.t} added after t={self.events[-1].t}; traces are time-ordered")
        self.events.append(event)
        return event

    # -- reading --------------------------------------------------------------------
    def pod(self, name: str) -> Pod:
        for pod in self.pods:
            if pod.name == name:
                return pod
        raise KeyError(f"no pod {name!r} in the trace (pods: {', '.join(p.name for p in self.pods) or 'none'})")

    def select(self, type: str | Iterable[str] | None = None, *, pod: str | None = None,
               container: str | None = None, object: str | None = None) -> list[Event]:
        """The events matching every given filter, in time order."""
        types = {type} if isinstance(type, str) else set(type) if type is not None else None
        return [e for e in self.events
                if (types is None or e.type in types)
                and (pod is None or e.pod == pod)
                and (container is None or e.container == container)
                and (object is None or e.object == object)]

    def first(self, type: str, *, pod: str | None = None, container: str | None = None,
              object: str | None = None) -> Event | None:
        found = self.select(type, pod=pod, container=container, object=object)
        return found[0] if found else None

    @property
    def duration(self) -> float:
        """Seconds the trace covers: to its last event, or to ``observed_until`` when that is later."""
        last = self.events[-1].t if self.events else 0.0
        return max(last, self.observed_until) if self.observed_until is not None else last

    def spans(self, pod: str | None = None) -> list[Span]:
        """Per-container instances in pod order, then declaration order, then time."""
        by_pod: dict[str, list[Event]] = {}
        for event in self.events:  # one pass, not one per pod: traces may hold 1000s of pods
            if event.pod is not None and (pod is None or event.pod == pod):
                by_pod.setdefault(event.pod, []).append(event)
        result: list[Span] = []
        for p in self.pods:
            if pod is not None and p.name != pod:
                continue
            result.extend(_pod_spans(p, by_pod.get(p.name, [])))
        return result

    # -- JSON -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "backend": self.backend,
            "kubernetes_version": self.kubernetes_version,
            "feature_gates": dict(self.feature_gates),
            "origin": self.origin,
        }
        if self.observed_until is not None:
            data["observed_until"] = self.observed_until
        data.update(self.extra)
        data["pods"] = [p.to_dict() for p in self.pods]
        data["events"] = [e.to_dict() for e in self.events]
        return data

    def to_json(self, indent: int | None = 1) -> str:
        data = self.to_dict()
        return json.dumps(data) if indent is None else dumps_indented(data, indent)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<trace>") -> "Trace":
        return _parse(data, source)

    def __repr__(self) -> str:
        phases = ", ".join(f"{p.name}={p.final.phase if p.final else '?'}" for p in self.pods[:4])
        more = f", +{len(self.pods) - 4} more" if len(self.pods) > 4 else ""
        last = self.events[-1].t if self.events else 0.0
        watched = f", observed for {self.duration:.1f}s" if self.duration > last else ""
        return (f"<Trace {self.backend} k8s {self.kubernetes_version}: {len(self.pods)} pod(s) "
                f"[{phases}{more}], {len(self.events)} events over {last:.1f}s{watched}>")


def load_trace(path: str | Path) -> Trace:
    """Read a ``labkit.trace/v1`` JSON file; a malformed one raises :class:`TraceError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TraceError("no such file", source=str(path)) from None
    except OSError as exc:
        raise TraceError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError:
        raise TraceError("not a text file (expected UTF-8 JSON)", source=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", source=str(path)) from None
    return _parse(data, str(path))


def dumps_indented(data: Any, indent: int) -> str:
    """``json.dumps(data, indent=indent)``, the same text, made faster.

    With an indent, ``json`` uses its pure-Python encoder: a trace of 10,000 pods took
    seconds. Here only the nesting is laid out in Python; every object or list whose values
    are all scalars is encoded by the C encoder with the indent in its item separator, and a
    list of such objects (a trace's events) in one call, with a control character between
    items (never raw in its output: strings escape them) that is then replaced.
    """
    return _dumps(data, " " * indent, "\n")


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_ITEMS = json.JSONEncoder(separators=(",\x00", ": "))
_encoders: dict[str, json.JSONEncoder] = {}


def _dumps(value: Any, pad: str, newline: str) -> str:
    """``value`` laid out as ``json.dumps`` does at the level whose line break is ``newline``."""
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return _ITEMS.encode(value)
    if (kind is not dict and kind is not list) or not value:
        return json.dumps(value, indent=len(pad)).replace("\n", newline)  # no raw newline inside a JSON string
    inner = newline + pad
    values = value.values() if kind is dict else value
    if all(type(v) in _SCALAR_TYPES for v in values):
        encoder = _encoders.get(inner) or _encoders.setdefault(inner, json.JSONEncoder(separators=("," + inner, ": ")))
        text = encoder.encode(value)
        return f"{text[0]}{inner}{text[1:-1]}{newline}{text[-1]}"
    if kind is list and all(type(v) is dict and v and all(type(x) in _SCALAR_TYPES for x in v.values()) for v in value):
        fields = inner + pad
        text = _ITEMS.encode(value).replace("},\x00{", "\x01").replace(",\x00", "," + fields)  # [{"a": 1,\x00...},\x00{
        text = text.replace("\x01", f"{inner}}},{inner}{{{fields}")
        return f"[{inner}{{{fields}{text[2:-2]}{inner}}}{newline}]"
    if kind is list:
        return "[" + ",".join(inner + _dumps(v, pad, inner) for v in value) + newline + "]"
    if not all(type(key) is str for key in value):  # json's own rules for other keys
        return json.dumps(value, indent=len(pad)).replace("\n", newline)
    return "{" + ",".join(f"{inner}{_ITEMS.encode(k)}: {_dumps(v, pad, inner)}" for k, v in value.items()) + newline + "}"


# -- spans ------------------------------------------------------------------------------
def _pod_spans(pod: Pod, events: list[Event]) -> list[Span]:
    by_container: dict[str, list[Span]] = {c.name: [] for c in pod.containers}
    roles = {c.name: c.role for c in pod.containers}
    has_startup = {c.name: "startup" in c.probes for c in pod.containers}
    waiting_for: dict[str, set[str]] = {}   # what still holds each open span's "started"
    open_span: dict[str, Span] = {}
    # The container's `ready` flag as the API shows it. It outlives an instance: when the kubelet
    # restarts a sidecar within one sync, no status in between shows it exited, so the new
    # instance is ready from its start (prober_manager.go UpdatePodStatus: a running sidecar
    # without a readiness probe is ready) and no NotReady is ever reported.
    ready_now: dict[str, bool] = {}
    exited_ready: dict[str, Span] = {}  # an ended span the API still shows ready, until a NotReady or restart
    for event in events:
        name = event.container
        if name is None or name not in roles:
            continue
        if event.type in ("Ready", "NotReady"):
            ready_now[name] = event.type == "Ready"
        if event.type == "NotReady" and name in exited_ready:
            exited_ready.pop(name).ready_reported_until = event.t
        span = open_span.get(name)
        # Real backends report one transition from several sources (watch, status, event),
        # each with the instance's attempt: a second report of a start opens no new span, and
        # an event of another attempt does not touch the open one.
        if event.type == "Started" and event.attempt is not None and \
                any(s.attempt == event.attempt for s in by_container[name]):
            continue
        if event.type != "Started" and span is not None and event.attempt is not None \
                and event.attempt != span.attempt:
            continue
        if event.type == "Started":
            if span is not None:  # a start without a seen exit: close the old instance
                span.end = event.t
            if name in exited_ready:  # restarted within one sync: no status showed it not ready
                exited_ready.pop(name).ready_reported_until = event.t
            attempt = event.attempt if event.attempt is not None else len(by_container[name])
            span = Span(pod.name, name, roles[name], attempt, event.t,
                        started_at=None if has_startup[name] else event.t)
            waiting_for[name] = {"startup"} if has_startup[name] else set()
            if ready_now.get(name):
                span.ready.append((event.t, None))
            by_container[name].append(span)
            open_span[name] = span
            continue
        if span is None:
            continue
        if event.type in ("Exited", "Killed"):
            span.end, span.end_type = event.t, event.type
            span.exit_code = event.exit_code if event.exit_code is not None else (137 if event.type == "Killed" else None)
            if span.ready and span.ready[-1][1] is None:
                span.ready[-1] = (span.ready[-1][0], event.t)
                if ready_now.get(name):
                    exited_ready[name] = span
            del open_span[name]
        elif event.type in ("StartupProbeSucceeded", "PostStartDone"):
            waiting_for[name].discard("startup" if event.type == "StartupProbeSucceeded" else "postStart")
            if span.started_at is None and not waiting_for[name]:
                span.started_at = event.t
            span.marks.append((event.t, event.type))
        elif event.type == "Ready":
            if not span.ready or span.ready[-1][1] is not None:
                span.ready.append((event.t, None))
        elif event.type == "NotReady":
            if span.ready and span.ready[-1][1] is None:
                span.ready[-1] = (span.ready[-1][0], event.t)
        elif event.type == "SIGTERM":
            if span.sigterm_at is None:
                span.sigterm_at, span.stop_signal = event.t, event.extra.get("signal", "SIGTERM")
            span.marks.append((event.t, event.type))
        elif event.type == "PostStart":
            # The hook holds "started" until PostStartDone (a backend that cannot see the
            # hook reports neither event, and the container counts as started as before).
            waiting_for[name].add("postStart")
            if span.started_at == span.start and "startup" not in waiting_for[name]:
                span.started_at = None
            span.marks.append((event.t, event.type))
        elif event.type in ("PreStop", "StartupProbeFailed", "LivenessProbeFailed", "Restarted"):
            span.marks.append((event.t, event.type))
    return [span for c in pod.containers for span in by_container[c.name]]


# -- parsing and validation -------------------------------------------------------------
class _Reader:
    """Pulls typed fields out of parsed JSON, naming the field path on any mismatch."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str) -> TraceError:
        return TraceError(message, source=self.source, field=path or None)

    def get(self, obj: dict, key: str, path: str, types: tuple[type, ...], *, required: bool = True,
            allow_none: bool = False) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in obj:
            if required:
                raise self.fail(where, "missing")
            return None
        value = obj[key]
        if value is None and allow_none:
            return None
        if isinstance(value, bool) and bool not in types:
            raise self.fail(where, f"expected {_type_names(types)}, got {json.dumps(value)}")
        if not isinstance(value, types):
            raise self.fail(where, f"expected {_type_names(types)}, got {json.dumps(value)[:60]}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(where, f"expected a finite number, got {value}")
        return value

    def one_of(self, value: str, choices: Iterable[str], where: str) -> str:
        choices = tuple(choices)
        if value not in choices:
            raise self.fail(where, f"unknown value {value!r} (expected one of {', '.join(choices)})")
        return value


def _type_names(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true or false",
             dict: "an object", list: "a list"}
    return " or ".join(dict.fromkeys(names[t] for t in types))


def _parse(data: Any, source: str) -> Trace:
    r = _Reader(source)
    if not isinstance(data, dict):
        raise r.fail("", "a trace must be a JSON object")
    schema = r.get(data, "schema", "", (str,))
    if schema != SCHEMA:
        raise r.fail("schema", f"unsupported schema {schema!r} (expected {SCHEMA!r})")
    backend = r.one_of(r.get(data, "backend", "", (str,)), BACKENDS, "backend")
    version = r.get(data, "kubernetes_version", "", (str,))
    gates = r.get(data, "feature_gates", "", (dict,), required=False) or {}
    for name, value in gates.items():
        if not isinstance(value, bool):
            raise r.fail(f"feature_gates.{name}", f"expected true or false, got {json.dumps(value)}")
    origin = r.get(data, "origin", "", (str,), required=False, allow_none=True)
    pods = [_parse_pod(r, raw, f"pods[{i}]") for i, raw in enumerate(r.get(data, "pods", "", (list,)))]
    containers = {p.name: {c.name for c in p.containers} for p in pods}
    if len(containers) != len(pods):
        seen: set[str] = set()
        for i, p in enumerate(pods):
            if p.name in seen:
                raise r.fail(f"pods[{i}].name", f"duplicate pod {p.name!r}")
            seen.add(p.name)
    events = []
    last_t = -math.inf
    for i, raw in enumerate(r.get(data, "events", "", (list,))):
        event = _parse_event(r, raw, f"events[{i}]", containers)
        if event.t < last_t:
            raise r.fail(f"events[{i}].t", f"events must be sorted by t: {event.t} comes after {last_t}")
        last_t = event.t
        events.append(event)
    observed_until = r.get(data, "observed_until", "", (int, float), required=False, allow_none=True)
    if observed_until is not None:
        observed_until = float(observed_until)
        if observed_until < 0:
            raise r.fail("observed_until", f"seconds since the origin cannot be negative, got {observed_until}")
        if events and observed_until < events[-1].t:
            raise r.fail("observed_until", f"the trace was watched until {observed_until}, but its last event "
                                           f"is at t={events[-1].t}")
    known = {"schema", "backend", "kubernetes_version", "feature_gates", "origin", "observed_until", "pods", "events"}
    extra = {k: v for k, v in data.items() if k not in known}
    return Trace(backend, version, gates, origin, pods, events, extra, observed_until)


def _parse_pod(r: _Reader, raw: Any, path: str) -> Pod:
    if not isinstance(raw, dict):
        raise r.fail(path, "expected an object")
    name = r.get(raw, "name", path, (str,))
    namespace = r.get(raw, "namespace", path, (str,), required=False) or "default"
    owner = r.get(raw, "owner", path, (dict,), required=False, allow_none=True)
    if owner is not None:
        r.get(owner, "kind", f"{path}.owner", (str,))
        r.get(owner, "name", f"{path}.owner", (str,))
    containers = []
    for i, c in enumerate(r.get(raw, "containers", path, (list,))):
        where = f"{path}.containers[{i}]"
        if not isinstance(c, dict):
            raise r.fail(where, "expected an object")
        probes = r.get(c, "probes", where, (list,), required=False) or []
        containers.append(ContainerInfo(r.get(c, "name", where, (str,)),
                                        r.one_of(r.get(c, "role", where, (str,)), ROLES, f"{where}.role"),
                                        tuple(probes)))
    final_raw = r.get(raw, "final", path, (dict,), required=False, allow_none=True)
    final = None
    if final_raw is not None:
        where = f"{path}.final"
        phase = r.one_of(r.get(final_raw, "phase", where, (str,)), PHASES, f"{where}.phase")
        deleted = r.get(final_raw, "deleted", where, (bool,), required=False) or False
        finals = {}
        names = {c.name for c in containers}
        for cname, c in (r.get(final_raw, "containers", where, (dict,), required=False) or {}).items():
            cwhere = f"{where}.containers.{cname}"
            if cname not in names:
                raise r.fail(cwhere, f"container {cname!r} is not declared in {path}.containers")
            if not isinstance(c, dict):
                raise r.fail(cwhere, "expected an object")
            finals[cname] = ContainerFinal(
                state=r.one_of(r.get(c, "state", cwhere, (str,)), CONTAINER_STATES, f"{cwhere}.state"),
                restart_count=r.get(c, "restart_count", cwhere, (int,), required=False) or 0,
                exit_code=r.get(c, "exit_code", cwhere, (int,), required=False, allow_none=True),
                reason=r.get(c, "reason", cwhere, (str,), required=False, allow_none=True),
            )
        final = PodFinal(phase, deleted, finals)
    return Pod(name, namespace, owner, containers, final)


def _parse_event(r: _Reader, raw: Any, path: str, containers: dict[str, set[str]]) -> Event:
    if not isinstance(raw, dict):
        raise r.fail(path, "expected an object")
    t = float(r.get(raw, "t", path, (int, float)))
    if t < 0:
        raise r.fail(f"{path}.t", f"times are seconds since the origin and cannot be negative, got {t}")
    etype = r.one_of(r.get(raw, "type", path, (str,)), sorted(EVENT_TYPES), f"{path}.type")
    pod = r.get(raw, "pod", path, (str,), required=False, allow_none=True)
    container = r.get(raw, "container", path, (str,), required=False, allow_none=True)
    source = r.one_of(r.get(raw, "source", path, (str,)), SOURCES, f"{path}.source")
    if etype in CONTAINER_EVENTS:
        if pod is None or container is None:
            raise r.fail(path, f"a {etype} event needs both pod and container")
    elif etype in POD_EVENTS:
        if pod is None or container is not None:
            raise r.fail(path, f"a {etype} event needs a pod and container null")
    else:
        if r.get(raw, "object", path, (str,), required=False) is None:
            raise r.fail(f"{path}.object", f"a {etype} event must name its object, e.g. job/sidecar-job")
        if container is not None:
            raise r.fail(f"{path}.container", f"a {etype} event is about a workload and needs container null")
    if pod is not None and pod not in containers:
        raise r.fail(f"{path}.pod", f"pod {pod!r} is not listed in pods")
    if container is not None and container not in containers[pod]:
        raise r.fail(f"{path}.container", f"pod {pod!r} has no container {container!r}")
    if etype == "PodPhase":
        r.one_of(r.get(raw, "phase", path, (str,)), PHASES, f"{path}.phase")
    if etype in ("Exited", "Killed"):
        r.get(raw, "exit_code", path, (int,))
    values = {}
    for key in _EVENT_FIELDS:
        if key in raw and raw[key] is not None:
            expected = (int, float) if key == "resolution_s" else (int,) if key in ("exit_code", "attempt", "grace_period_seconds") else (str,)
            values[key] = r.get(raw, key, path, expected)
    known = {"t", "type", "pod", "container", "source", *_EVENT_FIELDS}
    extra = {k: v for k, v in raw.items() if k not in known}
    return Event(t, etype, pod, container, source, extra=extra, **values)
