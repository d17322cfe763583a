"""The backends tests/integration runs on: one set of expectations, every backend it can reach.

:func:`backends` is the one list. It always has the simulator (so ``.ci/run`` runs these
tests); a cluster reached through a kubeconfig when ``LABKIT_KUBECONFIG`` names one
(``LABKIT_CONTEXT`` picks a context); kind when Docker, kind and kubectl work and
``LABKIT_KIND_TESTS=1`` (it creates a cluster, which takes minutes); and the cluster backend on
labkit's served simulator (``served``, whenever kubectl is installed: the session's ``served``
fixture starts it, and the lab reaches it through :func:`kubeconfig_backend`, as any cluster
with a kubeconfig); and labkit's real node (``node``) when `labkit node up` has started it
(it runs the release it was built from, whatever ``LABKIT_K8S_VERSION`` says). A backend that cannot be reached is listed as skipped with the reason.

``LABKIT_K8S_VERSION`` (default 1.29) is the version asked of the simulator and kind; a
cluster runs its own. ``LABKIT_TRACE_DIR`` keeps the traces. On kind, ``LABKIT_KIND_CLUSTER``
names the cluster (a labkit cluster of that name is reused, as the workflow reuses the
notebooks' one) and ``LABKIT_KEEP_CLUSTER=1`` keeps one the tests made, for diagnostics.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass(frozen=True)
class Backend:
    """How to open a lab: ``labkit.connect(backend, k8s_version, **options)``, or why it cannot be."""

    id: str
    backend: str
    options: dict[str, Any] = field(default_factory=dict)
    skip: str | None = None
    marks: tuple = ()


def kubeconfig_backend(id: str, kubeconfig: str | None, context: str | None = None, *,
                       missing: str = "") -> Backend:
    """A backend reached through a kubeconfig file (labkit's cluster backend: a namespace of its own)."""
    if not kubeconfig:
        return Backend(id, "cluster", skip=missing or f"no kubeconfig for {id}")
    if not os.path.isfile(kubeconfig):
        return Backend(id, "cluster", skip=f"{kubeconfig}: no such kubeconfig file")
    if _no_kubectl():
        return Backend(id, "cluster", skip="kubectl not found on PATH")
    return Backend(id, "cluster", {"kubeconfig": kubeconfig, "context": context})


def _no_kubectl() -> bool:
    from labkit.kubectl import kubectl_binary

    return shutil.which(kubectl_binary()) is None


def _kind_missing(env: Mapping[str, str]) -> str | None:
    if env.get("LABKIT_KIND_TESTS") != "1":
        return "set LABKIT_KIND_TESTS=1 (with Docker and kind) to create a real kind cluster (takes minutes)"
    from labkit.tools import check_docker

    docker = check_docker()
    if not docker.usable:
        return f"Docker engine not usable: {docker.detail}"
    for tool in ("kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    return None


def backends(env: Mapping[str, str] | None = None) -> list[Backend]:
    """Every backend the integration tests know, reachable or not (then with the reason)."""
    env = os.environ if env is None else env
    version = env.get("LABKIT_K8S_VERSION", "1.29")
    result = [Backend("sim", "sim", {"seed": 0})]
    result.append(Backend("served", "cluster", skip="kubectl not found on PATH" if _no_kubectl() else None))
    result.append(kubeconfig_backend("cluster", env.get("LABKIT_KUBECONFIG"), env.get("LABKIT_CONTEXT"),
                                     missing="set LABKIT_KUBECONFIG to a kubeconfig file to run on that cluster"))
    name = env.get("LABKIT_KIND_CLUSTER") or f"labkit-it-{version.replace('.', '-')}"
    keep = env.get("LABKIT_KEEP_CLUSTER") == "1"
    result.append(Backend("kind", "kind", {"cluster_name": name, "keep_cluster": keep},
                          skip=_kind_missing(env), marks=(pytest.mark.kind,)))
    result.append(Backend("node", "node", {"keep_cluster": True}, skip=_node_missing()))
    return result


def _node_missing() -> str | None:
    """labkit's real node runs only where `labkit node up` started it (Linux, root; .ci/run does)."""
    from labkit.node import why_not_running

    return why_not_running()


def backend_params(env: Mapping[str, str] | None = None) -> list:
    params = []
    for backend in backends(env):
        marks = list(backend.marks)
        if backend.skip:
            marks.append(pytest.mark.skip(reason=backend.skip))
        params.append(pytest.param(backend, id=backend.id, marks=marks))
    return params
