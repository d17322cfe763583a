"""The status manager's part of the simulated kubelet: what the kubelet reports of a pod
(``generateAPIPodStatus``, ``getPhase`` in ``kubelet_pods.go``; the Initialized, ContainersReady
and Ready conditions of ``status/generate.go``; ``mergePodStatus`` holding a terminal phase back
while containers run).

:class:`StatusManager` is one of the parts :class:`labkit.sim.kubelet.Kubelet` is made of.
"""

from __future__ import annotations

from .pods import TERMINAL, Container, SimPod


class StatusManager:
    """Generate and publish a pod's status, phase and conditions."""

    # -- status ------------------------------------------------------------------------------------------
    def _generate_status(self, pod: SimPod) -> None:
        """generateAPIPodStatus + probeManager.UpdatePodStatus, at the start of a sync."""
        reported = not pod.reported
        pod.reported = True
        for c in pod.containers:
            inst = c.inst
            changed = self._snapshot(c)
            reported |= changed
            state = c.st_state
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
        if reported:
            self.on_change(pod, "status")
        self._publish_phase(pod, self._get_phase(pod, terminal=False))
        self._set_conditions(pod)

    @staticmethod
    def _snapshot(c: Container) -> bool:
        """Take the container's state as the runtime reports it now (GetPodStatus): what the pod's
        status shows until the next snapshot. Returns whether it changed."""
        inst = c.inst
        state = "waiting" if inst is None else "running" if inst.end is None else "terminated"
        if state == "terminated" and c.waiting_reason == "CrashLoopBackOff":
            state = "waiting"
        if inst is c.st_inst and state == c.st_state:
            return False
        if inst is not c.st_inst and c.st_inst is not None:
            c.st_last = c.st_inst            # a new run replaced it: the old one has ended
        c.st_inst, c.st_state = inst, state
        return True

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
        # The status manager holds back a terminal phase until the pod worker has finished
        # terminating (mergePodStatus: CouldHaveRunningContainers, PR #108366), and no pod
        # leaves a terminal phase.
        if pod.terminal or phase == pod.phase:
            return
        if phase in TERMINAL and not pod.terminated:
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
