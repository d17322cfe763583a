"""Is the simulator within a second of the typical real run? The comparison behind the blog's rows
of ``labkit fidelity`` (docs/fidelity.md).

Every event of the workload's pod is read from each real run as the interval of times that run
allows (a whole-second status or Event time ``t`` means ``[t, t + 1)``; a watch arrival is the
instant), counted from the pod's creation. What the simulator cannot know of a real run is fitted
to each run, jointly over all its events: where the kubelet's relist ticks fall within the second,
and how much CPU time the pod's sandbox and a container take to start under the blog's CPU limits
on that machine. For each event, the median over the runs of how far the fitted simulation lies
outside the run's interval must be within ``BLOG_TOLERANCE_S``. One run on a 2-core machine can be
seconds off on its own, so the simulator is held to the median run; two runs that agree settle the
median of three, and the third runs only when they split.
"""

from __future__ import annotations

import math
import statistics
from typing import NamedTuple

from .trace import Trace

BLOG_TOLERANCE_S = 1.0
BLOG_RUNS = 3   # real runs of each at most; the median of an event's differences over them is held to 1 s
# The conditions fitted to each real run: the relist ticks' phase in the second, every 50 ms, and
# the CPU time of the sandbox's and of a container's throttled start against the machine
# labkit/sim/timing.py was fitted on (the same start varied by a quarter from run to run at rest,
# more on a busy machine: docs/timing.md). The sandbox's start moves only the sidecar's, so it is
# fitted more coarsely.
RELIST_PHASES = tuple(round(0.05 * i, 2) for i in range(20))
SANDBOX_CPU_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5)
CONTAINER_CPU_SCALES = tuple(round(0.5 + 0.1 * i, 1) for i in range(11))

Events = dict[str, tuple[float, float]]


class SimRun(NamedTuple):
    """The simulator's run of a workload under one set of conditions."""

    relist_phase: float
    sandbox_cpu_scale: float
    container_cpu_scale: float
    trace: Trace
    events: Events


class Fitted(NamedTuple):
    """A real run and the simulation that fits it best."""

    real: Trace
    events: Events
    sim: SimRun

    def offsets(self) -> dict[str, float]:
        return offsets(self.events, self.sim.events)


# Events of the pod that are compared: the kubelet's and the controllers', not the recorder's
# view of the probe ticks (a real cluster sees only their effects).
_BLOG_SKIPPED = ("StartupProbeRun", "ReadinessProbeRun", "LivenessProbeRun")


def blog_events(trace: Trace) -> Events:
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
    times: Events = {}
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


def offsets(real: Events, sim: Events) -> dict[str, float]:
    """For each event both saw, how far the simulated time lies outside the real interval."""
    return {name: outside(t, *real[name]) for name, (t, _) in sim.items() if name in real}


def closest(real: Events, sims: list[SimRun]) -> SimRun:
    """The simulation whose events lie closest to the real run's: the smallest sum of differences,
    then the smallest largest one (the first such in ``sims``). One set of conditions is fitted
    to every event of the run at once, and a sum is not bent by one event that is off (as a
    largest difference would be, halving it by moving every other event): a wrong gap between two
    events stays as large as it is.

    >>> run = lambda phase, t: SimRun(phase, 1.0, 1.0, None, {"a Ready": (t, t), "a NotReady": (t + 2, t + 2)})
    >>> closest({"a Ready": (10.4, 10.4), "a NotReady": (13.0, 14.0)}, [run(0.0, 10.0), run(0.5, 10.5)]).relist_phase
    0.5
    """
    def score(sim: SimRun) -> tuple[float, float]:
        differences = [abs(d) for d in offsets(real, sim.events).values()]
        return (sum(differences), max(differences)) if differences else (math.inf, math.inf)
    return min(sims, key=score)


def best_fit(real: Trace, sims: list[SimRun]) -> Fitted:
    """A real run with the simulation that fits it best (:func:`closest`)."""
    events = blog_events(real)
    return Fitted(real, events, closest(events, sims))


def blog_medians(runs: list[Fitted]) -> list[tuple[float, str, list[tuple[float, float]], list[float]]]:
    """Each event the real runs and their simulations saw: the median over those runs of how far the
    fitted simulated time lies outside the run's interval (negative: the simulator is early), the
    event, the runs' intervals and the simulated times; the largest median first. One run on a
    2-core node can be seconds off on its own (a stalled first sync; docs/fidelity.md), so the
    simulator is held to the typical run, not to every run."""
    rows = []
    for name in dict.fromkeys(name for run in runs for name in run.sim.events):
        seen = [run for run in runs if name in run.events and name in run.sim.events]
        if seen:
            rows.append((statistics.median(outside(run.sim.events[name][0], *run.events[name]) for run in seen),
                         name, [run.events[name] for run in seen], [run.sim.events[name][0] for run in seen]))
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


def blog_settled(runs: list[Fitted]) -> bool:
    """Whether the real runs still to come (up to BLOG_RUNS) could change any event's verdict."""
    return all(median_settled([outside(t, *interval) for interval, t in zip(intervals, times)],
                              BLOG_RUNS - len(runs), BLOG_TOLERANCE_S)
               for _, _, intervals, times in blog_medians(runs))


def real_runs(run_once, sims: list[SimRun]) -> list[Fitted]:
    """``run_once(1)``, ``run_once(2)``, ... one after another, each fitted to its best simulation
    in ``sims``, until BLOG_RUNS have run or more could not change any event's verdict
    (:func:`blog_settled`): two runs that agree settle it."""
    runs: list[Fitted] = []
    while len(runs) < BLOG_RUNS and not (runs and blog_settled(runs)):
        runs.append(best_fit(run_once(len(runs) + 1), sims))
    return runs
