"""The one ``Lab`` contract every backend keeps (simulator, kind, any cluster).

A notebook is written against :class:`Lab` and runs unchanged on any backend;
``tests/test_lab_contract.py`` runs one conformance suite against every backend it can reach,
and checks that each backend's methods have exactly these signatures.

    lab = labkit.lab.connect(backend="auto", k8s_version="1.29")
    lab.apply("manifests/job-sidecar.yaml")      # prints: $ kubectl apply -f manifests/job-sidecar.yaml
    lab.wait("job/sidecar-job", "Complete")      # seconds waited
    trace = lab.trace()
    lab.close()

References (``ref``) are read by :func:`labkit.refs.parse_ref`; what a wait condition means is
:func:`labkit.objects.wait_state`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .printers import PodTable
    from .trace import Trace

# How long wait() and delete() wait by default, on every backend: enough for a kind node to
# pull the blog's images and for a 30 s grace period to run out, with room to spare.
DEFAULT_TIMEOUT_S = 300.0
# How long wait() on a label selector gives a controller to create the first matching pod
# before it says that nothing matches (kubectl wait needs about as long to start).
SELECTOR_GRACE_S = 1.0

Listener = Callable[["Trace"], Any]


@runtime_checkable
class Lab(Protocol):
    """One Kubernetes to run manifests on, watched into a trace."""

    backend: str
    """``sim``, ``kind`` or ``cluster``."""
    why: str
    """Why this backend was picked (``connect(backend="auto")`` says)."""

    @property
    def kubernetes_version(self) -> str:
        """The server's version, e.g. ``1.29.0``."""

    @property
    def feature_gates(self) -> dict[str, bool]:
        """The gates labkit set on this cluster (empty: the version's defaults)."""

    def apply(self, source: Any) -> list[str]:
        """``kubectl apply -f``: a path, YAML text, a dict or a list of dicts.

        Returns kubectl's result lines (``job.batch/sidecar-job created``). Raises
        InvalidInput for a manifest the API server refuses (message with the field path).
        """

    def delete(self, ref: str, grace_period: int | None = None, wait: bool = True,
               timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
        """``kubectl delete REF [--grace-period=N]``; returns kubectl's lines (``job.batch "x" deleted``).

        ``grace_period`` overrides the pods' ``terminationGracePeriodSeconds`` (0: force).
        With ``wait`` it returns once the object and the pods it owns are gone, or raises
        WaitTimeout after ``timeout`` seconds. A missing object raises InvalidInput (NotFound).
        """

    def wait(self, ref: str, condition: str, timeout: float = DEFAULT_TIMEOUT_S) -> float:
        """``kubectl wait``: until ``condition`` holds; returns the seconds waited.

        Conditions per kind are :data:`labkit.objects.WAIT_CONDITIONS` (Complete/Failed for a
        Job, Available for a Deployment, Ready, Initialized, ContainersReady, PodScheduled or a
        phase for pods; Deleted for all). InvalidInput for an unknown condition; LabkitError
        when it can no longer happen (the Job Failed while waiting for Complete); WaitTimeout
        with the pods' story after ``timeout`` seconds.
        """

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` pass (virtual seconds on the simulator) while the trace records."""

    def pods(self) -> "PodTable":
        """``kubectl get pods``: a table that prints like kubectl's and is a list of rows."""

    def logs(self, pod: str, container: str | None = None, *, previous: bool = False) -> str:
        """``kubectl logs POD [-c CONTAINER] [--previous]``; ``pod`` may be ``job/x`` or ``deployment/x``."""

    def set_image(self, ref: str, container: str, image: str) -> list[str]:
        """``kubectl set image REF CONTAINER=IMAGE`` for a pod (in place) or a Deployment (rollout)."""

    def trace(self) -> "Trace":
        """Everything recorded since the lab opened or was last reset."""

    def add_listener(self, fn: Listener) -> Callable[[], None]:
        """Call ``fn(trace)`` as the trace grows; returns a function that removes the listener."""

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling ``fn``; no error if it was not registered."""

    def reset(self) -> None:
        """Delete what the lab made and start a new trace on the same cluster."""

    def close(self) -> None:
        """Delete what the lab made (and a kind cluster it created, unless kept); idempotent."""

    def __enter__(self) -> "Lab": ...

    def __exit__(self, *exc: Any) -> None: ...
