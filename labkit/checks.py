"""Self-checks over a trace: the assertions that end every notebook.

Each check either returns a :class:`Passed` (its ``value`` is the useful number: a time gap
in seconds, a restart count, the phase) or raises :class:`~labkit.errors.CheckFailed` with
a message that says what the trace showed instead, with times::

    from labkit import checks
    checks.report(
        checks.started_before(trace, "sws-init", "sidecar-job"),
        checks.job_complete(trace, "sidecar-job"),
    )
    # ✓ sws-init counted as started (startup probe passed at 10.05 s) before sidecar-job started at 10.61 s (0.56 s earlier)
    # ✓ job/sidecar-job completed at 12.91 s

The ordering checks honour how precise a time is: a real cluster gives some times only to the
whole second (``resolution_s`` 1.0: the instant lies in ``[t, t + 1)``), so an app's
truncated start can read 11 s although the watch saw its sidecar pass its probe at 11.6 s.
Such a check fails only when the trace *proves* the wrong order, and says so when the
resolution decided it. Simulator times are exact.

Containers are named as in the manifest. ``pod`` is a pod name or a name prefix such as
``"sidecar-job"``; without it a check looks at every pod that has the containers it names,
and must hold in all of them. Events in :func:`gap` and :func:`took` are written like the
scenario files: ``"sws-init StartupProbeSucceeded"``, ``"PodPhase Succeeded"``, ``"JobComplete"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import CheckFailed, InvalidInput
from .trace import CONTAINER_EVENTS, EVENT_TYPES, PHASES, POD_EVENTS, WORKLOAD_EVENTS, Event, Pod, Span, Trace

__all__ = [
    "Passed", "report", "started_before", "stopped_before", "exited_before", "pod_phase", "job_complete",
    "restarted", "exit_code", "killed", "not_killed", "never", "gap", "took",
]


@dataclass(frozen=True)
class Passed:
    """A check that held: ``what`` it verified, and the measured ``value``.

    ``value`` is a list (one entry per pod, in trace order) when the check covered several
    pods; ``per_pod`` maps each pod to its value. ``float(result)`` gives a single value.
    """

    what: str
    value: Any = None
    per_pod: dict[str, Any] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        return f"✓ {self.what}"

    __repr__ = __str__


def report(*results: Passed) -> None:
    """Print one ``✓ <what>`` line per passed check, so a notebook shows what it verified."""
    for result in results:
        print(result)


# -- ordering -------------------------------------------------------------------------------
def started_before(trace: Trace, a: str, b: str, *, pod: str | None = None) -> Passed:
    """``a`` counted as started (startup probe passed, or running if it has none) before ``b`` first started.

    The value is the gap in seconds from ``a`` being started to ``b`` starting; with times
    known only to the second it is the measured gap kept within what they allow (never negative).
    """
    def check(view: _View) -> tuple[float, str]:
        a_ev, how = view.counted_started(a)
        b_ev = view.first("Started", b)
        if b_ev is None:
            raise CheckFailed(f"{b} never started{view.since_end()}")
        if a_ev is None:
            raise CheckFailed(f"{b} started at {_s(b_ev.t)} but {a} {how}")
        if view.proves_before(b_ev, a_ev):
            raise CheckFailed(f"{b} started at {_s(b_ev.t)}, before {a} counted as started at {_s(a_ev.t)} ({how})"
                              + _resolution_note(a_ev, b_ev, failed=True))
        gap_s = _gap_value(a_ev, b_ev)
        if view.proves_before(a_ev, b_ev):
            return gap_s, (f"{a} counted as started ({how} at {_s(a_ev.t)}) before {b} started at {_s(b_ev.t)} "
                           f"({_s(gap_s)} earlier)")
        return gap_s, (f"{a} counted as started ({how} at {_s(a_ev.t)}) before {b} started at {_s(b_ev.t)}"
                       + _resolution_note(a_ev, b_ev))

    return _each(trace, pod, (a, b), f"{a} to count as started before {b} started", check)


def stopped_before(trace: Trace, a: str, b: str, *, pod: str | None = None) -> Passed:
    """``a`` had ended before ``b`` got its stop signal (ordered shutdown: app first, sidecar last).

    The value is the gap in seconds from ``a`` ending to ``b``'s SIGTERM.
    """
    def check(view: _View) -> tuple[float, str]:
        sig = view.first("SIGTERM", b)
        if sig is None:
            raise CheckFailed(f"{b} never got SIGTERM ({view.fate(b)})")
        end = view.final_end(a)
        if end is None:
            raise CheckFailed(f"{b} got SIGTERM at {_s(sig.t)} while {a} {view.fate(a)}")
        if view.proves_before(sig, end):
            raise CheckFailed(f"{b} got SIGTERM at {_s(sig.t)}, while {a} was still running: {a} {view.fate(a)}"
                              + _resolution_note(end, sig, failed=True))
        note = "" if view.proves_before(end, sig) else _resolution_note(end, sig)
        return _gap_value(end, sig), f"{a} ended ({_how_ended(end)} at {_s(end.t)}) before {b} got SIGTERM at {_s(sig.t)}{note}"

    return _each(trace, pod, (a, b), f"{a} to have stopped before {b} got SIGTERM", check)


def exited_before(trace: Trace, a: str, b: str, *, pod: str | None = None) -> Passed:
    """``a`` ended (exited, or was SIGKILLed) before ``b`` ended; the value is the gap in seconds."""
    def check(view: _View) -> tuple[float, str]:
        a_end, b_end = view.final_end(a), view.final_end(b)
        if a_end is None or b_end is None:
            raise CheckFailed(f"{a} {view.fate(a)}, and {b} {view.fate(b)}")
        if view.proves_before(b_end, a_end):
            raise CheckFailed(f"{b} ended first ({_how_ended(b_end)} at {_s(b_end.t)}), "
                              f"{a} only at {_s(a_end.t)} ({_how_ended(a_end)})" + _resolution_note(a_end, b_end, failed=True))
        note = "" if view.proves_before(a_end, b_end) else _resolution_note(a_end, b_end)
        return _gap_value(a_end, b_end), (f"{a} ended ({_how_ended(a_end)} at {_s(a_end.t)}) before {b} "
                                          f"({_how_ended(b_end)} at {_s(b_end.t)}){note}")

    return _each(trace, pod, (a, b), f"{a} to end before {b}", check)


# -- pods and workloads -------------------------------------------------------------------
def pod_phase(trace: Trace, phase: str, pod: str | None = None) -> Passed:
    """The pod ended in ``phase`` (its final status, else its last PodPhase event)."""
    if phase not in PHASES:
        raise InvalidInput(f"unknown pod phase {phase!r} (expected one of {', '.join(PHASES)})", field="phase")

    def check(view: _View) -> tuple[str, str]:
        final = view.final_phase()
        if final != phase:
            raise CheckFailed(f"it ended in phase {final or 'unknown (no phase seen)'}{view.phase_story()}")
        return final, f"pod {view.pod.name} ended in phase {phase}"

    return _each(trace, pod, (), f"the pod to end in phase {phase}", check)


def job_complete(trace: Trace, job: str) -> Passed:
    """The Job's ``Complete`` condition became true; the value is when (seconds)."""
    name = job.split("/", 1)[1] if job.startswith("job/") else job
    ref = f"job/{name}"
    done = trace.first("JobComplete", object=ref)
    if done is not None:
        return Passed(f"{ref} completed at {_s(done.t)}", done.t)
    failed = trace.first("JobFailed", object=ref)
    if failed is not None:
        raise CheckFailed(f"expected {ref} to complete, but it failed at {_s(failed.t)} (JobFailed"
                          f"{': ' + failed.reason if failed.reason else ''})")
    pods = [p for p in trace.pods if p.owner and p.owner.get("kind") == "Job" and p.owner.get("name") == name]
    if not pods:
        pods = [p for p in trace.pods if p.name.startswith(f"{name}-")]
    if not pods:
        raise CheckFailed(f"expected {ref} to complete, but the trace has no JobComplete for it and no pod of it "
                          f"(pods: {_names(trace.pods)})")
    index = _Index(trace)
    views = [_View(index, p) for p in pods[:3]]
    stories = [f"its pod {v.pod.name} ended in phase {v.final_phase() or 'unknown'}{v.phase_story()}" for v in views]
    more = f" (and {len(pods) - 3} more pods)" if len(pods) > 3 else ""
    raise CheckFailed(f"expected {ref} to complete, but no JobComplete came in the {_s(trace.duration)} the trace "
                      f"covers: {'; '.join(stories)}{more}")


# -- containers -----------------------------------------------------------------------------
def restarted(trace: Trace, container: str, at_least: int = 1, *, pod: str | None = None) -> Passed:
    """``container`` was restarted at least ``at_least`` times; the value is the restart count."""
    def check(view: _View) -> tuple[int, str]:
        spans = view.spans(container)
        count = max(len(spans) - 1, view.final_restarts(container))
        times = ", ".join(_s(s.start) for s in spans[1:6]) + (" …" if len(spans) > 6 else "")
        if count < at_least:
            if not spans:
                raise CheckFailed(f"{container} never started{view.since_end()}")
            ran = f"it ran once from {_s(spans[0].start)}" if count == 0 else f"at {times}"
            raise CheckFailed(f"{container} restarted {_times(count)} ({ran})")
        return count, f"{container} restarted {_times(count)}" + (f" (at {times})" if times else "")

    return _each(trace, pod, (container,), f"{container} to restart at least {_times(at_least)}", check)


def exit_code(trace: Trace, container: str, code: int, *, pod: str | None = None) -> Passed:
    """``container``'s last run ended with exit code ``code``."""
    def check(view: _View) -> tuple[int, str]:
        spans = view.spans(container)
        last = spans[-1] if spans else None
        if last is None or last.end is None:
            final = view.pod.final.containers.get(container) if view.pod.final else None
            if last is None and final is not None and final.exit_code is not None:
                got = final.exit_code  # seen only in the final status (e.g. it ran before the watch began)
                if got != code:
                    raise CheckFailed(f"{container} ended with exit code {got} (final status, reason {final.reason})")
                return got, f"{container} ended with exit code {code} (final status)"
            raise CheckFailed(f"{container} {view.fate(container)}")
        if last.exit_code != code:
            raise CheckFailed(f"{container} {view.fate(container)}")
        return code, f"{container} ended with exit code {code} at {_s(last.end)}" + (
            " (normal for a sidecar stopped by the kubelet)" if code and last.role == "sidecar"
            and last.stopped_by_kubelet and not last.failed else "")

    return _each(trace, pod, (container,), f"{container} to end with exit code {code}", check)


def killed(trace: Trace, container: str, *, pod: str | None = None) -> Passed:
    """``container`` was SIGKILLed (it outlived its grace period); the value is when."""
    def check(view: _View) -> tuple[float, str]:
        kills = [s for s in view.spans(container) if s.end_type == "Killed"]
        if not kills:
            raise CheckFailed(f"{container} was never SIGKILLed: it {view.fate(container)}")
        return kills[0].end, f"{container} was SIGKILLed {_kill_story(kills[0])}"

    return _each(trace, pod, (container,), f"{container} to be SIGKILLed", check)


def not_killed(trace: Trace, container: str, *, pod: str | None = None) -> Passed:
    """``container`` was never SIGKILLed: it stopped by itself or on its stop signal."""
    def check(view: _View) -> tuple[None, str]:
        kills = [s for s in view.spans(container) if s.end_type == "Killed"]
        if kills:
            raise CheckFailed(f"{container} was SIGKILLed {_kill_story(kills[0])}"
                              + (f" (and {len(kills) - 1} more times)" if len(kills) > 1 else ""))
        return None, f"{container} was never SIGKILLed (it {view.fate(container)})"

    return _each(trace, pod, (container,), f"{container} not to be SIGKILLed", check)


def never(trace: Trace, event_type: str, container: str | None = None, *, pod: str | None = None) -> Passed:
    """No ``event_type`` event happened (for ``container``, when given); the value is 0."""
    if event_type not in EVENT_TYPES:
        raise InvalidInput(f"unknown event type {event_type!r} (expected one of {', '.join(sorted(EVENT_TYPES))})",
                           field="event_type")
    subject = f"{container} {event_type}" if container else event_type
    if container is None and pod is None:
        found = trace.select(event_type)
        if found:
            raise CheckFailed(f"expected no {subject}, but it happened {_times(len(found))}: {_event_list(found)}")
        return Passed(f"no {subject} in the {_s(trace.duration)} the trace covers", 0)

    def check(view: _View) -> tuple[int, str]:
        found = trace.select(event_type, pod=view.pod.name, container=container)
        if found:
            raise CheckFailed(f"it happened {_times(len(found))}: {_event_list(found)}")
        return 0, f"no {subject} in the {_s(trace.duration)} the trace covers"

    return _each(trace, pod, (container,) if container else (), f"no {subject}", check)


# -- timing ---------------------------------------------------------------------------------
def gap(trace: Trace, from_event: str, to_event: str, *, pod: str | None = None) -> Passed:
    """Seconds from the first ``from_event`` to the first ``to_event`` after it.

    >>> from labkit.notebook import repo_path
    >>> from labkit.sim import simulate
    >>> trace = simulate([repo_path("manifests/job-sidecar.yaml")], k8s_version="1.29")
    >>> gap(trace, "sidecar-job Exited", "JobComplete")
    ✓ 'sidecar-job Exited' (12.01 s) → 'JobComplete' (16.75 s): 4.74 s
    """
    start, end = _EventSpec.parse(from_event), _EventSpec.parse(to_event)

    def check(view: _View) -> tuple[float, str]:
        seconds, first, second = _gap(view, start, end)
        return seconds, f"{start} ({_s(first.t)}) → {end} ({_s(second.t)}): {_s(seconds)}"

    needs = tuple(dict.fromkeys(c for c in (start.container, end.container) if c))
    return _each(trace, pod, needs, f"{start} to be followed by {end}", check)


def took(trace: Trace, from_event: str, to_event: str, approx: float, tolerance: float = 1.0, *,
         pod: str | None = None) -> Passed:
    """From ``from_event`` to ``to_event`` took ``approx`` ± ``tolerance`` seconds; the value is the time."""
    start, end = _EventSpec.parse(from_event), _EventSpec.parse(to_event)
    expected = f"{_s(approx)} ± {_s(tolerance)}"

    def check(view: _View) -> tuple[float, str]:
        seconds, first, second = _gap(view, start, end)
        # Rounded times (resolution_s r: the instant lies in [t, t + r)) allow any duration between
        # these two bounds; the check fails only when none of them is within the tolerance.
        shortest, longest = second.t - first.t - _resolution(first), second.t - first.t + _resolution(second)
        if longest < approx - tolerance or shortest > approx + tolerance:
            raise CheckFailed(f"it took {_s(seconds)}: {start} at {_s(first.t)}, {end} at {_s(second.t)}"
                              + (f" (allowing for their rounded times: {_s(max(shortest, 0.0))} to {_s(longest)})"
                                 if shortest != longest else ""))
        note = (f"; the times are rounded, so it took {_s(max(shortest, 0.0))} to {_s(longest)}"
                if abs(seconds - approx) > tolerance else "")
        return seconds, f"{start} → {end} took {_s(seconds)} (expected {expected}{note})"

    needs = tuple(dict.fromkeys(c for c in (start.container, end.container) if c))
    return _each(trace, pod, needs, f"{start} → {end} to take {expected}", check)


@dataclass(frozen=True)
class _EventSpec:
    """An event named as in the scenario files: ``"<container> <Type>"``, ``"PodPhase <Phase>"``, ``"<Type>"``."""

    type: str
    container: str | None = None
    phase: str | None = None

    @classmethod
    def parse(cls, text: str) -> "_EventSpec":
        words = str(text).split()
        if len(words) == 1 and words[0] in POD_EVENTS | WORKLOAD_EVENTS:
            return cls(words[0])
        if len(words) == 2 and words[0] == "PodPhase" and words[1] in PHASES:
            return cls("PodPhase", phase=words[1])
        if len(words) == 2 and words[1] in CONTAINER_EVENTS:
            return cls(words[1], container=words[0])
        raise InvalidInput(f"cannot read event {text!r}: write '<container> <Type>' (e.g. 'sws-init Started'), "
                           "'PodPhase <Phase>', or a pod or workload event such as 'Deleted' or 'JobComplete'",
                           field="event")

    def matches(self, event: Event) -> bool:
        return (event.type == self.type and (self.container is None or event.container == self.container)
                and (self.phase is None or event.phase == self.phase))

    def __str__(self) -> str:
        return "'" + " ".join(w for w in (self.container, self.type, self.phase) if w) + "'"


def _gap(view: "_View", start: _EventSpec, end: _EventSpec) -> tuple[float, Event, Event]:
    events = view.events_for(start) + [e for e in view.events_for(end) if not start.matches(e)]
    events.sort(key=view.position)
    first = next((e for e in events if start.matches(e)), None)
    if first is None:
        raise CheckFailed(f"{start} never happened{view.since_end()}")
    second = next((e for e in events if end.matches(e) and view.position(e) > view.position(first)), None)
    if second is None:
        earlier = next((e for e in events if end.matches(e)), None)
        if earlier is not None:
            raise CheckFailed(f"{end} happened at {_s(earlier.t)}, before {start} at {_s(first.t)}, and not again")
        raise CheckFailed(f"{end} never happened (the trace ends {_s(view.trace.duration - first.t)} after "
                          f"{start} at {_s(first.t)})")
    return second.t - first.t, first, second


# -- running a check over pods -----------------------------------------------------------------
def _each(trace: Trace, pod: str | None, containers: tuple[str, ...], expectation: str,
          check: Callable[["_View"], tuple[Any, str]]) -> Passed:
    """Run ``check`` on every pod it concerns; pass only if it holds in all of them."""
    pods = _pods(trace, pod, containers)
    index = _Index(trace)
    values: dict[str, Any] = {}
    details: dict[str, str] = {}
    failures: dict[str, str] = {}
    for p in pods:
        try:
            values[p.name], details[p.name] = check(_View(index, p))
        except CheckFailed as exc:
            failures[p.name] = str(exc)
    if len(pods) == 1:
        name = pods[0].name
        if failures:
            raise CheckFailed(f"expected {expectation}, but {failures[name]} (pod {name})")
        return Passed(details[name], values[name], values)
    if failures:
        listed = "; ".join(f"pod {name}: {why}" for name, why in list(failures.items())[:5])
        more = f"; and {len(failures) - 5} more" if len(failures) > 5 else ""
        held = f" (it held in {len(values)}: {_names([p for p in pods if p.name in values])})" if values else ""
        raise CheckFailed(f"expected {expectation} in every pod, but not in {len(failures)} of {len(pods)}: "
                          f"{listed}{more}{held}")
    first = details[pods[0].name]
    return Passed(f"in all {len(pods)} pods, as in {pods[0].name}: {first}", [values[p.name] for p in pods], values)


def _pods(trace: Trace, pod: str | None, containers: tuple[str, ...]) -> list[Pod]:
    if pod is not None:
        chosen = [p for p in trace.pods if p.name == pod] or [p for p in trace.pods if p.name.startswith(pod)]
        if not chosen:
            raise CheckFailed(f"no pod named or starting with {pod!r} in the trace (pods: {_names(trace.pods)})")
    else:
        chosen = list(trace.pods)
        if not chosen:
            raise CheckFailed("the trace has no pods")
    if containers:
        having = [p for p in chosen if all(any(c.name == name for c in p.containers) for name in containers)]
        if not having:
            listed = "; ".join(f"{p.name}: {', '.join(c.name for c in p.containers)}" for p in chosen[:5])
            raise CheckFailed(f"no pod{' ' + repr(pod) if pod else ''} has container(s) {', '.join(containers)} "
                              f"(containers by pod: {listed})")
        chosen = having
    return chosen


class _Index:
    """A trace's events and spans grouped by pod, built once per check (traces may hold 1000s of pods)."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.position = {id(e): i for i, e in enumerate(trace.events)}
        self.events: dict[str, list[Event]] = {}
        for event in trace.events:
            self.events.setdefault(event.pod, []).append(event)
        self.spans: dict[str, list[Span]] = {}
        for span in trace.spans():
            self.spans.setdefault(span.pod, []).append(span)


class _View:
    """One pod's events and spans, with the questions the checks ask of them."""

    def __init__(self, index: _Index, pod: Pod):
        self.trace = index.trace
        self.pod = pod
        self.events = index.events.get(pod.name, [])
        self._position = index.position
        self._spans = index.spans.get(pod.name, [])

    def position(self, event: Event) -> int:
        return self._position[id(event)]

    def proves_before(self, x: Event, y: Event) -> bool:
        """The trace proves ``x`` happened before ``y``: every instant ``x`` may have had is earlier.

        An event with ``resolution_s`` r happened somewhere in ``[t, t + r)``; one without is
        exact, and two exact events at the same time keep the order they were recorded in.
        """
        if _resolution(x) > 0:
            return x.t + _resolution(x) <= y.t
        if x.t != y.t:
            return x.t < y.t
        return _resolution(y) == 0 and self.position(x) < self.position(y)

    def first(self, type: str, container: str) -> Event | None:
        return next((e for e in self.events if e.type == type and e.container == container), None)

    def events_for(self, spec: _EventSpec) -> list[Event]:
        if spec.type in WORKLOAD_EVENTS:
            owner = self.pod.owner or {}
            ref = f"job/{owner.get('name')}" if owner.get("kind") == "Job" else None
            found = [e for e in self.trace.events if spec.matches(e)]
            own = [e for e in found if e.object == ref]
            return own or found  # the pod's own Job's event if there is one
        return [e for e in self.events if spec.matches(e)]

    def spans(self, container: str) -> list[Span]:
        return [s for s in self._spans if s.container == container]

    def counted_started(self, container: str) -> tuple[Event | None, str]:
        """The event at which ``container`` counted as started, and how (or why it never did)."""
        probe = self.first("StartupProbeSucceeded", container)
        if probe is not None:
            return probe, "startup probe passed"
        started = self.first("Started", container)
        if "startup" in self.pod.container(container).probes:
            if started is None:
                return None, "never started"
            return None, f"started at {_s(started.t)} but its startup probe never passed"
        return (started, "Started") if started is not None else (None, "never started")

    def final_end(self, container: str) -> Event | None:
        """The event that ended ``container``'s last run, or None if it never ended (or never ran)."""
        spans = self.spans(container)
        if not spans or spans[-1].end is None:
            return None
        last = spans[-1]  # the first report of its end: later reports from other sources are duplicates
        return next((e for e in self.events if e.container == container and e.type == last.end_type
                     and e.t == last.end), None)

    def fate(self, container: str) -> str:
        """What became of ``container``, for messages: 'was still running …', 'exited 0 at …'."""
        spans = self.spans(container)
        if not spans:
            return "never started"
        last = spans[-1]
        if last.end is None:
            return f"was still running when the trace ended at {_s(self.trace.duration)} (started at {_s(last.start)})"
        if last.end_type == "Killed":
            return f"was SIGKILLed at {_s(last.end)}" + (f", {_s(last.end - last.sigterm_at)} after its SIGTERM at "
                                                         f"{_s(last.sigterm_at)}" if last.sigterm_at is not None else "")
        signal = f" after SIGTERM at {_s(last.sigterm_at)}" if last.sigterm_at is not None else ""
        return f"exited with code {last.exit_code} at {_s(last.end)}{signal}"

    def final_phase(self) -> str | None:
        if self.pod.final is not None:
            return self.pod.final.phase
        phases = [e.phase for e in self.events if e.type == "PodPhase"]
        return phases[-1] if phases else None

    def final_restarts(self, container: str) -> int:
        final = self.pod.final.containers.get(container) if self.pod.final else None
        return final.restart_count if final else 0

    def phase_story(self) -> str:
        """' (phase Running since 1.08 s; sws still running)' — why a pod is where it is."""
        phases = [e for e in self.events if e.type == "PodPhase"]
        parts = [f"phase {phases[-1].phase} since {_s(phases[-1].t)}"] if phases else []
        running = [c.name for c in self.pod.containers if self.spans(c.name) and self.spans(c.name)[-1].end is None]
        if running:
            parts.append(f"{', '.join(running)} still running when the trace ended at {_s(self.trace.duration)}")
        return f" ({'; '.join(parts)})" if parts else ""

    def since_end(self) -> str:
        return f" in the {_s(self.trace.duration)} the trace covers"


def _resolution(event: Event) -> float:
    return event.resolution_s or 0.0


def _gap_value(first: Event, second: Event) -> float:
    """Seconds from ``first`` to ``second`` for a check that passed: the measured gap, kept within what
    their resolutions allow (at least 0, at most ``second``'s latest possible instant minus ``first``'s
    time). Exact times give the plain difference."""
    measured = second.t - first.t
    return min(max(measured, 0.0), measured + _resolution(second))


_SOURCE_TIMES = {"status": "a container status time", "event": "a Kubernetes Event time", "log": "a log time",
                 "watch": "a watch arrival time", "sim": "a simulator time"}


def _resolution_note(first: Event, second: Event, *, failed: bool = False) -> str:
    """For messages: which of two events' times are rounded and what they stand for, when that decides the order.

    ``first`` is the event the check wants earlier.
    """
    rounded = [e for e in (second, first) if _resolution(e) > 0]
    if not rounded:
        return ""
    described = " and ".join(
        f"{e.container or e.pod or e.object} {e.type} is {_SOURCE_TIMES.get(e.source, e.source + ' time')} "
        f"{_precision(_resolution(e))} ({_s(e.t)} means {_num(e.t)}–{_s(e.t + _resolution(e))})" for e in rounded)
    if failed:
        if first.t - second.t >= 2 * max(_resolution(first), _resolution(second)):
            return ""  # far apart: the resolution does not matter
        return f" (even allowing for the resolution: {described})"
    upper = second.t + _resolution(second) - first.t
    ahead = first.t - second.t
    clock = (f"by the clock the other way round, by {_s(ahead)}" if ahead > 0 else
             f"both read {_s(first.t)}" if ahead == 0 else f"{_s(-ahead)} apart by the clock")
    return f" ({clock}; {described}, so the trace does not show the wrong order: 0 to {_s(upper)} earlier)"


def _precision(resolution: float) -> str:
    return "to the whole second" if resolution == 1.0 else f"to {_s(resolution)}"


def _how_ended(event: Event) -> str:
    return "SIGKILLed" if event.type == "Killed" else f"exited {event.exit_code}"


def _kill_story(span: Span) -> str:
    if span.sigterm_at is None:
        return f"at {_s(span.end)}"
    return (f"at {_s(span.end)}, {_s(span.end - span.sigterm_at)} after its SIGTERM at {_s(span.sigterm_at)} "
            "(it did not stop on SIGTERM within the grace period)")


def _event_list(events: list[Event]) -> str:
    shown = ", ".join(f"at {_s(e.t)}" + (f" ({e.pod}{'/' + e.container if e.container else ''})"
                                          if e.pod else f" ({e.object})" if e.object else "") for e in events[:5])
    return shown + (f" and {len(events) - 5} more" if len(events) > 5 else "")


def _names(pods: list[Pod]) -> str:
    names = [p.name for p in pods[:8]]
    return ", ".join(names) + (f" and {len(pods) - 8} more" if len(pods) > 8 else "") if names else "none"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _s(seconds: float) -> str:
    """Seconds for people: 10 s, 10.6 s, 10.61 s."""
    return f"{_num(seconds)} s"


def _num(seconds: float) -> str:
    text = f"{seconds:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
