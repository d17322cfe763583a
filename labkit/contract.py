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

:class:`LabBody` is the one implementation of the contract: argument checks, the kubectl line a
call shows, the wait and delete loop, timeouts and every error live there, once. A backend is a
*transport* under it (as lightkube's sync and async clients share one request body and differ
only in how they send and watch): it applies, reads one object, lists matching pods, deletes,
and lets time pass (virtual time on the simulator, the wall clock on a cluster).
"""

from __future__ import annotations

import numbers
import os
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import InvalidInput, LabkitError, NotFound, WaitTimeout, WillNeverHappen
from .objects import wait_state
from .printers import PodTable
from .refs import KIND_PLURALS, Ref, check_condition, parse_ref, wait_args

if TYPE_CHECKING:
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
        WaitTimeout after ``timeout`` seconds. A missing object raises NotFound; a selector that
        matches no pod returns ``[]``.
        """

    def wait(self, ref: str, condition: str, timeout: float = DEFAULT_TIMEOUT_S) -> float:
        """``kubectl wait``: until ``condition`` holds; returns the seconds waited.

        Conditions per kind are :data:`labkit.objects.WAIT_CONDITIONS` (Complete/Failed for a
        Job, Available for a Deployment, Ready, Initialized, ContainersReady, PodScheduled or a
        phase for pods; Deleted for all). InvalidInput for an unknown condition; NotFound for a
        missing object (or a selector no pod matches) unless waiting for Deleted; WillNeverHappen
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


CLOSED = "this lab is closed; open a new one with labkit.connect()"


def _seconds(value: Any, field: str) -> float:
    """A number of seconds >= 0, or InvalidInput naming the argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise InvalidInput(f"expected a number of seconds >= 0, got {value!r}", field=field)
    return float(value)


class LabBody:
    """The Lab contract, implemented once; a backend subclasses it and supplies the transport.

    A transport says how to show a kubectl line (``_show``), apply (``_apply``), read one
    object as API JSON (``_get``: None when it does not exist), name the pods a selector
    matches (``_select``), delete (``_delete``), list pods (``_pod_list``), read logs
    (``_logs``), set an image (``_set_image``), let time pass (``_now``, ``_pass``), make its
    trace hold what a wait just read (``_recorded``), tell the pods' story for an error
    (``_story``), and start over or let go (``_reset``, ``_close``).
    """

    backend: str
    why: str
    quiet: bool = False
    closed: bool = False

    def _init_body(self) -> None:
        self._listeners: list[Listener] = []
        self._listener_lock = threading.Lock()

    # -- the transport ---------------------------------------------------------------------
    def _show(self, argv: list[str]) -> None:
        raise NotImplementedError

    def _apply(self, source: Any) -> list[str]:
        raise NotImplementedError

    def _get(self, ref: Ref) -> dict | None:
        raise NotImplementedError

    def _select(self, ref: Ref) -> list[str]:
        raise NotImplementedError

    def _delete(self, ref: Ref, grace_period: int | None) -> list[str]:
        raise NotImplementedError

    def _pod_list(self) -> tuple[list[dict], float]:
        raise NotImplementedError

    def _logs(self, ref: Ref, container: str | None, previous: bool) -> str:
        raise NotImplementedError

    def _set_image(self, ref: Ref, container: str, image: str) -> list[str]:
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    def _pass(self, seconds: float, until: Callable[[], bool] | None) -> bool:
        """Let up to ``seconds`` pass, stopping early once ``until()`` holds; returns whether it held."""
        raise NotImplementedError

    def _recorded(self, objects: list[dict]) -> None:
        """Return once the trace holds ``objects`` as a wait just read them: a trace recorded from a
        watch can be behind a read, the simulator's own trace never is."""

    def _story(self, ref: Ref) -> str:
        raise NotImplementedError

    def _reset(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # -- the contract ------------------------------------------------------------------------
    def apply(self, source: Any) -> list[str]:
        from .manifests import manifest_input

        self._check_open()
        path = manifest_input(source)[0] if isinstance(source, (str, os.PathLike)) else None
        self._show(["kubectl", "apply", "-f", path or "-"])
        lines = self._apply(source)
        self._say_lines(lines)
        return lines

    def delete(self, ref: str, grace_period: int | None = None, wait: bool = True,
               timeout: float = DEFAULT_TIMEOUT_S) -> list[str]:
        self._check_open()
        target = parse_ref(ref)
        if grace_period is not None and (isinstance(grace_period, bool) or not isinstance(grace_period, int)
                                         or grace_period < 0):
            raise InvalidInput(f"expected a whole number of seconds >= 0, got {grace_period!r}", field="grace_period")
        timeout = _seconds(timeout, "timeout")
        argv = ["kubectl", "delete", *target.args]
        if grace_period is not None:
            argv += [f"--grace-period={grace_period}"] + (["--force"] if grace_period == 0 else [])
        self._show(argv + ([] if wait else ["--wait=false"]))
        if target.selector is not None:
            targets = [Ref("Pod", name) for name in self._select(target)]
            if not targets:
                self._say("No resources found")
                return []
        else:
            if self._get(target) is None:
                raise NotFound.of(target.kind, target.name)
            targets = [target]
        lines = self._delete(target, grace_period)
        self._say_lines(lines)
        if wait:
            self._wait_for(target, targets, "Deleted", timeout)
        return lines

    def wait(self, ref: str, condition: str, timeout: float = DEFAULT_TIMEOUT_S) -> float:
        self._check_open()
        target = parse_ref(ref)
        check_condition(target, condition)
        timeout = _seconds(timeout, "timeout")
        self._show(["kubectl", *wait_args(target, condition, timeout)])
        start = self._now()
        if target.selector is not None:
            # kubectl needs a moment to start; pods a controller creates just now exist by then
            self._pass(min(SELECTOR_GRACE_S, timeout), lambda: bool(self._select(target)))
            targets = [Ref("Pod", name) for name in self._select(target)]
            if not targets:
                if condition == "Deleted":
                    return round(self._now() - start, 6)
                raise NotFound(f"no matching resources found for {' '.join(target.args)!r}", field="ref")
        else:
            first = self._get(target)
            if first is None:
                if condition == "Deleted":
                    return 0.0
                raise NotFound.of(target.kind, target.name)
            targets = [target]
        waited = self._wait_for(target, targets, condition, timeout, start=start,
                                looked=[first] if target.selector is None else [])
        met = "deleted" if condition == "Deleted" else "condition met"
        self._say_lines([f"{KIND_PLURALS[t.kind]}/{t.name} {met}" for t in targets])
        return waited

    def _wait_for(self, target: Ref, targets: list[Ref], condition: str, timeout: float, *,
                  start: float | None = None, looked: list[dict | None] | None = None) -> float:
        """Wait until each of ``targets`` meets ``condition``, one after another as ``kubectl
        wait`` does (which keeps a wait on many pods linear in the pods); returns the seconds
        waited, 0.0 when it held at the first look (``looked``: the first target as just read)."""
        start = self._now() if start is None else start
        pending = list(targets)
        looked = list(looked or [])
        never: list[str] = []
        read: list[dict] = []    # each target as it was when it met the condition

        def met() -> bool:
            while pending:
                obj = looked.pop() if looked else self._get(pending[0])
                done, impossible = wait_state(pending[0].kind, condition, obj)
                if impossible:
                    never.append(impossible)
                    return True
                if not done:
                    return False
                pending.pop(0)
                if obj is not None:
                    read.append(obj)
            return True

        what = " ".join(target.args)
        if met():
            waited = round(self._now() - start, 6) if target.selector is not None else 0.0
        elif self._pass(max(0.0, start + timeout - self._now()), met):
            waited = round(self._now() - start, 6)
        else:
            doing = "deletion" if condition == "Deleted" else f"condition {condition}"
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {doing} on {what}\n{self._story(target)}")
        if never:
            raise WillNeverHappen(f"{what} will not become {condition}: {never[0]}\n{self._story(target)}")
        self._recorded(read)
        return waited

    def sleep(self, seconds: float) -> None:
        self._check_open()
        self._pass(_seconds(seconds, "seconds"), None)

    def pods(self) -> PodTable:
        self._check_open()
        self._show(["kubectl", "get", "pods"])
        pods, now = self._pod_list()
        return PodTable.from_pods(pods, now=now, namespace=getattr(self, "namespace", None))

    def logs(self, pod: str, container: str | None = None, *, previous: bool = False) -> str:
        self._check_open()
        target = parse_ref(pod)
        if target.selector is not None:
            raise InvalidInput(f"logs takes one pod, job/NAME or deployment/NAME, not a selector ({pod!r})",
                               field="pod")
        self._show(["kubectl", "logs", *target.args] + (["-c", container] if container else [])
                   + (["--previous"] if previous else []))
        if self._get(target) is None:
            raise NotFound.of(target.kind, target.name)
        return self._logs(target, container, previous)

    def set_image(self, ref: str, container: str, image: str) -> list[str]:
        self._check_open()
        target = parse_ref(ref)
        if target.selector is not None or target.kind == "Job":
            raise InvalidInput(f"set image takes pod/NAME or deployment/NAME, not {ref!r} (a Job's template "
                               "cannot change)", field="ref")
        self._show(["kubectl", "set", "image", *target.args, f"{container}={image}"])
        if self._get(target) is None:
            raise NotFound.of(target.kind, target.name)
        lines = self._set_image(target, container, image)
        self._say_lines(lines)
        return lines

    # -- listeners -------------------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> Callable[[], None]:
        with self._listener_lock:
            self._listeners.append(fn)
        return lambda: self.remove_listener(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self._listener_lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def _notify(self) -> None:
        with self._listener_lock:
            listeners = list(self._listeners)
        if not listeners:
            return
        trace = self.trace()
        for listener in listeners:
            try:
                listener(trace)
            except Exception as exc:  # a broken display must not stop the lab
                print(f"labkit: a trace listener failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    # -- lifecycle ---------------------------------------------------------------------------------
    def reset(self) -> None:
        self._check_open()
        self._reset()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with self._listener_lock:
            self._listeners.clear()
        self._close()

    def _check_open(self) -> None:
        if self.closed:
            raise LabkitError(CLOSED)

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.close()
        except Exception as cleanup:
            if exc[0] is None:
                raise
            print(f"labkit: cleaning up after the error failed too: {cleanup}", file=sys.stderr)

    # -- printing ----------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)

    def _say_lines(self, lines: list[str]) -> None:
        for line in lines:
            self._say(line)


# help(lab.wait) on every backend reads the contract's own words: one text per method, in Lab.
for _name in ("apply", "delete", "wait", "sleep", "pods", "logs", "set_image", "add_listener", "remove_listener",
              "reset", "close"):
    getattr(LabBody, _name).__doc__ = getattr(Lab, _name).__doc__
del _name
