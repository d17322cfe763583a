"""The garbage collector of the simulated cluster (``pkg/controller/garbagecollector``): a deleted
Job's or Deployment's pods are deleted after the object is gone, one watch hop per owner level
(kubectl delete's background cascade).

:class:`GarbageCollector` is one of the parts :class:`labkit.sim.cluster.Cluster` is made of.
"""

from __future__ import annotations

from . import timing
from .pods import Workload


class GarbageCollector:
    """Delete a workload, then its pods."""

    def delete_workload(self, workload: Workload, grace: int | None = None) -> None:
        """kubectl delete (background cascade): the object goes, the garbage collector then
        deletes its pods, each with its own grace period."""
        if workload.deleted or workload.deleting:
            return
        workload.deleting = True
        self._at(timing.API_WATCH_S, self._workload_gone, workload)

    def _workload_gone(self, workload: Workload) -> None:
        workload.deleted = True
        if workload.kind == "Deployment" or not workload.finished:
            self.open_workloads -= 1
        hops = 2 if workload.kind == "Deployment" else 1     # Deployment -> ReplicaSet -> pods
        self._at(hops * timing.API_WATCH_S, self._collect_pods, workload)

    def _collect_pods(self, workload: Workload) -> None:
        for pod in workload.pods:
            if not pod.deleted:
                self.delete_pod(pod)
