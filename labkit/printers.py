"""What kubectl prints, computed from pod JSON the way kubectl's printers do (its
``pkg/printers``): the ``kubectl get pods`` table, the summary a person reads when a wait is
stuck, and the API's and kubectl's ways of writing time.

:func:`pod_row` computes a row from real pod JSON exactly as kubectl's printer does
(``printPod`` in ``pkg/printers/internalversion/printers.go``), and :class:`PodTable` prints
rows with kubectl's column layout, so every backend (the simulator from its own pods, a
cluster from the API) shows the same table:

>>> print(PodTable([("sidecar-job-7xk2p", "0/2", "Completed", 0, 42)]))
NAME                READY   STATUS      RESTARTS   AGE
sidecar-job-7xk2p   0/2     Completed   0          42s
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple

from .objects import condition_true, container_roles, is_sidecar


# -- time ------------------------------------------------------------------------------
def parse_time(text: str | None) -> float | None:
    """An API timestamp (``2025-05-21T10:00:05Z``, optionally with fractions) as epoch seconds."""
    if not text:
        return None
    value = str(text).strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def format_time(epoch: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds (a trace's ``origin``)."""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def human_duration(seconds: float) -> str:
    """kubectl's AGE text (apimachinery ``duration.HumanDuration``): 42s, 2m5s, 3h, 5d2h."""
    total = int(seconds)
    if total < -1:
        return "<invalid>"
    if total < 0:
        return "0s"
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        s = total % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = total // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


# -- kubectl get pods --------------------------------------------------------------------
class PodRow(NamedTuple):
    """One line of ``kubectl get pods``; ``age`` and ``last_restart_age`` are seconds."""

    name: str
    ready: str
    status: str
    restarts: int
    age: float
    last_restart_age: float | None = None

    def cells(self) -> list[str]:
        restarts = str(self.restarts)
        if self.restarts and self.last_restart_age is not None:
            restarts = f"{self.restarts} ({human_duration(self.last_restart_age)} ago)"
        return [self.name, self.ready, self.status, restarts, human_duration(self.age)]


class PodTable:
    """Pods as ``kubectl get pods`` prints them (NAME READY STATUS RESTARTS AGE).

    Rows may be :class:`PodRow` or plain tuples ``(name, "1/2", status, restarts, age_s)``.
    """

    HEADERS = ("NAME", "READY", "STATUS", "RESTARTS", "AGE")

    def __init__(self, rows: Iterable[Sequence[Any]] = (), namespace: str | None = None):
        self.rows = [row if isinstance(row, PodRow) else PodRow(*row) for row in rows]
        self.namespace = namespace

    @classmethod
    def from_pods(cls, pods: Iterable[dict], *, now: float | None = None, namespace: str | None = None) -> "PodTable":
        now = time.time() if now is None else now
        return cls([pod_row(pod, now=now) for pod in pods], namespace=namespace)

    def __iter__(self) -> Iterator[PodRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> PodRow:
        return self.rows[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PodTable) and self.rows == other.rows

    def row(self, name: str) -> PodRow:
        for row in self.rows:
            if row.name == name or row.name.startswith(name + "-"):
                return row
        raise KeyError(f"no pod {name!r} (pods: {', '.join(r.name for r in self.rows) or 'none'})")

    def __str__(self) -> str:
        if not self.rows:
            where = f" in {self.namespace} namespace" if self.namespace else ""
            return f"No resources found{where}."
        lines = [list(self.HEADERS)] + [row.cells() for row in self.rows]
        # kubectl's tabwriter: minwidth 6, padding 3; the last column is not padded.
        widths = [max(6, max(len(line[col]) for line in lines) + 3) for col in range(len(self.HEADERS) - 1)]
        return "\n".join("".join(cell.ljust(width) for cell, width in zip(line, widths)) + line[-1]
                         for line in lines)

    __repr__ = __str__


def pod_row(pod: dict, *, now: float | None = None) -> PodRow:
    """The ``kubectl get pods`` row of one pod, computed like kubectl's ``printPod``."""
    return pod_moments(pod).row(time.time() if now is None else now)


class PodMoments(NamedTuple):
    """A pod's row before the clock is read: its ages as the moments they count from (epoch
    seconds). Everything in it depends only on the pod object, so a server can keep it per
    resourceVersion (labkit/serve/tables.py) and only compute the ages per request."""

    name: str
    ready: str
    status: str
    restarts: int
    created: float | None
    last_restart: float | None

    def row(self, now: float) -> PodRow:
        age = now - self.created if self.created is not None else 0.0
        last_restart_age = now - self.last_restart if (self.restarts and self.last_restart is not None) else None
        return PodRow(self.name, self.ready, self.status, self.restarts, age, last_restart_age)


def pod_moments(pod: dict) -> PodMoments:
    """:class:`PodMoments` of one pod: kubectl's ``printPod`` rules, the one home of them."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    conditions = status.get("conditions") or []
    restarts = 0
    sidecar_restarts = 0
    total = len(spec.get("containers") or [])
    ready = 0
    last_restart: float | None = None
    last_sidecar_restart: float | None = None

    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total += sum(1 for c in init_specs.values() if is_sidecar(c))

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for index, cs in enumerate(init_statuses):
        restarts += int(cs.get("restartCount") or 0)
        finished = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished
        sidecar = is_sidecar(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += int(cs.get("restartCount") or 0)
            if finished is not None and (last_sidecar_restart is None or finished > last_sidecar_restart):
                last_sidecar_restart = finished
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if not terminated.get("reason"):
                if terminated.get("signal"):
                    reason = f"Init:Signal:{terminated['signal']}"
                else:
                    reason = f"Init:ExitCode:{terminated.get('exitCode', 0)}"
            else:
                reason = "Init:" + terminated["reason"]
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or condition_true(conditions, "Initialized"):
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            finished = parse_time(((cs.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            if finished is not None and (last_restart is None or finished > last_restart):
                last_restart = finished
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None and terminated.get("reason"):
                reason = terminated["reason"]
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{terminated.get('exitCode', 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if condition_true(conditions, "Ready") else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"

    return PodMoments(meta.get("name", ""), f"{ready}/{total}", reason, restarts,
                      parse_time(meta.get("creationTimestamp")), last_restart)


def pod_status_text(pod: dict) -> str:
    """The STATUS column of ``kubectl get pods`` for one pod (Init:0/1, PodInitializing, Completed, ...)."""
    return pod_moments(pod).status


# -- explaining a stuck wait -------------------------------------------------------------
def describe_pods(pods: Iterable[dict], events: Iterable[dict] = (), *, limit: int = 12,
                  origin: float | None = None) -> str:
    """What a person debugging a stuck wait looks at: conditions, container states, recent events.

    With ``origin`` (epoch seconds of a trace's t = 0) times read ``t=10.05 s``, as in the
    trace and its timeline, instead of API timestamps.
    """
    lines: list[str] = []
    for pod in pods:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        extra = " (being deleted)" if meta.get("deletionTimestamp") else ""
        lines.append(f"pod {meta.get('name')}: phase {status.get('phase', '?')}, "
                     f"kubectl status {pod_status_text(pod)}{extra}")
        conditions = []
        for c in status.get("conditions") or []:
            text = f"{c.get('type')}={c.get('status')}"
            why = ": ".join(part for part in (c.get("reason"), c.get("message")) if part)
            conditions.append(text + (f" ({why})" if why else ""))
        if conditions:
            lines.append("  conditions: " + "; ".join(conditions))
        roles = dict(container_roles(pod.get("spec") or {}))
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            lines.append(f"  {cs.get('name')} ({roles.get(cs.get('name'), 'app')}): {_container_state_text(cs, origin)}")
    if not lines:
        lines.append("no pods")
    recent = sorted(events, key=_event_time)[-limit:]
    if recent:
        lines.append("recent events:")
        for ev in recent:
            obj = ev.get("involvedObject") or ev.get("regarding") or {}
            where = f"{str(obj.get('kind', '')).lower()}/{obj.get('name', '')}"
            if obj.get("fieldPath"):
                where += f" [{obj['fieldPath']}]"
            count = f" (x{ev['count']})" if (ev.get("count") or 1) > 1 else ""
            at = f"{_trace_time(_event_time(ev), origin):<11}" if origin is not None else ""
            message = (ev.get("message") or ev.get("note") or "").strip()
            lines.append(f"  {at}{ev.get('type', '')} {ev.get('reason', '')} {where}"
                         f"{': ' + message if message else ''}{count}")
    return "\n".join(lines)


def _trace_time(epoch: float | None, origin: float) -> str:
    return "t=?" if epoch is None else f"t={epoch - origin:.2f} s"


def _container_state_text(cs: dict, origin: float | None = None) -> str:
    state = cs.get("state") or {}
    parts = []
    if "running" in state:
        started = state["running"].get("startedAt")
        since = _trace_time(parse_time(started), origin) if origin is not None else started or "?"
        parts.append(f"running since {since}")
    elif "terminated" in state:
        t = state["terminated"]
        parts.append(f"terminated, exit code {t.get('exitCode')} ({t.get('reason', '')})")
    elif "waiting" in state:
        w = state["waiting"]
        parts.append(f"waiting ({w.get('reason', '')}{': ' + w['message'] if w.get('message') else ''})")
    parts.append(f"started={str(bool(cs.get('started'))).lower()}, ready={str(bool(cs.get('ready'))).lower()}, "
                 f"restarts {cs.get('restartCount', 0)}")
    last = (cs.get("lastState") or {}).get("terminated")
    if last:
        parts.append(f"last exit code {last.get('exitCode')} ({last.get('reason', '')})")
    return ", ".join(parts)


def event_time(ev: dict) -> tuple[float | None, float]:
    """When an Event (core/v1 or events.k8s.io/v1) last happened, and how precisely: MicroTime
    fields first (``eventTime``, ``series.lastObservedTime``), then the whole-second timestamps.

    >>> event_time({"series": {"lastObservedTime": "2026-01-01T00:00:01.500000Z"}, "firstTimestamp": "2026-01-01T00:00:00Z"})
    (1767225601.5, 1e-06)
    >>> event_time({"lastTimestamp": "2026-01-01T00:00:02Z", "firstTimestamp": "2026-01-01T00:00:00Z"})
    (1767225602.0, 1.0)
    """
    if ev.get("eventTime"):
        return parse_time(ev["eventTime"]), 1e-6
    series = ev.get("series") or {}
    if series.get("lastObservedTime"):
        return parse_time(series["lastObservedTime"]), 1e-6
    for key in ("lastTimestamp", "firstTimestamp"):
        if ev.get(key):
            return parse_time(ev[key]), 1.0
    return parse_time((ev.get("metadata") or {}).get("creationTimestamp")), 1.0


def _event_time(ev: dict) -> float:
    return event_time(ev)[0] or 0.0
