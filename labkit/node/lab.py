"""The lab on labkit's real node: :class:`~labkit.cluster.ClusterLab` on a node labkit started.

It starts the node (or reuses one that runs: ``labkit run`` starts one for the whole run and
tells each notebook ``keep_cluster=True``), and stops it at ``close()`` only if it started it
and ``keep_cluster`` is false, as :class:`labkit.kind.KindLab` does with its cluster. Its traces
say what ran: "a Kubernetes node built from upstream source (kubelet v1.37.2, containerd ...)".
"""

from __future__ import annotations

from typing import Any

from ..cluster import ClusterLab
from ..trace import Trace
from . import Node


class NodeLab(ClusterLab):
    """The lab contract on a real node built from upstream source (Linux, root)."""

    backend = "node"

    def __init__(self, k8s_version: str | None = None, keep_cluster: bool = False,
                 feature_gates: dict[str, bool] | None = None, quiet: bool = False, *,
                 seed: Any = None, pace: Any = None, cluster_name: Any = None, **cluster_options: Any):
        # seed and pace are the simulator's, cluster_name kind's: a real node runs once, at wall-clock pace.
        self.node = Node(k8s_version, feature_gates=_node_gates(feature_gates), quiet=quiet)
        self.keep_cluster = keep_cluster
        self.started_node = self.node.up()
        try:
            super().__init__(k8s_version=k8s_version, kubeconfig=self.node.kubeconfig, context="labkit-node",
                             feature_gates=feature_gates, quiet=quiet, **cluster_options)
        except BaseException:
            self._stop_node_if_ours()
            raise

    def trace(self) -> Trace:
        trace = super().trace()
        trace.extra["node"] = {"description": self.node.describe(), "kubernetes": self.node.pins.kubernetes,
                               "containerd": self.node.pins.containerd, "runc": self.node.pins.runc,
                               "etcd": self.node.pins.etcd}
        return trace

    def _stop_node_if_ours(self) -> None:
        if self.started_node and not self.keep_cluster:
            self.started_node = False
            self.node.down()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stop_node_if_ours()

    def __repr__(self) -> str:
        return (f"<NodeLab {self.node.describe()} namespace={self.namespace}"
                f"{' (closed)' if self.closed else ''}>")


def _node_gates(feature_gates: dict[str, bool] | None) -> dict[str, bool]:
    """The gates to pass the node's components: only those that differ from the version's default."""
    return {}  # the pinned minors (1.36+) need none; SidecarContainers is locked on or removed there
