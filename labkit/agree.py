"""Does a recorded trace tell the same story as the simulator's own trace of the same run?

The served simulator (``labkit serve``) keeps its own trace of each namespace; the cluster
backend records the same run through the API, as it records a real cluster (watch arrivals,
the kubelet's whole-second status times, Kubernetes Events). :func:`compare` checks the
recording against the simulator's trace, which is the recorder's test:

- every recorded event must be one the simulator has (same pod, container, type, attempt,
  phase or object; the n-th report of a key matches the simulator's n-th event of that key);
- at a time the recording allows: a ``status``/``event`` time is the truncated whole second
  (``resolution_s``), so the simulator's time lies in ``[t, t + resolution_s)``; a ``watch``
  time is when the update arrived: after the event (the served simulator writes each change
  into the API's store as it happens), by at most the network's delay, ``pace`` times longer in
  simulated seconds;
- in the same order wherever the recording proves one: two watch updates of one object
  arrive in the order the server wrote them.

Both traces are placed on one clock through their ``origin`` (wall time of t = 0) and pace
(``served_simulator.pace``; wall = origin + t / pace). Events only the simulator sees (probe
runs, preStop) are not compared. :class:`Comparison` prints its disagreements as a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .trace import Event, Trace

# Wall-clock seconds a watch update may take from the server's store to the client's handler:
# usually milliseconds, but a busy shared CI machine or a garbage collection can stall either
# side for a good part of a second. (The other checks do not depend on it: a watch update never
# arrives before its event, status times are bounded by their resolution, order is order.)
NETWORK_S = 1.0
# Rounding: origins are written to the millisecond, times to the millisecond.
_EPS_WALL_S = 0.002


@dataclass(frozen=True)
class Disagreement:
    """One recorded event the simulator's trace does not bear out."""

    kind: str            # "time", "order" or "unknown"
    event: str           # the recorded event, e.g. "sws-init Started #0 (watch)"
    recorded: float      # its time, seconds on the recording's clock
    simulated: float | None   # the simulator's time of the same event, on the same clock
    allowed: str         # what the recording allows, e.g. "[12.000, 22.000)"
    why: str


@dataclass
class Comparison:
    """The outcome of :func:`compare`: how many events were matched and what disagrees."""

    matched: int = 0
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.disagreements

    def table(self) -> str:
        """The disagreements as a plain-text table (or one line saying all agree)."""
        if self.ok:
            return f"all {self.matched} recorded events agree with the simulator's trace"
        header = ("KIND", "RECORDED EVENT", "RECORDED t", "SIMULATOR t", "ALLOWED", "WHY")
        rows = [header] + [(d.kind, d.event, f"{d.recorded:.3f}",
                            "-" if d.simulated is None else f"{d.simulated:.3f}", d.allowed, d.why)
                           for d in self.disagreements]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
        lines = [f"{len(self.disagreements)} of {self.matched + sum(d.kind == 'unknown' for d in self.disagreements)} "
                 "recorded events disagree with the simulator's trace:"]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows]
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return self.table()


def _pace(trace: Trace) -> float:
    return float((trace.extra.get("served_simulator") or {}).get("pace") or 1.0)


def _key(event: Event, attempt: int | None = None) -> tuple:
    attempt = event.attempt if attempt is None else attempt
    return (event.pod, event.container, event.type, attempt if event.container else None, event.phase, event.object)


def _with_attempts(events: list[Event]) -> list[tuple[Event, int | None]]:
    """Each event with the attempt of its container's run: the simulator writes it on ``Started``
    only; every later event of the container belongs to the latest start."""
    current: dict[tuple, int] = {}
    result = []
    for event in events:
        where = (event.pod, event.container)
        if event.container is not None and event.type == "Started" and event.attempt is not None:
            current[where] = event.attempt
        result.append((event, event.attempt if event.attempt is not None else current.get(where)))
    return result


def _label(event: Event) -> str:
    who = event.container or event.pod or event.object or ""
    what = event.type + (f" {event.phase}" if event.phase else "")
    attempt = f" #{event.attempt}" if event.container and event.attempt is not None else ""
    return f"{who} {what}{attempt} ({event.source})".strip()


def compare(recorded: Trace, simulated: Trace, *, network_s: float = NETWORK_S) -> Comparison:
    """Check ``recorded`` (a backend's recording) against ``simulated`` (the simulator's own trace
    of the same run, e.g. ``labkit.serve.Server.trace(namespace)``); see the module docstring.

    ``network_s`` is in wall-clock seconds (times the pace on the trace's clock).
    """
    from .printers import parse_time

    pace = _pace(recorded)
    if recorded.origin is None or simulated.origin is None:
        raise ValueError("both traces need an origin (the wall time of t = 0) to be compared")
    shift = (parse_time(simulated.origin) - parse_time(recorded.origin)) * pace  # simulator t -> recording t
    eps = _EPS_WALL_S * pace
    watch_slack = network_s * pace

    sim_times: dict[tuple, list[float]] = {}
    for event, attempt in _with_attempts(simulated.events):
        sim_times.setdefault(_key(event, attempt), []).append(event.t + shift)
    result = Comparison()
    seen: dict[tuple, int] = {}
    matched: list[tuple[Event, float]] = []
    for event in recorded.events:
        key = _key(event) + (event.source,)
        index = seen.get(key, 0)
        seen[key] = index + 1
        candidates = sim_times.get(_key(event), [])
        if index >= len(candidates):
            result.disagreements.append(Disagreement(
                "unknown", _label(event), event.t, None, "-",
                f"the simulator has {len(candidates)} such event(s), the recording reports #{index + 1}"))
            continue
        sim_t = candidates[index]
        if event.source == "watch":
            low, high, allowed = event.t - watch_slack - eps, event.t + eps, \
                f"[{event.t - watch_slack:.3f}, {event.t:.3f}]"
            why = f"a watch update arrives after the event, by at most {network_s:g} s (wall) on the network"
        else:
            resolution = event.resolution_s or 0.0
            low, high, allowed = event.t - eps, event.t + resolution + eps, \
                f"[{event.t:.3f}, {event.t + resolution:.3f})"
            why = f"a {event.source} time is the event's time truncated to {resolution:g} s"
        result.matched += 1
        matched.append((event, sim_t))
        if not low <= sim_t < high:
            result.disagreements.append(Disagreement("time", _label(event), event.t, sim_t, allowed, why))
    result.disagreements += _order(matched, eps)
    return result


def _order(matched: list[tuple[Event, float]], eps: float) -> list[Disagreement]:
    """Watch updates of one object arrive in the order the server wrote them: an event seen in a
    later update cannot have happened after one seen in an earlier update."""
    found = []
    streams: dict[str, list[tuple[Event, float]]] = {}
    for event, sim_t in matched:
        if event.source == "watch":
            streams.setdefault(event.pod or event.object or "", []).append((event, sim_t))
    for items in streams.values():
        latest: tuple[Event, float] | None = None   # the latest simulator time among earlier updates
        for i, (event, sim_t) in enumerate(items):
            earlier = [(e, s) for e, s in items[:i] if e.t < event.t]
            if earlier:
                latest = max(earlier, key=lambda pair: pair[1])
            if latest is not None and sim_t < latest[1] - eps:
                found.append(Disagreement(
                    "order", _label(event), event.t, sim_t, f">= {latest[1]:.3f}",
                    f"it arrived after {_label(latest[0])} (t={latest[0].t:.3f}), which the simulator "
                    "has later"))
    return found


__all__ = ["Comparison", "Disagreement", "compare", "NETWORK_S"]
