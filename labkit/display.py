"""How traces and pod tables look in a notebook, in logs, and while a workload runs.

A :class:`~labkit.trace.Trace` shown in JupyterLab is a compact HTML summary: the backend
(and that the simulator is a model), the trace's note if it has one (a hand-written example
says so there), the Kubernetes version and gates, one row per container with its role,
state, restarts and exit code, and the timeline image. Exit codes
are judged the way the lab teaches them: a sidecar's 128+stop signal (143 for SIGTERM) or 137 while the kubelet stops it is
normal, any other non-zero exit is a failure and is highlighted. Logs and CI see the same
facts as plain text (:func:`trace_text`).

While a workload runs, :func:`live` redraws the timeline in place in the output cell and
settles on the final figure; executed headless (papermill, nbclient) it shows only that
final figure::

    with labkit.display.live(lab, title="Job with a native sidecar"):
        lab.wait("job/sidecar-job", "Complete", timeout=120)

matplotlib and IPython are imported only when something is drawn or displayed.
"""

from __future__ import annotations

import base64
import html
import io
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .objects import normal_stop_exit
from .plot import backend_name, trace_note  # labkit.plot imports matplotlib only when it draws
from .progress import interactive_frontend

# Pods listed in a summary; a trace of a big Deployment says how many more there are.
MAX_PODS = 20
# Exit codes of a process ended by a signal the kubelet sends at shutdown (128 + 15, 128 + 9).
# Waiting reasons that mean the container cannot run.
FAILED_WAITING_REASONS = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
                          "CreateContainerError", "InvalidImageName", "RunContainerError")
# Statuses in `kubectl get pods` that mean something went wrong.
FAILED_POD_STATUSES = FAILED_WAITING_REASONS + ("Error", "OOMKilled", "Failed", "Init:Error",
                                                "Init:CrashLoopBackOff", "Evicted")

_STYLE_CELL = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"
_STYLE_CLASS = {
    "ok": "",
    "normal": "color:#2e6b30",
    "failed": "color:#D55E00;font-weight:bold",
    "running": "",
    "waiting": "color:#8a6d00",
}


# -- judging a container's final status -------------------------------------------------
def container_outcome(trace, pod, name: str) -> tuple[str, str]:
    """Classify a container's final status as (class, note) for display.

    class is ``ok``, ``normal`` (a sidecar's 128+stop signal or 137 at shutdown), ``failed``,
    ``running`` or ``waiting``; note says why in a few words.
    """
    final = pod.final.containers.get(name) if pod.final else None
    if final is None:
        return "waiting", "no status yet"
    if final.state == "running":
        return "running", ""
    if final.state == "waiting":
        if final.reason in FAILED_WAITING_REASONS:
            return "failed", final.reason
        return "waiting", final.reason or ""
    if final.exit_code == 0:
        return "ok", ""
    if _stopped_at_shutdown(trace, pod, name, final.exit_code):
        return "normal", "normal at shutdown"
    return "failed", "failed"


def _stopped_at_shutdown(trace, pod, name: str, exit_code: int | None) -> bool:
    """A sidecar's 128+stop signal or 137 because the kubelet stopped it, not because it broke.

    The trace's own judgement (:attr:`Span.failed`, which needs a seen SIGTERM and no
    failed probe) decides where it applies. Real clusters cannot see signals, so there a
    pod that was being deleted or had finished counts as shutting down too.
    """
    ended = [s for s in trace.spans(pod.name) if s.container == name and s.end is not None]
    last = ended[-1] if ended else None
    if pod.container(name).role != "sidecar" or not normal_stop_exit(exit_code, last and last.stop_signal):
        return False
    if last is not None and last.sigterm_at is not None:
        return not last.failed
    if last is not None and any(kind in ("LivenessProbeFailed", "StartupProbeFailed") for _, kind in last.marks):
        return False
    if trace.first("DeleteRequested", pod=pod.name) is not None:
        return True
    return bool(pod.final and (pod.final.deleted or pod.final.phase in ("Succeeded", "Failed")))


def _more_pods(trace) -> str:
    return f"… and {len(trace.pods) - MAX_PODS} more pod(s) not listed"


def _exit_text(final) -> str:
    if final is None or final.state != "terminated":
        return ""
    parts = [str(final.exit_code) if final.exit_code is not None else "?"]
    if final.reason:
        parts.append(final.reason)
    return " ".join(parts)


def _backend_text(trace) -> str:
    return backend_name(trace)


def _gates_text(trace) -> str:
    if not trace.feature_gates:
        return "none set (the version's defaults)"
    return ", ".join(f"{name}={'true' if on else 'false'}" for name, on in sorted(trace.feature_gates.items()))


def _extent_text(trace) -> str:
    """'12 events over 10.1s', and how long the run was watched when that went on after the last event."""
    last = trace.events[-1].t if trace.events else 0.0
    text = f"{len(trace.events)} events over {last:.1f}s"
    if trace.observed_until is not None and trace.observed_until > last:
        text += f", observed for {trace.observed_until:.1f}s"
    return text


def _rows(trace) -> list[dict[str, Any]]:
    """One row per container of the first MAX_PODS pods: what both summaries show."""
    rows = []
    for pod in trace.pods[:MAX_PODS]:
        phase = pod.final.phase if pod.final else "?"
        if pod.final and pod.final.deleted:
            phase += " (deleted)"
        for info in pod.containers:
            final = pod.final.containers.get(info.name) if pod.final else None
            outcome, note = container_outcome(trace, pod, info.name)
            rows.append({
                "pod": pod.name, "phase": phase, "container": info.name, "role": info.role,
                "state": final.state if final else "?",
                "restarts": final.restart_count if final else 0,
                "exit": _exit_text(final), "outcome": outcome, "note": note,
            })
    return rows


# -- plain text -----------------------------------------------------------------------
def trace_text(trace) -> str:
    """The summary as plain text, for logs, CI and ``print``."""
    note = trace_note(trace)
    lines = [f"Trace: {_backend_text(trace)}, Kubernetes {trace.kubernetes_version}"] + ([f"note: {note}"] if note else [])
    lines += [f"gates: {_gates_text(trace)}", f"{len(trace.pods)} pod(s), {_extent_text(trace)}"]
    rows = _rows(trace)
    if rows:
        header = ("POD", "PHASE", "CONTAINER", "ROLE", "STATE", "RESTARTS", "EXIT")
        table = [header] + [(r["pod"], r["phase"], r["container"], r["role"], r["state"], str(r["restarts"]),
                             r["exit"] + (f" ({r['note']})" if r["note"] and r["exit"] else
                                          r["note"] if r["note"] else ""))
                            for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
        for row in table:
            lines.append("   ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "   " + row[-1])
    if len(trace.pods) > MAX_PODS:
        lines.append(_more_pods(trace))
    return "\n".join(line.rstrip() for line in lines)


# -- HTML -----------------------------------------------------------------------------
def timeline_png(trace, *, title: str | None = None, dpi: int = 100) -> bytes:
    """The trace's timeline (``labkit.plot.plot_trace``) as PNG bytes; the figure is closed."""
    from .plot import plot_trace

    figure = plot_trace(trace, title=title)
    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        return buffer.getvalue()
    finally:
        _close(figure)


def _close(figure) -> None:
    """Close a figure so that matplotlib-inline does not draw it a second time."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(figure)


def _img_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="labkit-timeline" alt="{html.escape(alt)}" src="data:image/png;base64,{data}" style="max-width:100%">'


def _cell(text: Any, *, tag: str = "td", css_class: str = "", style: str = "", rowspan: int = 1) -> str:
    attrs = f' class="{css_class}"' if css_class else ""
    attrs += f' rowspan="{rowspan}"' if rowspan > 1 else ""
    return f'<{tag}{attrs} style="{_STYLE_CELL};{style}">{html.escape(str(text))}</{tag}>'


def trace_html(trace, *, image: bool = True) -> str:
    """The summary as HTML: header, per-container table, and (``image=True``) the timeline."""
    e = html.escape
    parts = ['<div class="labkit-trace">',
             f'<div><b>{e(_backend_text(trace))}</b> · Kubernetes {e(trace.kubernetes_version)}'
             f' · gates: {e(_gates_text(trace))}'
             f' · {len(trace.pods)} pod(s), {e(_extent_text(trace))}</div>']
    note = trace_note(trace)
    if note:  # the whole note on hover
        parts.append(f'<div class="labkit-note" title="{e(" ".join(trace.extra["note"].split()))}">'
                     f'<i>note: {e(note)}</i></div>')
    rows = _rows(trace)
    if rows:
        parts.append('<table class="labkit-containers" style="border-collapse:collapse;margin:4px 0">')
        parts.append("<thead><tr>" + "".join(_cell(h, tag="th") for h in
                     ("Pod", "Phase", "Container", "Role", "State", "Restarts", "Exit", "")) + "</tr></thead><tbody>")
        rows_per_pod: dict[str, int] = {}
        for row in rows:
            rows_per_pod[row["pod"]] = rows_per_pod.get(row["pod"], 0) + 1
        shown: set[str] = set()
        for row in rows:
            cells = []
            if row["pod"] not in shown:
                shown.add(row["pod"])
                cells.append(_cell(row["pod"], rowspan=rows_per_pod[row["pod"]], css_class="labkit-pod"))
                cells.append(_cell(row["phase"], rowspan=rows_per_pod[row["pod"]]))
            css = f"labkit-{row['outcome']}"
            style = _STYLE_CLASS[row["outcome"]]
            cells += [_cell(row["container"], css_class="labkit-container"),
                      _cell(row["role"], css_class=f"labkit-role-{row['role']}"),
                      _cell(row["state"]), _cell(row["restarts"]),
                      _cell(row["exit"], css_class=css, style=style),
                      _cell(row["note"], css_class=css, style=style)]
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table>")
    if len(trace.pods) > MAX_PODS:
        parts.append(f'<div class="labkit-more">{html.escape(_more_pods(trace))}</div>')
    if image and trace.events:
        parts.append(_img_tag(timeline_png(trace), f"timeline of the {trace.backend} trace"))
    parts.append("</div>")
    return "\n".join(parts)


def pods_html(table) -> str:
    """A :class:`~labkit.printers.PodTable` as ``kubectl get pods`` shows it, in HTML.

    The cells are the table's own (NAME READY STATUS RESTARTS AGE, kubectl's age format);
    a status that means trouble (Error, CrashLoopBackOff, ...) is highlighted.
    """
    rows = list(table)
    if not rows:
        return f'<div class="labkit-pods">{html.escape(str(table))}</div>'
    header = "".join(_cell(h, tag="th") for h in table.HEADERS)
    body = []
    for row in rows:
        cells = row.cells()
        failed = cells[2] in FAILED_POD_STATUSES
        body.append("<tr>" + "".join(
            _cell(text, css_class="labkit-failed" if failed and i == 2 else "",
                  style=_STYLE_CLASS["failed"] if failed and i == 2 else "")
            for i, text in enumerate(cells)) + "</tr>")
    return ('<table class="labkit-pods" style="border-collapse:collapse;font-family:monospace">'
            f"<thead><tr>{header}</tr></thead><tbody>{''.join(body)}</tbody></table>")


class TraceView:
    """A trace as the notebook shows it: HTML with the timeline, the text summary elsewhere."""

    def __init__(self, trace, *, image: bool = True):
        self.trace = trace
        self.image = image

    def _repr_html_(self) -> str:
        return trace_html(self.trace, image=self.image)

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(trace_text(self.trace))

    def __repr__(self) -> str:
        return trace_text(self.trace)


class TimelineFigure:
    """A trace's timeline as a PNG image output; logs (text/plain) get the text summary."""

    def __init__(self, trace, *, title: str | None = None):
        self.png = timeline_png(trace, title=title)
        self.text = (f"{title}\n" if title else "") + trace_text(trace)

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return self.text


# -- live view ------------------------------------------------------------------------
def live_updates_supported(env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """Whether to redraw in place: an interactive frontend, unless ``LABKIT_LIVE=0`` in ``env`` (``os.environ``)."""
    env = os.environ if env is None else env
    if env.get("LABKIT_LIVE", "").strip() == "0":
        return False, "LABKIT_LIVE=0"
    return interactive_frontend()


class LiveView:
    """Redraws a lab's timeline in one output while it runs; see :func:`live`.

    ``display`` is ``IPython.display.display`` unless given (tests pass a recorder);
    ``clock`` gives wall-clock seconds for throttling; ``env`` (default ``os.environ``) is
    where ``live="auto"`` looks for ``LABKIT_LIVE``.
    """

    def __init__(self, lab, *, title: str | None = None, live: bool | str = "auto", interval: float = 1.0,
                 display: Callable[..., Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 env: Mapping[str, str] | None = None):
        if live not in (True, False, "auto"):
            raise ValueError(f"live must be True, False or 'auto', got {live!r}")
        self.lab = lab
        self.title = title
        self.interval = interval
        self.live, self.why = (live, "asked for") if live != "auto" else live_updates_supported(env)
        self._display = display
        self._clock = clock
        self._handle = None
        self._last_update: float | None = None
        self._unsubscribe: Callable[[], Any] | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.updates = 0  # how many in-place redraws were sent

    def _show(self, obj: Any, **kwargs: Any):
        if self._display is None:
            from IPython.display import display

            self._display = display
        return self._display(obj, **kwargs)

    def __enter__(self) -> "LiveView":
        if self.live:
            self._handle = self._show(_LiveFrame(self.title), display_id=True)
            self._last_update = self._clock()
            self._unsubscribe = self.lab.add_listener(self._on_trace)
        return self

    def _on_trace(self, trace) -> None:
        """Listener: redraw at most once per ``interval`` seconds of wall time."""
        if self._closed or not trace.events:
            return
        now = self._clock()
        if self._last_update is not None and now - self._last_update < self.interval:
            return
        with self._lock:
            if self._closed:
                return
            png = timeline_png(trace, title=self.title)
            self._handle.update(_LiveFrame(self.title, trace, png))
            self.updates += 1
            self._last_update = self._clock()

    def __exit__(self, exc_type, exc, tb) -> None:
        with self._lock:
            self._closed = True
            self._stop_listening()
        try:
            self._show_final()
        except Exception:
            if exc_type is None:
                raise
            # The block's own error is the one worth seeing; do not hide it behind a drawing error.

    def _show_final(self) -> None:
        trace = self.lab.trace()
        final: Any = TimelineFigure(trace, title=self.title) if trace.events else TraceView(trace, image=False)
        if self._handle is not None:
            self._handle.update(final)
        else:
            self._show(final)

    def _stop_listening(self) -> None:
        if callable(self._unsubscribe):
            self._unsubscribe()
        elif self._unsubscribe is None and self.live and hasattr(self.lab, "remove_listener"):
            self.lab.remove_listener(self._on_trace)


class _LiveFrame:
    """One frame of the live view: a status line over the timeline so far (fixed when made)."""

    def __init__(self, title: str | None, trace=None, png: bytes | None = None):
        self.png = png
        self.spans = len(trace.spans()) if trace is not None else 0
        what = title or "workload"
        if trace is None or not trace.events:
            self.status = f"{what}: waiting for the first events…"
        else:
            clock = "virtual" if trace.backend == "sim" or trace.extra.get("served_simulator") else "wall-clock"
            self.status = (f"{what}: running, t = {trace.duration:.1f}s ({clock} time), "
                           f"{self.spans} container run(s) so far")

    def _repr_html_(self) -> str:
        body = f'<div class="labkit-live">{html.escape(self.status)}</div>'
        if self.png:
            body += _img_tag(self.png, "timeline so far")
        return body

    def __repr__(self) -> str:
        return self.status


def live(lab, *, title: str | None = None, live: bool | str = "auto", interval: float = 1.0,
         display: Callable[..., Any] | None = None, clock: Callable[[], float] = time.monotonic,
         env: Mapping[str, str] | None = None) -> LiveView:
    """Watch ``lab``'s timeline grow while the ``with`` block runs, then show the final figure.

    ``live="auto"`` redraws in place only where someone is watching (see
    :func:`live_updates_supported`); otherwise, or with ``live=False``, only the final
    figure is shown. Redraws happen at most every ``interval`` seconds of wall time.
    """
    return LiveView(lab, title=title, live=live, interval=interval, display=display, clock=clock, env=env)
