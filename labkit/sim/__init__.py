"""labkit's embedded simulator: a deterministic, virtual-time model of how the kubelet runs
native sidecars, with the Job and Deployment controllers around it.

- :class:`SimLab`: the notebook API (``labkit.connect(backend="sim")``).
- :func:`simulate`: apply manifests/scenario files and get the trace (``labkit sim run``).

It is a model and says so: every trace carries ``"generator": "labkit simulator — a model
of the kubelet, not a cluster"``. Semantics and the sources behind them are in the
modules: ``kubelet`` (pod worker, probes, termination), ``process`` (what a container's
program does, as the kubelet sees it; made by ``infer`` from the spec, ``shell`` for scripts
and ``behaviour`` for the scenario's block), ``cluster`` (API objects, controllers, the trace), ``timing`` (every
latency and constant in one table), ``api`` (the simulated API server).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lab import SimLab
    from .run import simulate

__all__ = ["SimLab", "simulate"]


def __getattr__(name: str) -> Any:
    """Load ``SimLab`` and ``simulate`` when first used, so that importing one module of the
    simulator (``labkit.sim.timing``, ``labkit.sim.api``) does not load all of it."""
    if name == "SimLab":
        from .lab import SimLab

        return SimLab
    if name == "simulate":
        from .run import simulate

        return simulate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
