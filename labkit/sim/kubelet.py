"""The kubelet of one simulated node: pod workers, probe workers, container kills.

Each kubelet goroutine is a SimPy process: one pod worker per pod, one probe worker per
(container, probe type), one kill goroutine per container during a pod kill. The code
follows the upstream functions it models, named in the comments, so a difference can be
traced back to the source:

- the pod worker syncs only on PLEG relist ticks (``podCache.GetNewerThan`` of the last
  sync), so a container exit is noticed up to 1 s later and each sync's effects show at
  the next one; a failed sync (back-off) puts the pod on the work queue, one deadline per
  pod that every sync replaces (``pod_workers.go``);
- ``computePodActions`` / ``computeInitContainerActions`` decide what to start and kill
  (``kuberuntime_manager.go``, ``kuberuntime_container.go``);
- ``killContainer`` runs preStop, waits for its turn (``kuberuntime_termination_order.go``,
  1.29+), subtracts whole seconds, never gives less than 2 s after SIGTERM;
- probe workers tick on a ticker anchored at their creation (the pod's first sync), probe
  only running containers past ``initialDelaySeconds`` (truncated seconds), publish after
  the thresholds, go on hold after a liveness/startup result, and stop for liveness and
  startup when the pod terminates (``prober/worker.go``);
- ``getPhase`` and the Initialized/ContainersReady/Ready conditions (``kubelet_pods.go``,
  ``status/generate.go``); a terminal phase is written only once no container runs.

The kubelet is split as the upstream one is: this module holds the pod worker and
``computePodActions``; ``runtime`` starts and kills containers, ``status`` reports the pod's
status, ``prober`` runs the probe workers, ``pods`` holds the objects they work on.

Decisions where the references are unsure are commented where they are made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import simpy

from ..errors import InvalidInput
from . import timing

from .pods import TERMINAL, Container, SimPod, spec_hash
from .prober import Prober
from .runtime import RuntimeManager
from .status import StatusManager


class _Actions:
    __slots__ = ("create_sandbox", "kill_pod", "kill", "init_start", "start")

    def __init__(self):
        self.create_sandbox = False
        self.kill_pod = False
        self.kill: list[tuple[Container, str]] = []
        self.init_start: list[Container] = []
        self.start: list[Container] = []


@dataclass(frozen=True)
class NodeConditions:
    """What the model cannot know of a real node's run, which ``labkit fidelity`` fits to each one
    (docs/fidelity.md): where the relist ticks fall in the second (None: drawn from the seed), and
    the CPU time its sandbox's and its containers' starts take under a CPU limit, against the
    machine timing.py was fitted on."""

    relist_phase: float | None = None
    sandbox_cpu_scale: float = 1.0
    container_cpu_scale: float = 1.0

    def __post_init__(self):
        phase = self.relist_phase
        if phase is not None and not (isinstance(phase, (int, float)) and 0 <= phase < timing.RELIST_PERIOD_S):
            raise InvalidInput(f"relist_phase must be seconds in [0, 1), got {phase!r}", field="relist_phase")
        for field in ("sandbox_cpu_scale", "container_cpu_scale"):
            scale = getattr(self, field)
            if not isinstance(scale, (int, float)) or scale <= 0:
                raise InvalidInput(f"{field} must be a positive number, got {scale!r}", field=field)


class Kubelet(RuntimeManager, StatusManager, Prober):
    """The node: runs pods handed to it, reports through ``emit`` and ``on_change``."""

    def __init__(self, env: simpy.Environment, behaviour, rng, emit: Callable[..., None],
                 on_change: Callable[[SimPod, str], None], conditions: NodeConditions = NodeConditions()):
        self.env = env
        self.behaviour = behaviour
        self.rng = rng
        self.emit = emit
        self.on_change = on_change       # (pod, what): "phase", "ready", "deleted", "restart", "status"
        # Phase of the PLEG relist ticks within the second: from the seed unless given (drawn
        # either way, so that every later draw is the same).
        drawn = round(rng.uniform(0.0, timing.RELIST_PERIOD_S), 2)
        self.relist_phase = drawn if conditions.relist_phase is None else conditions.relist_phase
        self.conditions = conditions

    # -- helpers ----------------------------------------------------------------------------
    def _at(self, delay: float, fn: Callable, *args: Any) -> None:
        ev = self.env.timeout(max(0.0, delay))
        ev.callbacks.append(lambda _ev: fn(*args))

    def next_relist(self, after: float) -> float:
        """The first PLEG relist tick strictly after ``after``."""
        period = timing.RELIST_PERIOD_S
        k = math.floor((after - self.relist_phase) / period + 1e-9) + 1
        return round(self.relist_phase + k * period, 9)

    def kick(self, pod: SimPod, at: float | None = None) -> None:
        """Ask the pod worker to sync at ``at`` (default now); the earliest request wins."""
        if pod.terminated:
            return
        at = self.env.now if at is None else at
        if pod.trigger_time is None or at < pod.trigger_time:
            pod.trigger_time = at
            self._arm(pod)

    def _sync_time(self, pod: SimPod) -> float | None:
        """When the next sync can run: the earliest request, but not before the pod cache
        is newer than the last sync (the first relist after it: podCache.GetNewerThan)."""
        if pod.trigger_time is None:
            return None
        if pod.last_sync_end is None:
            return pod.trigger_time
        if pod.relisted_at is not None and pod.relisted_at >= pod.last_sync_end:
            return max(pod.trigger_time, pod.relisted_at)      # an on-demand relist after that sync
        return max(pod.trigger_time, self.next_relist(pod.last_sync_end))

    def _arm(self, pod: SimPod) -> None:
        """Set a timer that wakes a waiting pod worker when its next sync is due."""
        if pod.wake is None:
            return          # the worker is busy; it looks at trigger_time when it is done
        target = self._sync_time(pod)
        if target is None or (pod.armed_at is not None and pod.armed_at <= target):
            return
        pod.armed_at = target
        self._at(target - self.env.now, self._wake, pod, target)

    @staticmethod
    def _wake(pod: SimPod, target: float) -> None:
        if pod.armed_at == target and pod.wake is not None and not pod.wake.triggered:
            pod.wake.succeed()

    def _pleg(self, pod: SimPod) -> None:
        """A container changed state: the next relist notices and wakes the pod worker."""
        self.kick(pod, self.next_relist(self.env.now))

    def _fire(self, c: Container) -> None:
        """Wake whatever waits for this container's status to change. Nothing waiting (a probe
        worker whose timer won its ``any_of``, or none at all): the event is kept for the next
        waiter instead of being scheduled with nothing to call (5 of a pod's 47 SimPy events)."""
        ev = c.st_event
        if not ev.callbacks:
            return
        c.st_event = self.env.event()
        ev.succeed()

    # -- API-facing ---------------------------------------------------------------------------
    def add_pod(self, pod: SimPod) -> None:
        self.env.process(self._pod_worker(pod))

    def request_deletion(self, pod: SimPod, grace: int, *, force: bool = False) -> None:
        """The API server set a deletion timestamp; the kubelet sees it one watch hop later."""
        pod.deletion_grace = grace if pod.deletion_grace is None else min(grace, pod.deletion_grace)
        if pod.deletion_requested_at is None:
            pod.deletion_requested_at = self.env.now
        if force and not pod.finalizers:      # finalizers keep the object, whatever the grace
            self._delete_object(pod)
        self._at(timing.API_WATCH_S, self._see_deletion, pod)

    def _see_deletion(self, pod: SimPod) -> None:
        pod.kill_requested = True
        if not pod.terminated:
            self.kick(pod)
        elif pod.phase in TERMINAL:
            # Asked while the worker was publishing the terminal phase (the API server still saw
            # the pod running, so it gave it grace): the status manager deletes it, as after any
            # termination. Asked later, the API server has removed it already.
            self._maybe_delete_object(pod)
        # else: the worker publishes the terminal phase next, then deletes it (_terminate)

    def update_image(self, pod: SimPod, name: str, image: str) -> None:
        """The pod's spec changed at the API server; the kubelet sees it one watch hop later
        and (unless the pod is terminating) restarts that container in its next sync."""
        self._at(timing.API_WATCH_S, self._see_image, pod, pod.by_name[name], image)

    def _see_image(self, pod: SimPod, c: Container, image: str) -> None:
        c.spec = {**c.spec, "image": image}
        c.image = image
        c.hash = spec_hash(c.spec)
        self.kick(pod)

    # -- pod worker -----------------------------------------------------------------------------
    def _pod_worker(self, pod: SimPod) -> Generator:
        env = self.env
        yield env.timeout(timing.SCHEDULE_S)
        if pod.deletion_requested_at is not None and not pod.sandbox and pod.kill_requested:
            yield from self._terminate(pod, self._effective_grace(pod))
            return
        pod.trigger_time = env.now
        while True:
            target = self._sync_time(pod)
            if target is None or target > env.now + 1e-9:
                pod.wake, pod.armed_at = env.event(), None
                self._arm(pod)
                yield pod.wake
                pod.wake = None
                continue
            pod.trigger_time = None
            if pod.kill_requested:
                yield from self._terminate(pod, self._effective_grace(pod))
                return
            terminal, relist = yield from self._sync(pod)
            pod.last_sync_end = env.now
            if relist:
                # PLEGOnDemandRelist (1.36+): SyncPod's postSync relists the pod right away, and
                # the changes its actions made (a start, a kill) wake the worker at once.
                pod.relisted_at = env.now
                self.kick(pod)
            if terminal:
                # The pod worker moves on to SyncTerminatingPod, which, like every sync, waits
                # for a pod cache newer than the last one (podCache.GetNewerThan): the next relist.
                yield env.timeout(self.next_relist(env.now) - env.now)
                yield from self._terminate(pod, None)
                return

    def _effective_grace(self, pod: SimPod) -> int:
        # pod_workers.go calculateEffectiveGracePeriod: deletionGracePeriodSeconds, never below 1.
        grace = pod.deletion_grace if pod.deletion_grace is not None else pod.tgps
        return max(timing.MIN_POD_GRACE_S, int(grace))

    def _sync(self, pod: SimPod) -> Generator:
        """One SyncPod. Returns (whether the generated phase is terminal, whether its postSync asks
        for an on-demand relist: 1.36+, after runtime actions without error)."""
        self._generate_status(pod)
        if self._get_phase(pod, terminal=False) in TERMINAL:
            return True, False
        # doBackOff reads FinishedAt from the pod status taken at the start of the sync,
        # so a container killed and restarted within one sync is judged by the instance
        # before it.
        finished = {c.name: c.last_exit.end if c.last_exit else None for c in pod.containers}
        # SyncPod works on the pod spec it was handed: a spec change that arrives during the
        # sync is seen by the next one.
        hashes = {c.name: c.hash for c in pod.containers}
        if not pod.mounted:
            yield from self._mount_and_add_probes(pod)
        actions = self._compute_actions(pod)
        if actions.create_sandbox:
            cpu = timing.SANDBOX_CPU_S * self.conditions.sandbox_cpu_scale
            yield self.env.timeout(timing.SANDBOX_S + timing.throttled(cpu, pod.cpu_limit))
            pod.sandbox = True
        if actions.kill_pod:
            # All regular containers are done and none will restart (Never/OnFailure
            # completion, or a failed init container with Never): kill the pod with the
            # pod's grace and, from 1.29, the sidecar ordering.
            yield from self._kill_pod(pod, None)
            self._complete_work(pod, [], False)
            return False, self.behaviour.on_demand_relist
        for c, reason in actions.kill:
            yield from self._kill_container(pod, c, self._grace_for(pod, c, reason), None)
        failed_backoff: list[float] = []
        image_error = False
        for c in actions.init_start:
            ok = yield from self._start(pod, c, finished[c.name], hashes[c.name], failed_backoff)
            if not ok:
                image_error = image_error or c.waiting_reason in ("ErrImagePull", "ImagePullBackOff")
                if c.role != "sidecar":
                    break
        for c in actions.start:
            ok = yield from self._start(pod, c, finished[c.name], hashes[c.name], failed_backoff)
            if not ok:
                image_error = image_error or c.waiting_reason in ("ErrImagePull", "ImagePullBackOff")
        failed = bool(failed_backoff) or image_error
        self._complete_work(pod, failed_backoff, failed)
        acted = actions.create_sandbox or bool(actions.kill or actions.init_start or actions.start)
        return False, self.behaviour.on_demand_relist and acted and not failed

    def _mount_and_add_probes(self, pod: SimPod) -> Generator:
        """The first SyncPod waits for the pod's volumes (WaitForAttachAndMount), then creates its
        probe workers (probeManager.AddPod), before any container exists: their tickers are
        anchored here (prober_manager.go AddPod, worker.go run; docs/timing.md)."""
        if pod.has_volumes:
            yield self.env.timeout(timing.VOLUME_MOUNT_WAIT_S)
        pod.mounted = True
        for c in pod.containers:
            for ptype in c.probes:
                self.env.process(self._probe_worker(pod, c, ptype))

    def _complete_work(self, pod: SimPod, expiries: list[float], failed: bool) -> None:
        """pod_workers.go completeWork: set the pod's deadline on the work queue.

        The queue holds one deadline per pod and every sync replaces it (``Enqueue`` writes
        ``queue[uid] = now + delay``): a sync that failed because a container is in
        CrashLoopBackOff/ImagePullBackOff is retried after ``wait.Jitter(backOffPeriod,
        0.5)`` = [10 s, 15 s) up to 1.34. From 1.35 (PR #133066) a CrashLoopBackOff error
        carries its expiry (``NewBackoffError(ErrCrashLoopBackOff, FinishedAt + backoff)``)
        and the retry comes after ``wait.Jitter(expiry - now, 0.5)``, that wait capped at the
        resync interval: not exactly at the expiry but within half the remaining wait after
        it. ``MinBackoffExpiration`` takes the earliest expiry even when an image error
        failed the same sync; image pull back-offs alone keep the 10 s retry. A sync without
        error re-queues at the resync interval (60-90 s); that resync finds nothing to do in
        this model, where every change that needs a sync wakes the worker itself, so it is
        not scheduled, but it still replaces an earlier error deadline.
        """
        if not failed:
            pod.requeue_at = None
            return
        wait = timing.SYNC_ERROR_BACKOFF_S
        if self.behaviour.requeue_at_backoff_expiry and expiries:
            wait = min(max(min(expiries) - self.env.now, 0.0), timing.RESYNC_INTERVAL_S)
        delay = round(wait * (1.0 + timing.WORKER_BACKOFF_JITTER * self.rng.random()), 3)
        pod.requeue_at = self.env.now + delay
        self._at(delay, self._requeue_due, pod, pod.requeue_at)

    def _requeue_due(self, pod: SimPod, deadline: float) -> None:
        # The sync loop takes the pod off the work queue once its (latest) deadline passed.
        if pod.requeue_at == deadline:
            pod.requeue_at = None
            self.kick(pod)

    # -- computePodActions ------------------------------------------------------------------------
    def _compute_actions(self, pod: SimPod) -> _Actions:
        a = _Actions()
        if not pod.sandbox:
            a.create_sandbox = True
            if pod.init:
                a.init_start = [pod.init[0]]
            else:
                a.start = list(pod.apps)
            return a
        initialized = self._init_actions(pod, a)
        if a.kill_pod or not initialized:
            return a
        keep = 0
        for c in pod.apps:
            inst = c.inst
            if inst is None or inst.end is not None:
                if self._should_restart(pod, c):
                    a.start.append(c)
                continue
            if inst.hash != c.hash:
                reason, restart = "changed", True
            elif inst.liveness == "failure":
                reason, restart = "liveness", pod.restart_policy != "Never"
            elif inst.startup == "failure":
                reason, restart = "startup", pod.restart_policy != "Never"
            else:
                keep += 1
                continue
            if restart:
                a.start.append(c)
            a.kill.append((c, reason))
        if keep == 0 and not a.start:
            a.kill_pod = True
            a.init_start = []    # sidecars must not keep a finished pod alive
        return a

    @staticmethod
    def _should_restart(pod: SimPod, c: Container) -> bool:
        # kubecontainer.ShouldContainerBeRestarted
        if pod.deletion_requested_at is not None:
            return False
        if c.inst is None:
            return True
        if pod.restart_policy == "Never":
            return False
        if pod.restart_policy == "OnFailure":
            return c.inst.exit_code != 0
        return True

    def _init_actions(self, pod: SimPod, a: _Actions) -> bool:
        """computeInitContainerActions, in the same order and with the same early exits."""
        init = pod.init
        if not init:
            return True
        # Only a created/running app proves the pod was initialized: with every app exited
        # and the last init entry a sidecar that is down (e.g. in CrashLoopBackOff), the
        # pod counts as initializing and its apps wait for that sidecar before restarting.
        initialized = any(c.running for c in pod.apps)
        previous = initialized
        restart_on_failure = pod.restart_policy != "Never"
        n = len(init)
        for i in range(n - 1, -1, -1):
            c = init[i]
            inst = c.inst
            sidecar = c.role == "sidecar"
            if inst is None:
                if previous and sidecar:
                    a.init_start.append(c)
                continue
            if previous and not sidecar:
                continue
            if inst.end is None:
                if sidecar:
                    blocked = False
                    if "startup" in c.probes and inst.startup != "success":
                        blocked = True           # unknown: wait for it; failure: restart
                        if inst.startup == "failure":
                            a.kill.append((c, "startup"))
                            a.init_start.append(c)
                    if not blocked:
                        if i == n - 1:
                            initialized = True
                        elif not previous:
                            a.init_start.append(init[i + 1])
                        if inst.hash != c.hash:
                            a.kill.append((c, "changed"))
                            a.init_start.append(c)
                        elif "liveness" in c.probes and inst.liveness == "failure":
                            a.kill.append((c, "liveness"))
                            a.init_start.append(c)
            else:
                if sidecar:
                    a.init_start.append(c)
                elif inst.exit_code != 0:
                    if not restart_on_failure:
                        a.kill_pod = True
                        a.init_start = []
                        return False
                    a.init_start.append(c)
                elif i == n - 1:
                    initialized = True
                else:
                    a.init_start.append(init[i + 1])
            previous = True
        if not previous:
            a.init_start.append(init[0])
        a.init_start.reverse()
        return initialized
