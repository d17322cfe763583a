"""The runtime manager's part of the simulated kubelet: starting containers with their postStart
hooks, sending stop signals, and killing containers and pods with their grace periods in order
(``kuberuntime_container.go``: ``startContainer``, ``killContainer``,
``killContainersWithSyncResult``; ``kuberuntime_termination_order.go``, 1.29+).

:class:`RuntimeManager` is one of the parts :class:`labkit.sim.kubelet.Kubelet` is made of; its
methods use the kubelet's clock, rng and emit.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import simpy

from . import timing
from ..images import SIGNAL_NUMBERS

from .pods import TERMINAL, Container, Instance, SimPod


class _Ordering:
    """kuberuntime_termination_order.go: sidecars wait for all regular containers and the
    next later-declared sidecar; containers not running at the kill are already done."""

    def __init__(self, env: simpy.Environment, pod: SimPod, running: list[Container]):
        self.done: dict[str, simpy.Event] = {}
        self.prereqs: dict[str, list[simpy.Event]] = {}
        names = {c.name for c in running}
        mains = []
        for c in pod.apps:
            ev = env.event()
            if c.name not in names:
                ev.succeed()
            self.done[c.name] = ev
            mains.append(ev)
        previous: str | None = None
        for c in reversed(pod.init):
            ev = env.event()
            if c.name not in names:
                ev.succeed()
            self.done[c.name] = ev
            if c.role == "sidecar":
                self.prereqs[c.name] = list(mains) + ([self.done[previous]] if previous else [])
                previous = c.name

    def terminated(self, name: str) -> None:
        ev = self.done.get(name)
        if ev is not None and not ev.triggered:
            ev.succeed()


class RuntimeManager:
    """Start, signal and kill containers (kuberuntime_container.go)."""

    # -- starting containers ------------------------------------------------------------------------
    def _start(self, pod: SimPod, c: Container, finished_at: float | None, spec_hash_: str,
               backoffs: list[float]) -> Generator:
        env = self.env
        now = env.now
        if finished_at is not None:
            # kuberuntime_manager.go doBackOff + flowcontrol.Backoff: the key includes the
            # spec hash, so a new image starts with a fresh back-off.
            entry = c.backoff.get(spec_hash_)
            expired = entry is not None and finished_at - entry[1] > timing.CRASHLOOP_RESET_S
            if entry is not None and not expired and now - finished_at < entry[0] - 1e-9:
                c.waiting_reason = "CrashLoopBackOff"
                backoffs.append(finished_at + entry[0])
                return False
            if entry is None or expired:
                c.backoff[spec_hash_] = (timing.CRASHLOOP_INITIAL_S, now)
            else:
                c.backoff[spec_hash_] = (min(entry[0] * 2, timing.CRASHLOOP_MAX_S), now)
        if c.model.image_pull_fails:
            key = "image:" + c.image
            entry = c.backoff.get(key)
            if entry is not None and now - entry[1] < entry[0] - 1e-9:
                c.waiting_reason = "ImagePullBackOff"
                return False
            yield env.timeout(timing.IMAGE_PULL_FAIL_S)
            self.emit("ImagePullFailed", pod, c.name, reason="ErrImagePull",
                      message=f"Failed to pull image {c.image!r} (the behaviour says it cannot be pulled)")
            c.waiting_reason = "ErrImagePull"
            c.backoff[key] = (timing.IMAGE_BACKOFF_INITIAL_S if entry is None else
                              min(entry[0] * 2, timing.IMAGE_BACKOFF_MAX_S), env.now)
            return False
        c.waiting_reason = None
        cpu = timing.CONTAINER_CPU_S * self.conditions.container_cpu_scale
        yield env.timeout(timing.CONTAINER_START_S + timing.throttled(cpu, c.cpu_limit))
        inst = self._run_instance(pod, c, spec_hash_)
        hook = c.model.post_start
        if hook is not None:
            # startContainer runs postStart synchronously: the pod worker starts nothing
            # else until it returns.
            self.emit("PostStart", pod, c.name)
            yield self._hook_done(hook, inst, math.inf)
            if inst.end is None:
                self.emit("PostStartDone", pod, c.name, exit_code=hook.exit_code)
            if hook.exit_code != 0 and inst.end is None:
                yield from self._kill_container(pod, c, self._grace_for(pod, c, "poststart"), None)
                return False
        return True

    def _hook_done(self, hook, inst: Instance, limit: float) -> simpy.Event:
        """When a lifecycle handler is over, waited for at most ``limit`` seconds. An exec or
        HTTP handler ends with its container; a sleep action runs on in the kubelet."""
        seconds = limit if hook.seconds is None else min(hook.seconds, limit)
        done = self.env.timeout(seconds) if seconds != math.inf else self.env.event()
        return done | inst.done if hook.in_container else done

    def _run_instance(self, pod: SimPod, c: Container, spec_hash_: str) -> Instance:
        inst = Instance(c.starts, self.env.now, self.env.event(), spec_hash_)
        c.starts += 1
        c.inst = inst
        self.emit("Started", pod, c.name, attempt=inst.attempt)
        if inst.attempt > 0:
            self.emit("Restarted", pod, c.name, attempt=inst.attempt)
            self.on_change(pod, "restart")
        run = c.model.run(inst.attempt)
        if run.seconds is not None:
            self._at(run.seconds, self._exit, pod, c, inst, run.exit_code, False)
        self._pleg(pod)
        return inst

    # -- process signals ------------------------------------------------------------------------------
    def _sigterm(self, pod: SimPod, c: Container, inst: Instance) -> None:
        """StopContainer's first signal: the container's stop signal (the pod's
        lifecycle.stopSignal, else the image's STOPSIGNAL, else SIGTERM; KEP-4960 and the
        CRI runtimes' stopContainer). The trace keeps the event type ``SIGTERM`` for "the
        stop signal was sent" and names the signal when it is another one."""
        now = self.env.now
        inst.sigterm_at = now
        model = c.model
        signal = model.stop_signal
        self.emit("SIGTERM", pod, c.name, **({} if signal == "SIGTERM" else {"signal": signal}))
        if signal == "SIGKILL":
            self._exit(pod, c, inst, 137, True)     # not catchable, not even by PID 1
            return
        delay = model.trap_delay(now - inst.start, signal)
        if delay is None:
            return      # PID 1 without a handler, or a handler that never gets to run
        inst.trap_at = now + delay
        if not model.handles(signal):
            # Not PID 1 (shareProcessNamespace): the default action ends it, 128 + signal number.
            self._at(delay, self._exit, pod, c, inst, 128 + SIGNAL_NUMBERS[signal], False)
            return
        after, code = model.exit_after(signal)
        if after is not None:
            self._at(delay + after, self._exit, pod, c, inst, code, False)

    def _exit(self, pod: SimPod, c: Container, inst: Instance, code: int, killed: bool) -> None:
        if inst.end is not None:
            return
        inst.end = self.env.now
        inst.exit_code = code
        c.last_exit = inst
        if killed:
            self.emit("Killed", pod, c.name, exit_code=code)
        else:
            self.emit("Exited", pod, c.name, exit_code=code)
        inst.done.succeed()
        self._pleg(pod)

    # -- killing -------------------------------------------------------------------------------------------
    def _grace_for(self, pod: SimPod, c: Container, reason: str | None) -> int:
        # kuberuntime_container.go setTerminationGracePeriod
        if pod.deletion_grace is not None:
            return pod.deletion_grace
        if reason in ("startup", "liveness"):
            probe_grace = (c.probes.get(reason) or {}).get("terminationGracePeriodSeconds")
            if probe_grace is not None:
                return int(probe_grace)
        return pod.tgps

    def _kill_pod(self, pod: SimPod, override: int | None) -> Generator:
        """killContainersWithSyncResult: one kill goroutine per running container, at once."""
        # Goroutines start together; apps are listed first so that simultaneous events
        # (an app's SIGKILL and a sidecar's turn at the same instant) read in causal order.
        running = [c for c in pod.apps + pod.init[::-1] if c.running]
        if not running:
            return
        ordering = (_Ordering(self.env, pod, running)
                    if self.behaviour.ordered_termination and pod.has_sidecars else None)
        procs = [self.env.process(self._kill_container(
            pod, c, override if override is not None else self._grace_for(pod, c, None), ordering))
            for c in running]
        yield self.env.all_of(procs)

    def _kill_container(self, pod: SimPod, c: Container, grace: int, ordering: _Ordering | None) -> Generator:
        """killContainer: preStop, wait for the turn, SIGTERM, SIGKILL after the rest of the grace."""
        env = self.env
        inst = c.inst
        if inst is None or inst.end is not None:
            if ordering is not None:
                ordering.terminated(c.name)
            return
        hook = c.model.pre_stop
        if hook is not None and grace > 0:
            # executePreStopHook waits for the hook at most `grace` seconds and returns the
            # whole seconds it took (int64 of a float: truncated), which the caller subtracts.
            self.emit("PreStop", pod, c.name)
            start = env.now
            yield self._hook_done(hook, inst, grace)
            grace -= int(round(env.now - start, 6))
        if ordering is not None and grace > 0:
            start = env.now
            pending = [ev for ev in ordering.prereqs.get(c.name, ()) if not ev.triggered]
            if pending:
                yield env.all_of(pending) | env.timeout(grace)
            grace -= int(round(env.now - start, 6))
        grace = max(grace, timing.MIN_GRACE_AFTER_SIGTERM_S)
        if inst.end is None:
            self._sigterm(pod, c, inst)
            if inst.end is None:
                yield inst.done | env.timeout(grace)
                if inst.end is None:
                    self._exit(pod, c, inst, 137, True)
        if ordering is not None:
            ordering.terminated(c.name)

    def _terminate(self, pod: SimPod, override: int | None) -> Generator:
        """syncTerminatingPod + syncTerminatedPod: stop liveness/startup probing, kill what
        runs, write the terminal status, and delete the object if it was deleted.

        The status is written before killPod and again once every container has stopped;
        in between nothing regenerates the container statuses, so a container that exits
        early in the grace period keeps showing running and ready until the end
        (kubernetes/kubernetes#106896, #128820). Only readiness probe results
        (SetContainerReadiness) change readiness meanwhile.

        The status manager sends a terminal phase only once the pod worker has finished
        terminating (mergePodStatus holds it while CouldHaveRunningContainers), and only with a
        status that changed: with the final container states when killPod stopped something,
        else with syncTerminatedPod's status at the next relist (docs/timing.md).
        """
        if pod.sandbox:
            self._generate_status(pod)
        pod.liveness_stopped = True
        for c in pod.containers:
            if c.probes:
                self._fire(c)
        yield from self._kill_pod(pod, override)
        changed = False
        for c in pod.containers:     # the status written once every container has stopped
            changed |= self._snapshot(c)
        phase = self._get_phase(pod, terminal=True)
        if phase not in TERMINAL:
            phase = "Failed"     # status manager TerminatePod: a terminal pod is at least Failed
        pod.terminated = True
        pod.probes_removed = True
        for c in pod.containers:
            if c.probes:
                self._fire(c)
            if c.st_ready:
                c.st_ready = False
                changed = True
                if c.role != "init":
                    self.emit("NotReady", pod, c.name)
        if not changed:      # nothing new to send: the phase waits for syncTerminatedPod
            yield self.env.timeout(self.next_relist(self.env.now) - self.env.now)
        self._publish_phase(pod, phase)
        self._set_conditions(pod)
        pod.trigger_time = None
        self.on_change(pod, "terminated")
        self._maybe_delete_object(pod)

    def _maybe_delete_object(self, pod: SimPod) -> None:
        """The status manager's delete of a deleted pod that has terminated (docs/timing.md)."""
        if pod.kill_requested and not pod.finalizers and not pod.deleted:
            self._at(timing.TERMINATED_POD_DELETE_S, self._delete_object, pod)

    def _delete_object(self, pod: SimPod) -> None:
        if pod.deleted:
            return
        pod.deleted = True
        self.emit("Deleted", pod, None)
        self.on_change(pod, "deleted")
