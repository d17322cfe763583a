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

Decisions where the references are unsure are commented where they are made.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from ..objects import container_role
from . import timing
from .images import SIGNAL_NUMBERS
from .process import ProcessModel

TERMINAL = ("Succeeded", "Failed")
_PROBE_RUN = {"startup": "StartupProbeRun", "readiness": "ReadinessProbeRun", "liveness": "LivenessProbeRun"}


def spec_hash(container_spec: dict) -> str:
    """Stand-in for the kubelet's container hash: any change of the spec is a new hash."""
    return hashlib.sha1(json.dumps(container_spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


class Instance:
    """One run of a container (one container ID)."""

    __slots__ = ("attempt", "start", "end", "exit_code", "sigterm_at", "trap_at",
                 "done", "startup", "liveness", "readiness", "hash")

    def __init__(self, attempt: int, start: float, done: simpy.Event, hash_: str):
        self.attempt = attempt
        self.start = start
        self.end: float | None = None
        self.exit_code: int | None = None
        self.sigterm_at: float | None = None
        self.trap_at: float | None = None
        self.done = done
        self.startup: str | None = None      # probe results for this container ID
        self.liveness: str | None = None
        self.readiness: str | None = None
        self.hash = hash_


class Container:
    """A declared container and its runtime state on the node."""

    __slots__ = ("name", "role", "spec", "model", "probes", "image", "hash", "inst", "starts", "last_exit",
                 "backoff", "waiting_reason", "st_inst", "st_state", "st_started", "st_ready", "st_event",
                 "ready_trigger")

    def __init__(self, name: str, role: str, spec: dict, model: ProcessModel, hash_: str, env: simpy.Environment):
        self.name = name
        self.role = role
        self.spec = spec
        self.model = model
        self.probes = {ptype: spec[f"{ptype}Probe"] for ptype in ("startup", "readiness", "liveness")
                       if spec.get(f"{ptype}Probe") and role != "init"}
        self.image = spec.get("image", "")
        self.hash = hash_
        self.inst: Instance | None = None
        self.starts = 0
        self.last_exit: Instance | None = None    # the latest exited instance (its FinishedAt, exit code)
        self.backoff: dict[str, tuple[float, float]] = {}   # key -> (backoff, lastUpdate)
        self.waiting_reason: str | None = None    # the kubelet's reason cache
        # What the status manager shows (probe workers read this, like doProbe does).
        self.st_inst: Instance | None = None
        self.st_state = "waiting"
        self.st_started = False
        self.st_ready = False
        self.st_event = env.event()
        self.ready_trigger = env.event()

    @property
    def running(self) -> bool:
        return self.inst is not None and self.inst.end is None


class SimPod:
    """A pod as the API server and the kubelet see it."""

    __slots__ = ("obj", "name", "namespace", "labels", "finalizers", "owner", "spec", "restart_policy", "tgps",
                 "init", "apps", "containers", "by_name", "has_sidecars", "created_at", "phase", "initialized",
                 "containers_ready", "ready", "deletion_grace", "deletion_requested_at",
                 "kill_requested", "deleted", "sandbox", "terminated", "settled", "liveness_stopped",
                 "probes_removed", "trigger_time", "wake", "armed_at", "last_sync_end", "requeue_at")

    def __init__(self, env: simpy.Environment, obj: dict, models: dict[str, ProcessModel], hashes: dict[str, str], *,
                 owner: dict | None, created_at: float):
        meta = obj.get("metadata") or {}
        spec = obj["spec"]
        self.obj = obj
        self.name: str = meta["name"]
        self.namespace: str = meta.get("namespace") or "default"
        self.labels: dict = dict(meta.get("labels") or {})
        self.finalizers = list(meta.get("finalizers") or [])
        self.owner = owner
        self.spec = spec
        self.restart_policy: str = spec.get("restartPolicy") or "Always"
        tgps = spec.get("terminationGracePeriodSeconds")
        self.tgps: int = timing.DEFAULT_TERMINATION_GRACE_S if tgps is None else int(tgps)
        self.init: list[Container] = []
        for c in spec.get("initContainers") or []:
            self.init.append(Container(c["name"], container_role("initContainers", c), c, models[c["name"]], hashes[c["name"]], env))
        self.apps = [Container(c["name"], "app", c, models[c["name"]], hashes[c["name"]], env)
                     for c in spec.get("containers") or []]
        self.containers = self.init + self.apps
        self.by_name = {c.name: c for c in self.containers}
        self.has_sidecars = any(c.role == "sidecar" for c in self.init)
        self.created_at = created_at
        # API status
        self.phase = "Pending"
        self.initialized = not self.init
        self.containers_ready = False
        self.ready = False
        # deletion
        self.deletion_grace: int | None = None
        self.deletion_requested_at: float | None = None
        self.kill_requested = False        # the kubelet has seen the deletion
        self.deleted = False
        # kubelet bookkeeping
        self.sandbox = False
        self.terminated = False            # the pod worker finished
        self.settled = False               # (cluster bookkeeping) finished or gone for good
        self.liveness_stopped = False
        self.probes_removed = False
        self.trigger_time: float | None = None
        self.wake: simpy.Event | None = None       # set while the pod worker waits
        self.armed_at: float | None = None         # when its wake-up timer fires
        self.last_sync_end: float | None = None
        self.requeue_at: float | None = None       # the pod's deadline on the kubelet's work queue

    def any_running(self) -> bool:
        return any(c.running for c in self.containers)

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL

    def container_names(self) -> list[str]:
        return [c.name for c in self.containers]


class _Actions:
    __slots__ = ("create_sandbox", "kill_pod", "kill", "init_start", "start")

    def __init__(self):
        self.create_sandbox = False
        self.kill_pod = False
        self.kill: list[tuple[Container, str]] = []
        self.init_start: list[Container] = []
        self.start: list[Container] = []


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


class Kubelet:
    """The node: runs pods handed to it, reports through ``emit`` and ``on_change``."""

    def __init__(self, env: simpy.Environment, behaviour, rng, emit: Callable[..., None],
                 on_change: Callable[[SimPod, str], None]):
        self.env = env
        self.behaviour = behaviour
        self.rng = rng
        self.emit = emit
        self.on_change = on_change       # (pod, what): "phase", "ready", "deleted", "restart"
        # Phase of the PLEG relist ticks within the second, from the seed.
        self.relist_phase = round(rng.uniform(0.0, timing.RELIST_PERIOD_S), 2)

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
        ev, c.st_event = c.st_event, self.env.event()
        ev.succeed()

    # -- API-facing ---------------------------------------------------------------------------
    def add_pod(self, pod: SimPod) -> None:
        self.env.process(self._pod_worker(pod))

    def request_deletion(self, pod: SimPod, grace: int, *, force: bool = False) -> None:
        """The API server set a deletion timestamp; the kubelet sees it one watch hop later."""
        pod.deletion_grace = grace if pod.deletion_grace is None else min(grace, pod.deletion_grace)
        if pod.deletion_requested_at is None:
            pod.deletion_requested_at = self.env.now
        if force:
            self._delete_object(pod)
        self._at(timing.API_WATCH_S, self._see_deletion, pod)

    def _see_deletion(self, pod: SimPod) -> None:
        pod.kill_requested = True
        if pod.terminated:
            self._maybe_delete_object(pod)
        else:
            self.kick(pod)

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
        # probeManager.AddPod: workers are created at the first sync, before any container
        # exists; their tickers are anchored here (prober_manager.go AddPod, worker.go run; docs/timing.md).
        for c in pod.containers:
            for ptype in c.probes:
                env.process(self._probe_worker(pod, c, ptype))
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
            terminal = yield from self._sync(pod)
            pod.last_sync_end = env.now
            if terminal:
                yield from self._terminate(pod, None)
                return

    def _effective_grace(self, pod: SimPod) -> int:
        # pod_workers.go calculateEffectiveGracePeriod: deletionGracePeriodSeconds, never below 1.
        grace = pod.deletion_grace if pod.deletion_grace is not None else pod.tgps
        return max(timing.MIN_POD_GRACE_S, int(grace))

    def _sync(self, pod: SimPod) -> Generator:
        """One SyncPod. Returns True when the generated phase is terminal."""
        self._generate_status(pod)
        if self._get_phase(pod, terminal=False) in TERMINAL:
            return True
        # doBackOff reads FinishedAt from the pod status taken at the start of the sync,
        # so a container killed and restarted within one sync is judged by the instance
        # before it.
        finished = {c.name: c.last_exit.end if c.last_exit else None for c in pod.containers}
        # SyncPod works on the pod spec it was handed: a spec change that arrives during the
        # sync is seen by the next one.
        hashes = {c.name: c.hash for c in pod.containers}
        actions = self._compute_actions(pod)
        if actions.create_sandbox:
            yield self.env.timeout(timing.SANDBOX_S)
            pod.sandbox = True
        if actions.kill_pod:
            # All regular containers are done and none will restart (Never/OnFailure
            # completion, or a failed init container with Never): kill the pod with the
            # pod's grace and, from 1.29, the sidecar ordering.
            yield from self._kill_pod(pod, None)
            self._complete_work(pod, [], False)
            return False
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
        self._complete_work(pod, failed_backoff, bool(failed_backoff) or image_error)
        return False

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
        yield env.timeout(timing.CONTAINER_START_S)
        inst = self._run_instance(pod, c, spec_hash_)
        hook = c.model.post_start
        if hook is not None:
            # startContainer runs postStart synchronously: the pod worker starts nothing
            # else until it returns.
            self.emit("PostStart", pod, c.name)
            yield self._hook_done(hook, inst, math.inf)
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
        """
        if pod.sandbox:
            self._generate_status(pod)
        pod.liveness_stopped = True
        for c in pod.containers:
            if c.probes:
                self._fire(c)
        yield from self._kill_pod(pod, override)
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
                if c.role != "init":
                    self.emit("NotReady", pod, c.name)
        self._publish_phase(pod, phase)
        self._set_conditions(pod)
        pod.trigger_time = None
        self.on_change(pod, "terminated")
        self._maybe_delete_object(pod)

    def _maybe_delete_object(self, pod: SimPod) -> None:
        if pod.kill_requested and not pod.finalizers and not pod.deleted:
            self._at(timing.POD_OBJECT_DELETE_S, self._delete_object, pod)

    def _delete_object(self, pod: SimPod) -> None:
        if pod.deleted:
            return
        pod.deleted = True
        self.emit("Deleted", pod, None)
        self.on_change(pod, "deleted")

    # -- status ------------------------------------------------------------------------------------------
    def _generate_status(self, pod: SimPod) -> None:
        """generateAPIPodStatus + probeManager.UpdatePodStatus, at the start of a sync."""
        for c in pod.containers:
            inst = c.inst
            state = "waiting" if inst is None else "running" if inst.end is None else "terminated"
            if state == "terminated" and c.waiting_reason == "CrashLoopBackOff":
                state = "waiting"
            if inst is not c.st_inst or state != c.st_state:
                c.st_inst, c.st_state = inst, state
                changed = True
            else:
                changed = False
            started = state == "running" and ("startup" not in c.probes or inst.startup == "success")
            if started != c.st_started:
                c.st_started = started
                changed = True
            if c.role == "init":
                ready = inst is not None and inst.end is not None and inst.exit_code == 0
            else:
                ready = started and ("readiness" not in c.probes or inst.readiness == "success")
                if started and "readiness" in c.probes and inst.readiness != "success":
                    # UpdatePodStatus pokes the readiness worker of a started container
                    # that is not ready yet (manualTriggerCh).
                    trigger, c.ready_trigger = c.ready_trigger, self.env.event()
                    trigger.succeed()
            self._set_ready(pod, c, ready)
            if changed and c.probes:
                self._fire(c)
        self._publish_phase(pod, self._get_phase(pod, terminal=False))
        self._set_conditions(pod)

    def _set_ready(self, pod: SimPod, c: Container, ready: bool) -> None:
        if ready == c.st_ready:
            return
        c.st_ready = ready
        if c.role != "init":
            self.emit("Ready" if ready else "NotReady", pod, c.name)

    def _get_phase(self, pod: SimPod, *, terminal: bool) -> str:
        """kubelet_pods.go getPhase over the runtime view."""
        pending_init = failed_init = 0
        running = waiting = stopped = succeeded = 0
        for c in pod.init:
            inst = c.inst
            if c.role == "sidecar":
                if inst is None:
                    pending_init += 1
                    waiting += 1
                elif inst.end is None:
                    if not (("startup" not in c.probes) or inst.startup == "success"):
                        pending_init += 1
                    running += 1
                continue
            if inst is None or inst.end is None:
                pending_init += 1
            elif inst.exit_code != 0:
                failed_init += 1
        any_app_started = False
        for c in pod.apps:
            inst = c.inst
            if inst is None:
                waiting += 1
                continue
            any_app_started = True
            if inst.end is None:
                running += 1
            else:
                stopped += 1
                if inst.exit_code == 0 and c.waiting_reason != "CrashLoopBackOff":
                    succeeded += 1
        if failed_init and pod.restart_policy == "Never":
            return "Failed"
        if (pending_init and not any_app_started) or waiting:
            return "Pending"
        if running:
            return "Running"
        if stopped:
            if terminal:
                return "Succeeded" if stopped == succeeded else "Failed"
            if pod.restart_policy == "Always":
                return "Running"
            if stopped == succeeded:
                return "Succeeded"
            if pod.restart_policy == "Never":
                return "Failed"
            return "Running"
        return "Pending"

    def _publish_phase(self, pod: SimPod, phase: str) -> None:
        # The status manager holds back a terminal phase while containers may still run
        # (mergePodStatus, PR #108366), and no pod leaves a terminal phase.
        if pod.terminal or phase == pod.phase:
            return
        if phase in TERMINAL and pod.any_running():
            return
        pod.phase = phase
        self.emit("PodPhase", pod, None, phase=phase)
        self.on_change(pod, "phase")

    def _set_conditions(self, pod: SimPod) -> None:
        """status/generate.go: Initialized, ContainersReady, Ready."""
        if pod.phase == "Succeeded" or not pod.init or any(c.inst is not None for c in pod.apps):
            pod.initialized = True
        else:
            pod.initialized = all(c.st_started if c.role == "sidecar" else c.st_ready for c in pod.init)
        ready = (pod.phase != "Succeeded" and not pod.terminated
                 and all(c.st_ready for c in pod.containers if c.role != "init"))
        pod.containers_ready = ready
        if ready != pod.ready:
            pod.ready = ready
            self.emit("PodReady" if ready else "PodNotReady", pod, None)
            self.on_change(pod, "ready")

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
        on_hold = False
        last: str | None = None
        run = 0
        fix = self.behaviour.probe_worker_keeps_sidecars
        while True:
            if pod.probes_removed or (pod.liveness_stopped and ptype != "readiness"):
                return
            st = c.st_inst
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
            if st is not current:
                # A new container ID only lifts the hold; the run of equal results (lastResult,
                # resultRun) carries over from the previous container, as in doProbe.
                current, on_hold = st, False
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
