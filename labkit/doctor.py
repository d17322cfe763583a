"""``labkit doctor``: what is installed, which backend ``auto`` would pick, and how to fix the rest.

Checks are plain commands with short timeouts (``docker info`` answers in milliseconds
when the engine is down), run through the same runner as every other tool call, so tests
can feed them canned answers. The report is information: ``labkit doctor`` exits 0.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping

from .errors import InvalidInput
from .kubectl import Runner
from .lab import resolve_backend
from .tools import (check_docker, check_kind, check_kubectl, check_python, check_served_simulator, kind_advice,
                    pick_backend)
from .versions import DEFAULT_K8S_VERSION, KubeVersion, release_minors


def _auto_choice(runner: Runner | None, env: Mapping[str, str], k8s_version: KubeVersion | None = None) -> tuple[str, str]:
    """What ``backend="auto"`` does: LABKIT_BACKEND first (Binder sets it), else :func:`pick_backend`."""
    if env.get("LABKIT_BACKEND", "").strip():
        try:
            return resolve_backend("auto", env=env)
        except InvalidInput as exc:
            return "none", str(exc)
    return pick_backend(runner, k8s_version=k8s_version)


def report(runner: Runner | None = None, *, system: str | None = None, env: Mapping[str, str] | None = None,
           k8s_version: str | None = None) -> str:
    """The doctor's report as text, for ``k8s_version`` (default 1.29); ``env`` (default ``os.environ``) is
    where ``LABKIT_BACKEND`` is read."""
    system = system or platform.system()
    env = os.environ if env is None else env
    version = KubeVersion.parse(k8s_version or DEFAULT_K8S_VERSION, field="--k8s-version")
    minor = version.minor_str
    checks = [check_python(), check_docker(runner, system=system),
              check_kind(runner, system=system, k8s_version=version), check_kubectl(runner, system=system)]
    lines = [f"labkit doctor (for Kubernetes {minor}; --k8s-version to ask about another)", ""]
    lines += ["  " + check.line() for check in checks]
    kind = next(c for c in checks if c.name == "kind")
    if kind.usable and release_minors(kind.version) and minor not in release_minors(kind.version):
        lines += ["", f"kind {kind.version} has no node image for Kubernetes {minor}: "
                      f"{kind_advice(system, minor)}"]
    # a served simulator (`labkit serve`) at its default kubeconfig: kubectl against it needs no Docker
    from .serve import default_kubeconfig

    lines += ["  " + check_served_simulator(default_kubeconfig(env)).line()]
    lines += ["  " + node_line()]
    backend, why = _auto_choice(runner, env, version)
    lines += ["", f"backend=\"auto\" would pick: {backend} ({why})"]
    fixes = [f"  - {check.name}: {check.fix}" for check in checks if check.fix and not check.usable]
    if fixes:
        lines += ["", "To run the lab on a real kind cluster:"] + fixes
    if backend == "sim":
        lines += ["", "The simulator needs none of these: `labkit run --backend sim` works as is."]
    else:
        lines += ["", f"kind {kind.version} can run Kubernetes {', '.join(release_minors(kind.version)) or '(none listed)'};"
                  " other versions need another kind release (`labkit up --k8s-version V` says which)."]
    return "\n".join(lines)


def node_line() -> str:
    """labkit's real node (docs/node.md): whether one runs, or can run here and how to start it."""
    try:
        from .node import Node
        from .node.host import problems

        node = Node()
        if node.running():
            return f"node     running  {node.describe()}; KUBECONFIG={node.kubeconfig} (`labkit node down` stops it)"
        found = problems()
        if found:
            return "node     missing  labkit node cannot run here: " + "; ".join(found)
        return (f"node     stopped  `sudo labkit node up` builds (the first time ~30-40 min on 2 cores) and starts "
                f"{node.describe()} (docs/node.md)")
    except Exception as exc:  # doctor reports, it never fails
        return f"node     missing  {exc}"
