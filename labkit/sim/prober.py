"""The prober's part of the simulated kubelet: one worker per (container, probe type), ticking on
its period from its creation, publishing after its thresholds (``prober/worker.go``,
``prober_manager.go``).

:class:`Prober` is one of the parts :class:`labkit.sim.kubelet.Kubelet` is made of.
"""

from __future__ import annotations

import math
from collections.abc import Generator

from . import timing
from .pods import Container, Instance, SimPod

_PROBE_RUN = {"startup": "StartupProbeRun", "readiness": "ReadinessProbeRun", "liveness": "LivenessProbeRun"}


class Prober:
    """Probe workers and what their results change."""

    # -- probes ------------------------------------------------------------------------------------------------
    def _probe_worker(self, pod: SimPod, c: Container, ptype: str) -> Generator:
        """prober/worker.go run + doProbe, sleeping through ticks that would do nothing.

        doProbe reads the container from the status manager (``c.st_*`` here), which the
        pod worker refreshes at each sync: a container that just started is probed at the
        first tick after the sync that saw it running, and the ``initialDelaySeconds``
        check uses whole seconds since its StartedAt.
        """
        env = self.env
        spec = c.probes[ptype]
        period = float(spec.get("periodSeconds") or 10)
        delay = int(spec.get("initialDelaySeconds") or 0)
        timeout_s = float(spec.get("timeoutSeconds") or 1)
        failure_threshold = int(spec.get("failureThreshold") or 3)
        success_threshold = int(spec.get("successThreshold") or 1)
        model = c.model.probes.get(ptype)
        anchor = env.now           # time.NewTicker at worker start (no initial jitter: the
        current: Instance | None = None   # kubelet has been up longer than one period)
        noticed: Instance | None = None   # the container the status last showed, and since when
        noticed_at = env.now
        on_hold = False
        last: str | None = None
        run = 0
        fix = self.behaviour.probe_worker_keeps_sidecars
        while True:
            if pod.probes_removed or (pod.liveness_stopped and ptype != "readiness"):
                return
            st = c.st_inst
            if st is not noticed:
                noticed, noticed_at = st, env.now
            act_at: float | None = None
            if st is not None and not (on_hold and st is current):
                if c.st_state != "running":
                    # A tick now would record Failure and, before the 1.35 fix (#133072),
                    # end the worker of a sidecar in a Never pod whose status shows
                    # Terminated; the pod worker does not care about the Failure.
                    if c.st_state == "terminated" and pod.restart_policy == "Never" and not (fix and c.role == "sidecar"):
                        act_at = self._next_tick(anchor, period, env.now)
                elif (ptype == "startup") != c.st_started:
                    t = self._next_tick(anchor, period, env.now)
                    while int(round(t - st.start, 6)) < delay:
                        t += period
                    act_at = t
            st_event = c.st_event
            trigger = c.ready_trigger if ptype == "readiness" else None
            waits = [st_event] + ([trigger] if trigger is not None else [])
            if act_at is not None:
                waits.append(env.timeout(act_at - env.now))
            yield env.any_of(waits)
            manual = trigger is not None and trigger.triggered
            if manual:
                anchor = env.now    # the ticker is reset after a manual run
            elif act_at is None or env.now + 1e-9 < act_at:
                continue            # the status changed: look again
            # -- doProbe at a tick (or a manual trigger) --
            if pod.terminal or pod.probes_removed:
                return
            st = c.st_inst
            if st is None:
                continue
            first_look = False
            if st is not current:
                # A new container ID only lifts the hold; the run of equal results (lastResult,
                # resultRun) carries over from the previous container, as in doProbe.
                current, on_hold = st, False
                # doProbe's first look at a new container ID sets the initial result, a change the
                # results manager sends on; for a startup probe (Unknown) syncLoopIteration syncs the
                # pod at once (handleProbeSync), just before this probe answers, so the sync its
                # answer asks for waits for the next relist (podCache.GetNewerThan). Seen in the
                # kubelet's log on labkit's node (docs/fidelity.md). This tick is that first look
                # when it is the first tick since the status showed the container.
                first_look = (ptype == "startup" and st is noticed
                              and abs(env.now - self._next_tick(anchor, period, noticed_at)) < 1e-9)
            if on_hold:
                continue
            if c.st_state != "running":
                if c.st_state == "terminated" and pod.restart_policy == "Never" and not (fix and c.role == "sidecar"):
                    return
                continue
            if pod.liveness_stopped and ptype != "readiness":
                return
            if int(round(env.now - st.start, 6)) < delay:
                continue
            if (ptype == "startup") == c.st_started:
                continue
            self.emit(_PROBE_RUN[ptype], pod, c.name)
            if first_look:
                self.kick(pod)
                yield env.timeout(timing.PROBE_ANSWER_S)
            result, took = self._evaluate(c, st, model, timeout_s)
            if took > 0:
                yield env.timeout(took)
            if result == last:
                run += 1
            else:
                last, run = result, 1
            if (result == "failure" and run < failure_threshold) or (result == "success" and run < success_threshold):
                continue
            self._publish_probe(pod, c, st, ptype, result)
            if (ptype == "liveness" and result == "failure") or ptype == "startup":
                on_hold, run = True, 0

    @staticmethod
    def _next_tick(anchor: float, period: float, now: float) -> float:
        """The worker's first ticker tick strictly after ``now``."""
        k = math.floor((now - anchor) / period + 1e-9) + 1
        return anchor + k * period

    def _evaluate(self, c: Container, inst: Instance, model, timeout_s: float) -> tuple[str, float]:
        now = self.env.now
        if inst.end is not None:
            return "failure", 0.0       # exec into / connect to a dead container fails
        offset = now - inst.start
        kind = model.kind if model is not None else "running"
        if kind == "success":
            ok = True
        elif kind == "failure":
            ok = False
        elif kind == "timeout":
            took = model.exec_seconds if model.exec_seconds is not None else math.inf
            if took < timeout_s:
                return "success", took
            return "failure", timeout_s
        elif kind == "after":
            ok = offset >= model.value - 1e-9
        elif kind == "until":
            ok = offset < model.value
        elif kind == "until_sigterm":
            # "until SIGTERM" is read as "until the SIGTERM handler runs" (the scenario
            # audits note that a bash trap waits for the running foreground command).
            stop = (inst.trap_at if inst.trap_at is not None
                    else inst.sigterm_at if not c.model.handles(c.model.stop_signal) else None)
            ok = stop is None or now < stop
        elif kind == "file":
            created = c.model.files.get(model.path)
            ok = created is not None and offset >= created - 1e-9
            if ok and model.path in c.model.files_removed_by_trap and inst.trap_at is not None and now >= inst.trap_at:
                ok = False
        elif kind == "listening":
            ports = c.model.listen_ports or ()
            ok = offset >= c.model.start_delay - 1e-9 and (int(model.value) in ports or model.value < 0)
            if inst.sigterm_at is not None and c.model.handles(c.model.stop_signal):
                ok = False             # a server shutting down stops accepting
        else:   # running past the start delay
            ok = offset >= c.model.start_delay - 1e-9
        return ("success" if ok else "failure"), 0.0

    def _publish_probe(self, pod: SimPod, c: Container, inst: Instance, ptype: str, result: str) -> None:
        """The results managers' updates as syncLoopIteration handles them."""
        if ptype == "startup":
            inst.startup = result
            if result == "success":
                self.emit("StartupProbeSucceeded", pod, c.name)
                # SetContainerStartup updates the status at once; the sync that follows
                # starts the next init container (handleProbeSync).
                if inst is c.st_inst and c.st_state == "running" and not c.st_started:
                    c.st_started = True
                    self._fire(c)
            else:
                self.emit("StartupProbeFailed", pod, c.name)
            self.kick(pod)
        elif ptype == "liveness":
            inst.liveness = result
            if result == "failure":
                self.emit("LivenessProbeFailed", pod, c.name)
                self.kick(pod)
        else:
            changed = inst.readiness != result
            inst.readiness = result
            if inst is c.st_inst:
                # SetContainerReadiness: the ready flag and the pod's Ready condition
                # change at once, also while the pod terminates.
                self._set_ready(pod, c, result == "success" and c.st_state == "running")
                self._set_conditions(pod)
            if changed:
                self.kick(pod)
