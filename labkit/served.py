"""How labkit's served simulator marks itself, for the clients that must not take it for a cluster.

``labkit serve`` (labkit/serve/) writes these marks; the cluster backend, the recorder and
``labkit doctor`` read them. They live here, in the ground layer, so that readers need not import
the server (docs/serve.md, "What it is, and what it is not").
"""

from __future__ import annotations

SIM_SUFFIX = "-labkit-sim"                  # ends the served simulator's /version gitVersion
PACE_ANNOTATION = "labkit.dev/pace"         # on its node: simulated seconds per wall-clock second
SIMULATED_ANNOTATION = "labkit.dev/simulated"   # on its node: what is simulated (also under a real control plane)
CONTEXT = "labkit-sim"                      # the context of the kubeconfig labkit serve writes


def is_served_simulator(git_version: str) -> bool:
    """Whether a server's ``/version`` gitVersion says it is labkit's served simulator.

    >>> is_served_simulator("v1.29.0-labkit-sim"), is_served_simulator("v1.29.14")
    (True, False)
    """
    return str(git_version).endswith(SIM_SUFFIX)
