"""Timeline plots of a trace: one lane per container, grouped by pod.

A lane shows each running instance of a container (a :class:`~labkit.trace.Span`) as a bar
in its role's colour: hatched while it is *starting* (running, postStart hook or startup probe not yet
passed), solid once *started*, pale while *terminating* (stop signal sent, not yet
exited). A thin dark strip under the bar shows when the container was ready; a pale one after
the bar's end, how long the API still reported it ready after it exited (a deleted pod's status
is rewritten only once all its containers have stopped; docs/timing.md). Markers show
the startup probe passing, SIGTERM, SIGKILL and restarts; a preStop hook is a band on the
bar's top edge from its start to the stop signal (the kubelet sends it when the hook is
done or out of time) or, when no signal was seen, to the container's end. The exit code is
written at the end of each bar, in the failure colour only for real failures (a sidecar's
128+stop signal or 137 after the kubelet stopped it is normal); a bar still running when the trace ends
runs to the end and carries an arrow. Each pod has a header row with its phases, its Ready
condition (a strip under it) and deletion; Job/Deployment conditions are vertical lines
across the whole figure, and so is the end of a trace that was watched past its last event
(``observed_until``).

One module (~760 lines) on purpose: the drawing records which legend keys it used and
the legend draws exactly those with the same style tables (colours, markers, labels) as the
bars, so a change to one encoding touches both halves and is read in one place.

matplotlib is imported inside the functions, so ``import labkit`` stays light::

    from labkit.plot import plot_trace, save_figure
    fig = plot_trace(load_trace("tests/data/blog-job-trace.json"))
    save_figure(fig, "job.png")
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .trace import WORKLOAD_EVENTS, Pod, Span, Trace

# Okabe & Ito (2008), a palette that stays distinct for the common colour-vision deficiencies.
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "bluish_green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish_purple": "#CC79A7",
}
# A plain init container is sky blue: of the sidecar's family (both are initContainers) and far from the
# failure colour (Okabe-Ito's orange, used before, read as a failure beside the vermillion).
ROLE_COLOURS = {"sidecar": OKABE_ITO["blue"], "init": OKABE_ITO["sky_blue"], "app": OKABE_ITO["bluish_green"]}
FAILURE_COLOUR = OKABE_ITO["vermillion"]
TEXT_COLOUR = "#333333"
PHASE_COLOURS = {"Pending": "#E6E6E6", "Running": "#C8C8C8", "Succeeded": "#EFEFEF", "Failed": "#EFEFEF",
                 "Unknown": "#EFEFEF"}
ROLE_LABELS = {"sidecar": "sidecar (init container, restartPolicy: Always)",
               "init": "init container", "app": "app container"}

# Event type -> (marker, colour, legend label). Markers sit on a bar's top edge, except the
# SIGKILL cross at the bar's end and the restart circle at its start.
MARKERS = {
    "StartupProbeSucceeded": ("^", OKABE_ITO["black"], "startup probe passed"),
    "PreStop": ("s", OKABE_ITO["reddish_purple"], "preStop hook began"),  # the legend shows it with its band
    # The trace calls it SIGTERM; the runtime sends the image's STOPSIGNAL (static-web-server's images
    # declare SIGQUIT) or the pod's lifecycle.stopSignal (1.33+), named by the event's ``signal`` key.
    "SIGTERM": ("v", OKABE_ITO["black"], "stop signal sent"),
    "Killed": ("X", OKABE_ITO["black"], "SIGKILL (grace period over)"),
    "Restarted": ("o", OKABE_ITO["black"], "restart"),
    "StartupProbeFailed": ("x", FAILURE_COLOUR, "startup probe failed"),
    "LivenessProbeFailed": ("x", FAILURE_COLOUR, "liveness probe failed"),
}
PROBE_RUNS = ("StartupProbeRun", "ReadinessProbeRun", "LivenessProbeRun")
# What each backend is called in titles and summaries (labkit.display uses it too).
BACKEND_NAMES = {"sim": "simulated (labkit's model of the kubelet, not a real cluster)", "kind": "kind cluster",
                 "cluster": "Kubernetes cluster", "node": "a Kubernetes node built from upstream source",
                 "replay": "replayed trace"}
SERVED_SIMULATOR_NAME = "labkit's served simulator (its model of the kubelet behind the Kubernetes API, not a real cluster)"


def backend_name(trace: Trace) -> str:
    """What ran the trace, for titles and summaries: a trace recorded from labkit's served
    simulator (``served_simulator``, docs/trace.md) is never called a Kubernetes cluster."""
    if trace.extra.get("served_simulator"):
        return SERVED_SIMULATOR_NAME
    if isinstance(trace.extra.get("node"), dict) and trace.extra["node"].get("description"):
        return trace.extra["node"]["description"]  # labkit node: what really ran (kubelet, containerd)
    return BACKEND_NAMES.get(trace.backend, f"backend {trace.backend}")

PRESTOP_COLOUR = OKABE_ITO["reddish_purple"]
READY_COLOUR = "#222222"
# The bar states are drawn in the role's colour; the legend shows them in this neutral grey.
STATE_LEGEND_COLOUR = "#6A6A6A"
STATE_LABELS = {
    "starting": "starting (hatched): postStart hook or startup probe not yet done",
    "started": "started (solid): running",
    "terminating": "terminating (pale): stop signal sent",
}

DEFAULT_MAX_PODS = 8
_BAR = 0.56  # bar height in lanes
_PRESTOP_BAND = 0.16  # preStop band height in lanes, centred on the bar's top edge
_STRIP = 0.09  # ready strip height in lanes
_VISIBLE_PT = 2.0  # narrower than this many points a strip cannot be seen, so it gets no legend key
_LANE_IN = 0.34  # inches per row
_FONT = 9
# 9 inches: shown about 900 px wide in a notebook, text keeps its size (9 pt is about 12 px there)
FIGURE_WIDTH_IN = 9.0
NOTE_CHARS = 90  # a trace's note is cut to this in titles and summaries (fits the figure beside long pod names)


def plot_trace(trace: Trace, *, ax: Any = None, title: str | None = None, pods: str | Iterable[str] | None = None,
               max_pods: int = DEFAULT_MAX_PODS, show_probe_runs: bool = False, legend: str = "compact"):
    """Draw ``trace`` as a timeline; returns the matplotlib Figure.

    ``pods`` picks pods by name or name prefix (e.g. ``"sidecar-job"``); at most ``max_pods``
    are drawn and the figure says how many were left out. ``show_probe_runs`` adds a tick per
    probe execution (the simulator records them; real clusters cannot). ``legend`` is
    ``"compact"`` (what this figure draws, in short), ``"full"`` (every encoding it draws,
    explained) or ``"none"``. With ``ax`` the plot goes into an existing Axes and its legend
    to the right of it.
    """
    _check_legend(legend)
    shown, hidden = _select_pods(trace, pods, max_pods)
    rows = _count_rows(shown, hidden)
    if ax is None:
        fig = _new_figure(height=_figure_height(rows))
        ax = fig.add_subplot()
        own_figure = True
    else:
        fig = ax.figure
        own_figure = False
    drawing = _Drawing(ax)
    drawing.draw(trace, shown, hidden, title=title, show_probe_runs=show_probe_runs,
                 x_max=_x_max([trace]))
    if own_figure:
        _figure_legend(fig, drawing.legend_keys, legend)
    else:
        _legend(ax, drawing.legend_keys, legend, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def plot_compare(traces: Sequence[Trace], labels: Sequence[str] | None = None, *, title: str | None = None,
                 pods: str | Iterable[str] | None = None, max_pods: int = DEFAULT_MAX_PODS, legend: str = "compact"):
    """Stack two or more traces on one shared time axis (legacy vs native, 1.28 vs 1.29).

    ``labels`` names each trace (default: its backend and version); returns the Figure.
    Where the traces come from (e.g. the simulator's notice) is said once, under the title,
    when they share a backend; each panel then names only its version and gates.
    """
    _check_legend(legend)
    traces = list(traces)
    if len(traces) < 2:
        raise InvalidInput(f"plot_compare needs at least two traces, got {len(traces)}", field="traces")
    if labels is None:
        labels = [f"{t.backend}, Kubernetes {t.kubernetes_version}" for t in traces]
    labels = list(labels)
    if len(labels) != len(traces):
        raise InvalidInput(f"got {len(labels)} labels for {len(traces)} traces", field="labels")
    selections = [_select_pods(t, pods, max_pods) for t in traces]
    rows = [_count_rows(shown, hidden) for shown, hidden in selections]
    shared = len({backend_name(t) for t in traces}) == 1
    fig = _new_figure(height=_figure_height(sum(rows)) + 0.9 * (len(traces) - 1) + (0.4 if title else 0))
    axes = fig.subplots(len(traces), 1, sharex=True, gridspec_kw={"height_ratios": rows})
    x_max = _x_max(traces)
    keys: list[str] = []
    for i, (ax, trace, label, (shown, hidden)) in enumerate(zip(axes, traces, labels, selections)):
        drawing = _Drawing(ax)
        # the backend once, over the first panel, when the traces share it
        notice = (None if not shared else f"{backend_name(trace)}\n\n" if i == 0 else "")
        drawing.draw(trace, shown, hidden, title=label, show_probe_runs=False, x_max=x_max, notice=notice)
        keys.extend(k for k in drawing.legend_keys if k not in keys)
    for ax in axes[:-1]:
        ax.tick_params(axis="x", labelbottom=False)
        ax.set_xlabel("")
    if title:
        fig.suptitle(title, fontsize=_FONT + 3, fontweight="bold", x=0.01, ha="left")
    _figure_legend(fig, keys, legend)
    return fig


def _check_legend(form: str) -> None:
    if form not in LEGEND_FORMS:
        raise InvalidInput(f"expected one of {', '.join(LEGEND_FORMS)}, got {form!r}", field="legend")


def save_figure(fig, path: str | Path) -> Path:
    """Write ``fig`` as PNG or SVG, chosen by the file suffix; returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise InvalidInput(f"cannot write a {suffix or 'suffix-less'} figure: use a .png or .svg file name",
                           source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150 if suffix == ".png" else None, format=suffix[1:])
    return path


def describe_run(trace: Trace, *, backend: bool = True) -> str:
    """One line saying where a trace comes from, e.g. for a title; ``backend=False`` leaves the backend out."""
    where = backend_name(trace)
    gates = ", ".join(f"{name}={'on' if value else 'off'}" for name, value in sorted(trace.feature_gates.items()))
    line = f"Kubernetes {trace.kubernetes_version}" + (f" · {gates}" if gates else "")
    return f"{where} · {line}" if backend else line


def trace_note(trace: Trace, limit: int = NOTE_CHARS) -> str:
    """The trace's top-level ``note`` on one line, cut at a word to ``limit`` characters; "" without one.

    A hand-written example says so in its note; showing it keeps the figure from passing
    for a recorded run.
    """
    note = trace.extra.get("note")
    if not isinstance(note, str):
        return ""
    note = " ".join(note.split())
    if len(note) <= limit:
        return note
    cut = note[:limit - 1]
    cut = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return cut.rstrip(" ,;:") + "…"


# -- figure set-up ------------------------------------------------------------------------
def _new_figure(*, height: float):
    """A figure that pyplot does not keep: in Jupyter it is shown once, as the cell's value."""
    import matplotlib

    headless = sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if headless and "MPLBACKEND" not in os.environ and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(FIGURE_WIDTH_IN, min(height, 60)), layout="constrained")
    plt.close(fig)
    return fig


def _count_rows(shown: list[Pod], hidden: int) -> int:
    return sum(1 + len(p.containers) for p in shown) + (1 if hidden else 0) or 1


def _figure_height(rows: int) -> float:
    return 2.6 + _LANE_IN * rows


def _x_max(traces: Sequence[Trace]) -> float:
    """The right end of the time axis, with room for exit-code labels."""
    end = max((t.duration for t in traces), default=0.0) or 1.0
    return end * 1.1 + 0.5


def _select_pods(trace: Trace, pods: str | Iterable[str] | None, max_pods: int) -> tuple[list[Pod], int]:
    if max_pods < 1:
        raise InvalidInput(f"must be at least 1, got {max_pods}", field="max_pods")
    chosen = trace.pods
    if pods is not None:
        wanted = [pods] if isinstance(pods, str) else list(pods)
        chosen = [p for p in trace.pods if any(p.name == w or p.name.startswith(w) for w in wanted)]
        if not chosen:
            names = ", ".join(p.name for p in trace.pods[:10]) or "none"
            raise InvalidInput(f"no pod named or starting with {', '.join(map(repr, wanted))} (pods: {names})",
                               field="pods")
    return list(chosen[:max_pods]), max(0, len(chosen) - max_pods)


# -- drawing ------------------------------------------------------------------------------
@dataclass
class _Drawing:
    """Draws one trace into one Axes and remembers which legend entries it used."""

    ax: Any
    legend_keys: list[str] = field(default_factory=list)
    placed: dict[float, list[float]] = field(default_factory=dict)  # marker times per y, to dodge overlaps

    def use(self, key: str) -> None:
        if key not in self.legend_keys:
            self.legend_keys.append(key)

    def draw(self, trace: Trace, shown: list[Pod], hidden: int, *, title: str | None, show_probe_runs: bool,
             x_max: float, notice: str | None = None) -> None:
        """``notice``: None puts the backend in this Axes' title; a string (maybe empty) is put above the
        title instead, for a figure that says where its traces come from once."""
        ax = self.ax
        end = trace.duration
        ax.set_xlim(-0.01 * x_max, x_max)
        ax.set_ylim(_count_rows(shown, hidden) - 0.5, -0.5)  # first pod on top
        ax.set_autoscale_on(False)  # the limits are known: no rescaling per artist (1000s of pods)
        self.per_pt = x_max / (ax.figure.get_figwidth() * 0.8 * 72)  # data units per point, about (Axes: 80 % wide)
        self.char_w = self.per_pt * 0.62 * (_FONT - 1)  # data units per character
        ticks: list[float] = []
        labels: list[str] = []
        names = {p.name for p in shown}
        events: dict[str, list] = {name: [] for name in names}
        for event in trace.events:  # one pass: traces may hold 1000s of pods
            if event.pod in names:
                events[event.pod].append(event)
                if event.type == "SIGTERM":  # the legend names the stop signals sent (no key: SIGTERM)
                    self.use(f"signal:{event.extra.get('signal') or 'SIGTERM'}")
        spans: dict[str, list[Span]] = {name: [] for name in names}
        for span in trace.spans() if len(shown) > 1 else trace.spans(pod=shown[0].name) if shown else []:
            if span.pod in names:
                spans[span.pod].append(span)
        row = 0
        for pod in shown:
            header = row
            first_lane = row + 1
            for i, info in enumerate(pod.containers):
                ticks.append(first_lane + i)
                labels.append(info.name)
            last_lane = first_lane + len(pod.containers) - 1
            self.pod_header(events[pod.name], pod, header, last_lane, end)
            pod_spans = spans[pod.name]
            lanes = {c.name: first_lane + i for i, c in enumerate(pod.containers)}
            for i, span in enumerate(pod_spans):
                later = pod_spans[i + 1] if i + 1 < len(pod_spans) else None
                next_start = later.start if later is not None and later.container == span.container else None
                self.span(span, lanes[span.container], end, next_start)
            if show_probe_runs:
                self.probe_runs(events[pod.name], lanes)
            row = last_lane + 1
            if pod is not shown[-1]:
                ax.axhline(row - 0.5, color="#DDDDDD", linewidth=0.8, zorder=0)
        if hidden:
            ax.text(0.005, row, f"+{hidden} more pod{'s' if hidden != 1 else ''} not shown "
                    f"(showing {len(shown)}; choose with pods=[...] or raise max_pods)",
                    transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=_FONT,
                    style="italic", color=TEXT_COLOUR, gid="more-pods")
            row += 1
        if not shown and not hidden:    # e.g. a manifest the API server refused: say so, not a blank axis
            ax.text(0.5, 0.5, "no pods in this trace", transform=ax.transAxes, va="center", ha="center",
                    fontsize=_FONT, style="italic", color=TEXT_COLOUR, gid="no-pods")
        labelled = self.vertical_lines(trace)
        ax.set_yticks(ticks, labels, fontsize=_FONT)
        ax.tick_params(axis="y", length=0)
        ax.set_xlabel("seconds since the trace started", fontsize=_FONT)
        ax.tick_params(axis="x", labelsize=_FONT)
        ax.grid(axis="x", color="#E5E5E5", linewidth=0.6, zorder=0)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        heading = title or _default_title(trace)
        note = trace_note(trace)
        where = describe_run(trace, backend=False)  # the backend on a line of its own: long pod names leave little room
        if notice is None:
            where = backend_name(trace) + "\n" + where
        ax.set_title((notice or "") + f"{heading}\n{where}" + (f"\nnote: {note}" if note else ""), fontsize=_FONT + 1,
                     loc="left", pad=12 + 10 * labelled if labelled else 8)

    # one running instance of a container
    def span(self, span: Span, lane: float, trace_end: float, next_start: float | None) -> None:
        from matplotlib.patches import Rectangle

        ax = self.ax
        colour = ROLE_COLOURS.get(span.role, OKABE_ITO["black"])
        self.use(f"role:{span.role}")
        end = span.end if span.end is not None else max(trace_end, span.start)
        top = lane - _BAR / 2
        stop = span.sigterm_at if span.sigterm_at is not None else end
        started = span.started_at if span.started_at is not None else min(stop, end)
        started = min(max(started, span.start), end)
        stop = min(max(stop, started), end)
        for state, x0, x1 in (("starting", span.start, started), ("started", started, stop), ("terminating", stop, end)):
            if x1 > x0:
                ax.add_patch(Rectangle((x0, top), x1 - x0, _BAR, linewidth=0, zorder=2, gid=f"state:{state}",
                                       **_state_style(state, colour)))
                self.use(f"state:{state}")
        outline = FAILURE_COLOUR if span.failed else colour
        ax.add_patch(Rectangle((span.start, top), max(end - span.start, 0), _BAR, facecolor="none",
                               edgecolor=outline, linewidth=2.0 if span.failed else 0.9, zorder=3,
                               gid=f"span:{span.pod}/{span.container}#{span.attempt}"))
        for r0, r1 in span.ready:
            r1 = r1 if r1 is not None else end
            if r1 > r0:
                ax.add_patch(Rectangle((r0, lane + _BAR / 2 + 0.03), r1 - r0, _STRIP, facecolor=READY_COLOUR,
                                       linewidth=0, zorder=2, gid="ready"))
                self.use("ready")
        if span.ready_reported_until is not None and span.ready_reported_until > end:
            # the API's ready flag outlived the process: pale, past the bar's end (docs/timing.md)
            ax.add_patch(Rectangle((end, lane + _BAR / 2 + 0.03), span.ready_reported_until - end, _STRIP,
                                   facecolor=_tint(READY_COLOUR, 0.6), linewidth=0, zorder=2,
                                   gid=f"ready-reported:{span.pod}/{span.container}#{span.attempt}"))
            if span.ready_reported_until - end >= _VISIBLE_PT * self.per_pt:
                self.use("ready-reported")   # the key only for a strip one can see
        hook = prestop_interval(span, end)
        if hook is not None:
            began, ended, signalled = hook
            ax.add_patch(Rectangle((began, top - _PRESTOP_BAND / 2), ended - began, _PRESTOP_BAND,
                                   facecolor=PRESTOP_COLOUR if signalled else _tint(PRESTOP_COLOUR, 0.55),
                                   edgecolor="white", linewidth=0.5, zorder=3.5,
                                   gid=f"prestop:{span.pod}/{span.container}#{span.attempt}"))
            self.use("prestop" if signalled else "prestop:at-most")
        # what happens in this lane: a marker moved aside to avoid another never passes one of these
        lane_times = sorted({span.start, end, *(t for t, _ in span.marks)} | ({next_start} if next_start else set()))
        for t, kind in span.marks:
            limit = next((x for x in lane_times if x > t), None)
            if kind == "PreStop" and hook is not None and t == hook[0]:
                self.marker(kind, t, top, legend=False, limit=limit)  # the band's entry explains it
            elif kind in MARKERS and kind != "Restarted":
                self.marker(kind, t, top, limit=limit)
        if span.attempt > 0:
            self.marker("Restarted", span.start, lane)
        if span.end_type == "Killed":
            self.marker("Killed", end, lane)
        if span.exit_code is not None:
            self.exit_label(span, end, lane, next_start)
        elif span.end is None:
            self.marker("running", end, lane)

    def exit_label(self, span: Span, end: float, lane: float, next_start: float | None) -> None:
        """``exit N`` right of the bar; inside its end when a restart follows too closely; over the bar's
        end when neither has room. Always the whole ``exit N``: a bare number would be a riddle."""
        text = f"exit {span.exit_code}"
        room = next_start - end if next_start is not None else float("inf")
        length = end - span.start
        gap = 7 if span.end_type == "Killed" else 3
        needed = (len(text) + 2) * self.char_w
        if room >= needed:
            place = dict(xy=(end, lane), xytext=(gap, 0), ha="left", va="center")
        elif length >= needed:
            place = dict(xy=(end, lane), xytext=(-gap - 2, 0), ha="right", va="center")
        else:  # above the bar's end, in the gap between lanes
            place = dict(xy=(end, lane - _BAR / 2), xytext=(0, 1.5), ha="center", va="bottom")
        self.ax.annotate(
            text, textcoords="offset points", fontsize=_FONT - 1,
            color=FAILURE_COLOUR if span.failed else TEXT_COLOUR, fontweight="bold" if span.failed else "normal",
            zorder=5, bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.9)
            if room != float("inf") else None, gid=f"exit:{span.pod}/{span.container}#{span.attempt}", **place)
        self.use("exit:failed" if span.failed else "exit:normal")

    def marker(self, kind: str, t: float, y: float, *, legend: bool = True, limit: float | None = None) -> None:
        """A marker at ``t``; one that would cover an earlier one moves right, side by side, unless
        that would carry it past ``limit`` (the lane's next event): then it stacks above it."""
        from matplotlib.transforms import offset_copy

        transform = self.ax.transData
        if kind == "running":  # just right of the bar's end, clear of markers at that time
            shape, colour = ">", TEXT_COLOUR
            transform = offset_copy(transform, self.ax.figure, x=6, units="points")
        elif kind == "probe-run":
            shape, colour = "|", TEXT_COLOUR  # dark: visible on a bar and beside it
        else:
            shape, colour, _ = MARKERS[kind]
        thin = shape in ("x", "|")
        if kind != "probe-run":  # markers at (nearly) the same time and height would cover each other
            taken = self.placed.setdefault(round(y, 2), [])
            clash = sum(1 for other in taken if abs(other - t) < 8 * self.per_pt)
            taken.append(t)
            if clash:
                shift = 7 * clash  # points
                if limit is None or t + (shift + 4) * self.per_pt < limit:
                    transform = offset_copy(transform, self.ax.figure, x=shift, units="points")
                else:  # moving right would cross the lane's next event: stack it above instead
                    transform = offset_copy(transform, self.ax.figure, y=shift, units="points")
        self.ax.plot([t], [y], linestyle="none", marker=shape, color=colour, markersize=5 if kind == "probe-run" else 7,
                     markeredgecolor=colour if thin else "white", markeredgewidth=1.4 if thin else 0.7,
                     zorder=4, transform=transform, gid=f"marker:{kind}")
        if legend:
            self.use(f"marker:{kind}")

    def probe_runs(self, events: list, lanes: dict[str, int]) -> None:
        """Probe runs, drawn as small ticks in their container's lane."""
        for event in events:
            if event.type in PROBE_RUNS and event.container in lanes:
                self.marker("probe-run", event.t, lanes[event.container])

    # the pod's header row: phases, its Ready condition, deletion
    def pod_header(self, pod_events: list, pod: Pod, row: int, last_lane: int, trace_end: float) -> None:
        from matplotlib.patches import Rectangle

        ax = self.ax
        ax.text(-0.012, row, pod.name, transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontsize=_FONT, fontweight="bold", color=TEXT_COLOUR, gid="pod-name")
        events = [e for e in pod_events if e.type in ("PodPhase", "DeleteRequested", "Deleted")]
        deleted_at = next((e.t for e in events if e.type == "Deleted"), None)
        phases = [(e.t, e.phase) for e in events if e.type == "PodPhase"]
        strip_end = deleted_at if deleted_at is not None else trace_end
        for i, (t, phase) in enumerate(phases):
            t1 = phases[i + 1][0] if i + 1 < len(phases) else strip_end
            width = max(t1 - t, 0)
            ax.add_patch(Rectangle((t, row - 0.2), width, 0.4, facecolor=PHASE_COLOURS.get(phase, "#EEEEEE"),
                                   edgecolor="#999999", linewidth=0.6, zorder=2, gid=f"phase:{phase}"))
            self.use("phase")
            failed = phase == "Failed"
            colour, weight = (FAILURE_COLOUR if failed else TEXT_COLOUR), ("bold" if failed else "normal")
            if width >= (len(phase) + 1) * self.char_w or i + 1 == len(phases):
                ax.text(t + self.char_w * 0.5, row, phase, va="center", ha="left", fontsize=_FONT - 1, zorder=3,
                        color=colour, fontweight=weight, gid=f"phase-label:{phase}")
            else:   # too narrow to hold its name: every segment is named, this one just above the strip
                ax.text(t + width / 2, row - 0.22, phase, va="bottom", ha="center", fontsize=_FONT - 2, zorder=3,
                        color=colour, fontweight=weight, gid=f"phase-label:{phase}")
        for r0, r1 in pod_ready_intervals(pod_events, strip_end):
            if r1 > r0:
                ax.add_patch(Rectangle((r0, row + 0.23), r1 - r0, _STRIP, facecolor=READY_COLOUR, linewidth=0,
                                       zorder=2, gid="pod-ready"))
                self.use("pod-ready")
        drawn: set[str] = set()
        for event in events:
            if event.type not in ("DeleteRequested", "Deleted") or event.type in drawn:
                continue  # a real cluster reports a deletion from several sources: the first counts
            drawn.add(event.type)
            ax.plot([event.t, event.t], [row - 0.45, last_lane + 0.45], color="#444444", linewidth=1.1,
                    linestyle=(0, (4, 2)) if event.type == "DeleteRequested" else (0, (1, 1.5)), zorder=4,
                    gid=f"pod-event:{event.type}")
            self.use(f"pod-event:{event.type}")

    # Job / Deployment conditions and the end of observation: lines across the whole Axes, labelled above
    def vertical_lines(self, trace: Trace) -> int:
        """Draws them; returns how many label rows they need above the Axes (0 without any)."""
        ax = self.ax
        lines = []
        for event in trace.select(WORKLOAD_EVENTS):
            colour = FAILURE_COLOUR if event.type == "JobFailed" else OKABE_ITO["black"]
            lines.append((event.t, f"{event.object or ''} {event.type}".strip(), colour, (0, (2, 2)), event.type))
        last = trace.events[-1].t if trace.events else 0.0
        if trace.observed_until is not None and trace.observed_until > last:
            lines.append((trace.observed_until, f"trace ends: watched until {_seconds(trace.observed_until)}",
                          "#777777", "-", "observed-until"))
        placed: list[tuple[float, float, int]] = []
        for t, label, colour, style, kind in lines:
            workload = kind != "observed-until"
            ax.axvline(t, color=colour, linewidth=1.0, linestyle=style, zorder=1,
                       gid=f"workload:{kind}" if workload else kind)
            width = len(label) * self.char_w
            # centred on its line, but never past the Axes' right end (the end-of-trace label)
            x0 = min(t - width / 2, ax.get_xlim()[1] - width)
            level = 0
            while any(lvl == level and not (x0 > p1 or x0 + width < p0) for p0, p1, lvl in placed):
                level += 1
            placed.append((x0, x0 + width, level))
            ax.annotate(label, (x0 + width / 2, 1.0), xycoords=("data", "axes fraction"), xytext=(0, 2 + 10 * level),
                        textcoords="offset points", ha="center", va="bottom", fontsize=_FONT - 1, color=colour,
                        gid=f"workload-label:{kind}" if workload else f"label:{kind}")
            self.use("workload" if workload else kind)
        return 1 + max(level for _, _, level in placed) if placed else 0


def _default_title(trace: Trace) -> str:
    owners = []
    for pod in trace.pods:
        name = f"{pod.owner['kind'].lower()}/{pod.owner['name']}" if pod.owner else f"pod/{pod.name}"
        if name not in owners:
            owners.append(name)
    shown = ", ".join(owners[:3]) + (f" and {len(owners) - 3} more" if len(owners) > 3 else "")
    return f"Container timeline: {shown}" if shown else "Container timeline (no pods)"


def prestop_interval(span: Span, end: float) -> tuple[float, float, bool] | None:
    """When ``span``'s preStop hook ran, as (began, ended, ended_at_sigterm); None without a hook.

    The kubelet sends the stop signal once the hook returns or its time is up, so the hook
    ends at the instance's SIGTERM. Without a seen SIGTERM (a real cluster cannot see it
    when there is a hook) the trace only shows that it ended by ``end``: the container's
    exit, or the end of the trace.
    """
    began = next((t for t, kind in span.marks if kind == "PreStop"), None)
    if began is None:
        return None
    signal = next((t for t, kind in span.marks if kind == "SIGTERM" and t >= began), None)
    if signal is None or signal > end:
        return began, max(began, end), False
    return began, signal, True


def pod_ready_intervals(pod_events: list, end: float) -> list[tuple[float, float]]:
    """The pod's Ready condition as (from, to) intervals; one still true runs to ``end``."""
    intervals: list[tuple[float, float]] = []
    since = None
    for event in pod_events:
        if event.type == "PodReady" and since is None:
            since = event.t
        elif event.type == "PodNotReady" and since is not None:
            intervals.append((since, event.t))
            since = None
    if since is not None:
        intervals.append((since, max(since, end)))
    return intervals


def _state_style(state: str, colour: str) -> dict[str, Any]:
    """How a bar state is filled, in ``colour``: the bars use the role's, the legend a neutral grey."""
    if state == "starting":
        # The hatch takes the edge colour (matplotlib 3.8-3.10 have no ``hatchcolor``); the bars draw no edge.
        return dict(facecolor="white", edgecolor=colour, hatch="////")
    if state == "started":
        return dict(facecolor=colour)
    return dict(facecolor=_tint(colour, 0.6))


def _seconds(t: float) -> str:
    text = f"{t:.1f}".rstrip("0").rstrip(".")
    return f"{text} s"


def _tint(colour: str, amount: float) -> tuple[float, float, float]:
    """``colour`` mixed with white; ``amount`` 1.0 is white."""
    from matplotlib.colors import to_rgb

    return tuple(c + (1 - c) * amount for c in to_rgb(colour))


# -- legend ---------------------------------------------------------------------------
# Two forms. The full key (``legend="full"``, and :func:`plot_legend`) explains every
# encoding once, at length: notebook 1 and the README show it. Every other figure has a
# compact legend: short labels, only what the figure draws, and the bar states in the
# colour of a role it draws rather than in a neutral grey.
LEGEND_TITLE = "bar colour: container role · bar fill: state (grey here; a bar uses its role's colour)"
LEGEND_FORMS = ("full", "compact", "none")

# key -> (full label, compact label); a compact label of None leaves the entry out of compact legends
_LABELS = {
    "state:starting": (STATE_LABELS["starting"], "starting (hatched): postStart / startup probe pending"),
    "state:started": (STATE_LABELS["started"], "started (solid)"),
    "state:terminating": (STATE_LABELS["terminating"], "stopping (pale): stop signal sent"),
    "ready": ("ready (thin strip under the bar)", "ready"),
    "ready-reported": ("still reported ready after its exit (pale strip: the pod's status not yet rewritten)",
                       "ready, still reported after exit"),
    "pod-ready": ("pod Ready (strip under the phases)", "pod Ready"),
    "prestop": ("preStop hook: began (square), ran until the stop signal (band)", "preStop hook (until the stop signal)"),
    "prestop:at-most": ("preStop hook, no stop signal seen: ran at most this long", "preStop hook (at most this long)"),
    "observed-until": ("end of the trace (watched until then)", "end of the trace"),
    "exit:normal": ("exit N: exit code (143 or 137 from a stopped sidecar: normal)", None),
    "exit:failed": ("failure: non-zero exit (outline and code in this colour)", "failed (non-zero exit)"),
    "marker:running": ("still running at the end of the trace", "still running"),
    "marker:probe-run": ("one probe run", "probe run"),
    "phase": ("pod phase (header row, named in the strip)", "pod phase"),
    "pod-event:DeleteRequested": ("pod deletion requested", "deletion requested"),
    "pod-event:Deleted": ("pod object deleted", "pod deleted"),
    "workload": ("Job / Deployment condition (named at the top)", "Job / Deployment condition"),
    "role:sidecar": (ROLE_LABELS["sidecar"], "sidecar"),
    "role:init": (ROLE_LABELS["init"], "init container"),
    "role:app": (ROLE_LABELS["app"], "app container"),
    "marker:StartupProbeSucceeded": (MARKERS["StartupProbeSucceeded"][2], "startup probe passed"),
    "marker:PreStop": (MARKERS["PreStop"][2], "preStop hook began"),
    "marker:SIGTERM": ("stop signal sent: SIGTERM, or the image's STOPSIGNAL / lifecycle.stopSignal", "stop signal"),
    "marker:Killed": (MARKERS["Killed"][2], "SIGKILL"),
    "marker:Restarted": (MARKERS["Restarted"][2], "restart"),
    "marker:StartupProbeFailed": (MARKERS["StartupProbeFailed"][2], "startup probe failed"),
    "marker:LivenessProbeFailed": (MARKERS["LivenessProbeFailed"][2], "liveness probe failed"),
}
_ORDER = ([f"role:{r}" for r in ROLE_LABELS] + ["state:starting", "state:started", "state:terminating", "ready",
                                                 "ready-reported"]
          + [f"marker:{k}" for k in MARKERS]
          + ["prestop", "prestop:at-most", "marker:running", "marker:probe-run", "exit:normal", "exit:failed", "phase",
             "pod-ready", "pod-event:DeleteRequested", "pod-event:Deleted", "workload", "observed-until"])
ALL_LEGEND_KEYS = tuple(_ORDER)


def stop_signal_label(keys: Iterable[str], form: str = "compact") -> str:
    """The stop signal's legend label, naming the signals the figure's events carry (``signal:NAME`` keys).

    Events without a ``signal`` key were SIGTERM (docs/trace.md); a real cluster records no
    signal at all, and then the label names none.
    """
    signals = sorted(k.split(":", 1)[1] for k in keys if k.startswith("signal:"))
    base = _LABELS["marker:SIGTERM"][0 if form == "full" else 1]
    if not signals or form == "full":
        return base
    return f"{base} ({', '.join(signals)})"


def _legend_handles(keys: Sequence[str], form: str = "compact") -> tuple[list, list[str]]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    full = form == "full"
    # The states in a neutral grey in both forms: in a role's colour, "started" would look
    # exactly like that role's swatch (the bars draw each state in their own role's colour).
    grey = STATE_LEGEND_COLOUR
    entries = {f"state:{state}": Patch(**{"edgecolor": grey, **_state_style(state, grey)}, linewidth=0.9)
               for state in STATE_LABELS}
    entries.update({
        "ready": Line2D([], [], color=READY_COLOUR, linewidth=3),
        "ready-reported": Line2D([], [], color=_tint(READY_COLOUR, 0.6), linewidth=3),
        "pod-ready": Line2D([], [], color=READY_COLOUR, linewidth=3),
        "prestop": Line2D([], [], color=PRESTOP_COLOUR, linewidth=4, marker="s", markersize=7,
                          markerfacecolor=PRESTOP_COLOUR, markeredgecolor="white", markeredgewidth=0.7),
        "prestop:at-most": Line2D([], [], color=_tint(PRESTOP_COLOUR, 0.55), linewidth=4, marker="s", markersize=7,
                                  markerfacecolor=PRESTOP_COLOUR, markeredgecolor="white", markeredgewidth=0.7),
        "observed-until": Line2D([], [], color="#777777", linewidth=1.0),
        "exit:normal": Line2D([], [], linestyle="none"),
        "exit:failed": Patch(facecolor="white", edgecolor=FAILURE_COLOUR, linewidth=2),
        "marker:running": Line2D([], [], linestyle="none", marker=">", color=TEXT_COLOUR),
        "marker:probe-run": Line2D([], [], linestyle="none", marker="|", color=TEXT_COLOUR),
        "phase": Patch(facecolor=PHASE_COLOURS["Running"], edgecolor="#999999", linewidth=0.6, gid="thin"),
        "pod-event:DeleteRequested": Line2D([], [], color="#444444", linestyle=(0, (4, 2))),
        "pod-event:Deleted": Line2D([], [], color="#444444", linestyle=(0, (1, 1.5))),
        "workload": Line2D([], [], color="black", linestyle=(0, (2, 2))),
    })
    for role in ROLE_LABELS:
        entries[f"role:{role}"] = Patch(facecolor=ROLE_COLOURS[role], edgecolor=ROLE_COLOURS[role], linewidth=0.9)
    for kind, (shape, colour, _) in MARKERS.items():
        entries[f"marker:{kind}"] = Line2D([], [], linestyle="none", marker=shape, color=colour, markersize=7,
                                           markeredgecolor="white" if shape != "x" else colour,
                                           markeredgewidth=1.4 if shape == "x" else 0.7)
    handles, labels = [], []
    for key in _ORDER:
        label = _LABELS[key][0 if full else 1]
        if key not in keys or label is None:
            continue
        handles.append(entries[key])
        labels.append(stop_signal_label(keys, form) if key == "marker:SIGTERM" else label)
    return handles, labels


def _legend(owner, keys: Sequence[str], form: str = "compact", **options: Any) -> None:
    """``owner.legend`` (a Figure's or an Axes') of the encodings in ``keys``; the full form titled when bar states are shown."""
    from matplotlib.legend_handler import HandlerPatch
    from matplotlib.patches import Rectangle

    def thin(legend, orig_handle, xdescent, ydescent, width, height, fontsize):  # the phase strip is thinner than a bar
        return Rectangle((-xdescent, -ydescent + 0.2 * height), width, 0.6 * height)

    if form == "none":
        return
    handles, labels = _legend_handles(keys, form)
    if not handles:
        return
    title = LEGEND_TITLE if form == "full" and any(k.startswith("state:") for k in keys) else None
    owner.legend(handles, labels, title=title, title_fontsize=_FONT - 1, alignment="left", fontsize=_FONT - 1,
                 frameon=False, handler_map={h: HandlerPatch(patch_func=thin) for h in handles if h.get_gid() == "thin"},
                 **options)


# About how many characters of legend text fit across the figure at the legend's font, handles and
# column gaps included (9 inches at 8 pt).
_LEGEND_CHARS = 140


def _legend_columns(labels: Sequence[str], most: int) -> int:
    """The most columns (up to ``most``) whose widest labels fit across the figure: matplotlib fills
    a legend column by column, so each column is as wide as its longest label.

    >>> _legend_columns(["a" * 50, "b" * 30, "c" * 30, "d" * 30], 4), _legend_columns(["a" * 20] * 8, 4)
    (3, 4)
    >>> _legend_columns([], 4)
    1
    """
    if not labels:   # an empty trace draws no legend
        return 1
    for ncols in range(most, 1, -1):
        rows = -(-len(labels) // ncols)
        columns = [labels[i:i + rows] for i in range(0, len(labels), rows)]
        if sum(max(len(label) for label in column) + 5 for column in columns) <= _LEGEND_CHARS:
            return ncols
    return 1


def _figure_legend(fig, keys: Sequence[str], form: str = "compact") -> None:
    if form == "full":
        _legend(fig, keys, form, loc="outside lower center", ncols=2, handlelength=1.8, columnspacing=1.5)
    else:
        ncols = _legend_columns(_legend_handles(keys, form)[1], 4)
        _legend(fig, keys, form, loc="outside lower center", ncols=ncols, handlelength=1.5, columnspacing=1.2,
                labelspacing=0.3)


def plot_legend(keys: Iterable[str] | None = None):
    """The full key to every timeline, on its own (notebook 1, the README); returns the Figure.

    ``keys`` limits it to some encodings (default: all of them).
    """
    keys = list(ALL_LEGEND_KEYS if keys is None else keys)
    unknown = [k for k in keys if k not in _LABELS and not k.startswith("signal:")]
    if unknown:
        raise InvalidInput(f"unknown legend entries {', '.join(unknown)} (known: {', '.join(ALL_LEGEND_KEYS)})",
                           field="keys")
    handles, _ = _legend_handles(keys, "full")
    fig = _new_figure(height=0.6 + 0.19 * ((len(handles) + 1) // 2))
    fig.set_layout_engine("none")
    fig.text(0.01, 0.985, "How to read a timeline: the full key", fontsize=_FONT + 2, fontweight="bold", va="top",
             gid="legend-heading")
    _legend(fig, keys, "full", loc="upper left", bbox_to_anchor=(0.0, 0.93), ncols=2, handlelength=1.8,
            columnspacing=1.5)
    return fig
