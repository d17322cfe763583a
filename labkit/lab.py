"""``labkit.lab.connect``: open a lab on the backend that fits, as the notebooks do.

Every backend keeps one contract, :class:`labkit.contract.Lab` (the simulator's ``SimLab``,
kind's ``KindLab``, an existing cluster's ``ClusterLab``), so a notebook runs unchanged on any::

    lab = connect(backend="auto", k8s_version="1.29")
    lab.apply("manifests/job-sidecar.yaml")          # prints: $ kubectl apply -f ...
    lab.wait("job/sidecar-job", "Complete", timeout=120)
    trace = lab.trace()
    lab.close()
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from .contract import Lab
from .errors import InvalidInput
from .versions import DEFAULT_K8S_VERSION, KubeVersion, lab_feature_gates

BACKEND_CHOICES = ("auto", "sim", "kind", "cluster", "node")


def resolve_backend(backend: str = "auto", k8s_version: KubeVersion | None = None, *,
                    env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The backend to use and why: ``auto`` honours ``LABKIT_BACKEND`` (Binder sets ``sim``), then probes.

    ``env`` is where ``LABKIT_BACKEND`` is looked up (default ``os.environ``), so tests need not change it.
    """
    if backend not in BACKEND_CHOICES:
        raise InvalidInput(f"unknown backend {backend!r} (choose one of {', '.join(BACKEND_CHOICES)})", field="backend")
    if backend != "auto":
        return backend, f"backend={backend!r} was asked for"
    env = os.environ if env is None else env
    chosen = env.get("LABKIT_BACKEND", "").strip()
    if chosen:
        if chosen not in BACKEND_CHOICES or chosen == "auto":
            raise InvalidInput(f"unknown backend {chosen!r} (choose one of sim, kind, cluster)", field="LABKIT_BACKEND")
        return chosen, f"LABKIT_BACKEND={chosen} is set in the environment (binder/start sets it on Binder)"
    from .tools import pick_backend

    return pick_backend(k8s_version=k8s_version)


def connect(backend: str = "auto", k8s_version: str | KubeVersion = DEFAULT_K8S_VERSION, **options: Any) -> Lab:
    """Open a lab on ``backend``; ``auto`` picks kind when Docker and kind work, else the simulator.

    Options are passed to the backend: ``feature_gates``, ``seed`` and ``pace`` (simulator),
    ``cluster_name`` and ``keep_cluster`` (kind), ``context`` and ``namespace`` (cluster),
    ``keep_cluster`` (node: labkit's real node, docs/node.md; ``auto`` never picks it).
    """
    version = KubeVersion.parse(k8s_version)   # once, here: the backends take it parsed
    backend, why = resolve_backend(backend, version)
    options["feature_gates"] = lab_feature_gates(version, options.get("feature_gates"))
    if backend == "sim":
        from .sim import SimLab

        lab = SimLab(k8s_version=version, **options)
    elif backend == "kind":
        from .kind import KindLab

        lab = KindLab(k8s_version=version, **options)
    elif backend == "node":
        from .node.lab import NodeLab

        lab = NodeLab(k8s_version=version, **options)
    else:
        from .cluster import ClusterLab

        lab = ClusterLab(k8s_version=version, **options)
    lab.why = why
    return lab
