"""Is the simulator within a second of the typical real run? The comparison behind the blog's rows
of ``labkit fidelity`` (docs/fidelity.md).

Every event of the workload's pod is read from each real run as the interval of times that run
allows (a whole-second status or Event time ``t`` means ``[t, t + 1)``; a watch arrival is the
instant), counted from the pod's creation. For each event, the median over the runs of how far
the simulated time lies outside those intervals must be within ``BLOG_TOLERANCE_S``. One run on
a 2-core machine can be seconds off on its own, so the simulator is held to the median run; two
runs that agree settle the median of three, and the third runs only when they split.
"""

from __future__ import annotations

import math
import statistics

from .trace import Trace

BLOG_TOLERANCE_S = 1.0
BLOG_RUNS = 3   # real runs of each at most; the median of an event's differences over them is held to 1 s


# Events of the pod that are compared: the kubelet's and the controllers', not the recorder's
# view of the probe ticks (a real cluster sees only their effects).
_BLOG_SKIPPED = ("StartupProbeRun", "ReadinessProbeRun", "LivenessProbeRun")


def blog_events(trace: Trace) -> dict[str, tuple[float, float]]:
    """First report of each event of the workload's first pod ("<container> <Type>", "pod <Phase>",
    the Job's or Deployment's condition), as the interval of times it allows, counted from the
    pod's creation (its first event): the kubelet's probe workers start their tickers at the
    pod's first sync, so pod creation, not a container's start, is the clock both sides share
    (docs/fidelity.md). A status or Event time is a whole second, so the change lies in
    ``[t, t + resolution_s)``; a watch arrival or a simulated time is the instant itself."""
    if not trace.pods:
        return {}
    pod = trace.pods[0].name
    mine = [e for e in trace.events if e.pod == pod or (e.pod is None and e.object is not None)]
    if not mine:
        return {}
    zero = next(e.t for e in mine if e.pod == pod)
    times: dict[str, tuple[float, float]] = {}
    for event in mine:
        if event.type in _BLOG_SKIPPED or event.t < zero:
            continue
        what = event.container or ("pod" if event.pod == pod else event.object)
        name = f"{what} {event.phase}" if event.type == "PodPhase" else f"{what} {event.type}"
        t = event.t - zero
        times.setdefault(name, (t, t + (event.resolution_s or 0.0)))
    return times


def outside(t: float, low: float, high: float) -> float:
    """How far ``t`` lies outside ``[low, high]``: negative before it, positive after, 0 within."""
    return t - low if t < low else (t - high if t > high else 0.0)


def _per_event(reals: list[Trace], sim: Trace) -> list[tuple[str, float, list[tuple[float, float]]]]:
    """(event, simulated time, the intervals of the real runs that saw it) for each event of the
    simulated pod that at least one real run saw."""
    seen = [blog_events(real) for real in reals]
    rows = []
    for name, (t, _) in blog_events(sim).items():
        intervals = [events[name] for events in seen if name in events]
        if intervals:
            rows.append((name, t, intervals))
    return rows


def blog_medians(reals: list[Trace], sim: Trace) -> list[tuple[float, str, list[tuple[float, float]], float]]:
    """Each event of the simulated pod that the real runs saw: the median over those runs of how far
    the simulated time lies outside the run's interval (negative: the simulator is early), the
    event, the runs' intervals, the simulated time; the largest median first. One run on a 2-core
    node can be seconds off on its own (a throttled start, a stalled first sync; docs/fidelity.md),
    so the simulator is held to the typical run, not to every run."""
    rows = [(statistics.median(outside(t, *interval) for interval in intervals), name, intervals, t)
            for name, t, intervals in _per_event(reals, sim)]
    return sorted(rows, key=lambda row: -abs(row[0]))


def median_settled(offsets: list[float], still_to_come: int, tolerance: float) -> bool:
    """Whether the median of ``offsets`` and ``still_to_come`` more values is within ``tolerance``
    or beyond it whatever those values are (a median moves monotonically with each value, so the
    extremes are at -inf and +inf): with two of three runs, whether both lie on one side.

    >>> median_settled([0.4, -0.7], 1, 1.0), median_settled([0.4, 1.6], 1, 1.0), median_settled([1.2, 1.6], 1, 1.0)
    (True, False, True)
    """
    lowest = statistics.median(offsets + [-math.inf] * still_to_come)
    highest = statistics.median(offsets + [math.inf] * still_to_come)
    return (-tolerance <= lowest and highest <= tolerance) or lowest > tolerance or highest < -tolerance


def blog_settled(reals: list[Trace], sim: Trace) -> bool:
    """Whether the real runs still to come (up to BLOG_RUNS) could change any event's verdict."""
    return all(median_settled([outside(t, *interval) for interval in intervals], BLOG_RUNS - len(reals),
                              BLOG_TOLERANCE_S)
               for _, t, intervals in _per_event(reals, sim))


def real_runs(run_once, sim: Trace) -> list[Trace]:
    """``run_once(1)``, ``run_once(2)``, ... one after another, until BLOG_RUNS have run or more
    could not change any event's verdict (:func:`blog_settled`): two runs that agree settle it."""
    reals: list[Trace] = []
    while len(reals) < BLOG_RUNS and not (reals and blog_settled(reals, sim)):
        reals.append(run_once(len(reals) + 1))
    return reals
