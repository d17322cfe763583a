"""Turning a real API server's watch events into a ``labkit.trace/v1`` trace: every rule of the recorder.

:class:`TraceBuilder` is pure: it takes ``(arrival_time, watch_event)`` pairs, where the watch
event is the API server's JSON (``{"type": "MODIFIED", "object": {...}}``), and turns status
changes into trace events. It needs no cluster, so it is tested with recorded and hand-written
watch streams (tests/data/watch); :class:`labkit.recorder.Recorder` is the watch threads that
feed it from a live cluster.

Each transition may be reported from several sources, and each is kept as its own event
(docs/trace.md): ``watch`` is when the client saw the update (sub-second, but after the kubelet's
status sync), ``status`` is the container's own ``startedAt``/``finishedAt`` (whole seconds,
``resolution_s`` 1.0), ``event`` is a Kubernetes Event (whole seconds). Every container event
carries the ``attempt`` of the instance it belongs to, so the reports of one start line up.

What is inferred, and why (docs/trace.md, "Recording a real cluster"):

- Container runs come from the container statuses first: ``Started``/``Restarted`` from each run's
  ``startedAt`` and ``restartCount``, ``Exited``/``Killed`` from ``state``/``lastState.terminated``.
  The kubelet's Events are extra detail only: its recorder (client-go tools/record) drops a pod's
  Events after a burst of 25 (then one per 300 s) and combines similar messages after 10, so a
  restart-heavy pod loses them. A ``Started`` Event is tied to the run whose status start it
  matches, not to its ``count`` (a restarted kubelet counts from 1 again).
- ``Killed`` is an exit code of 137 (128 + SIGKILL), the reason ``OOMKilled`` or a terminated
  state's ``signal`` 9; a process that calls ``exit 137`` itself would be counted as killed too.
- ``SIGTERM`` (the stop signal: ``signal`` names it when the status's ``stopSignal`` or the
  pod's ``lifecycle.stopSignal`` says another) comes from the kubelet's ``Killing`` Event, in its
  plain or "(combined from similar events): " form; without one there is none. ``killContainer``
  (pkg/kubelet/kuberuntime/kuberuntime_container.go) records that Event, then runs the
  preStop hook, then (1.29+, sidecars only) waits for the containers that must stop first,
  then calls ``StopContainer``, which sends the stop signal. So: a container without a
  preStop hook gets SIGTERM at the Event's time; one with a preStop hook gets ``PreStop``
  there (its SIGTERM cannot be seen); when the pod stops ("Stopping container ...") with
  ordered termination, a sidecar's SIGTERM is the later of the Event and the end of every app
  container (and every later-declared sidecar) that was still running. ``Killing`` messages that name a failed liveness or startup probe
  also give ``LivenessProbeFailed``/``StartupProbeFailed``.
- ``Unhealthy`` Events (one per failed probe run, not the failure threshold) become
  ``StartupProbeRun``/``ReadinessProbeRun``/``LivenessProbeRun`` with reason ``Unhealthy``.

One module (~640 lines) on purpose: it holds every rule for turning API JSON into trace events
(above), each beside the state it reads, and the rules read as one list.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .images import stop_signal as image_stop_signal
from .printers import event_time, format_time, parse_time
from .objects import condition_true, container_role
from .trace import ContainerFinal, ContainerInfo, Event, Pod, PodFinal, Trace

# Tie-breaking for events at the same time: deletion first, then container events (by attempt,
# then by their place in a container's life), then pod status, then workloads.
_GROUP = {"DeleteRequested": 0, "PodPhase": 2, "PodReady": 2, "PodNotReady": 2, "Deleted": 2,
          "JobComplete": 3, "JobFailed": 3, "DeploymentAvailable": 3}
_RANK = {"Started": 0, "Restarted": 0, "PostStart": 1, "ImagePullFailed": 1, "StartupProbeRun": 1,
         "ReadinessProbeRun": 1, "LivenessProbeRun": 1, "StartupProbeSucceeded": 2, "Ready": 3,
         "StartupProbeFailed": 4, "LivenessProbeFailed": 4, "NotReady": 5, "PreStop": 6, "SIGTERM": 7,
         "Exited": 8, "Killed": 8}
_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
_FIELD_PATH = re.compile(r"^spec\.(initContainers|containers)\{(?P<name>[^}]+)\}$")
# The kubelet's event recorder (client-go tools/record EventAggregator) turns the 10th distinct message
# of one reason about one pod within 10 minutes into an Event whose message has this prefix; later ones
# update that Event's message and count, but not its involvedObject.fieldPath.
_COMBINED = "(combined from similar events): "
# The container a kubelet message names (pkg/kubelet/kuberuntime: killContainer's "Stopping container
# %s", computePodActions' "Container %s failed liveness probe, will be restarted" and the like; "Started
# container %s" before the kubelet said "Container started").
_NAMED = re.compile(r"^(?:Stopping container (?P<stopping>\S+)$|Container (?P<container>\S+) "
                    r"(?:failed|definition changed|resize)|Started container (?P<started>\S+)$)")
# A container's Started Event is recorded right after the runtime started it; its status startedAt is
# the start truncated to the second: the Event belongs to the instance whose start is this close.
_START_EVENT_WINDOW_S = (-1.0, 2.0)
# Events from before the recorder started are history, not this run (status times are
# truncated to whole seconds, hence the margin).
_SINCE_MARGIN_S = 2.0


@dataclass
class _Raw:
    when: float
    type: str
    pod: str | None
    container: str | None
    source: str
    fields: dict[str, Any]
    attempt: int
    seq: int

    def key(self) -> tuple:
        group = _GROUP.get(self.type, 1)
        return (self.when, group, self.attempt if group == 1 else 0, _RANK.get(self.type, 4), self.seq)


@dataclass
class _Instance:
    watch_started: bool = False
    status_started: bool = False
    ended: bool = False


@dataclass
class _Container:
    name: str
    role: str
    has_startup: bool = False
    has_prestop: bool = False
    instances: dict[int, _Instance] = field(default_factory=dict)
    current: int = 0
    started: bool = False
    ready: bool | None = None
    waiting_reason: str | None = None
    stop_signal: str | None = None  # the effective stop signal, when the API says it


@dataclass
class _PodState:
    info: Pod
    uid: str | None
    containers: dict[str, _Container]
    phase: str | None = None
    ready: bool | None = None
    deletion_seen: bool = False
    deleted: bool = False
    last: dict = field(default_factory=dict)


@dataclass
class _StartReport:
    """A container's Started Event, tied to an instance when the trace is taken (its count is not
    the attempt: the kubelet's recorder drops and combines Events, and restarts with an empty cache)."""

    when: float
    pod: str
    container: str
    count: int
    combined: bool
    fields: dict
    seq: int


@dataclass
class _Kill:
    """A sidecar's Killing Event waiting for the containers that must stop before it."""

    when: float
    pod: str
    container: str
    attempt: int
    message: str
    resolution: float
    signal: dict = field(default_factory=dict)  # {"signal": name} when the stop signal is not SIGTERM


def containers_of(pod: dict) -> list[ContainerInfo]:
    """The pod's containers in declaration order with their role and probes."""
    spec = pod.get("spec") or {}
    result = []
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            result.append(ContainerInfo(container.get("name", ""), container_role(group, container),
                                        _probes(container)))
    return result


def _probes(container: dict) -> tuple[str, ...]:
    return tuple(kind for kind in ("startup", "readiness", "liveness") if container.get(f"{kind}Probe"))


def owner_of(pod: dict) -> dict | None:
    """The workload a pod belongs to (docs/trace.md): a Deployment's pod names the Deployment, with its
    ReplicaSet as ``via``, as the simulator does. The Deployment's name is the ReplicaSet's without the
    ``-<pod-template-hash>`` the Deployment controller appends (pkg/controller/deployment/sync.go)."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if not ref.get("controller", True):
            continue
        kind, name = ref.get("kind", ""), ref.get("name", "")
        template_hash = (meta.get("labels") or {}).get("pod-template-hash")
        if kind == "ReplicaSet" and template_hash and name.endswith("-" + template_hash):
            return {"kind": "Deployment", "name": name[: -len(template_hash) - 1],
                    "via": {"kind": "ReplicaSet", "name": name}}
        return {"kind": kind, "name": name}
    return None


class TraceBuilder:
    """Turns watch events of one namespace into a :class:`~labkit.trace.Trace`.

    ``since`` (epoch seconds) drops what happened before the recording began.
    ``ordered_termination`` says whether sidecars are stopped after the app containers
    (1.29+); by default it is read from the version and gates.

    A trace also says how long it was watched (``observed_until``): while a live watch feeds
    the builder (:meth:`watching`), until the moment the trace is taken; after the watch
    stopped, until then; fed from a recording, until the last update that arrived.

    ``served_simulator`` (``{"server_version": ..., "pace": ...}``) says the server is labkit's
    served simulator (docs/trace.md): the trace is marked so, and its ``t`` counts simulated
    seconds, ``pace`` per wall-clock second (wall = origin + t / pace), with the status times'
    whole wall-clock second worth ``pace`` simulated seconds of ``resolution_s``.
    """

    def __init__(self, backend: str = "kind", kubernetes_version: str = "", feature_gates: dict | None = None,
                 *, ordered_termination: bool | None = None, since: float | None = None,
                 served_simulator: dict | None = None):
        self.backend = backend
        self.served_simulator = dict(served_simulator) if served_simulator else None
        self.pace = float((served_simulator or {}).get("pace") or 1.0)
        self.kubernetes_version = kubernetes_version
        self.feature_gates = dict(feature_gates or {})
        if ordered_termination is None:
            ordered_termination = _ordered_termination(kubernetes_version, self.feature_gates)
        self.ordered_termination = ordered_termination
        self.since = since
        self._lock = threading.RLock()
        self._raw: list[_Raw] = []
        self._pods: dict[str, _PodState] = {}
        self._order: list[str] = []
        self._workload_conditions: dict[str, set[str]] = {}
        self._event_counts: dict[str, int] = {}
        self._kills: list[_Kill] = []
        self._start_reports: list[_StartReport] = []
        self._early_events: dict[str, list[dict]] = {}
        self._seq = 0
        self._clock: Callable[[], float] | None = None
        self._watched_until: float | None = None  # epoch seconds

    def watching(self, clock: Callable[[], float] | None) -> None:
        """A live watch feeds this builder from now on (``clock()`` is its time); None: it stopped now."""
        with self._lock:
            if clock is None and self._clock is not None:
                self._seen(self._clock())
            self._clock = clock

    def _seen(self, when: float) -> None:
        self._watched_until = when if self._watched_until is None else max(self._watched_until, when)

    # -- input ------------------------------------------------------------------------
    def feed(self, arrival: float, event: dict, *, kind: str | None = None) -> int:
        """Take one watch event seen at ``arrival`` (epoch seconds); returns how many events it added."""
        obj = event.get("object") or {}
        kind = kind or obj.get("kind")
        etype = event.get("type", "MODIFIED")
        if etype in ("BOOKMARK", "ERROR"):
            with self._lock:
                self._seen(arrival)
            return 0
        with self._lock:
            self._seen(arrival)
            before = len(self._raw) + len(self._kills) + len(self._start_reports)
            if kind == "Pod":
                self._pod(arrival, etype, obj)
            elif kind == "Job":
                self._workload(arrival, "job", obj, {"Complete": "JobComplete", "Failed": "JobFailed"})
            elif kind == "Deployment":
                self._workload(arrival, "deployment", obj, {"Available": "DeploymentAvailable"})
            elif kind == "Event":
                self._k8s_event(obj)
            return len(self._raw) + len(self._kills) + len(self._start_reports) - before

    def missing_from_list(self, kind: str, listed: list[dict]) -> list[dict]:
        """DELETED watch events for the pods a fresh list no longer has: they were deleted while no
        watch ran (client-go's DeltaFIFO.Replace reports them so too), with their last known state."""
        if kind != "Pod":
            return []
        names = {(obj.get("metadata") or {}).get("name") for obj in listed}
        with self._lock:
            return [{"type": "DELETED", "object": state.last} for name, state in self._pods.items()
                    if name not in names and not state.deleted and state.last]

    def feed_all(self, stream: Iterable[tuple[float, dict]]) -> "TraceBuilder":
        for arrival, event in stream:
            self.feed(arrival, event)
        return self

    def _emit(self, when: float | None, type: str, pod: str | None, container: str | None, source: str,
              *, attempt: int = 0, **fields: Any) -> None:
        if when is None:
            return
        if self.since is not None and when < self.since - _SINCE_MARGIN_S:
            return
        if source in ("status", "event") and "resolution_s" not in fields:
            fields["resolution_s"] = 1.0
        if container is not None:
            fields["attempt"] = attempt
        self._seq += 1
        self._raw.append(_Raw(when, type, pod, container, source, fields, attempt, self._seq))

    # -- pods -------------------------------------------------------------------------
    def _pod(self, arrival: float, etype: str, pod: dict) -> None:
        meta = pod.get("metadata") or {}
        name = meta.get("name")
        if not name:
            return
        state = self._pods.get(name)
        if state is None or (meta.get("uid") and state.uid and meta.get("uid") != state.uid):
            infos = containers_of(pod)
            info = Pod(name, meta.get("namespace", "default"), owner_of(pod), infos)
            specs = {c.get("name"): c for c in (pod.get("spec", {}).get("initContainers") or [])
                     + (pod.get("spec", {}).get("containers") or [])}
            containers = {}
            for c in infos:
                spec = specs.get(c.name) or {}
                lifecycle = spec.get("lifecycle") or {}
                # lifecycle.stopSignal (1.33+, gate ContainerStopSignals; the API server drops it without),
                # else the image's STOPSIGNAL, which the runtime uses and the status reports only with that gate
                containers[c.name] = _Container(c.name, c.role, "startup" in c.probes, bool(lifecycle.get("preStop")),
                                                stop_signal=lifecycle.get("stopSignal")
                                                or image_stop_signal(spec.get("image") or ""))
            if state is None:
                self._order.append(name)
            state = _PodState(info, meta.get("uid"), containers)
            self._pods[name] = state
        self._pod_update(arrival, state, pod)
        for early in self._early_events.pop(name, []):
            self._k8s_event(early)
        if etype == "DELETED" and not state.deleted:
            state.deleted = True
            self._emit(arrival, "Deleted", name, None, "watch")

    def _pod_update(self, arrival: float, state: _PodState, pod: dict) -> None:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        name = state.info.name
        if meta.get("deletionTimestamp") and not state.deletion_seen:
            state.deletion_seen = True
            grace = meta.get("deletionGracePeriodSeconds")
            self._emit(arrival, "DeleteRequested", name, None, "watch", grace_period_seconds=grace)
            deadline = parse_time(meta["deletionTimestamp"])
            if deadline is not None and grace is not None:
                # deletionTimestamp is the request time plus the grace period (simulated seconds
                # on a served simulator, which passes pace of them per wall-clock second).
                self._emit(deadline - grace / self.pace, "DeleteRequested", name, None, "status",
                           grace_period_seconds=grace)
        phase = status.get("phase")
        if phase and phase != state.phase:
            state.phase = phase
            self._emit(arrival, "PodPhase", name, None, "watch", phase=phase)
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            self._container_update(arrival, state, cs)
        ready = condition_true(status.get("conditions"), "Ready")
        if ready and state.ready is not True:
            self._emit(arrival, "PodReady", name, None, "watch")
        elif not ready and state.ready is True:
            self._emit(arrival, "PodNotReady", name, None, "watch")
        state.ready = ready
        state.last = pod

    def _container_update(self, arrival: float, state: _PodState, cs: dict) -> None:
        name = cs.get("name", "")
        c = state.containers.get(name)
        if c is None:  # a status without a spec entry (not seen from the API server)
            c = state.containers[name] = _Container(name, "app")
        attempt = int(cs.get("restartCount") or 0)
        if cs.get("stopSignal"):  # the effective stop signal, image STOPSIGNAL included (1.33+, ContainerStopSignals)
            c.stop_signal = cs["stopSignal"]
        current = cs.get("state") or {}
        last = (cs.get("lastState") or {}).get("terminated")
        # lastState is the previous instance, except in restart back-off, where the newest
        # (exited) instance moved there and state is waiting (kubelet's
        # convertToAPIContainerStatuses); restartCount is always the newest instance's attempt.
        last_attempt = attempt if "waiting" in current else attempt - 1
        if last and last_attempt >= 0:
            self._ended(arrival, state, c, last_attempt, last)
        if "running" in current:
            self._began(arrival, state, c, attempt, (current["running"] or {}).get("startedAt"), seen_now=True)
        elif "terminated" in current:
            term = current["terminated"] or {}
            self._began(arrival, state, c, attempt, term.get("startedAt"), seen_now=True)
            self._ended(arrival, state, c, attempt, term)
        waiting = current.get("waiting") if "waiting" in current else None
        reason = (waiting or {}).get("reason")
        if reason in _PULL_FAILURES and c.waiting_reason not in _PULL_FAILURES:
            self._emit(arrival, "ImagePullFailed", state.info.name, name, "watch", attempt=attempt,
                       reason=reason, message=(waiting or {}).get("message"))
        c.waiting_reason = reason
        started = bool(cs.get("started"))
        if c.has_startup and started and not c.started and "running" in current:
            self._emit(arrival, "StartupProbeSucceeded", state.info.name, name, "watch", attempt=attempt)
        c.started = started
        ready = bool(cs.get("ready"))
        if ready and c.ready is not True:
            self._emit(arrival, "Ready", state.info.name, name, "watch", attempt=attempt)
        elif not ready and c.ready is True:
            self._emit(arrival, "NotReady", state.info.name, name, "watch", attempt=attempt)
        c.ready = ready

    def _began(self, arrival: float, state: _PodState, c: _Container, attempt: int, started_at: str | None,
               *, seen_now: bool) -> None:
        inst = c.instances.setdefault(attempt, _Instance())
        pod = state.info.name
        c.current = max(c.current, attempt)
        if not inst.status_started and started_at:
            inst.status_started = True
            self._started(parse_time(started_at), pod, c.name, "status", attempt)
        if seen_now and not inst.watch_started and not inst.ended:
            inst.watch_started = True
            self._started(arrival, pod, c.name, "watch", attempt)

    def _started(self, when: float | None, pod: str, container: str, source: str, attempt: int) -> None:
        self._emit(when, "Started", pod, container, source, attempt=attempt)
        if attempt > 0:
            self._emit(when, "Restarted", pod, container, source, attempt=attempt)

    def _ended(self, arrival: float, state: _PodState, c: _Container, attempt: int, term: dict) -> None:
        inst = c.instances.setdefault(attempt, _Instance())
        if inst.ended:
            return
        if not inst.status_started and term.get("startedAt"):  # an instance we never saw running
            inst.status_started = True
            self._started(parse_time(term["startedAt"]), state.info.name, c.name, "status", attempt)
        inst.ended = True
        code = int(term.get("exitCode", 0) or 0)
        reason = term.get("reason")
        killed = code == 137 or reason == "OOMKilled" or term.get("signal") == 9
        etype = "Killed" if killed else "Exited"
        self._emit(parse_time(term.get("finishedAt")), etype, state.info.name, c.name, "status",
                   attempt=attempt, exit_code=code, reason=reason)
        if inst.watch_started:
            self._emit(arrival, etype, state.info.name, c.name, "watch", attempt=attempt, exit_code=code,
                       reason=reason)

    # -- workloads --------------------------------------------------------------------
    def _workload(self, arrival: float, kind: str, obj: dict, wanted: dict[str, str]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            return
        ref = f"{kind}/{name}"
        true_now = {c.get("type") for c in (obj.get("status") or {}).get("conditions") or []
                    if c.get("status") == "True"}
        before = self._workload_conditions.get(ref, set())
        for condition, etype in wanted.items():
            if condition in true_now and condition not in before:
                self._emit(arrival, etype, None, None, "watch", object=ref)
        self._workload_conditions[ref] = true_now

    # -- Kubernetes Events ------------------------------------------------------------
    def _k8s_event(self, ev: dict) -> None:
        meta = ev.get("metadata") or {}
        key = meta.get("uid") or meta.get("name") or ""
        count = int(ev.get("count") or (ev.get("series") or {}).get("count") or 1)
        if count <= self._event_counts.get(key, 0):
            return
        self._event_counts[key] = count
        obj = ev.get("involvedObject") or ev.get("regarding") or {}
        if obj.get("kind") != "Pod":
            return
        state = self._pods.get(obj.get("name", ""))
        if state is None:  # its pod's watch has not caught up yet: replay it when the pod shows up
            self._event_counts.pop(key, None)
            self._early_events.setdefault(obj.get("name", ""), []).append(ev)
            return
        reason, message = ev.get("reason", ""), (ev.get("message") or ev.get("note") or "").strip()
        combined = message.startswith(_COMBINED)
        said = message[len(_COMBINED):] if combined else message
        named = _NAMED.match(said)
        named = next((n for n in named.groups() if n), None) if named else None
        match = _FIELD_PATH.match(obj.get("fieldPath") or "")
        # A combined Event keeps the fieldPath of the first message it combined: only a message that names
        # its container says which one it is about (a probe's "Liveness probe failed: ..." does not).
        if combined:
            name = named
        else:
            name = match.group("name") if match else None
        if name not in state.containers:
            return
        c = state.containers[name]
        when, resolution = event_time(ev)
        pod = state.info.name
        common = {"reason": reason, "message": message, "resolution_s": resolution}
        if reason == "Started":
            if when is not None:
                self._seq += 1
                self._start_reports.append(_StartReport(when, pod, c.name, count, combined, common, self._seq))
            return
        # Which run the Event is about: the one that had started by then (its status start seen)
        attempt = c.current if when is None else self._attempt_at(pod, c.name, when, c.current)
        if reason == "Unhealthy":
            probe = said.split(" ", 1)[0].lower()
            if probe in ("startup", "readiness", "liveness"):
                self._emit(when, f"{probe.capitalize()}ProbeRun", pod, c.name, "event", attempt=attempt, **common)
        elif reason == "Failed" and said.startswith("Failed to pull image"):
            self._emit(when, "ImagePullFailed", pod, c.name, "event", attempt=attempt, **common)
        elif reason == "Killing":
            if "failed liveness probe" in said:
                self._emit(when, "LivenessProbeFailed", pod, c.name, "event", attempt=attempt, **common)
            elif "failed startup probe" in said:
                self._emit(when, "StartupProbeFailed", pod, c.name, "event", attempt=attempt, **common)
            signal = {"signal": c.stop_signal} if c.stop_signal and c.stop_signal != "SIGTERM" else {}
            if c.has_prestop:
                self._emit(when, "PreStop", pod, c.name, "event", attempt=attempt, **common)
            elif (c.role == "sidecar" and self.ordered_termination and when is not None
                  and said.startswith("Stopping container")):  # the pod is stopping, not a restart
                self._kills.append(_Kill(when, pod, c.name, attempt, message, resolution, signal))
            else:
                self._emit(when, "SIGTERM", pod, c.name, "event", attempt=attempt, **common, **signal)

    def _attempt_at(self, pod: str, container: str, when: float, default: int) -> int:
        """The run of ``container`` that had started by ``when`` (by its status start), else ``default``.
        Both are whole seconds: a run that started in the second of ``when`` counts only when no
        earlier one did (after a kill, the next run may start within the same second)."""
        started = sorted((r.when, r.attempt) for r in self._raw if r.pod == pod and r.container == container
                         and r.type == "Started" and r.source == "status" and r.when <= when)
        before = [s for s in started if s[0] < when]
        return (before or started)[-1][1] if started else default

    def _event_starts(self) -> list[_Raw]:
        """Started (and Restarted) from the kubelet's Started Events, each tied to the run whose status
        start is within _START_EVENT_WINDOW_S of it. A plain Event's count counts the starts (its recorder
        counts also the ones it dropped): it picks among several runs started that near, and stands in
        when none did. A combined Event's count does not count starts: without a near run, left out."""
        result = []
        low, high = _START_EVENT_WINDOW_S
        for report in self._start_reports:
            if self.since is not None and report.when < self.since - _SINCE_MARGIN_S:
                continue
            near = [(abs(report.when - r.when), -r.attempt, r.attempt) for r in self._raw
                    if r.pod == report.pod and r.container == report.container and r.type == "Started"
                    and r.source == "status" and r.when + low <= report.when <= r.when + high]
            counted = report.count - 1   # a plain Event's count counts the starts
            if near and not report.combined and counted in {n[2] for n in near}:
                attempt = counted            # several starts in its second: the count says which
            elif near:
                attempt = min(near)[2]
            elif report.combined:
                continue
            else:
                attempt = counted
            fields = {**report.fields, "attempt": attempt}
            result.append(_Raw(report.when, "Started", report.pod, report.container, "event", fields, attempt,
                               report.seq))
            if attempt > 0:
                result.append(_Raw(report.when, "Restarted", report.pod, report.container, "event", dict(fields),
                                   attempt, report.seq))
        return result

    def _ordered_sigterms(self) -> list[_Raw]:
        """SIGTERM for sidecars whose turn has come (see the module docstring)."""
        result = []
        for kill in self._kills:
            if self.since is not None and kill.when < self.since - _SINCE_MARGIN_S:
                continue
            state = self._pods[kill.pod]
            names = [c.name for c in state.info.containers]
            first = [c.name for c in state.info.containers if c.role == "app"]
            first += [n for n in names[names.index(kill.container) + 1:] if state.containers[n].role == "sidecar"]
            when, waiting = kill.when, False
            for other in first:
                end = self._end_after(kill.pod, other, kill.when)
                if end is None:
                    waiting = waiting or self._running_at(kill.pod, other, kill.when)
                else:
                    when = max(when, end)
            if waiting:
                continue  # its turn has not come yet: no SIGTERM so far
            result.append(_Raw(when, "SIGTERM", kill.pod, kill.container, "event",
                               {"reason": "Killing", "message": kill.message, "resolution_s": kill.resolution,
                                "attempt": kill.attempt, "ordered": True, **kill.signal}, kill.attempt, 0))
        return result

    def _end_after(self, pod: str, container: str, when: float) -> float | None:
        ends = [r.when for r in self._raw if r.pod == pod and r.container == container
                and r.type in ("Exited", "Killed") and r.when >= when - 1.0]
        return min(ends) if ends else None

    def _running_at(self, pod: str, container: str, when: float) -> bool:
        """Whether a run of ``container`` that began by ``when`` has not been seen to end (a run that
        ended long before the Killing Event does not hold the sidecar's SIGTERM back)."""
        started = {r.attempt for r in self._raw if r.pod == pod and r.container == container and r.type == "Started"
                   and r.when <= when + 1.0}
        ended = {r.attempt for r in self._raw if r.pod == pod and r.container == container
                 and r.type in ("Exited", "Killed")}
        return bool(started - ended)

    # -- output -----------------------------------------------------------------------
    def trace(self) -> Trace:
        """The trace so far: events sorted by time, ``t`` from the earliest event, and how long it was watched."""
        with self._lock:
            raws = sorted(self._raw + self._ordered_sigterms() + self._event_starts(), key=_Raw.key)
            origin = raws[0].when if raws else None
            pace = self.pace
            result = Trace(self.backend, self.kubernetes_version, dict(self.feature_gates),
                           origin=format_time(origin) if origin is not None else None)
            if self.served_simulator:
                result.extra["served_simulator"] = dict(self.served_simulator)
            for name in self._order:
                state = self._pods[name]
                info = state.info
                result.add_pod(Pod(info.name, info.namespace, info.owner, list(info.containers),
                                   _final(state)))
            for raw in raws:
                fields = raw.fields
                if pace != 1.0 and fields.get("resolution_s") is not None:
                    fields = {**fields, "resolution_s": round(fields["resolution_s"] * pace, 6)}
                result.add(Event.from_fields(round((raw.when - origin) * pace, 3), raw.type, raw.pod, raw.container,
                                             raw.source, fields))
            until = self._clock() if self._clock is not None else self._watched_until
            if result.events and until is not None:
                result.observed_until = max(round((until - origin) * pace, 3), result.events[-1].t)
            return result


def _final(state: _PodState) -> PodFinal:
    status = state.last.get("status") or {}
    containers = {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        current = cs.get("state") or {}
        restarts = int(cs.get("restartCount") or 0)
        if "terminated" in current:
            term = current["terminated"] or {}
            containers[cs["name"]] = ContainerFinal("terminated", restarts, int(term.get("exitCode", 0) or 0),
                                                    term.get("reason"))
        elif "running" in current:
            containers[cs["name"]] = ContainerFinal("running", restarts)
        else:
            containers[cs["name"]] = ContainerFinal("waiting", restarts, None, (current.get("waiting") or {}).get("reason"))
    return PodFinal(status.get("phase") or "Pending", state.deleted, containers)


def _ordered_termination(version: str, gates: dict) -> bool:
    from .versions import behaviour

    try:
        return behaviour(version, gates or None).ordered_termination
    except Exception:  # an unknown or unparsable version: assume today's kubelet
        return True
