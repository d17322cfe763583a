"""What a container's process does, as the kubelet simulator sees it: :class:`ProcessModel`.

The kubelet only sees a process start, run, maybe exit, and react (or not) to its stop
signal. This module is that description and its rules; where a model comes from is
:mod:`labkit.sim.infer` (from the container spec, docs/images.md), :mod:`labkit.sim.shell`
(``sh -c`` scripts) and :mod:`labkit.sim.behaviour` (the scenario's ``behaviour`` block).

The stop signal is the pod's ``lifecycle.stopSignal`` (1.33+, ContainerStopSignals), else the
image's STOPSIGNAL, else SIGTERM; a process reacts to the signal it gets.

PID 1 rule: a process without a handler for its stop signal ignores it (the kernel drops
default-disposition signals to a namespace's init), so it ends only by SIGKILL (137) at
the end of its grace period. With ``shareProcessNamespace: true`` the pause container is
PID 1 and such a process gets the signal's default action (143 for SIGTERM).

A trap runs only when the shell's current foreground command returns: a trap set before a
foreground ``sleep 10`` loop runs up to 10 s after SIGTERM; with ``sleep N & wait $!``
(the e2e helper) it runs at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..images import DEFAULT_STOP_SIGNAL, NON_TERMINATING
from .images import Reaction


@dataclass(frozen=True)
class Run:
    """One instance's own lifetime: ``seconds`` until it exits by itself (None: never)."""

    seconds: float | None
    exit_code: int = 0


@dataclass(frozen=True)
class Hook:
    """A postStart/preStop handler: how long it takes (None: never returns) and its result.

    ``in_container``: an exec or HTTP handler runs in (or against) the container, so it ends
    when the container does; the ``sleep`` action is a timer in the kubelet
    (``runSleepHandler``) and runs its full length whatever the container does.
    """

    seconds: float | None
    exit_code: int = 0
    in_container: bool = True


@dataclass(frozen=True)
class ProbeModel:
    """How a probe's result depends on time. ``kind``: success, failure, timeout, after
    (succeeds from ``value`` s after the instance started), until (succeeds for ``value`` s),
    until_sigterm, file (``path`` exists), listening (server listens on the port),
    running (the process runs past its start delay)."""

    kind: str
    value: float = 0.0
    path: str | None = None
    exec_seconds: float | None = None


@dataclass(frozen=True)
class Segment:
    """A stretch of the main script: a foreground command (trap deferred to its end) or not."""

    start: float
    end: float
    foreground: bool


@dataclass
class ProcessModel:
    kind: str
    description: str
    runs: tuple[Run, ...] = (Run(None),)
    start_delay: float = 0.0
    handles_sigterm: bool = False
    sigterm_exit_after: float | None = 0.0     # None: the handler does not end the process
    sigterm_exit_code: int = 0
    # Foreground stretches of the script (for deferred traps); `loop` repeats from its
    # first segment's start with `loop_period` (None: no loop).
    segments: tuple[Segment, ...] = ()
    loop_segments: tuple[Segment, ...] = ()
    loop_period: float | None = None
    listen_ports: tuple[int, ...] | None = None    # None: not known to be a server
    listens: bool | None = None                    # False: known not to listen anywhere
    files: dict[str, float] = field(default_factory=dict)
    files_removed_by_trap: tuple[str, ...] = ()
    stdout: tuple[tuple[float, str], ...] = ()
    loop_stdout: tuple[tuple[float, str], ...] = ()
    image_pull_fails: bool = False
    post_start: Hook | None = None
    pre_stop: Hook | None = None
    probes: dict[str, ProbeModel] = field(default_factory=dict)
    shared_pid_namespace: bool = False
    # The signal the runtime sends to stop it: the pod's lifecycle.stopSignal, else the
    # image's STOPSIGNAL, else SIGTERM (KEP-4960: "Stop signal from Container Spec >
    # STOPSIGNAL from container image > Default stop signal of container runtime").
    stop_signal: str = DEFAULT_STOP_SIGNAL
    # Which signals the SIGTERM fields above describe: None, whatever stop signal is sent (a
    # behaviour block, an unknown program); a script's trapped signals otherwise.
    trapped: frozenset[str] | None = None
    # A known image's program: its reaction to each signal it handles (None: not from the table).
    reactions: dict[str, Reaction] | None = None
    image_row: str | None = None        # the image table's row this model came from

    def run(self, attempt: int) -> Run:
        return self.runs[min(attempt, len(self.runs) - 1)]

    def handles(self, signal: str) -> bool:
        """Whether the process has a handler for ``signal`` (as PID 1 it gets no other)."""
        if self.reactions is not None:
            return signal in self.reactions
        if self.trapped is not None and signal not in self.trapped:
            return False
        return self.handles_sigterm

    def exit_after(self, signal: str) -> tuple[float | None, int]:
        """(seconds from its handler starting to its exit, or None: it keeps running; exit code)."""
        if self.reactions is not None and signal in self.reactions:
            reaction = self.reactions[signal]
            return reaction.exit_after, reaction.exit_code
        return self.sigterm_exit_after, self.sigterm_exit_code

    def trap_delay(self, offset: float, signal: str = DEFAULT_STOP_SIGNAL) -> float | None:
        """Seconds from the stop signal (at ``offset`` s into the instance) until the process reacts.

        None: it never reacts (the signal ignored). For a handled signal this is when the
        handler starts; the caller adds :meth:`exit_after`. Without a handler, the process
        reacts at once only when it is not PID 1 (``shareProcessNamespace``) and the
        signal's default action ends it.
        """
        if not self.handles(signal):
            if self.shared_pid_namespace and signal not in NON_TERMINATING:
                return 0.0
            return None
        segment = self._segment_at(offset)
        if segment is None or not segment.foreground:
            return 0.0
        if math.isinf(segment.end):
            return None
        return max(0.0, segment.end - offset)

    def _segment_at(self, offset: float) -> Segment | None:
        for seg in self.segments:
            if seg.start <= offset < seg.end:
                return seg
        if self.loop_period and self.loop_segments:
            base = self.loop_segments[0].start
            if offset >= base:
                k = math.floor((offset - base) / self.loop_period + 1e-9)
                rel = offset - k * self.loop_period
                for seg in self.loop_segments:
                    if seg.start <= rel < seg.end:
                        return Segment(seg.start + k * self.loop_period, seg.end + k * self.loop_period, seg.foreground)
        return None

    def stdout_lines(self, since: float, until: float) -> list[tuple[float, str]]:
        """Lines the process writes to stdout between two offsets (for ``logs``)."""
        lines = [(t, text) for t, text in self.stdout if since <= t <= until]
        if self.loop_period and self.loop_stdout:
            k = 0
            while True:
                base = k * self.loop_period
                if base + self.loop_stdout[0][0] > until or len(lines) > 10_000:
                    break
                lines.extend((base + t, text) for t, text in self.loop_stdout if since <= base + t <= until)
                k += 1
        return sorted(lines)
